"""Ibis tables over the database's tables, typed from the data model, for building expressions."""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from retailflow.model import ENTITIES, IBIS_TYPES


def staging_table(entity_name: str) -> ir.Table:
    """staging.<entity>: one typed column per model column, plus _batch_id and _source_line."""
    entity = ENTITIES[entity_name]
    schema = {column.name: IBIS_TYPES[column.type] for column in entity.columns}
    return ibis.table({**schema, "_batch_id": "int64", "_source_line": "int64"}, name=entity.name, database="staging")
