"""Read-side of the audit trail: reconcile counts per batch and summarise quarantine."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import ibis
import ibis.expr.types as ir

from retailflow.backends import Backend
from retailflow.model import ENTITIES
from retailflow.tables import per_rule_id


@dataclass
class BatchBalance:
    """Where one batch's raw rows ended up."""

    batch_id: int
    entity: str
    source_file: str
    status: str
    raw_rows: int
    staged_rows: int
    superseded_rows: int
    quarantined_rows: int

    @property
    def balanced(self) -> bool:
        return self.status == "validated" and self.raw_rows == (
            self.staged_rows + self.superseded_rows + self.quarantined_rows)


def _counts_by_batch(backend: Backend, schema: str, table: str) -> dict[int, int]:
    rows = backend.fetch_dicts(f"SELECT _batch_id AS batch, count(*) AS n FROM {backend.qualified(schema, table)} "
                               "GROUP BY _batch_id")
    return {int(row["batch"]): int(row["n"]) for row in rows}


def reconcile(backend: Backend) -> list[BatchBalance]:
    """Per batch: rows in raw against rows now in staging (+ replaced by newer master rows) and quarantine."""
    counts = {
        (schema, name): _counts_by_batch(backend, schema, name)
        for name in ENTITIES for schema in ("raw", "staging", "quarantine")
    }
    balances = []
    for batch in backend.fetch_dicts("SELECT batch_id, entity, source_file, status, superseded_rows "
                                     "FROM audit.batches ORDER BY batch_id"):
        batch_id, entity = int(batch["batch_id"]), batch["entity"]
        balances.append(BatchBalance(
            batch_id, entity, batch["source_file"], batch["status"],
            counts[("raw", entity)].get(batch_id, 0), counts[("staging", entity)].get(batch_id, 0),
            int(batch["superseded_rows"] or 0), counts[("quarantine", entity)].get(batch_id, 0)))
    return balances


def quarantine_summary(backend: Backend) -> list[dict]:
    """Per entity and rule: rows quarantined, and the key and reasons of one of them (the smallest key)."""
    summary = []
    for entity in ENTITIES.values():
        table = backend.raw_table("quarantine", entity.name)
        key = ibis.literal("|").join([table[name].fill_null("") for name in entity.primary_key])
        listed = per_rule_id(table.mutate(_key=key), "_rule_ids", ibis.literal(entity.name))
        exploded = listed.select("rule_id", key=listed._key, reasons=listed._reasons,
                                 line=listed._source_line, file=listed._source_file)
        grouped = with_example(exploded, ["rule_id"], order_by=["key", "file", "line"])
        summary += [{"entity": entity.name, **row} for row in backend.fetch_dicts(grouped.order_by("rule_id"))]
    return sorted(summary, key=lambda row: (-row["rows"], row["entity"], row["rule_id"]))


def with_example(rows: ir.Table, group_by: Sequence[str], *, order_by: Sequence[str | ir.Value]) -> ir.Table:
    """One row per `group_by` group of `rows` (with `key` and `reasons` columns): its row count as `rows`, and the
    key and reasons of its first row by `order_by` as `example_key` and `example_reasons`. The last `group_by`
    column (a rule id) is never null.

    The example is one row, its key with its own reasons: a min() of each would pair the smallest key with
    whichever reason sorts first, from another row.
    """
    groups = ibis.window(group_by=list(group_by))
    # Counting the never-null rule id counts the rows.
    ranked = rows.mutate(rows=rows[group_by[-1]].count().over(groups),
                         _example=ibis.row_number().over(ibis.window(group_by=list(group_by), order_by=list(order_by))))
    return ranked.filter(ranked._example == 0).select(
        *group_by, "rows", example_key=ranked.key, example_reasons=ranked.reasons)


def quarantined_rows(backend: Backend, entity_name: str, limit: int = 20) -> list[dict]:
    """Quarantined rows of one entity with their reasons, in file order."""
    table = backend.raw_table("quarantine", entity_name)
    return backend.fetch_dicts(table.order_by(["_batch_id", "_source_line"]).limit(limit))
