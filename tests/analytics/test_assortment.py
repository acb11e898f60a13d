"""The cells sales are measured on: the catalogue on store-days with snapshots, the observed assortment
(products sold within the window) on store-days without; and incremental runs that end where a full run does."""

from __future__ import annotations

import collections
from pathlib import Path

import pytest

from engines import Engine
from helpers import load_and_validate, write_csv, write_small_shop
from retailflow.analytics.promotions import run_promotions
from retailflow.analytics.sales import sales_lines, store_product_days
from retailflow.backends import Backend, connect
from retailflow.generate import GeneratorOptions, generate_dataset
from retailflow.tables import staging_table

CATALOGUE = ["P1,Kettle,Home,10.00,0", "P2,Towel,Home,4.00,0", "P3,Ball,Toys,5.00,0", "P4,Kite,Toys,3.00,0"]
# (store, product, day of December, units, amount). Trading days: Dec 2, 3, 4, 6 and 8.
SALES = [("ST1", "P1", 2, 1, "10.00"), ("ST1", "P1", 3, 2, "20.00"), ("ST1", "P3", 6, 1, "5.00"),
         ("ST2", "P2", 4, 1, "4.00"), ("ST2", "P4", 8, 3, "9.00")]
# ST1 counted stock on Dec 2 and 3 (P2 empty on the 3rd); ST2 never did.
SNAPSHOTS = ["2024-12-02,ST1,P1,4", "2024-12-03,ST1,P1,2", "2024-12-03,ST1,P2,0"]


def load_shop(backend, folder: Path) -> None:
    headers, lines = [], []
    for number, (store, product, day, units, amount) in enumerate(SALES, 1):
        headers.append(f"T{number},C1,{store},2024-12-{day:02d} 10:00:00,{amount}")
        lines.append(f"{number},T{number},{product},,{units},{amount}")
    write_small_shop(folder, CATALOGUE, headers, lines, SNAPSHOTS)
    load_and_validate(backend, folder)
    assert backend.scalar("SELECT count(*) FROM staging.store_sales_line_items") == len(SALES)
    assert backend.scalar("SELECT count(*) FROM staging.inventory_daily") == len(SNAPSHOTS)


@pytest.fixture
def promoted_shop(engine: Engine) -> Backend:
    """A copy of the shop above loaded and validated, its promotions run with a window of 2 days: built once per
    test run and engine for the three tests that start there (each loaded it before, 8 s on MariaDB)."""
    folder = engine.run.folder / f"assortment-shop-{engine.name}"

    def build(backend: Backend) -> None:
        load_shop(backend, folder)
        run_promotions(backend, window_days=2)

    return engine.connect(engine.copy(engine.prepared("assortmentshop", build)))


def cells(backend, window_days: int) -> dict[tuple[str, str, int], tuple]:
    """(store, product, day) -> (units, has_snapshot, in_stock) of every cell."""
    products = staging_table("products")
    lines = sales_lines(staging_table("store_sales_line_items"), staging_table("store_sales_header"), products)
    grid = store_product_days(staging_table("stores"), products, lines, staging_table("inventory_daily"),
                              window_days=window_days)
    rows = backend.fetch_dicts(grid)
    found = {(row["store_id"], row["product_id"], row["sale_date"].day): (int(row["units"]), row["has_snapshot"],
                                                                          row["in_stock"]) for row in rows}
    assert len(found) == len(rows), "one row per store, product and day"
    return found


IN_STOCK = (0, False, True)  # a cell without a snapshot, nothing sold


