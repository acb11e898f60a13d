"""CSV -> raw: values kept as text with lineage, idempotent batches, clear errors for bad files."""

from __future__ import annotations

import pytest

from helpers import column, write_csv
from retailflow.errors import UserError
from retailflow.ingest import discover, ingest

STORES = """
store_id,store_name,store_city,store_region,opening_date
ST01,Harbour Mall,Portland,Oregon,2019-04-01
ST02,"Elm Street, North",Salem,Oregon,
"""


def test_sample_is_loaded_as_text_with_lineage(backend, sample_dir):
    results = ingest(backend, discover([sample_dir]))
    assert {r.entity: r.rows for r in results} == {
        "customer_details": 6, "inventory_daily": 43, "loyalty_rules": 4, "products": 6,
        "promotion_details": 3, "store_sales_header": 18, "store_sales_line_items": 23, "stores": 3,
    }
    assert all(r.status == "loaded" for r in results)
    # CRLF file, denormalized extra column kept, ragged row padded with NULL.
    rows = backend.fetch_dicts("SELECT transaction_id, total_amount, store_city, _source_line, _source_file "
                               "FROM raw.store_sales_header WHERE transaction_id IN ('T001', 'T003') "
                               "ORDER BY _source_line")
    assert [(r["transaction_id"], r["total_amount"], r["store_city"], r["_source_line"]) for r in rows] == [
        ("T001", "70.00", "Portland", 2), ("T003", "98.00", None, 4), ("T001", "70.00", "Portland", 17)]
    assert rows[0]["_source_file"] == "store_sales_header.csv"
    # BOM before the first header name; quoted value with a comma kept whole; empty cell is NULL.
    lines = backend.fetch_dicts("SELECT line_item_id, product_id, promotion_id, product_name "
                                "FROM raw.store_sales_line_items WHERE line_item_id IN ('1', '18')"
                                " ORDER BY _source_line")
    assert lines == [
        {"line_item_id": "1", "product_id": "P01", "promotion_id": None, "product_name": "Headphones"},
        {"line_item_id": "18", "product_id": "P01,P02", "promotion_id": None, "product_name": "Headphones, Smart Watch"},
    ]
    batches = backend.fetch_dicts("SELECT entity, rows, status, sha256 FROM audit.batches ORDER BY batch_id")
    assert len(batches) == 8 and all(b["status"] == "loaded" and len(b["sha256"]) == 64 for b in batches)


def test_reingesting_an_identical_file_is_a_no_op(backend, tmp_path):
    path = write_csv(tmp_path, "stores.csv", STORES)
    first = ingest(backend, discover([path]))
    copy = write_csv(tmp_path / "again", "stores_copy.csv", STORES)
    second = ingest(backend, discover([path, copy]))
    assert first[0].status == "loaded"
    assert [r.status for r in second] == ["skipped", "skipped"]
    assert "identical to batch 1" in second[0].note
    assert backend.scalar("SELECT count(*) FROM raw.stores") == 2
    assert backend.scalar("SELECT count(*) FROM audit.batches") == 1
    assert column(backend, "SELECT store_name FROM raw.stores ORDER BY _source_line") == [
        "Harbour Mall", "Elm Street, North"]


def test_entity_option_overrides_the_file_name(backend, tmp_path):
    path = write_csv(tmp_path, "export_01.csv", STORES)
    with pytest.raises(UserError, match="cannot tell which entity"):
        discover([path])
    assert ingest(backend, discover([path], "stores"))[0].rows == 2


BAD_FILES = {
    "missing column": ("stores.csv", b"store_name,store_city\nA,B\n", r"stores.csv:1: missing required column\(s\) "
                       r"store_id for stores;"),
    "empty file": ("stores.csv", b"", r"stores.csv:1: the file is empty"),
    "latin-1 header": ("stores.csv", "store_id,store_name,store_city,store_region,opening_date,r\xe9gion\n"
                       .encode("latin-1"), r"stores.csv:1: the header is not UTF-8"),
    "latin-1 body": ("stores.csv", "store_id,store_name,store_city,store_region,opening_date\n"
                     "ST01,Caf\xe9,Paris,IDF,2020-01-01\n".encode("latin-1"), r"stores.csv.*not valid UTF-8"),
    "wrong delimiter": ("stores.csv", b"store_id;store_name;store_city;store_region;opening_date\nST01;A;B;C;D\n",
                        r"missing required column\(s\) store_id for stores;"),
    "too many values": ("stores.csv", b"store_id,store_name,store_city,store_region,opening_date\n"
                        b"ST01,A,B,C,2020-01-01\nST02,A,B,C,2020-01-01,extra\n",
                        r"stores.csv:3: the row has 6 values but the header has 5 columns"),
    "unclosed quote": ("stores.csv", b"store_id,store_name,store_city,store_region,opening_date\n"
                       b"ST01,\"A,B,C,2020-01-01\nST02,A,B,C,2020-01-01\n", r"stores.csv.*quote|stores.csv.*values"),
    "utf-16": ("stores.csv", "store_id,store_name,store_city,store_region,opening_date\n".encode("utf-16"),
               r"stores.csv:1: .*(UTF-8|NUL)"),
    "duplicate header": ("stores.csv", b"store_id,store_id,store_name,store_city,store_region,opening_date\n",
                         r"stores.csv:1: header repeats column\(s\) store_id"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_files_fail_clearly_and_load_nothing(backend, tmp_path, case):
    good = write_csv(tmp_path, "products.csv", "product_id,product_name,product_category,unit_price,"
                     "current_stock_level\nP01,A,B,1.00,3\n")
    name, content, message = BAD_FILES[case]
    bad = tmp_path / "bad" / name
    bad.parent.mkdir()
    bad.write_bytes(content)
    with pytest.raises(UserError, match=message) as raised:
        ingest(backend, discover([good, bad]))
    assert "\n" not in str(raised.value)
    # All files of one ingest commit together: the good file is not half-loaded either.
    assert backend.scalar("SELECT count(*) FROM raw.stores") == 0
    assert backend.scalar("SELECT count(*) FROM raw.products") == 0
    assert backend.scalar("SELECT count(*) FROM audit.batches") == 0


def test_missing_paths_and_empty_folders_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        discover([tmp_path / "nope.csv"])
    with pytest.raises(UserError, match="no input files"):
        discover([tmp_path])
