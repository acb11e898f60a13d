"""Real retail semantics on a hand-made shop: returns, exchanges, anonymous sales, free lines, missing files.

The shop (numbers worked out by hand below): one store, three products, five loyalty customers, two loyalty
rules — R1: 1 point per unit spent from 0.00; R2: no rate, a 50-point bonus from 100.00. No promotions file
and no inventory file (real exports often have neither), no line ids (derived from the transaction).
"""

from __future__ import annotations

import shutil
import uuid
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from helpers import MYSQL_ADMIN, MYSQL_SKIP, POSTGRES_ADMIN, POSTGRES_SKIP, drop_mysql_database, write_csv
from retailflow.audit import reconcile
from retailflow.backends import connect
from retailflow.pipeline import run_pipeline
from retailflow.quality.rules import load_rules

HEADERS = """
transaction_id,customer_id,store_id,transaction_date,total_amount,transaction_type,original_transaction_id
T01,C1,ST1,2024-12-01 10:00:00,120.00,sale,
T02,C1,ST1,2024-12-03 10:00:00,-50.00,return,T01
T03,C2,ST1,2024-12-02 10:00:00,50.00,sale,
T04,C2,ST1,2024-12-02 17:00:00,-50.00,return,T03
T05,,ST1,2024-12-02 11:00:00,60.00,,
T06,GUEST,ST1,2024-12-03 11:00:00,20.00,,
T07,C1,ST1,2024-12-04 10:00:00,-10.00,,
T08,C2,ST1,2024-12-04 12:00:00,50.00,,
T09,C2,ST1,2024-12-05 10:00:00,-20.00,return,NOPE
T10,C3,ST1,2024-12-05 11:00:00,20.00,,
T11,C4,ST1,2024-12-02 12:00:00,150.00,sale,
T12,C4,ST1,2024-12-03 12:00:00,-50.00,return,T11
T13,C4,ST1,2024-12-04 12:00:00,-100.00,return,T11
T14,C5,ST1,2024-12-05 12:00:00,-20.00,return,
"""
LINES = """
transaction_id,product_id,promotion_id,quantity,line_item_amount
T01,P1,,2,100.00
T01,P2,,1,20.00
T02,P1,,-1,-50.00
T03,P1,,1,50.00
T04,P1,,-1,-50.00
T05,P2,,3,60.00
T06,P2,,1,20.00
T07,P1,,-1,-50.00
T07,P2,,2,40.00
T08,P1,,1,50.00
T08,P3,,1,0.00
T09,P2,,-1,-20.00
T10,P2,,1,20.00
T11,P1,,3,150.00
T12,P1,,-1,-50.00
T13,P1,,-2,-100.00
T14,P2,,-1,-20.00
"""


def write_shop(folder: Path) -> Path:
    write_csv(folder, "stores.csv", "store_id,store_name,store_city,store_region,opening_date\n"
              "ST1,One,Town,North,2020-01-01")
    write_csv(folder, "products.csv", "product_id,product_name,product_category,unit_price,current_stock_level\n"
              "P1,Headphones,Electronics,50.00,\nP2,Tee,Apparel,20.00,\nP3,Sticker,Accessories,5.00,")
    write_csv(folder, "customer_details.csv", "customer_id,first_name,email,loyalty_status,total_loyalty_points,"
              "last_purchase_date,segment_id\n" + "\n".join(
                  f"C{n},N{n},c{n}@example.com,Bronze,0,," for n in range(1, 6)))
    write_csv(folder, "loyalty_rules.csv", "rule_id,rule_name,points_per_unit_spend,min_spend_threshold,bonus_points\n"
              "R1,Base,1,0,0\nR2,Big basket,0,100,50")
    write_csv(folder, "store_sales_header.csv", HEADERS)
    write_csv(folder, "store_sales_line_items.csv", LINES)
    return folder


@pytest.fixture(scope="module", params=["duckdb", "postgres", "mysql"])
def shop(request, tmp_path_factory):
    """The shop run once per engine (module scope: its tests only read it), on a database of its own."""
    folder = tmp_path_factory.mktemp("shop")
    name = f"rf_test_{uuid.uuid4().hex[:12]}"
    if request.param == "duckdb":
        url = f"duckdb:///{folder}/shop.duckdb"
    elif request.param == "postgres":
        if POSTGRES_SKIP:
            pytest.skip(POSTGRES_SKIP)
        url = f"{POSTGRES_ADMIN.rsplit('/', 1)[0]}/{name}"
    else:
        if MYSQL_SKIP:
            pytest.skip(MYSQL_SKIP)
        url = f"{MYSQL_ADMIN.rstrip('/')}/{name}"
    backend = connect(url)
    try:
        backend.create_schemas()
        yield backend, run_pipeline(backend, [write_shop(folder / "files")], load_rules())
    finally:
        backend.close()
        if request.param == "postgres":
            with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        elif request.param == "mysql":
            drop_mysql_database(name)


