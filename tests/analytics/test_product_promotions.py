"""Product promotions (issue 28, item 4): promotions naming products (and stores) instead of a category, the
lines' own discounts, the overlap of both scopes, measured at product level like categories are.

The shop, two weeks (Mon 2024-12-02 to Sun 2024-12-15), two stores, three products, a snapshot of 10 units for
every store × product × day (so every store-product-day is an in-stock cell) and a sale on every cell:

    P1 Snacks 2.00    P2 Snacks 3.00    P3 Drinks 1.00

On a day no promotion covers, a cell sells 1 unit at the list price (P1: 2 on Mondays). The promotions:

    PR_C  category Snacks, Wed Dec 11, 15 %: P1 at ST2 sells 2 at 1.70; P2 at both stores 2 at 2.55
    PR_P  product P1 at ST1, Mon Dec 9 - Wed Dec 11, 20 %: 4, 3 and 2 units at 1.60 (Dec 11's line also says it
          gave 1.00 off, a coupon on top: the export's word is kept)
    PR_L  a mailer of products "P2|P3" at stores "ST1, ST2", Fri Dec 13 - Sat Dec 14, no percentage: P2 sells
          2 at 2.70 (its lines give 0.60 off), P3 1 at 0.90 (0.10 off); these lines name no promotion, as a
          grocery export's do not
    and on Mon Dec 2 a P3 line at ST1 with 0.05 off (a coupon) and no promotion: no promotion's cost.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import ibis
import pyarrow as pa
import pytest

from helpers import load_and_validate, write_csv
from retailflow.analytics.promotions import covered_cells, credited, run_promotions
from retailflow.backends import connect
from retailflow.report.sections import promotions as promotions_section
from retailflow.tables import staging_table

#: DuckDB and PostgreSQL (the SQL is the same on MySQL, which passed it when written: the suite's time is bounded).
BOTH_ENGINES = pytest.mark.parametrize("db_url", ["duckdb", "postgres"], indirect=True)
FIRST_DAY = dt.date(2024, 12, 2)
DAYS = [FIRST_DAY + dt.timedelta(days=offset) for offset in range(14)]
STORES = ("ST1", "ST2")
PRICES = {"P1": Decimal("2.00"), "P2": Decimal("3.00"), "P3": Decimal("1.00")}
PROMOTIONS = """
promotion_id,promotion_name,start_date,end_date,discount_percentage,applicable_category,applicable_products,applicable_stores
PR_C,Snack Wednesday,2024-12-11,2024-12-11,15.00,Snacks,,
PR_P,P1 end cap,2024-12-09,2024-12-11,20.00,,P1,ST1
PR_L,Mailer,2024-12-13,2024-12-14,,,P2|P3,"ST1, ST2"
"""
#: (store, product, day of December) -> units, amount, promotion named by the line, the line's own discount.
PROMOTED = {
    ("ST1", "P1", 9): (4, "6.40", "PR_P", ""), ("ST1", "P1", 10): (3, "4.80", "PR_P", ""),
    ("ST1", "P1", 11): (2, "3.20", "PR_P", "1.00"), ("ST2", "P1", 11): (2, "3.40", "PR_C", ""),
    ("ST1", "P2", 11): (2, "5.10", "PR_C", ""), ("ST2", "P2", 11): (2, "5.10", "PR_C", ""),
    **{(store, "P2", day): (2, "5.40", "", "0.60") for store in STORES for day in (13, 14)},
    **{(store, "P3", day): (1, "0.90", "", "0.10") for store in STORES for day in (13, 14)},
    ("ST1", "P3", 2): (1, "0.95", "", "0.05"),
}


def write_shop(folder: Path, days: list[dt.date] = DAYS, masters: bool = True) -> None:
    """The shop above as export files (the sales and snapshots of `days`; the masters too, unless told): one
    transaction per store-day, one line per product."""
    headers, lines = [], []
    for day in days:
        for store in STORES:
            transaction = f"T{day.day:02d}{store}"
            total = Decimal(0)
            for product, price in PRICES.items():
                plain_units = 2 if product == "P1" and day.weekday() == 0 else 1
                units, amount, promotion, discount = PROMOTED.get(
                    (store, product, day.day), (plain_units, f"{plain_units * price:.2f}", "", ""))
                total += Decimal(amount)
                lines.append(f"{transaction},{product},{promotion},{units},{amount},{discount}")
            headers.append(f"{transaction},,{store},{day} 10:00:00,{total:.2f}")
    if masters:
        write_csv(folder, "stores.csv", "store_id,store_name\nST1,One\nST2,Two")
        write_csv(folder, "products.csv", "product_id,product_name,product_category,unit_price\n"
                  + "\n".join(f"{product},{product},{'Drinks' if product == 'P3' else 'Snacks'},{price}"
                              for product, price in PRICES.items()))
        write_csv(folder, "promotion_details.csv", PROMOTIONS)
    write_csv(folder, "store_sales_header.csv", "\n".join(
        ["transaction_id,customer_id,store_id,transaction_date,total_amount", *headers]))
    write_csv(folder, "store_sales_line_items.csv", "\n".join(
        ["transaction_id,product_id,promotion_id,quantity,line_item_amount,discount_amount", *lines]))
    write_csv(folder, "inventory_daily.csv", "\n".join(
        ["snapshot_date,store_id,product_id,stock_on_hand",
         *(f"{day},{store},{product},10" for day in days for store in STORES for product in PRICES)]))


@BOTH_ENGINES
def test_product_promotions_are_measured_against_their_products_baselines(backend, tmp_path):
    write_shop(tmp_path / "data")
    outcome = load_and_validate(backend, tmp_path / "data")
    assert backend.scalar("SELECT count(*) FROM staging.promotion_details") == 3
    assert backend.scalar("SELECT count(*) FROM staging.store_sales_line_items") == 14 * 2 * 3, outcome
    run_promotions(backend, top=3)
    assert_measured(backend)
    # The report draws a product promotion by product, and its days over that product's cells (both stores):
    # PR_P's Dec 9 (4 + 2 units) / 2 cells = 3.0, Dec 10 (3 + 1) / 2 = 2.0, Dec 11 (2 + 2) / 2 = 2.0.
    section = promotions_section(backend)
    assert "★ PR_P · P1" in section.charts[1].figure.data[0].x
    assert list(section.charts[-1].figure.data[0].y) == [3.0, 2.0, 2.0]


def assert_measured(backend) -> None:
    """The shop's promotions as worked out by hand."""
    rows = {(row["promotion_id"], row["product_category"], row["product_id"]): row for row in backend.fetch_dicts(
        "SELECT * FROM analytics.promotion_effectiveness")}
    measured = {key: (int(row["promoted_units"]), float(row["expected_units"]), row["lift_units_pct"],
                      row["lift_revenue_pct"], int(row["days_observed"]), int(row["overlap_days"]),
                      float(row["discount_cost"]), row["promotion_lift_pct"], row["rank"])
                for key, row in rows.items()}
    assert measured == {
        # PR_P, P1 at ST1. Dec 11's cell is PR_C's too (Snacks): 20 % beats 15 %, PR_P has it (1 overlap day).
        # P1's baseline cells are those no promotion covered: every P1 cell but ST1's Dec 9-11 and ST2's Dec 11.
        #   Mondays Dec 2 (ST1, ST2) and Dec 9 (ST2): 3 cells, 6 units -> 2.0 a cell, revenue 4.00;
        #   Tuesdays Dec 3 (both), Dec 10 (ST2): 3 cells, 3 units -> 1.0; Wednesdays Dec 4 (both): 2 cells -> 1.0.
        # Expected: 2.0 + 1.0 + 1.0 = 4 units, 4.00 + 2.00 + 2.00 = 8.00; promoted 4 + 3 + 2 = 9 units at 1.60 =
        # 14.40: lift (9 / 4 - 1) x 100 = 125 %, revenue (14.40 / 8 - 1) x 100 = 80 %.
        # Discount: 8.00 - 6.40 + 6.00 - 4.80 + the 1.00 Dec 11's line says = 3.80.
        ("PR_P", "Snacks", "P1"): (9, 4.0, 125.0, 80.0, 3, 1, 3.8, 125.0, 1),
        # PR_C, Snacks on Dec 11: the cells PR_P did not take, P1 at ST2 and P2 at both: 3 cells, 2 + 2 + 2 units,
        # 3.40 + 5.10 + 5.10 = 13.60. Snacks' Wednesday baseline: Dec 4's 4 cells, 4 units, 10.00 -> 1.0 and 2.50
        # a cell: expected 3 units, 7.50; lift 100 %, revenue (13.60 / 7.50 - 1) x 100 = 81.33 %.
        # Discount: (4.00 - 3.40) + 2 x (6.00 - 5.10) = 2.40. It won no contested cell: 0 overlap days.
        ("PR_C", "Snacks", None): (6, 3.0, 100.0, 81.33, 1, 0, 2.4, 100.0, 2),
        # PR_L, Dec 13 and 14 (Fri, Sat), 2 stores each. P2's Friday and Saturday baselines (Dec 6, 7) are 1 unit
        # a cell at 3.00: expected 4 units, 12.00; promoted 8 at 2.70 = 21.60: lift 100 %, revenue 80 %. P3:
        # expected 4 units, 4.00; promoted 4 at 0.90 = 3.60: lift 0 %, revenue -10 %. The promotion: (12 / 8 - 1)
        # x 100 = 50 %. Its lines name no promotion but give their own discount: 4 x 0.60 and 4 x 0.10, credited
        # by their cells.
        ("PR_L", "Snacks", "P2"): (8, 4.0, 100.0, 80.0, 2, 0, 2.4, 50.0, 3),
        ("PR_L", "Drinks", "P3"): (4, 4.0, 0.0, -10.0, 2, 0, 0.4, 50.0, 3)}
    # P1's baseline days: every day but Dec 11, when both its cells were promoted.
    assert rows[("PR_P", "Snacks", "P1")]["baseline_days"] == 13 and rows[("PR_P", "Snacks", "P1")]["status"] == "ok"
    # Dec 2's coupon (0.05, no promotion covering the cell) is no promotion's: 3.80 + 2.40 + 2.40 + 0.40 = 9.00.
    assert float(backend.scalar("SELECT sum(discount_cost) FROM analytics.promotion_discounts_daily")) == 9.0
    # Snacks' Dec 11 in promotion_daily: its 4 cells by credited promotion, the listed products' cells apart.
    day = backend.fetch_dicts("SELECT promotion_id, product_id, cells, units, covering_count FROM "
                              "analytics.promotion_daily WHERE product_category = 'Snacks' AND sale_date = "
                              "CAST('2024-12-11' AS DATE)")
    assert sorted((row["promotion_id"], row["product_id"], int(row["cells"]), int(row["units"]),
                   int(row["covering_count"])) for row in day) == [
        ("PR_C", "P1", 1, 2, 1), ("PR_C", "P2", 2, 4, 1), ("PR_P", "P1", 1, 2, 2)]
    # One row per listed product and day with its cells no promotion covered, and one per promotion crediting
    # some: P1 has a plain row on the 14 days but Dec 11, and PR_P's rows on Dec 9-11 and PR_C's on Dec 11.
    assert backend.scalar("SELECT count(*) FROM analytics.promotion_daily WHERE product_id = 'P1'") == 13 + 3 + 1


