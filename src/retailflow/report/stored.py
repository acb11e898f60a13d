"""Unbound Ibis tables over what the pipeline stored, typed from where each table is declared: staging tables
from the data model, the others from the catalog of stored tables (retailflow.catalog)."""

from __future__ import annotations

import ibis.expr.types as ir

from retailflow import catalog
from retailflow.model import ENTITIES
from retailflow.tables import staging_table


def stored(qualified_name: str) -> ir.Table:
    """An unbound table over "schema.table" as the pipeline writes it."""
    schema, name = qualified_name.split(".")
    if schema == "staging":
        return staging_table(name)
    return catalog.table(qualified_name)


def known(qualified_name: str) -> bool:
    schema, _, name = qualified_name.partition(".")
    return (schema == "staging" and name in ENTITIES) or qualified_name in catalog.STORED