def _by_key(backend, sql: str) -> dict:
    return {row[0]: row[1] for row in backend.fetch(sql)[1]}


def test_every_real_retail_row_is_staged(shop):
    backend, result = shop
    # Returns, the exchange (T07), anonymous (T05, T06), a free line (T08) and a return of an unknown sale (T09)
    # are all normal business: nothing is quarantined.
    assert result.validated.quarantined == 0
    assert backend.scalar("SELECT count(*) FROM staging.store_sales_header") == 14
    assert backend.scalar("SELECT count(*) FROM staging.store_sales_line_items") == 17
    # GUEST is a placeholder id: the sale is anonymous, as an empty cell is.
    assert backend.scalar("SELECT count(*) FROM staging.store_sales_header WHERE customer_id IS NULL") == 2
    # Line ids are derived: transaction id and position within the transaction in the file.
    assert sorted(backend.fetch("SELECT line_item_id FROM staging.store_sales_line_items "
                                "WHERE transaction_id IN ('T07', 'T08')")[1]) == [
        ("T07-1",), ("T07-2",), ("T08-1",), ("T08-2",)]
    warnings = _by_key(backend, "SELECT rule_ids, row_key FROM audit.warnings ORDER BY rule_ids")
    assert warnings == {"store_sales_header.original_transaction_id.exists": "T09",
                        "store_sales_line_items.line_item_amount.free_line": "T08-2"}


def test_net_sales(shop):
    backend, _ = shop
    # 120 - 50 + 50 - 50 + 60 + 20 - 10 + 50 - 20 + 20 + 150 - 50 - 100 - 20 = 170.00 net.
    assert backend.scalar("SELECT sum(line_item_amount) FROM staging.store_sales_line_items") == Decimal("170.00")
    units = _by_key(backend, "SELECT product_id, sum(units) FROM analytics.product_daily GROUP BY product_id")
    # P1: 2 - 1 + 1 - 1 - 1 + 1 + 3 - 1 - 2 = 1; P2: 1 + 3 + 1 + 2 - 1 + 1 - 1 = 6; P3: the free unit.
    assert {key: int(value) for key, value in units.items()} == {"P1": 1, "P2": 6, "P3": 1}


def test_points_are_clawed_back(shop):
    backend, _ = shop
    balances = _by_key(backend, "SELECT customer_id, balance FROM loyalty.balances")
    # C1: T01 earns 120 + 50 bonus; T02 (50 of T01 back: net 70) takes back 50 base and the bonus;
    #     T07, an exchange netting -10 with no sale named, takes back 10 base: 170 - 100 - 10 = 60.
    # C2: T03 +50, cancelled the same day by T04 -50; T08 +50 (the free line earns nothing); T09 (unknown sale)
    #     -20 base: 30.
    # C3: T10 +20. C4: T11 +150 +50, T12 -50 (net 100: bonus kept), T13 -100 -50 (net 0): back to 0.
    # C5: a return with no sale named and no points to take: the balance goes below zero, -20 (points may
    #     have been spent; the ledger records the debt rather than dropping it).
    assert {key: int(value) for key, value in balances.items()} == {"C1": 60, "C2": 30, "C3": 20, "C4": 0, "C5": -20}
    reasons = backend.fetch("SELECT transaction_id, rule_id, base_points, bonus_points FROM loyalty.points_ledger "
                            "WHERE reason = 'returned' ORDER BY transaction_id, rule_id")[1]
    assert [tuple(row) for row in reasons] == [
        ("T02", "R1", -50, 0), ("T02", "R2", 0, -50), ("T04", "R1", -50, 0), ("T07", "R1", -10, 0),
        ("T09", "R1", -20, 0), ("T12", "R1", -50, 0), ("T13", "R1", -100, 0), ("T13", "R2", 0, -50),
        ("T14", "R1", -20, 0)]
    # Anonymous sales earn no one anything.
    assert backend.scalar("SELECT count(*) FROM loyalty.points_ledger WHERE transaction_id IN ('T05', 'T06')") == 0


