"""MariaDB validates at volume: text keys are VARCHAR(255), compared plainly and joined by hash.

MariaDB joins TEXT keys only by nested loops (or hashes them on their first bytes), and Ibis's
CAST(left AS BINARY) = right hides a join key from the optimizer: a batch of 100k line items did
not get through its header check in 15 minutes. These tests pin each part of the fix, and the
plans of the checks: every buffered join is a hash join on the whole key.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import ibis
import pytest

from helpers import MYSQL_ADMIN, MYSQL_SKIP, SAMPLE_DIR, drop_mysql_database, load_and_validate, write_csv
from retailflow.backends import Backend, connect, mysql
from retailflow.errors import UserError
from retailflow.ingest import discover, ingest
from retailflow.model import ENTITIES
from retailflow.quality.context import with_typed

pytestmark = pytest.mark.skipif(bool(MYSQL_SKIP), reason=MYSQL_SKIP or "")


@pytest.fixture
def mysql_url() -> Iterator[str]:
    name = f"rf_test_{uuid.uuid4().hex[:12]}"
    try:
        yield f"{MYSQL_ADMIN.rstrip('/')}/{name}"
    finally:
        drop_mysql_database(name)


@pytest.fixture
def maria(mysql_url) -> Iterator[Backend]:
    backend = connect(mysql_url)
    yield backend
    backend.close()


def _column_types(backend: Backend, table: str) -> dict[str, str]:
    _, rows = backend.fetch_built(f"SHOW COLUMNS FROM {table}")
    return {row[0]: row[1].lower() for row in rows}


def test_text_keys_are_typed_varchar_and_other_text_stays_text(maria):
    """The check's typed key columns (_v_) are VARCHAR(255) in a temporary table; free text is not cut to 255."""
    ingest(maria, discover([SAMPLE_DIR]))
    typed = with_typed(maria, ENTITIES["products"], maria.raw_table("raw", "products"))
    maria.create_temp_table("rf_test_typed", typed)
    types = _column_types(maria, "rf_test_typed")
    assert types["_v_product_id"] == "varchar(255)"
    assert "text" in types["_v_product_name"] and "text" in types["_t_product_id"]


def test_fact_staging_keys_are_varchar(maria):
    """Fact tables declare no keys on MySQL, but their text keys are VARCHAR(255) like the masters'."""
    types = _column_types(maria, maria.qualified("staging", "store_sales_line_items"))
    assert {types[name] for name in ("line_item_id", "transaction_id", "product_id", "promotion_id")} == {"varchar(255)"}
    assert "text" not in {types[name] for name in mysql.TEXT_KEY_COLUMNS if name in types}


def test_text_equality_is_plain_and_still_byte_wise(maria):
    """No CAST(... AS BINARY) around an equality, and the collations keep it case and trailing-space sensitive."""
    table = ibis.table({"a": "string", "b": "string"}, name="rf_test_pairs")
    assert "BINARY" not in maria.compile(table.filter(table.a == table.b)).upper()
    maria.execute_built("CREATE TEMPORARY TABLE rf_test_pairs (a TEXT, b VARCHAR(255))")
    maria.execute_built("INSERT INTO rf_test_pairs VALUES ('A', 'a'), ('a ', 'a'), ('a', 'a')")
    assert maria.fetch_built(maria.compile(table.filter(table.a == table.b).count()))[1] == [(1,)]


def test_session_settings_for_hash_joins(mysql_url, monkeypatch):
    monkeypatch.delenv("RETAILFLOW_MYSQL_JOIN_BUFFER", raising=False)
    backend = connect(mysql_url)
    try:
        assert int(backend.scalar("SELECT @@join_cache_level")) == 4
        assert int(backend.scalar("SELECT @@join_buffer_size")) == 256 * 1024 * 1024
        switches = backend.scalar("SELECT @@optimizer_switch")
        assert "semijoin=off" in switches and "split_materialized=off" in switches
        assert int(backend.scalar("SELECT @@tmp_table_size")) == 256 * 1024 * 1024
        assert int(backend.scalar("SELECT @@max_heap_table_size")) == 256 * 1024 * 1024
    finally:
        backend.close()


