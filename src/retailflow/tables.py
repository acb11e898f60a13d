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


RULE_RESULTS = ibis.table({"rule_id": "string"}, name="rule_results", database="audit")


def per_rule_id(table: ir.Table, ids_column: str) -> ir.Table:
    """One row per (row of `table`, rule id listed in its comma-separated `ids_column`), as `rule_id`.

    The ids are matched against the rule ids on record in audit.rule_results (every id that can
    appear in a list is counted there) instead of splitting the text, as not every engine has arrays.
    """
    rule_ids = RULE_RESULTS.select("rule_id").distinct()
    return table.join(rule_ids, ("," + table[ids_column] + ",").contains("," + rule_ids.rule_id + ","))