def test_cells_are_the_catalogue_where_counted_and_the_observed_assortment_elsewhere(promoted_shop):
    backend = promoted_shop
    # Window of 2 days. ST1 on Dec 2 and 3 had snapshots: the whole catalogue of 4, P1 counted in stock (4, 2),
    # P2 counted empty on the 3rd (out of stock), the rest uncounted and in stock: 8 cells.
    # ST1 on Dec 4 (window Dec 2-6): P1 (sold Dec 2, 3) and P3 (Dec 6); Dec 6 (Dec 4-8): P3 only, P1's last sale is
    # 3 days away; Dec 8 (Dec 6-10): P3. ST2, never counted: P2 (sold Dec 4) on Dec 2, 3, 4 and 6; P4 (Dec 8) on
    # Dec 6 and 8. 8 + 4 + 6 = 18 cells, against 2 stores x 4 products x 5 trading days = 40 in the full grid.
    assert cells(backend, window_days=2) == {
        ("ST1", "P1", 2): (1, True, True), ("ST1", "P2", 2): IN_STOCK, ("ST1", "P3", 2): IN_STOCK,
        ("ST1", "P4", 2): IN_STOCK,
        ("ST1", "P1", 3): (2, True, True), ("ST1", "P2", 3): (0, True, False), ("ST1", "P3", 3): IN_STOCK,
        ("ST1", "P4", 3): IN_STOCK,
        ("ST1", "P1", 4): IN_STOCK, ("ST1", "P3", 4): IN_STOCK,
        ("ST1", "P3", 6): (1, False, True),
        ("ST1", "P3", 8): IN_STOCK,
        ("ST2", "P2", 2): IN_STOCK, ("ST2", "P2", 3): IN_STOCK, ("ST2", "P2", 4): (1, False, True),
        ("ST2", "P2", 6): IN_STOCK,
        ("ST2", "P4", 6): IN_STOCK, ("ST2", "P4", 8): (3, False, True),
    }
    # The default window, 14 days, reaches every sale from every trading day: ST1's 3 uncounted days offer
    # {P1, P3}, ST2's 5 days {P2, P4}: 8 catalogue cells + 3 x 2 + 5 x 2 = 24, the same units sold.
    wide = cells(backend, window_days=14)
    assert len(wide) == 24
    assert {key for key in wide if key[0] == "ST2"} == {("ST2", product, day) for product in ("P2", "P4")
                                                          for day in (2, 3, 4, 6, 8)}
    assert sum(units for units, _, _ in wide.values()) == 1 + 2 + 1 + 1 + 3


def test_promotion_daily_counts_the_in_stock_cells(promoted_shop):
    backend = promoted_shop
    rows = backend.fetch_dicts("SELECT product_category, sale_date, cells, units FROM analytics.promotion_daily")
    # From the 18 cells above, less ST1's empty P2 on Dec 3 (Home: P1, P2; Toys: P3, P4):
    #   Dec 2: Home ST1 P1, P2 + ST2 P2 = 3 (1 unit), Toys ST1 P3, P4 = 2
    #   Dec 3: Home ST1 P1 + ST2 P2 = 2 (2 units), Toys 2;  Dec 4: Home ST1 P1 + ST2 P2 = 2 (1 unit), Toys ST1 P3 = 1
    #   Dec 6: Home ST2 P2 = 1, Toys ST1 P3 + ST2 P4 = 2 (1 unit);  Dec 8: no Home cell at all, Toys 2 (3 units)
    assert {(row["product_category"], row["sale_date"].day): (int(row["cells"]), int(row["units"]))
            for row in rows} == {
        ("Home", 2): (3, 1), ("Toys", 2): (2, 0), ("Home", 3): (2, 2), ("Toys", 3): (2, 0),
        ("Home", 4): (2, 1), ("Toys", 4): (1, 0), ("Home", 6): (1, 0), ("Toys", 6): (2, 1), ("Toys", 8): (2, 3)}


