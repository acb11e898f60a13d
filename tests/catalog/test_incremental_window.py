"""The incremental window: every day on a stage's first run, then the days of the changes it has not processed;
a backfill recomputes its days and leaves the other changes due; a failed stage leaves them all due."""

from __future__ import annotations

import datetime as dt

import pytest

from retailflow import catalog, incremental, marks
from retailflow.incremental import EVERY_DAY, DateRange

BATCH_DATES = catalog.table("audit.batch_dates")


def _change(backend, change_id: int, day: dt.date) -> None:
    backend.append_values(BATCH_DATES, [(change_id, change_id, "store_sales_header", day, 1, 0)])


def _days(backend, changed) -> list[dt.date]:
    return sorted(row["business_date"] for row in backend.fetch_dicts(changed))


@pytest.mark.engines("duckdb")
def test_a_stage_recomputes_every_day_then_the_changed_ones(backend):
    _change(backend, 1, dt.date(2024, 12, 1))
    with incremental.window(backend, "test") as changed:
        assert changed is EVERY_DAY
    assert marks.mark(backend, "test") == 1 and marks.up_to_date(backend, "test")
    _change(backend, 2, dt.date(2024, 12, 2))
    _change(backend, 3, dt.date(2024, 12, 3))
    backfill = DateRange(dt.date(2024, 12, 1), dt.date(2024, 12, 1))
    with incremental.window(backend, "test", days=backfill) as changed:
        assert changed == backfill
    assert marks.mark(backend, "test") == 1, "a backfill leaves the other changes due"
    with pytest.raises(RuntimeError), incremental.window(backend, "test") as changed:
        raise RuntimeError("the stage failed")
    assert marks.mark(backend, "test") == 1, "a failed stage leaves its changes due"
    with incremental.window(backend, "test") as changed:
        assert _days(backend, changed) == [dt.date(2024, 12, 2), dt.date(2024, 12, 3)]
    assert marks.mark(backend, "test") == 3
    with incremental.window(backend, "test", rebuild=True) as changed:
        assert changed is EVERY_DAY


@pytest.mark.engines("duckdb")
def test_a_master_change_recomputes_every_day(backend):
    _change(backend, 1, dt.date(2024, 12, 1))
    with incremental.window(backend, "test", masters=("products",)):
        pass
    incremental.record_masters(backend, 2, {"products": 5})
    with incremental.window(backend, "test", masters=("products",)) as changed:
        assert changed is EVERY_DAY


@pytest.mark.engines("duckdb")
def test_a_stage_is_current_with_nothing_new_and_the_same_parameters(backend):
    _change(backend, 1, dt.date(2024, 12, 1))
    assert not marks.current(backend, "test", {"top": 3}), "never ran"
    with incremental.window(backend, "test", parameters={"top": 3}):
        pass
    assert marks.current(backend, "test", {"top": 3})
    assert not marks.current(backend, "test", {"top": 4})
    with pytest.raises(RuntimeError), incremental.window(backend, "test", parameters={"top": 4}):
        raise RuntimeError("the stage failed")
    assert marks.current(backend, "test", {"top": 3}), "a failed run changes nothing"
    _change(backend, 2, dt.date(2024, 12, 2))
    assert not marks.current(backend, "test", {"top": 3}), "a change since"
    with incremental.window(backend, "test", parameters={"top": 3}):
        pass
    with incremental.window(backend, "test", days=DateRange(dt.date(2024, 12, 1)), parameters={"top": 3}):
        pass
    assert marks.mark(backend, "test") == 2
    assert not marks.current(backend, "test", {"top": 3}), "a backfill's days were made with its parameters"
    with incremental.window(backend, "test"):
        pass
    assert not marks.current(backend, "test", {}), "a stage giving no parameters is never current"
