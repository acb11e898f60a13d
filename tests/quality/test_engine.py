"""Routing: clean rows to staging, rejected rows to quarantine with every reason, atomically."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from helpers import column, load_and_validate, write_csv
from retailflow import audit
from retailflow.model import ENTITIES
from retailflow.quality import engine
from retailflow.quality.engine import route_all
from retailflow.quality.rules import load_rules

# A copy of the original problem's sample (shared/seed-sample), errors included.
SEED = Path(__file__).resolve().parents[1] / "fixtures" / "seed_sample"


def _balanced(backend) -> bool:
    balances = audit.reconcile(backend)
    return bool(balances) and all(balance.balanced for balance in balances)


def test_sample_routes_exactly_the_planted_errors(staged_sample):
    backend = staged_sample
    assert column(backend, "SELECT transaction_id FROM staging.store_sales_header ORDER BY 1") == [
        f"T00{n}" for n in range(1, 10)]
    assert column(backend, "SELECT transaction_id FROM quarantine.store_sales_header ORDER BY _source_line") == [
        "T010", "T011", "T012", "T013", "T014", "T015", "T001", "T016", "T017"]
    assert column(backend, "SELECT line_item_id FROM quarantine.store_sales_line_items ORDER BY _source_line") == [
        "14", "21", "22", "23", "15", "16", "17", "18", "19", "20"]
    rule_ids = dict(backend.fetch("SELECT line_item_id, _rule_ids FROM quarantine.store_sales_line_items")[1])
    assert rule_ids["15"] == "store_sales_line_items.product_id.not_null"
    assert rule_ids["16"] == "store_sales_line_items.transaction.atomic"
    assert rule_ids["19"] == "store_sales_line_items.transaction_id.exists"
    assert rule_ids["20"] == "store_sales_line_items.promotion_id.exists"
    assert rule_ids["18"] == ("store_sales_line_items.product_id.exists,"
                              "store_sales_line_items.product_id.single_value")
    reasons = dict(backend.fetch("SELECT transaction_id, _reasons FROM quarantine.store_sales_header")[1])
    assert reasons["T014"] == "store_sales_line_items '15' (line 19) of this transaction was rejected"
    assert reasons["T013"] == "transaction_date '2024-02-30 10:00:00' is not a date-time YYYY-MM-DD HH:MM:SS"
    sibling = backend.scalar("SELECT _reasons FROM quarantine.store_sales_line_items WHERE line_item_id = '16'")
    assert sibling == "store_sales_line_items '15' (line 19) of the same transaction was rejected"
    assert backend.scalar("SELECT _reasons FROM quarantine.store_sales_line_items WHERE line_item_id = '14'") == \
        "its store_sales_header 'T010' (line 11) was rejected"
    # The first T001 stays staged with both its lines; the repeated header alone is quarantined.
    assert column(backend, "SELECT line_item_id FROM staging.store_sales_line_items WHERE transaction_id = 'T001' "
                           "ORDER BY 1") == ["1", "2"]
    assert _balanced(backend)


def test_staging_is_typed(staged_sample):
    backend = staged_sample
    row = backend.fetch_dicts("SELECT total_amount, transaction_date FROM staging.store_sales_header "
                              "WHERE transaction_id = 'T007'")[0]
    assert row["total_amount"] == Decimal("172.80")
    assert str(row["transaction_date"]) == "2024-12-06 10:00:00"
    discounts = dict(backend.fetch("SELECT promotion_id, discount_percentage FROM staging.promotion_details")[1])
    assert discounts == {"PR01": Decimal("10.00"), "PR02": Decimal("20.00"), "PR03": Decimal("15.00")}
    assert backend.scalar("SELECT quantity FROM staging.store_sales_line_items WHERE line_item_id = '7'") == 3
    assert "store_city" not in backend.table_columns("staging", "store_sales_header")
    assert backend.table_columns("raw", "store_sales_header")[-1] == "store_city"
    results = backend.fetch_dicts("SELECT rule_id, checked, failed FROM audit.rule_results "
                                  "WHERE rule_id = 'store_sales_header.customer_id.exists'")
    assert results == [{"rule_id": "store_sales_header.customer_id.exists", "checked": 18, "failed": 1}]


def test_staging_declares_keys(staged_sample):
    backend = staged_sample
    if backend.capabilities.declares_fact_keys:
        with pytest.raises(Exception):  # noqa: B017 (each engine raises its own driver error)
            with backend.transaction():
                backend.execute("INSERT INTO staging.store_sales_line_items VALUES "
                                "('999', 'NOPE', 'P01', NULL, 1, 1.00, 1, 1)")
    else:
        assert "PRIMARY KEY" not in backend.staging_ddl(ENTITIES["store_sales_line_items"])
    if backend.capabilities.declares_master_keys:
        with pytest.raises(Exception):  # noqa: B017 (each engine raises its own driver error)
            with backend.transaction():
                backend.execute("INSERT INTO staging.stores VALUES ('ST01', 'x', 'x', 'x', NULL, 1, 1)")
    else:
        assert "PRIMARY KEY" not in backend.staging_ddl(ENTITIES["stores"])


def test_seed_sample_end_to_end(backend):
    """The original problem's sample: hand-made totals rarely match their discounted lines."""
    outcome = load_and_validate(backend, SEED)
    assert column(backend, "SELECT transaction_id FROM staging.store_sales_header") == ["TXN068"]
    assert column(backend, "SELECT line_item_id FROM staging.store_sales_line_items") == ["103"]
    rule_ids = dict(backend.fetch("SELECT transaction_id, _rule_ids FROM quarantine.store_sales_header")[1])
    assert "store_sales_header.customer_id.exists" in rule_ids["TXN056"]  # INVALID
    assert "store_sales_header.customer_id.exists" in rule_ids["TXN057"]  # C999
    assert "store_sales_header.store_id.exists" in rule_ids["TXN058"]  # ST999
    # -50.00 for a line of 39.99: a total that is not its lines' (a negative total alone is a return's).
    assert rule_ids["TXN059"] == "store_sales_header.total_amount.sums_to_lines"
    # No customer is an anonymous sale, not an error: only its total (89.99 for 67.99 of lines) is off.
    assert rule_ids["TXN061"] == "store_sales_header.total_amount.sums_to_lines"
    assert "store_sales_header.transaction_date.not_null" in rule_ids["TXN062"]
    assert rule_ids["TXN067"] == "store_sales_header.transaction.atomic"  # its "P001,P002" line
    assert rule_ids["TXN001"] == "store_sales_header.total_amount.sums_to_lines"  # 159.98 vs 151.97
    lines = dict(backend.fetch("SELECT line_item_id, _rule_ids FROM quarantine.store_sales_line_items")[1])
    assert lines["98"] == "store_sales_line_items.transaction_id.exists"  # TXN999 has no header
    assert lines["99"] == "store_sales_line_items.product_id.exists"  # P999
    assert lines["100"] == "store_sales_line_items.line_item_amount.sign"  # -25.00 for 1 unit
    # 0.00: a free line (a warning), quarantined only with its transaction, whose total is off.
    assert lines["101"] == ("store_sales_line_items.line_item_amount.free_line,"
                            "store_sales_line_items.transaction.atomic")
    assert lines["91"] == "store_sales_line_items.product_id.not_null"
    assert outcome.checked == 220 and _balanced(backend)


