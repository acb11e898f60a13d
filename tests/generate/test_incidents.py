"""`--incidents`: delivery and volume incidents planted in the files, with their truth and a holiday calendar."""

from __future__ import annotations

import csv
import datetime as dt
import math
from pathlib import Path

import duckdb
import pytest

from retailflow.errors import UserError
from retailflow.generate import GeneratorOptions, generate_dataset

OPTIONS = GeneratorOptions(seed=5, stores=6, products=40, customers=1200, days=42, incidents=True)


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> tuple[Path, dict[str, dict], dict]:
    out = tmp_path_factory.mktemp("incidents")
    manifest = generate_dataset(out, OPTIONS)
    with open(out / "_truth" / "incidents.csv", newline="") as handle:
        truth = {row["kind"]: row for row in csv.DictReader(handle)}
    return out, truth, manifest


def rows(sql: str, out: Path) -> list[tuple]:
    connection = duckdb.connect()
    for name, pattern in (("headers", "store_sales_header_*.csv"), ("lines", "store_sales_line_items_*.csv"),
                          ("stock", "inventory_daily_*.csv"), ("late_headers", "_late/store_sales_header_*.csv"),
                          ("late_lines", "_late/store_sales_line_items_*.csv"), ("labels", "_truth/anomalies.csv"),
                          ("stores", "stores.csv"), ("promotions", "promotion_details.csv")):
        connection.execute(f"CREATE VIEW {name} AS SELECT * FROM read_csv('{out}/{pattern}', all_varchar=true)")
    return connection.execute(sql).fetchall()


def test_the_truth_lists_each_incident_and_what_the_checks_must_report(planted):
    out, truth, manifest = planted
    assert {kind: row["finding"] for kind, row in truth.items()} == {
        "missing_file": "missing", "late_file": "late", "truncated_file": "anomaly", "store_closed": "closed",
        "store_opened": "opened", "holiday": "none", "promotion_day": "none"}
    stores = [truth[kind]["store_id"] for kind in ("missing_file", "late_file", "truncated_file", "store_closed",
                                                   "store_opened")]
    assert len(set(stores)) == 5 and truth["holiday"]["store_id"] == ""
    assert len(manifest["incidents"]) == 7
    assert (out / "_holidays.csv").read_text().splitlines() == [
        '"date","name"', f'"{truth["holiday"]["business_date"]}","Generated holiday"']


def _sales(out: Path, store: str, day: str, table: str = "headers") -> int:
    return rows(f"SELECT count(*) FROM {table} WHERE store_id = '{store}' "
                f"AND left(transaction_date, 10) = '{day}'", out)[0][0]


def test_a_missing_file_leaves_no_sales_of_its_store_day(planted):
    out, truth, _ = planted
    missing = truth["missing_file"]
    assert _sales(out, missing["store_id"], missing["business_date"]) == 0
    # The stock count is another file: it still came.
    assert rows(f"SELECT count(*) FROM stock WHERE store_id = '{missing['store_id']}' "
                f"AND snapshot_date = '{missing['business_date']}'", out)[0][0] == OPTIONS.products


def test_a_late_day_is_apart_in_late(planted):
    out, truth, _ = planted
    late = truth["late_file"]
    assert _sales(out, late["store_id"], late["business_date"]) == 0
    kept = _sales(out, late["store_id"], late["business_date"], "late_headers")
    assert kept > 0
    assert rows("SELECT count(DISTINCT store_id), count(*) FROM late_headers", out)[0] == (1, kept)
    orphans = rows("SELECT count(*) FROM late_lines l ANTI JOIN late_headers h USING (transaction_id)", out)[0][0]
    assert orphans == 0 and rows("SELECT count(*) FROM late_lines", out)[0][0] >= kept


def test_a_truncated_file_keeps_its_first_tenth(planted):
    out, truth, _ = planted
    cut = truth["truncated_file"]
    day_before = rows(f"SELECT count(*) FROM headers WHERE store_id = '{cut['store_id']}' AND left(transaction_date, "
                      f"10) = strftime(CAST('{cut['business_date']}' AS DATE) - 7, '%Y-%m-%d')", out)[0][0]
    kept = _sales(out, cut["store_id"], cut["business_date"])
    assert 0 < kept <= math.ceil(0.1 * day_before * 1.5)
    kept_lines = rows(f"SELECT count(*) FROM lines JOIN headers USING (transaction_id) WHERE store_id = "
                      f"'{cut['store_id']}' AND left(transaction_date, 10) = '{cut['business_date']}'", out)[0][0]
    assert kept_lines < kept * 9


def test_a_closed_store_and_a_new_one_send_nothing_outside_their_time(planted):
    out, truth, _ = planted
    closed, opened = truth["store_closed"], truth["store_opened"]
    assert rows(f"SELECT count(*) FROM headers WHERE store_id = '{closed['store_id']}' "
                f"AND left(transaction_date, 10) >= '{closed['business_date']}'", out)[0][0] == 0
    assert rows(f"SELECT count(*) FROM stock WHERE store_id = '{closed['store_id']}' "
                f"AND snapshot_date >= '{closed['business_date']}'", out)[0][0] == 0
    assert rows(f"SELECT min(left(transaction_date, 10)) FROM headers WHERE store_id = '{opened['store_id']}'",
                out)[0][0] == opened["business_date"]
    assert rows(f"SELECT opening_date FROM stores WHERE store_id = '{opened['store_id']}'", out)[0][0] == \
        opened["business_date"]


def test_the_holiday_is_quiet_and_the_promotion_day_busy(planted):
    out, truth, _ = planted
    per_day = dict(rows("SELECT left(transaction_date, 10), count(*) FROM headers WHERE transaction_date IS NOT NULL "
                        "GROUP BY 1", out))
    holiday, promotion = truth["holiday"]["business_date"], truth["promotion_day"]["business_date"]
    ordinary = sorted(per_day.values())[len(per_day) // 2]
    assert per_day[holiday] < 0.5 * ordinary
    assert rows(f"SELECT promotion_id FROM promotions WHERE start_date = '{promotion}' AND end_date = '{promotion}' "
                "AND applicable_category = 'ALL'", out) == [("PR007",)]
    lines = dict(rows("SELECT left(transaction_date, 10), count(*) FROM lines JOIN headers USING (transaction_id) "
                      "WHERE transaction_date IS NOT NULL GROUP BY 1", out))
    week_before = (dt.date.fromisoformat(promotion) - dt.timedelta(days=7)).isoformat()
    assert lines[promotion] > 1.5 * lines[week_before]


def test_no_label_names_a_withheld_transaction(planted):
    out, _, _ = planted
    withheld = rows("SELECT count(*) FROM labels WHERE transaction_id IS NOT NULL AND transaction_id NOT IN ("
                    "SELECT transaction_id FROM headers UNION SELECT transaction_id FROM lines "
                    "UNION SELECT transaction_id FROM late_headers UNION SELECT transaction_id FROM late_lines)",
                    out)[0][0]
    assert withheld == 0


@pytest.mark.parametrize("bad", [dict(days=30), dict(stores=4), dict(promotions=False)])
def test_incidents_need_six_weeks_five_stores_and_promotions(tmp_path, bad):
    with pytest.raises(UserError, match="--incidents needs at least 42 days, 5 stores and promotions"):
        generate_dataset(tmp_path, GeneratorOptions(**{**dict(days=42, stores=6, incidents=True), **bad}))