def test_two_nights_end_where_one_run_does(tmp_path):
    """Product promotions are kept day by day as category ones are: the masters and Dec 2-10 one night, Dec 11-15
    (PR_C's and PR_L's days, the end of PR_P's) the next measure what one run over all of it does. Then the daily
    tables as a release before product promotions left them (no product_id): the next run recomputes every day."""
    write_shop(tmp_path / "night1", DAYS[:9])
    write_shop(tmp_path / "night2", DAYS[9:], masters=False)
    backend = connect(f"duckdb:///{tmp_path}/daily.duckdb")
    try:
        for night in ("night1", "night2"):
            load_and_validate(backend, tmp_path / night)
            run_promotions(backend)
        assert_measured(backend)
        for table in ("promotion_daily", "promotion_discounts_daily"):
            backend.execute(f"ALTER TABLE analytics.{table} DROP COLUMN product_id")
        run_promotions(backend)
        assert_measured(backend)
    finally:
        backend.close()


def _credit(promotions: list[tuple], store: str = "ST1") -> tuple[str | None, int]:
    """The promotion credited with P1 (Snacks) at `store` on 2024-12-11 and how many cover it, among
    `promotions` given as (id, discount %, category, products, stores)."""
    day = dt.date(2024, 12, 11)
    engine = ibis.duckdb.connect()
    table = engine.create_table("promotions", pa.Table.from_pylist([dict(
        promotion_id=promotion_id, start_date=day, end_date=day,
        discount_percentage=None if discount is None else Decimal(discount), applicable_category=category,
        applicable_products=products, applicable_stores=stores, _batch_id=1, _source_line=1)
        for promotion_id, discount, category, products, stores in promotions],
        schema=staging_table("promotion_details").schema().to_pyarrow()))
    products = engine.create_table("products", pa.table({"product_id": ["P1", "P2"],
                                                         "product_category": ["Snacks", "Snacks"]}))
    stores = engine.create_table("stores", pa.table({"store_id": ["ST1", "ST2"]}))
    days = engine.create_table("days", pa.table({"sale_date": [day]}))
    cell = engine.create_table("cell", pa.table({"store_id": [store], "product_id": ["P1"],
                                                 "product_category": ["Snacks"], "sale_date": [day]}))
    covered = covered_cells(table, products, stores, days)
    [row] = engine.to_pyarrow(credited(cell, table, products, covered, days)).to_pylist()
    engine.disconnect()
    return row["credited_promotion_id"], row["covering_count"]


