"""The catalog of stored tables: each table declared once, and the declaration is what the stages and the DDL make.

A stage that changes its output without its declaration, a table a run writes that nothing declares, or DDL that
differs from the declaration fails here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import ibis.expr.types as ir
import pytest

from helpers import SAMPLE_DIR
from retailflow import catalog
from retailflow.analytics import churn, inventory, loyalty, phantom_state, promotions, purchases, segmentation
from retailflow.analytics.returns import returns_daily
from retailflow.analytics.sales import sales_lines
from retailflow.backends import connect
from retailflow.catalog import DECLARATION, EXPRESSION, SCOPES, STORED_TABLES
from retailflow.model import TYPES
from retailflow.notify import outbox
from retailflow.notify.senders import LogSender
from retailflow.pipeline import run_pipeline
from retailflow.quality.rules import load_rules
from retailflow.tables import staging_table

WRITTEN_SCHEMAS = ("audit", "analytics", "loyalty", "notifications")


def _stored_lines() -> ir.Table:
    return inventory.stored_inputs()["lines"]


def _counted_days() -> ir.Table:
    lines = _stored_lines()
    return phantom_state.counted_days(lines, staging_table("inventory_daily"), phantom_state.trading_days(lines))


#: Every table made from a stage's expression, and how the stage builds it (as its run_* does).
STAGE_EXPRESSIONS: dict[str, Callable[[], ir.Table]] = {
    "analytics.customer_daily": lambda: purchases.customer_days(staging_table("store_sales_header")),
    "analytics.customer_purchases": lambda: purchases.purchases(purchases.DAILY),
    "analytics.customer_rfm": lambda: segmentation.customer_rfm(
        staging_table("store_sales_header"), purchases.PURCHASES, staging_table("customer_details"),
        loyalty.BALANCES),
    "analytics.customer_churn": lambda: churn.customer_churn(
        staging_table("customer_details"), churn.purchase_summary(
            staging_table("store_sales_header"), purchases.DAILY, staging_table("customer_details")),
        churn.ChurnFit(model=churn.DEFAULT_MODEL, status=churn.ESTIMATED, customers=1, repeat_buyers=1,
                       history_days=1, r=1.0, alpha=1.0, a=1.0, b=1.0, log_likelihood=0.0)),
    "analytics.store_product_daily": lambda: inventory.inputs()["lines"],
    "analytics.product_daily": lambda: inventory.product_daily(_stored_lines()),
    "analytics.returns": lambda: returns_daily(sales_lines(
        staging_table("store_sales_line_items"), staging_table("store_sales_header"), staging_table("products"))),
    "analytics.top_products": lambda: inventory.top_products(inventory.stored_inputs()["product_days"],
                                                             staging_table("products")),
    "analytics.stockouts": lambda: inventory.stockouts(**inventory.stored_inputs()),
    "analytics.lost_sales": lambda: inventory.lost_sales(**inventory.stored_inputs()),
    "analytics.phantom_inventory": lambda: phantom_state.stored_phantom(_stored_lines()),
    "analytics.phantom_idle_runs": lambda: phantom_state.idle_runs(_counted_days()),
    "analytics.phantom_rates": lambda: phantom_state.day_rates(_counted_days()),
    "analytics.phantom_log": lambda: phantom_state.log_entry(_stored_lines(), 0, None),
    **{f"analytics.{name}": (lambda name=name: phantom_state.empty_logs()[name])
       for name in ("phantom_log_removed", "phantom_log_added", "phantom_log_rates")},
    **{f"analytics.{name}": (lambda write=write: write(promotions.inputs()))
       for name, (_, write) in promotions.DAILY_TABLES.items()},
    "analytics.promotion_effectiveness": lambda: promotions.promotion_effectiveness(**promotions.stored_inputs()),
    "loyalty.balances": lambda: loyalty.balances(staging_table("customer_details"), loyalty.OPENING,
                                                 loyalty.LEDGER, purchases.PURCHASES),
}


def _types(schema) -> list[tuple[str, object]]:
    """(name, type) of each column, nullability aside: expressions type every column nullable."""
    return [(name, dtype.copy(nullable=True)) for name, dtype in schema.items()]


def test_each_declaration_is_complete():
    assert len({table.qualified_name for table in STORED_TABLES}) == len(STORED_TABLES)
    for table in STORED_TABLES:
        assert table.schema in WRITTEN_SCHEMAS and table.scope in SCOPES, table.qualified_name
        assert table.created_from in (DECLARATION, EXPRESSION), table.qualified_name
        assert table.grain.startswith("One row") and table.description, table.qualified_name
        assert len(set(table.column_names)) == len(table.columns), table.qualified_name
        assert set(table.key) <= set(table.column_names), table.qualified_name
        for column in table.columns:
            assert column.type in TYPES and column.description, f"{table.qualified_name}.{column.name}"


@pytest.mark.parametrize("name", sorted(STAGE_EXPRESSIONS))
def test_an_expression_table_is_what_its_stage_builds(name):
    assert _types(STAGE_EXPRESSIONS[name]().schema()) == _types(catalog.stored(name).ibis_schema())


#: Tables whose stage casts every write to its declaration (StoredTable.cast in checks/), so their schema is the
#: declared one by construction; the run test below still checks their columns as written.
CAST_ON_WRITE = {"analytics.store_day_deliveries", "analytics.store_day_metrics", "audit.expected_deliveries",
                 "audit.anomalies", "audit.check_runs"}


def test_every_expression_table_has_its_stage_expression_here():
    made = {table.qualified_name for table in STORED_TABLES
            if table.created_from == EXPRESSION and table.qualified_name not in CAST_ON_WRITE}
    assert made == set(STAGE_EXPRESSIONS)


def test_a_run_writes_the_declared_tables_as_declared_and_no_other(tmp_path):
    """The sample's whole run on DuckDB, its messages sent: every table in the written schemas is declared, with
    the declared columns in their order, and every declared table is written."""
    backend = connect(f"duckdb:///{tmp_path / 'shop.duckdb'}")
    try:
        run_pipeline(backend, [SAMPLE_DIR], load_rules())
        outbox.send(backend, LogSender())
        written = {f"{schema}.{name}": columns for schema in WRITTEN_SCHEMAS
                   for name, columns in backend.schema_columns(schema).items()}
    finally:
        backend.close()
    assert sorted(set(written) - set(catalog.STORED)) == [], "written, not declared"
    assert sorted(set(catalog.STORED) - set(written)) == [], "declared, not written"
    assert written == {name: list(catalog.stored(name).column_names) for name in written}


def test_declared_tables_are_created_as_declared(tmp_path):
    backend = connect(f"duckdb:///{tmp_path / 'empty.duckdb'}")
    try:
        declared = [table for table in STORED_TABLES if table.created_from == DECLARATION]
        backend.ensure_tables(declared)
        for table in declared:
            _, rows = backend.fetch("SELECT column_name, data_type, is_nullable FROM information_schema.columns "
                                    f"WHERE table_schema = '{table.schema}' AND table_name = '{table.name}' "
                                    "ORDER BY ordinal_position")
            assert [(name, data_type.replace("DOUBLE", "DOUBLE PRECISION"), nullable == "NO") for
                    name, data_type, nullable in rows] == [
                (column.name, column.sql_type, column.not_null or column.name in table.key
                 and table.key_constraint == catalog.ALWAYS) for column in table.columns], table.qualified_name
    finally:
        backend.close()


def test_a_ledger_declares_its_key_where_the_engine_declares_fact_keys(tmp_path):
    backend = connect(f"duckdb:///{tmp_path / 'keys.duckdb'}")
    try:
        ledger = catalog.stored("loyalty.points_ledger")
        assert "PRIMARY KEY" not in backend.table_ddl(ledger)
        backend.capabilities = dataclasses.replace(backend.capabilities, declares_fact_keys=True)
        assert backend.table_ddl(ledger).endswith(
            'PRIMARY KEY ("transaction_id", "rule_id", "run_id", "reason"))')
    finally:
        backend.close()


def test_a_later_release_s_columns_are_added_to_an_older_table(tmp_path):
    backend = connect(f"duckdb:///{tmp_path / 'old.duckdb'}")
    try:
        opening = catalog.stored("loyalty.opening_balances")
        backend.execute("CREATE TABLE loyalty.opening_balances (customer_id VARCHAR PRIMARY KEY, "
                        "opening_points BIGINT NOT NULL, recorded_at TIMESTAMP NOT NULL)")
        backend.ensure_tables([opening])
        assert backend.table_columns("loyalty", "opening_balances") == list(opening.column_names)
    finally:
        backend.close()