def test_join_buffer_comes_from_the_environment(mysql_url, monkeypatch):
    """RETAILFLOW_MYSQL_JOIN_BUFFER sets join_buffer_size; a value that is not a size is a one-line error."""
    monkeypatch.setenv("RETAILFLOW_MYSQL_JOIN_BUFFER", "96M")
    backend = connect(mysql_url)
    try:
        assert int(backend.scalar("SELECT @@join_buffer_size")) == 96 * 1024 * 1024
    finally:
        backend.close()
    monkeypatch.setenv("RETAILFLOW_MYSQL_JOIN_BUFFER", "plenty")
    with pytest.raises(UserError, match="RETAILFLOW_MYSQL_JOIN_BUFFER='plenty' is not a size"):
        connect(mysql_url)


def test_a_key_longer_than_255_characters_is_refused_at_ingest(maria, tmp_path):
    """Validation casts keys to VARCHAR(255), which would cut a longer one: ingest names the line instead."""
    write_csv(tmp_path / "ok", "products.csv", f"""
product_id,product_name,product_category,unit_price,current_stock_level
"   {"P" * 255}   ",{"N" * 400},Toys,1.00,1
""")
    load_and_validate(maria, tmp_path / "ok")
    staged = f"SELECT CHAR_LENGTH(product_id), CHAR_LENGTH(product_name) FROM {maria.qualified('staging', 'products')}"
    assert maria.fetch(staged)[1] == [(255, 400)]
    long_file = write_csv(tmp_path / "long", "products.csv", f"""
product_id,product_name,product_category,unit_price,current_stock_level
P1,Ball,Toys,1.00,1
{"Q" * 256},Kite,Toys,2.00,1
""")
    with pytest.raises(UserError, match=re.escape(f"{long_file}:3: product_id is 256 characters long")):
        ingest(maria, discover([tmp_path / "long"]))
    assert maria.scalar(f"SELECT count(*) FROM {maria.qualified('raw', 'products')}") == 1


def test_every_check_joins_by_hash_on_whole_keys(maria, monkeypatch):
    """EXPLAIN of each check: every buffered join is a hash join (BNLH) on the whole key.

    A TEXT key hashed on its length bytes alone (key_len 2 or 3), a plain block nested loop, or a
    lookup keyed on _batch_id alone (the semi-join on pending batches did that to the customer
    check) compares every pair of rows: minutes at 100k line items.
    """
    plans: dict[str, list[dict]] = {}
    execute = mysql.MySQLBackend.execute_built

    def explained(self, sql):
        prefix = "CREATE TEMPORARY TABLE `rf_findings_"
        if sql.startswith(prefix):
            names, rows = self.fetch_built("EXPLAIN " + sql.split(" AS ", 1)[1])
            plans[sql[len(prefix):].split("`", 1)[0]] = [dict(zip(names, row)) for row in rows]
        return execute(self, sql)

    monkeypatch.setattr(mysql.MySQLBackend, "execute_built", explained)
    load_and_validate(maria, SAMPLE_DIR)
    assert {"customer_details", "store_sales_header", "store_sales_line_items"} <= set(plans)
    for entity, plan in plans.items():
        for row in plan:
            where = f"{entity}: {row}"
            if "join buffer" in (row["Extra"] or ""):
                assert "BNLH" in row["Extra"] or "BKAH" in row["Extra"], where
            if (row["key"] or "").startswith("#hash#"):
                assert all(int(part) >= 8 for part in re.split("[,:]", row["key_len"])), where
            if (row["table"] or "").startswith("<derived") and row["type"] == "ref":
                assert "batch_id" not in (row["ref"] or ""), where