@pytest.mark.parametrize(("promotions", "store", "expected"), [
    # Whichever the scope, the largest discount has the cell, as its price is the one the lines carry.
    ([("C", 15, "Snacks", None, None), ("P", 20, None, "P1", None)], "ST1", ("P", 2)),
    ([("C", 25, "ALL", None, None), ("P", 20, None, "P1|P2", "ST1")], "ST1", ("C", 2)),
    # A tie goes to the lowest id, either way round.
    ([("B", 20, "Snacks", None, None), ("A", 20, None, "P1", None)], "ST1", ("A", 2)),
    ([("A", 20, "Snacks", None, None), ("B", 20, None, "P1", None)], "ST1", ("A", 2)),
    # A display or mailer without a percentage yields to any discount, and wins when alone.
    ([("C", 10, "Snacks", None, None), ("D", None, None, "P1", None)], "ST1", ("C", 2)),
    ([("D", None, None, "P2; P1", None)], "ST1", ("D", 1)),
    # Stores limit a promotion, a category one too: at ST1 only the category promotion runs.
    ([("C", 10, "Snacks", None, None), ("P", 30, None, "P1", "ST2")], "ST1", ("C", 1)),
    ([("C", 10, "Snacks", None, "ST2"), ("P", 30, None, "P2", None)], "ST1", (None, 0)),
    ([("C", 10, "Snacks", None, "ST1,ST2"), ("S", 5, "Snacks", None, None)], "ST1", ("C", 2)),
])
def test_the_overlap_rule_is_one_order_across_scopes(promotions, store, expected):
    assert _credit(promotions, store) == expected