def test_seed_sample_with_totals_downgraded_to_warn(backend, tmp_path):
    rules = write_csv(tmp_path, "rules.yaml", "rules:\n  - id: store_sales_header.total_amount.sums_to_lines\n"
                      "    severity: warn\n")
    load_and_validate(backend, SEED, rules_path=rules)
    staged = backend.scalar("SELECT count(*) FROM staging.store_sales_header")
    # TXN001-TXN055, TXN063 (its lines are fine, only its total is off), TXN068, and what real retail
    # calls normal: TXN059 (a total of -50.00: no rule but the total's), TXN061 (anonymous) and TXN066 (a
    # free line); every other planted error is still quarantined.
    assert staged == 60
    assert backend.scalar("SELECT count(*) FROM audit.warnings WHERE rule_ids LIKE '%sums_to_lines%'") == 59


def test_incremental_batch_rejects_an_already_staged_transaction(staged_sample, tmp_path):
    backend = staged_sample
    day2 = tmp_path / "day2"
    write_csv(day2, "store_sales_header_2024-12-08.csv",
              "transaction_id,customer_id,store_id,transaction_date,total_amount\n"
              "T020,C01,ST01,2024-12-08 10:00:00,10.00\nT002,C02,ST02,2024-12-01 12:00:00,40.00")
    write_csv(day2, "store_sales_line_items_2024-12-08.csv",
              "line_item_id,transaction_id,product_id,promotion_id,quantity,line_item_amount\n"
              "30,T020,P04,,1,10.00")
    outcome = load_and_validate(backend, day2)
    assert outcome.checked == 3
    assert "T020" in column(backend, "SELECT transaction_id FROM staging.store_sales_header")
    assert backend.scalar("SELECT _reasons FROM quarantine.store_sales_header WHERE _batch_id = 9") == \
        "transaction_id 'T002' is already staged (to replace a corrected day, re-send its files with --restate)"
    # The original T002 and its line are untouched.
    assert backend.scalar("SELECT count(*) FROM staging.store_sales_line_items WHERE transaction_id = 'T002'") == 1
    assert _balanced(backend)