def test_customer_outputs_are_net_and_count_purchases(shop):
    backend, _ = shop
    rows = {row[0]: row[1:] for row in backend.fetch(
        "SELECT customer_id, frequency, monetary, is_high_spender, last_purchase FROM analytics.customer_rfm")[1]}
    assert set(rows) == {"C1", "C2", "C3", "C4", "C5"}
    # Frequency counts purchases (net total above 0), not returns or the -10 exchange; monetary is net.
    assert {key: (int(value[0]), value[1]) for key, value in rows.items()} == {
        "C1": (1, Decimal("60.00")), "C2": (2, Decimal("30.00")), "C3": (1, Decimal("20.00")),
        "C4": (1, Decimal("0.00")), "C5": (0, Decimal("-20.00"))}
    # Three buyers (net spend above 0): the top 10 % is one customer, C1; C4 (net 0) and C5 never.
    assert [key for key, value in rows.items() if value[2]] == ["C1"]
    # C1's last purchase is T01's day: T02 and T07 are not purchases.
    assert str(rows["C1"][3]) == "2024-12-01"


def test_header_total_product_category_and_price_may_be_absent(tmp_path):
    folder = tmp_path / "bare"
    write_csv(folder, "stores.csv", "store_id\nST1")
    write_csv(folder, "products.csv", "product_id,product_name\nP1,Mug\nP2,Bag")
    write_csv(folder, "store_sales_header.csv", "transaction_id,customer_id,store_id,transaction_date\n"
              "A1,,ST1,2024-12-01 09:00:00\nA2,,ST1,2024-12-01 10:00:00\nA3,,ST1,2024-12-01 11:00:00")
    # A3 has no lines in the file: its total cannot be derived, and it is rejected for it.
    write_csv(folder, "store_sales_line_items.csv", "transaction_id,product_id,quantity,line_item_amount\n"
              "A1,P1,2,7.50\nA1,P2,1,0.00\nA2,P1,-1,-3.75")
    backend = connect(f"duckdb:///{tmp_path}/bare.duckdb")
    try:
        backend.create_schemas()
        result = run_pipeline(backend, [folder], load_rules())
        totals = _by_key(backend, "SELECT transaction_id, total_amount FROM staging.store_sales_header")
        assert totals == {"A1": Decimal("7.50"), "A2": Decimal("-3.75")}
        assert backend.scalar("SELECT _reasons FROM quarantine.store_sales_header") == "total_amount is missing"
        assert result.validated.quarantined == 1
        products = backend.fetch("SELECT product_id, product_category, unit_price FROM staging.products "
                                 "ORDER BY product_id")[1]
        assert [tuple(row) for row in products] == [("P1", "(uncategorised)", None), ("P2", "(uncategorised)", None)]
    finally:
        backend.close()


def test_returns_by_store_product_and_day(shop):
    backend, _ = shop
    rows = backend.fetch("SELECT product_id, CAST(sale_date AS VARCHAR), returned_units, returned_amount, sold_units "
                         "FROM analytics.returns ORDER BY product_id, sale_date")[1]
    # P1 came back on 12-02 (T04: 1 of 4 sold that day, T03 and T11), 12-03 (T02 and T12: 2, none sold) and
    # 12-04 (T07 1 and T13 2: 3, T08 sold 1); P2 on 12-05 (T09 and T14: 2, T10 sold 1).
    assert [tuple(row) for row in rows] == [
        ("P1", "2024-12-02", 1, Decimal("50.00"), 4), ("P1", "2024-12-03", 2, Decimal("100.00"), 0),
        ("P1", "2024-12-04", 3, Decimal("150.00"), 1), ("P2", "2024-12-05", 2, Decimal("40.00"), 1)]
    from retailflow.analytics.inventory import run_inventory

    most_returned = run_inventory(backend)["most_returned"]
    # Gross units sold = net + returned: P1 1 + 6 = 7 (T01 2, T03 1, T08 1, T11 3), 6 / 7 = 85.71 %;
    # P2 6 + 2 = 8, 2 / 8 = 25.00 %.
    assert [(row["product_id"], row["returned_units"], row["sold_units"], row["return_rate_pct"])
            for row in most_returned] == [("P1", 6, 7, 85.71), ("P2", 2, 8, 25.0)]


