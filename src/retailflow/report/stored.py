"""Unbound Ibis tables over what the pipeline stored, typed from the code that writes each table.

Staging tables come from the data model, audit tables from their DDL, analytics, loyalty and
notification tables from the stage expressions themselves: no column list is typed again here.
"""

from __future__ import annotations

from collections.abc import Callable

import ibis
import ibis.expr.types as ir

from retailflow.analytics import churn, inventory, loyalty, promotions, purchases, returns, segmentation
from retailflow.backends.base import AUDIT_TABLES
from retailflow.model import ENTITIES
from retailflow.notify import outbox
from retailflow.tables import staging_table

_SQL_TYPES = {"BIGINT": "int64", "VARCHAR": "string", "TIMESTAMP": "timestamp", "DOUBLE": "float64", "DATE": "date"}


def _audit(name: str) -> ibis.Schema:
    return ibis.schema({column: _SQL_TYPES[sql_type.split()[0]] for column, sql_type in AUDIT_TABLES[name]})


def _balances() -> ir.Table:
    return loyalty.balances(staging_table("customer_details"), loyalty.OPENING, loyalty.LEDGER, purchases.PURCHASES)


def _inventory_schema(output: Callable[..., ir.Table], *inputs: str) -> ibis.Schema:
    """The schema of an inventory output built from the named inventory inputs."""
    tables = inventory.inputs()
    return output(*(tables[name] for name in inputs)).schema()


_SCHEMAS: dict[str, Callable[[], ibis.Schema]] = {
    **{f"staging.{name}": (lambda name=name: staging_table(name).schema()) for name in ENTITIES},
    **{f"audit.{name}": (lambda name=name: _audit(name)) for name in AUDIT_TABLES},
    "analytics.promotion_effectiveness": lambda: promotions.promotion_effectiveness(
        **promotions.stored_inputs()).schema(),
    "analytics.promotion_daily": lambda: promotions.promotion_daily(promotions.inputs()["days"]).schema(),
    "analytics.top_products": lambda: _inventory_schema(inventory.top_products, "product_days", "products"),
    "analytics.stockouts": lambda: inventory.stockouts(**inventory.inputs()).schema(),
    "analytics.lost_sales": lambda: inventory.lost_sales(**inventory.inputs()).schema(),
    "analytics.phantom_inventory": lambda: _inventory_schema(inventory.phantom_inventory, "lines", "inventory"),
    "analytics.returns": lambda: returns.RETURNS.schema(),
    "analytics.store_product_daily": lambda: inventory.inputs()["lines"].schema(),
    "analytics.product_daily": lambda: inventory.inputs()["product_days"].schema(),
    "analytics.customer_rfm": lambda: segmentation.customer_rfm(
        staging_table("store_sales_header"), purchases.PURCHASES, staging_table("customer_details"),
        _balances()).schema(),
    "analytics.customer_churn": lambda: churn.churn_table().schema(),
    "loyalty.points_ledger": lambda: loyalty.LEDGER.schema(),
    "loyalty.balances": lambda: _balances().schema(),
    "notifications.outbox": lambda: outbox.OUTBOX.schema(),
}


def stored(qualified_name: str) -> ir.Table:
    """An unbound table over "schema.table" as the pipeline writes it."""
    schema, name = qualified_name.split(".")
    return ibis.table(_SCHEMAS[qualified_name](), name=name, database=schema)


def known(qualified_name: str) -> bool:
    return qualified_name in _SCHEMAS