def test_replay_promotes_rows_after_a_missing_store_arrives(staged_sample, tmp_path):
    backend = staged_sample
    write_csv(tmp_path / "fix", "stores_2024-12-08.csv",
              "store_id,store_name,store_city,store_region,opening_date\n"
              "ST01,Harbour Mall,Portland,Oregon,2019-04-01\nST02,Elm Street,Salem,Oregon,2020-06-15\n"
              "ST03,Riverside,Eugene,Oregon,2021-09-30\nST99,Pop-up,Bend,Oregon,2024-11-30")
    load_and_validate(backend, tmp_path / "fix")
    outcome = route_all(backend, load_rules(), "replay")
    assert outcome.checked == 9 + 10 + 2  # headers, lines and the two bad inventory rows re-checked
    assert "T011" in column(backend, "SELECT transaction_id FROM staging.store_sales_header")
    assert "21" in column(backend, "SELECT line_item_id FROM staging.store_sales_line_items")
    assert "T011" not in column(backend, "SELECT transaction_id FROM quarantine.store_sales_header")
    assert backend.scalar("SELECT count(*) FROM quarantine.store_sales_header") == 8
    # The re-sent stores replaced the first snapshot's rows: counted as superseded, still balanced.
    assert backend.scalar("SELECT superseded_rows FROM audit.batches WHERE entity = 'stores' AND batch_id < 9") == 3
    assert _balanced(backend)
    assert route_all(backend, load_rules(), "replay").quarantined == 8 + 9 + 2


def test_a_crash_mid_validation_leaves_the_previous_state(backend, sample_dir, monkeypatch):
    from retailflow.ingest import discover, ingest

    ingest(backend, discover([sample_dir]))
    real_route = engine._route
    calls = []

    def crash_on_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("simulated crash")
        return real_route(*args, **kwargs)

    monkeypatch.setattr(engine, "_route", crash_on_third)
    with pytest.raises(RuntimeError):
        route_all(backend, load_rules(), "validate")
    assert backend.scalar("SELECT count(*) FROM staging.stores") == 0
    assert backend.scalar("SELECT count(*) FROM audit.batches WHERE status = 'loaded'") == 8
    monkeypatch.setattr(engine, "_route", real_route)
    route_all(backend, load_rules(), "validate")
    assert backend.scalar("SELECT count(*) FROM staging.store_sales_header") == 9
    assert _balanced(backend)
    assert route_all(backend, load_rules(), "validate").checked == 0


# Cells as a CSV can hold them (a quoted line break is refused at ingest).
CELLS = ["", " ", "  \t ", "a", " a", "a ", "\ta\t", "\x0b\x0ca b\x0c", "\x01a", "a\x01", "é ", " 中", "!"]


def test_cells_are_trimmed_alike_on_every_engine(backend, tmp_path):
    from retailflow.backends.base import Backend
    from retailflow.ingest import discover, ingest

    rows = "\n".join(f'ST{index:02d},"{cell}",city,region,' for index, cell in enumerate(CELLS))
    path = tmp_path / "stores.csv"
    path.write_bytes(f"store_id,store_name,store_city,store_region,opening_date\n{rows}\n".encode())
    ingest(backend, discover([path]))
    raw = backend.raw_table("raw", "stores")
    trimmed = raw.select("store_id", engine=backend.trimmed(raw.store_name),
                         portable=Backend.trimmed(backend, raw.store_name)).order_by("store_id")
    found = backend.fetch_dicts(trimmed)
    assert [row["engine"] for row in found] == [row["portable"] for row in found]
    assert [row["engine"] for row in found] == [cell.strip(" \t\n\r\x0b\x0c") or None for cell in CELLS]