@pytest.mark.parametrize("db_url", ["duckdb", "postgres"], indirect=True)
def test_without_a_stores_file_the_stores_are_those_the_sales_name(db_url, tmp_path):
    folder = write_shop(tmp_path / "online")
    (folder / "stores.csv").unlink()
    backend = connect(db_url)
    try:
        backend.create_schemas()
        result = run_pipeline(backend, [folder], load_rules())
        assert result.validated.quarantined == 0
        assert [tuple(row) for row in backend.fetch("SELECT store_id, store_name, _batch_id FROM staging.stores")[1]] \
            == [("ST1", None, 0)]
        assert all(balance.balanced for balance in reconcile(backend))
        # The stores file arriving later replaces the implied row like any master update.
        write_csv(tmp_path / "later", "stores.csv", "store_id,store_name\nST1,High Street")
        run_pipeline(backend, [tmp_path / "later"], load_rules())
        assert [tuple(row) for row in backend.fetch("SELECT store_id, store_name FROM staging.stores")[1]] == [
            ("ST1", "High Street")]
    finally:
        backend.close()


def test_one_message_per_customer_with_the_net_change(shop):
    backend, _ = shop
    messages = _by_key(backend, "SELECT customer_id, points_earned FROM notifications.outbox")
    # One run credited everything: C4's sale and its full return net to 0, so C4 gets no message; C5's
    # return alone is a negative change.
    assert {key: int(value) for key, value in messages.items()} == {"C1": 60, "C2": 30, "C3": 20, "C5": -20}


def test_a_void_counts_nowhere_and_a_missing_price_invents_no_discount(tmp_path):
    folder = write_shop(tmp_path / "void")
    write_csv(folder, "products.csv", "product_id,product_name,product_category\nP1,Headphones,Electronics\n"
              "P2,Tee,Apparel\nP3,Sticker,Accessories")
    write_csv(folder, "promotion_details.csv", "promotion_id,promotion_name,start_date,end_date,discount_percentage,"
              "applicable_category\nPR1,Winter,2024-12-01,2024-12-31,10,ALL")
    with (folder / "store_sales_header.csv").open("a", encoding="utf-8") as handle:
        handle.write("V1,C1,ST1,2024-12-05 13:00:00,500.00,void,\nP9,C3,ST1,2024-12-05 14:00:00,18.00,sale,\n")
    with (folder / "store_sales_line_items.csv").open("a", encoding="utf-8") as handle:
        handle.write("V1,P1,,10,500.00\nP9,P2,PR1,1,18.00\n")
    backend = connect(f"duckdb:///{tmp_path}/void.duckdb")
    try:
        backend.create_schemas()
        run_pipeline(backend, [folder], load_rules())
        # The void is staged (nothing is dropped) but sells nothing and earns nothing: P1 nets 1 unit as before.
        assert backend.scalar("SELECT count(*) FROM staging.store_sales_header WHERE transaction_id = 'V1'") == 1
        assert int(backend.scalar("SELECT sum(units) FROM analytics.product_daily WHERE product_id = 'P1'")) == 1
        assert backend.scalar("SELECT count(*) FROM loyalty.points_ledger WHERE transaction_id = 'V1'") == 0
        # No list price: the promoted line's discount is unknown, counted as 0.00, not as 18.00 given away.
        assert backend.scalar("SELECT sum(discount_cost) FROM analytics.promotion_discounts_daily") == 0
    finally:
        backend.close()


def test_inventory_command_shows_the_most_returned_products(tmp_path):
    import json

    from typer.testing import CliRunner

    from retailflow.cli import app

    folder = write_shop(tmp_path / "shop")
    db = f"duckdb:///{tmp_path}/cli.duckdb"
    runner = CliRunner()
    assert runner.invoke(app, ["--db", db, "-q", "run", str(folder)]).exit_code == 0
    listed = runner.invoke(app, ["--db", db, "inventory", "--format", "json"])
    assert listed.exit_code == 0, listed.output
    rows = [row for row in [{**row, "table": name} for name, listed in json.loads(listed.stdout).items() for row in listed] if row["table"] == "most_returned"]
    # As in test_returns_by_store_product_and_day: P1 6 of 7 units, P2 2 of 8.
    assert [(row["product_id"], row["returned_units"], row["return_rate_pct"], row["status"]) for row in rows] == [
        ("P1", 6, 85.71, "ok"), ("P2", 2, 25.0, "ok")]
    # No inventory file: stock-outs say which file they need instead of printing zeros.
    table = runner.invoke(app, ["--db", db, "inventory"])
    assert "Most returned products" in table.stdout and "no inventory_daily snapshots loaded" in table.stdout
    assert "units lost" not in table.stdout