def test_a_new_day_widens_the_assortments_of_the_days_before_it(promoted_shop, tmp_path):
    backend = promoted_shop
    late = tmp_path / "late"
    write_csv(late, "store_sales_header_2024-12-09.csv", "transaction_id,customer_id,store_id,transaction_date,"
              "total_amount\nT9,C1,ST1,2024-12-09 10:00:00,4.00")
    write_csv(late, "store_sales_line_items_2024-12-09.csv", "line_item_id,transaction_id,product_id,promotion_id,"
              "quantity,line_item_amount\n9,T9,P2,,1,4.00")
    load_and_validate(backend, late)
    run_promotions(backend, window_days=2)
    rows = backend.fetch_dicts("SELECT product_category, sale_date, cells, units FROM analytics.promotion_daily "
                               "WHERE sale_date >= CAST('2024-12-08' AS DATE)")
    # ST1 sold P2 (Home) on Dec 9: ST1's Dec 8 (window Dec 6-10) now offers P2 besides P3, so Home has its first
    # cell that day. Dec 9: ST1 offers P2 (1 unit; P3's sale on Dec 6 is 3 days away), ST2 P4 (sold Dec 8).
    assert {(row["product_category"], row["sale_date"].day): (int(row["cells"]), int(row["units"]))
            for row in rows} == {("Home", 8): (1, 0), ("Toys", 8): (2, 3), ("Home", 9): (1, 1), ("Toys", 9): (1, 0)}


# Incremental runs: a small generated shop, every day or some days without snapshots, a window of 2 days so that
# a day's changes reach some days and not others. "Full" loads every file in one run; "daily" loads the masters with
# the first three days, then one day per run, and the sales of HELD_BACK last, as a late file.
WINDOW = 2
HELD_BACK = "2024-12-06"
PROMOTION_TABLES = ("promotion_daily", "promotion_discounts_daily", "promotion_effectiveness")


@pytest.fixture(scope="module", params=["no inventory", "some days without inventory"])
def shop(request, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("assortment") / "data"
    generate_dataset(folder, GeneratorOptions(seed=5, stores=3, products=24, customers=150, days=12,
                                              inventory=request.param == "some days without inventory"))
    for day in ("2024-12-04", "2024-12-05", "2024-12-06", "2024-12-09"):
        (folder / f"inventory_daily_{day}.csv").unlink(missing_ok=True)
    return folder


def promotion_rows(backend) -> dict[str, collections.Counter]:
    return {name: collections.Counter(tuple(str(value) for value in row) for row in backend.fetch(
        f"SELECT * FROM analytics.{name}")[1]) for name in PROMOTION_TABLES}


def day_rows(backend) -> dict[str, collections.Counter]:
    """analytics.promotion_daily's rows by day."""
    found: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    names, rows = backend.fetch("SELECT * FROM analytics.promotion_daily")
    for row in rows:
        found[str(row[names.index("sale_date")])][tuple(map(str, row))] += 1
    return dict(found)


def test_nightly_runs_and_a_late_file_end_where_one_full_run_does(shop, tmp_path):
    masters = sorted(path for path in shop.glob("*.csv") if not path.stem[-10:-8].isdigit())
    days: dict[str, list[Path]] = collections.defaultdict(list)
    for path in sorted(shop.glob("*_20??-??-??.csv")):
        days[path.stem[-10:]].append(path)
    late = [path for path in days[HELD_BACK] if "sales" in path.name]
    assert len(late) == 2 and len(days) == 12
    full, daily = connect(f"duckdb:///{tmp_path}/full.duckdb"), connect(f"duckdb:///{tmp_path}/daily.duckdb")
    try:
        load_and_validate(full, shop)
        run_promotions(full, window_days=WINDOW)
        nights = [[*masters, *(path for day in list(days)[:3] for path in days[day])],
                  *([path for path in days[day] if path not in late] for day in list(days)[3:])]
        for files in filter(None, nights):  # the held-back day has no night of its own without snapshots
            load_and_validate(daily, *files)
            run_promotions(daily, window_days=WINDOW)
        before = day_rows(daily)
        load_and_validate(daily, *late)
        run_promotions(daily, window_days=WINDOW)
        expected = promotion_rows(full)
        assert expected["promotion_daily"], "the shop should have category-days"
        assert promotion_rows(daily) == expected
        # The late sales also changed the uncounted store-days up to 2 days away (Dec 4 and 5 have no snapshots
        # in either shop), which the night recomputed; nothing further away.
        after = day_rows(daily)
        changed = {day for day in before.keys() | after.keys() if before.get(day) != after.get(day)}
        assert {"2024-12-06"} < changed <= {"2024-12-04", "2024-12-05", "2024-12-06", "2024-12-07", "2024-12-08"}
    finally:
        full.close()
        daily.close()