@pytest.mark.engines("duckdb")
def test_a_validation_notes_its_counters_once_whatever_the_entities_and_batches(backend, tmp_path, monkeypatch):
    """audit.batches is updated once per validation (twice when a re-sent master supersedes rows), and the rule
    results are one insert: on Spark each UPDATE rewrites the table. The counters are those worked out by hand."""
    from helpers import write_small_shop

    write_small_shop(tmp_path / "day1", ["P1,Pen,Office,5.00,10"],
                     ["T1,C1,ST1,2024-12-01 10:00:00,10.00", "T2,,ST2,2024-12-01 11:00:00,5.00",
                      "T3,C1,ST9,2024-12-01 12:00:00,5.00"],  # anonymous; an unknown store
                     ["1,T1,P1,,2,10.00", "2,T2,P1,,1,5.00", "3,T3,P1,,1,5.00"], ["2024-12-01,ST1,P1,4"])
    write_csv(tmp_path / "day2", "products.csv", "product_id,product_name,product_category,unit_price,"
              "current_stock_level\nP1,Pen,Office,5.50,9")
    write_csv(tmp_path / "day2", "store_sales_header_2024-12-02.csv",
              "transaction_id,customer_id,store_id,transaction_date,total_amount\nT4,C1,ST1,2024-12-02 09:00:00,5.50")
    write_csv(tmp_path / "day2", "store_sales_line_items_2024-12-02.csv",
              "line_item_id,transaction_id,product_id,promotion_id,quantity,line_item_amount\n4,T4,P1,,1,5.50")
    statements: list[str] = []
    queries: list[str] = []
    execute, fetch = backend.execute, backend.fetch
    monkeypatch.setattr(backend, "execute", lambda sql: statements.append(sql) or execute(sql))
    monkeypatch.setattr(backend, "fetch", lambda sql: queries.append(sql) or fetch(sql))

    def counted(day: str) -> tuple[int, int, int]:
        statements.clear()
        queries.clear()
        load_and_validate(backend, tmp_path / day)
        updates = [sql for sql in statements if sql.startswith("UPDATE") and "batches" in sql]
        results = [sql for sql in statements if sql.startswith("INSERT") and "rule_results" in sql]
        verdict_counts = [sql for sql in queries if '"_quarantined"' in sql]
        return len(updates), len(results), len(verdict_counts)

    # One query counts the verdicts of every entity (products, headers, lines, inventory the first day).
    assert counted("day1") == (1, 1, 1)
    assert counted("day2") == (2, 1, 1)  # the first products batch's row superseded, then every batch's counters
    failed = {(row[0], row[1].removeprefix(str(tmp_path) + "/")): row[2:] for row in backend.fetch(
        "SELECT r.rule_id, b.source_file, r.checked, r.failed FROM audit.rule_results r "
        "JOIN audit.batches b ON b.batch_id = r.batch_id WHERE r.failed > 0 OR r.rule_id LIKE '%.exists'")[1]}
    # Each entity's counts went to its own rules: ST9 is unknown (the header's store), its line is rejected with it.
    assert failed == {
        ("store_sales_header.store_id.exists", "day1/store_sales_header.csv"): (3, 1),
        ("store_sales_header.customer_id.exists", "day1/store_sales_header.csv"): (3, 0),
        ("store_sales_header.original_transaction_id.exists", "day1/store_sales_header.csv"): (3, 0),
        ("store_sales_line_items.transaction.atomic", "day1/store_sales_line_items.csv"): (3, 1),
        ("store_sales_line_items.transaction_id.exists", "day1/store_sales_line_items.csv"): (3, 0),
        ("store_sales_line_items.product_id.exists", "day1/store_sales_line_items.csv"): (3, 0),
        ("store_sales_line_items.promotion_id.exists", "day1/store_sales_line_items.csv"): (3, 0),
        ("inventory_daily.store_id.exists", "day1/inventory_daily.csv"): (1, 0),
        ("inventory_daily.product_id.exists", "day1/inventory_daily.csv"): (1, 0),
        ("store_sales_header.store_id.exists", "day2/store_sales_header_2024-12-02.csv"): (1, 0),
        ("store_sales_header.customer_id.exists", "day2/store_sales_header_2024-12-02.csv"): (1, 0),
        ("store_sales_header.original_transaction_id.exists", "day2/store_sales_header_2024-12-02.csv"): (1, 0),
        ("store_sales_line_items.transaction_id.exists", "day2/store_sales_line_items_2024-12-02.csv"): (1, 0),
        ("store_sales_line_items.product_id.exists", "day2/store_sales_line_items_2024-12-02.csv"): (1, 0),
        ("store_sales_line_items.promotion_id.exists", "day2/store_sales_line_items_2024-12-02.csv"): (1, 0),
    }
    rows = {(row[0], row[1]): row[2:] for row in backend.fetch(
        "SELECT entity, source_file, staged_rows, quarantined_rows, coalesce(superseded_rows, 0), status, "
        "validate_seconds IS NOT NULL FROM audit.batches")[1]}
    day1, day2 = str(tmp_path / "day1"), str(tmp_path / "day2")
    counters = {(entity, name.removeprefix(day1 + "/").removeprefix(day2 + "/"), day2 in name): values[:4]
                for (entity, name), values in rows.items()}
    assert counters[("products", "products.csv", False)] == (1, 0, 1, "validated")
    assert counters[("products", "products.csv", True)] == (1, 0, 0, "validated")
    assert counters[("store_sales_header", "store_sales_header.csv", False)] == (2, 1, 0, "validated")
    assert counters[("store_sales_line_items", "store_sales_line_items.csv", False)] == (2, 1, 0, "validated")
    assert counters[("store_sales_header", "store_sales_header_2024-12-02.csv", True)] == (1, 0, 0, "validated")
    assert all(values[4] for values in rows.values()), "every batch has its validation's seconds"
    assert _balanced(backend)