def _shop_days(folder: Path, rules: str, days: dict[str, tuple[str, str]]) -> dict[str, list[Path]]:
    """Masters of the hand-made shop with `rules` (loyalty_rules rows), and one header and line file per day."""
    write_shop(folder)
    for name in ("store_sales_header.csv", "store_sales_line_items.csv"):
        (folder / name).unlink()
    write_csv(folder, "loyalty_rules.csv", "rule_id,rule_name,points_per_unit_spend,min_spend_threshold,"
              f"bonus_points\n{rules}")
    files = {}
    for day, (header_rows, line_rows) in days.items():
        files[day] = [write_csv(folder / "days" / day, f"store_sales_header_{day}.csv", HEADERS.strip().splitlines()[0]
                                + "\n" + header_rows),
                      write_csv(folder / "days" / day, f"store_sales_line_items_{day}.csv",
                                LINES.strip().splitlines()[0] + "\n" + line_rows)]
    return files


def _earned(backend) -> dict[str, int]:
    return {key: int(value) for key, value in _by_key(
        backend, "SELECT customer_id, earned_points FROM loyalty.balances WHERE earned_points <> 0").items()}


#: The restatement tests' shop: sale S1 of day 1 and its returns X2 (day 2) and X3 (day 3), under R1 and R2.
RESTATED_SHOP_DAYS = {
    "2024-12-01": ("S1,C1,ST1,2024-12-01 10:00:00,150.00,sale,", "S1,P1,,3,150.00"),
    "2024-12-02": ("X2,C1,ST1,2024-12-02 10:00:00,-60.00,return,S1", "X2,P1,,-1,-60.00"),
    "2024-12-03": ("X3,C1,ST1,2024-12-03 10:00:00,-60.00,return,S1", "X3,P1,,-1,-60.00")}


@pytest.fixture(scope="module")
def nights(tmp_path_factory) -> tuple[Path, dict[str, list[Path]], Path]:
    """The restatement tests' shop loaded night by night (the masters, then one run per day), once for both
    restatements, which each start from a copy: four of the six pipeline runs each of them made (at 4 s a run).
    (the masters' folder, the files of each day, the database file the nights left)."""
    folder = tmp_path_factory.mktemp("nights")
    days = _shop_days(folder / "shop", "R1,Base,1,0,0\nR2,Big basket,0,100,50", RESTATED_SHOP_DAYS)
    database = folder / "nightly.duckdb"
    nightly = connect(f"duckdb:///{database}")
    try:
        nightly.create_schemas()
        run_pipeline(nightly, [path for path in (folder / "shop").iterdir() if path.suffix == ".csv"], load_rules())
        for files in days.values():
            run_pipeline(nightly, files, load_rules())
        # S1 earns 150 + 50; X2 takes it to 90 (90 - 200 = -110, the bonus goes), X3 to 30 (-60): 30.
        assert _earned(nightly) == {"C1": 30}
    finally:
        nightly.close()
    return folder / "shop", days, database


@pytest.mark.slow
@pytest.mark.parametrize("restated_day, expected", [
    # Day 2's return X2 replaced by another customer's sale: X3 is judged again without it — S1 150 earns
    # 150 + 50; X3 takes it from 150 to 90: 90 - 200 = -110; C1 90, C2 10.
    ("2024-12-02", {"C1": 90, "C2": 10}),
    # Day 1's sale S1 replaced: X2 and X3 name a sale no longer staged: base points only, -60 each.
    ("2024-12-01", {"C1": -120, "C2": 10}),
])
def test_a_restated_sale_or_return_recomputes_the_returns_of_that_sale(nights, tmp_path, restated_day, expected):
    shop, days, nightly_database = nights
    corrected = write_csv(tmp_path / "fix", f"store_sales_header_{restated_day}.csv",
                          HEADERS.strip().splitlines()[0] + f"\nY,C2,ST1,{restated_day} 11:00:00,10.00,sale,")
    corrected_lines = write_csv(tmp_path / "fix", f"store_sales_line_items_{restated_day}.csv",
                                LINES.strip().splitlines()[0] + "\nY,P2,,1,10.00")
    masters = [path for path in shop.iterdir() if path.suffix == ".csv"]
    for suffix in ("", ".wal"):
        if Path(f"{nightly_database}{suffix}").exists():
            shutil.copyfile(f"{nightly_database}{suffix}", f"{tmp_path}/nightly.duckdb{suffix}")
    nightly, rebuilt = (connect(f"duckdb:///{tmp_path}/{name}.duckdb") for name in ("nightly", "rebuilt"))
    try:
        rebuilt.create_schemas()
        assert _earned(nightly) == {"C1": 30}
        run_pipeline(nightly, [corrected, corrected_lines], load_rules(), restate=True)
        kept = [path for day, files in days.items() if day != restated_day for path in files]
        run_pipeline(rebuilt, [*masters, *kept, corrected, corrected_lines], load_rules())
        assert _earned(rebuilt) == expected
        assert _earned(nightly) == expected
    finally:
        nightly.close()
        rebuilt.close()