@BOTH_ENGINES
def test_a_promotion_must_name_a_category_or_products(backend, tmp_path):
    folder = tmp_path / "data"
    write_csv(folder, "promotion_details.csv", """
promotion_id,promotion_name,start_date,end_date,discount_percentage,applicable_category,applicable_products
PR1,Fine,2024-12-01,2024-12-07,10,Snacks,
PR2,Neither,2024-12-01,2024-12-07,10,,
PR3,Both,2024-12-01,2024-12-07,10,Snacks,P1|P2
""")
    load_and_validate(backend, folder)
    assert backend.scalar("SELECT count(*) FROM staging.promotion_details") == 1
    reasons = dict(backend.fetch("SELECT promotion_id, _reasons FROM quarantine.promotion_details")[1])
    assert reasons == {
        "PR2": "none of applicable_category, applicable_products is given; give one",
        "PR3": "give one of applicable_category, applicable_products, not several: applicable_category 'Snacks', "
               "applicable_products 'P1|P2'"}


def test_a_database_made_before_product_promotions_takes_them(tmp_path):
    """An older database (promotion_details without the new columns, applicable_category and discount_percentage
    NOT NULL) is brought to the model when opened, and stages product promotions."""
    backend = connect(f"duckdb:///{tmp_path}/old.duckdb")
    try:
        for schema in ("raw", "quarantine", "staging"):
            for table, column in (("promotion_details", "applicable_products"),
                                  ("promotion_details", "applicable_stores"),
                                  ("store_sales_line_items", "discount_amount")):
                backend.execute(f"ALTER TABLE {schema}.{table} DROP COLUMN {column}")
        for column in ("applicable_category", "discount_percentage"):
            backend.execute(f"ALTER TABLE staging.promotion_details ALTER COLUMN {column} SET NOT NULL")
        backend.create_schemas()
        assert "discount_amount" in backend.table_columns("staging", "store_sales_line_items")
        load_and_validate(backend, write_csv(tmp_path / "data", "promotion_details.csv", PROMOTIONS))
        assert backend.scalar("SELECT count(*) FROM staging.promotion_details") == 3
    finally:
        backend.close()


