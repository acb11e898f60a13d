"""Expected deliveries with a cut-off and a store's end date: which days are due, missing or pending.

A hand-made week, closed_after_days 3, cut-off 06:00 (a day's files are due at 06:00 the next day). The store
file: S1 (no opening date), S2 (opens Thursday 2025-01-02), S3 (last trading day Friday 2025-01-03, from the
settings). Sales headers delivered:

    S1  01-01 01-02 01-03 01-04
    S2        01-02       01-04      (01-03 never comes)
    S3  01-01 01-02 01-03

Worked out by hand, checked at Monday 2025-01-06 12:00 (the last business date due: 01-05):
- The calendar runs to 01-05: a delivered day (01-04) plus up to two more, cut at the last day expected, which
  the cut-off moves from the last delivery (01-04) to the last day due (01-05).
- S1 is expected 01-01 to 01-05 (01-05: missing); S2 from its first sale 01-02 (`opened` then) to 01-05, 01-03
  and 01-05 missing; S3 01-01 to 01-03, closed from 01-04 (`closed`, not expected).
- No store has three of a weekday yet, so every weekday trades.

At 05:00 on Monday the last day due is 01-04: the calendar stops there, S2's 01-03 is missing (due 01-04 06:00),
and nobody's 01-05 is in the table: 11 rows.
"""

from __future__ import annotations

import datetime as dt

import pytest
from checks_engines import ENGINES, database

from retailflow.backends import connect
from retailflow.catalog import EXPECTED_DELIVERIES, STORE_DAY_DELIVERIES
from retailflow.checks.anomalies import computed
from retailflow.checks.expected import expected_deliveries
from retailflow.checks.run import PARAMS_TABLE, _write_params, empty
from retailflow.checks.settings import ChecksSettings
from retailflow.tables import staging_table

HEADERS = "store_sales_header"
DELIVERED = {"S1": ["01-01", "01-02", "01-03", "01-04"], "S2": ["01-02", "01-04"], "S3": ["01-01", "01-02", "01-03"]}
SETTINGS = ChecksSettings(closed_after_days=3, cutoff_minutes=6 * 60, store_end_dates={"S3": dt.date(2025, 1, 3)})


def _day(text: str) -> str:
    return f"2025-{text}"


def _judged(url: str, now: dt.datetime, last_due: dt.date, kept: bool) -> dict[tuple[str, str], tuple]:
    backend = connect(url)
    try:
        backend.create_table(STORE_DAY_DELIVERIES)
        rows = ", ".join(f"('{store}', '{HEADERS}', DATE '{_day(day)}', 5, 0, 0, TIMESTAMP '{_day(day)} 23:00:00', "
                         f"TIMESTAMP '{_day(day)} 23:00:00')" for store, days in DELIVERED.items() for day in days)
        backend.execute(f"INSERT INTO analytics.store_day_deliveries VALUES {rows}")
        backend.execute("INSERT INTO staging.stores VALUES ('S1', 'One', 'A', 'North', NULL, 1, 2), "
                        "('S2', 'Two', 'A', 'North', DATE '2025-01-02', 1, 3), ('S3', 'Three', 'A', 'North', NULL, 1, 4)")
        _write_params(backend, now, None, last_due, 0)
        keep = backend.create_temp_table if kept else computed
        table = expected_deliveries(STORE_DAY_DELIVERIES.table(), staging_table("stores"), empty(EXPECTED_DELIVERIES),
                                    PARAMS_TABLE, SETTINGS, keep)
        return {(row["store_id"], row["business_date"].isoformat()[5:]): (row["status"], row["finding"])
                for row in backend.fetch_dicts(table) if row["entity"] == HEADERS}
    finally:
        backend.close()


@pytest.mark.parametrize("kept", [True, False], ids=["kept", "inline"])
@pytest.mark.parametrize("engine", ENGINES)
def test_a_cut_off_extends_the_calendar_to_the_last_day_due_and_an_end_date_closes_a_store(engine, kept, tmp_path):
    with database(engine, tmp_path) as url:
        judged = _judged(url, dt.datetime(2025, 1, 6, 12), dt.date(2025, 1, 5), kept)
    delivered = ("delivered", None)
    assert judged == {
        ("S1", "01-01"): delivered, ("S1", "01-02"): delivered, ("S1", "01-03"): delivered,
        ("S1", "01-04"): delivered, ("S1", "01-05"): ("missing", "missing"),
        ("S2", "01-02"): ("delivered", "opened"), ("S2", "01-03"): ("missing", "missing"),
        ("S2", "01-04"): delivered, ("S2", "01-05"): ("missing", "missing"),
        ("S3", "01-01"): delivered, ("S3", "01-02"): delivered, ("S3", "01-03"): delivered,
        ("S3", "01-04"): ("not_expected", "closed"),
    }


@pytest.mark.parametrize("engine", ENGINES)
def test_before_the_cut_off_the_last_day_is_not_due_yet(engine, tmp_path):
    with database(engine, tmp_path) as url:
        judged = _judged(url, dt.datetime(2025, 1, 6, 5), dt.date(2025, 1, 4), kept=True)
    assert judged[("S2", "01-03")] == ("missing", "missing")
    assert judged[("S3", "01-04")] == ("not_expected", "closed")
    assert not [key for key in judged if key[1] == "01-05"]
    assert len(judged) == 11  # S1 01-01..04, S2 01-02..04, S3 01-01..04