def test_returns_take_back_only_what_their_sale_earned(tmp_path):
    rules = "R1,Base,1,0,0\nRW,Welcome,0,0,25"
    days = _shop_days(tmp_path / "edge", rules, {"2024-12-01": (
        # S1 is returned in full: 30 + the 25 bonus any sale gets, all taken back (nothing earned at 0).
        "S1,C1,ST1,2024-12-01 10:00:00,30.00,sale,\nX1,C1,ST1,2024-12-01 11:00:00,-30.00,return,S1\n"
        # S2 is returned without a card: its customer C2 still loses what S2 earned, 20 + 25 of 45.
        "S2,C2,ST1,2024-12-01 10:30:00,20.00,sale,\nX2,,ST1,2024-12-01 12:00:00,-20.00,return,S2\n"
        # S3 was anonymous: C3 returning it takes nothing back, though C3 earned 10 + 25 with S4.
        "S3,,ST1,2024-12-01 10:45:00,20.00,sale,\nX3,C3,ST1,2024-12-01 12:30:00,-20.00,return,S3\n"
        "S4,C3,ST1,2024-12-01 13:00:00,10.00,sale,",
        "S1,P2,,1,30.00\nX1,P2,,-1,-30.00\nS2,P2,,1,20.00\nX2,P2,,-1,-20.00\nS3,P2,,1,20.00\nX3,P2,,-1,-20.00\n"
        "S4,P2,,1,10.00")})
    backend = connect(f"duckdb:///{tmp_path}/edge.duckdb")
    try:
        backend.create_schemas()
        run_pipeline(backend, [path for path in (tmp_path / "edge").iterdir() if path.suffix == ".csv"]
                     + days["2024-12-01"], load_rules())
        assert _earned(backend) == {"C3": 35}
    finally:
        backend.close()


def test_a_renamed_customer_column_is_said_not_silently_anonymous(tmp_path):
    from retailflow.ingest import discover, ingest

    folder = tmp_path / "renamed"
    write_csv(folder, "store_sales_header.csv", "transaction_id,CustomerID,store_id,transaction_date,total_amount\n"
              "T1,C1,ST1,2024-12-01 10:00:00,10.00")
    backend = connect(f"duckdb:///{tmp_path}/renamed.duckdb")
    try:
        backend.create_schemas()
        [result] = ingest(backend, discover([folder]))
        assert result.note == ("extra columns kept in raw: customerid; "
                               "column(s) absent, empty in every row: customer_id")
    finally:
        backend.close()


def test_loyalty_without_rules_says_which_file_it_needs(tmp_path):
    import json

    from typer.testing import CliRunner

    from retailflow.cli import app

    folder = write_shop(tmp_path / "norules")
    (folder / "loyalty_rules.csv").unlink()
    db = f"duckdb:///{tmp_path}/norules.duckdb"
    runner = CliRunner()
    assert runner.invoke(app, ["--db", db, "-q", "run", str(folder)]).exit_code == 0
    shown = runner.invoke(app, ["--db", db, "loyalty"])
    assert shown.exit_code == 0 and "no loyalty_rules loaded" in " ".join(shown.stdout.split())
    [row] = json.loads(runner.invoke(app, ["--db", db, "loyalty", "--format", "json"]).stdout)
    assert row["points"] == 0 and row["status"].startswith("no loyalty_rules loaded")