def test_a_line_carries_a_product_promotion_of_its_product_and_store(tmp_path):
    folder = tmp_path / "data"
    write_csv(folder, "stores.csv", "store_id\nST1\nST2")
    write_csv(folder, "products.csv", "product_id,product_category,unit_price\nP1,Snacks,2.00\nP2,Snacks,3.00")
    write_csv(folder, "promotion_details.csv", "promotion_id,start_date,end_date,applicable_products,"
              "applicable_stores\nPR4,2024-12-01,2024-12-07,P1,ST1")
    write_csv(folder, "store_sales_header.csv", "transaction_id,store_id,transaction_date\n"
              "T1,ST1,2024-12-02 10:00\nT2,ST2,2024-12-02 10:00")
    write_csv(folder, "store_sales_line_items.csv", "transaction_id,product_id,promotion_id,quantity,line_item_amount\n"
              "T1,P1,PR4,1,1.80\nT1,P2,PR4,1,2.70\nT2,P1,PR4,1,1.80")
    backend = connect(f"duckdb:///{tmp_path}/shop.duckdb")
    try:
        load_and_validate(backend, folder)
        warnings = dict(backend.fetch("SELECT row_key, reasons FROM audit.warnings "
                                      "WHERE rule_ids = 'store_sales_line_items.promotion.applicable'")[1])
    finally:
        backend.close()
    # T1's P1 at ST1 is what PR4 promotes; its P2 is another product, T2's P1 another store's: staged, with a warning.
    assert warnings == {
        "T1-2": "promotion 'PR4' (products P1 at ST1, 2024-12-01 to 2024-12-07) does not apply to product 'P2' "
                "(Snacks) on 2024-12-02 at ST1",
        "T2-1": "promotion 'PR4' (products P1 at ST1, 2024-12-01 to 2024-12-07) does not apply to product 'P1' "
                "(Snacks) on 2024-12-02 at ST2"}
