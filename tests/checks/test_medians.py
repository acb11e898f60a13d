"""The median without a median aggregate (MySQL / MariaDB) is the median: checked against DuckDB's own."""

from __future__ import annotations

import ibis

from retailflow.checks.anomalies import medians


def test_the_windowed_median_equals_the_aggregate_one():
    # Groups of 1 to 4 values, unsorted, with a tie: medians 5; 2.5; 3; 2.5 (of 1, 2, 3, 9 the middle two 2 and 3).
    rows = {"_row": [1, 2, 2, 3, 3, 3, 4, 4, 4, 4], "v": [5.0, 4.0, 1.0, 3.0, 3.0, 8.0, 9.0, 1.0, 3.0, 2.0]}
    table = ibis.memtable(rows)
    con = ibis.duckdb.connect()
    exact = con.execute(medians(table, "_row", "v").order_by("_row"))
    windowed = con.execute(medians(table, "_row", "v", windowed=True).order_by("_row"))
    assert list(windowed.baseline) == list(exact.baseline) == [5.0, 2.5, 3.0, 2.5]
    assert list(windowed.baseline_days) == list(exact.baseline_days) == [1, 2, 3, 4]
