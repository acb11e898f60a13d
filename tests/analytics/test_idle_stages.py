"""A promotions or inventory run with nothing new to do, with the parameters of the last run, answers from the
tables it stored instead of recomputing them (marks.current); other parameters, a new change, a rebuild or
a backfill since make it recompute. The shop is test_product_promotions' hand-written export (guests, no line ids,
discount column): a stored cell set to -1 by hand shows whether a call recomputed (it is gone) or not."""

from __future__ import annotations

import pytest
from test_product_promotions import DAYS, write_shop

from helpers import load_and_validate
from retailflow.analytics.inventory import run_inventory
from retailflow.analytics.promotions import run_promotions
from retailflow.incremental import DateRange

# DuckDB alone: the check is two plain reads of audit.stage_marks, the same SQL on every engine (suite time).
pytestmark = pytest.mark.engines("duckdb")


def _poke(backend) -> None:
    """Set a cell of each stage's stored answer to -1: only a recompute brings the real values back."""
    backend.execute("UPDATE analytics.promotion_effectiveness SET days_observed = -1")
    backend.execute("UPDATE analytics.top_products SET units = -1")


def _answered_from_storage(backend, *, top: int = 5, min_baseline_days: int = 5, **window) -> tuple[bool, bool]:
    """Whether run_promotions and run_inventory, called with these parameters, returned the poked rows."""
    ranked = run_promotions(backend, min_baseline_days=min_baseline_days, **window)
    tops = run_inventory(backend, top=top, **window)["top_products"]
    assert ranked and tops
    return ({row["days_observed"] for row in ranked} == {-1}, {row["units"] for row in tops} == {-1})


def test_nothing_new_is_answered_from_the_stored_tables(backend, tmp_path):
    write_shop(tmp_path / "night1", DAYS[:9])
    write_shop(tmp_path / "night2", DAYS[9:], masters=False)
    load_and_validate(backend, tmp_path / "night1")
    run_promotions(backend)
    run_inventory(backend)

    _poke(backend)
    assert _answered_from_storage(backend) == (True, True), "nothing new, same parameters: the stored answer"
    assert _answered_from_storage(backend, top=2, min_baseline_days=4) == (False, False), "other parameters"
    assert backend.scalar("SELECT count(*) FROM analytics.top_products") == 2  # top 2 of the three products

    _poke(backend)
    assert _answered_from_storage(backend, top=2, min_baseline_days=4) == (True, True), "the new ones are recorded"
    load_and_validate(backend, tmp_path / "night2")
    assert _answered_from_storage(backend, top=2, min_baseline_days=4) == (False, False), "a new change"

    # A backfill recomputes its days with its own parameters: the next run with nothing new recomputes as well.
    _poke(backend)
    backfill = DateRange(DAYS[0], DAYS[0])
    assert _answered_from_storage(backend, top=2, min_baseline_days=4, days=backfill) == (False, False)
    _poke(backend)
    assert _answered_from_storage(backend, top=2, min_baseline_days=4) == (False, False), "after a backfill"
    _poke(backend)
    assert _answered_from_storage(backend, top=2, min_baseline_days=4) == (True, True)
    assert _answered_from_storage(backend, top=2, min_baseline_days=4, rebuild=True) == (False, False)
