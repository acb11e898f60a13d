"""Values a real export may leave out, derived from the rows it did send, before any rule reads them.

- A line without a line_item_id is `<transaction_id>-<n>`, n its position among its transaction's lines in
  the run, file by file (1, 2, …): the same file sent again gives the same ids, so the unique rule still
  catches a repeat. A transaction whose lines come on two nights would repeat ids: send them together.
- A header without a total_amount (an empty cell, or no such column) totals its lines in this run, returns
  included; the sums_to rule then only checks totals that were sent. A header whose lines are not in the run
  keeps no total and fails total_amount's not_null rule with "total_amount is missing".

Both are derived only when some candidate lacks the value (one count each), so an export in the contract
pays nothing for them. And beside them:

- A master the model marks `implied` (stores) that was never delivered takes its keys from the facts of the
  run that name them: staged with lineage batch 0 and line 0 (no raw row: `reconcile` counts batches), every
  other column empty. A stores file sent later replaces those rows like any master update.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import ibis
import ibis.expr.types as ir

from retailflow.backends import Backend
from retailflow.model import ENTITIES
from retailflow.quality.context import TRIMMED_PREFIX, TYPED_PREFIX
from retailflow.tables import staging_table

HEADER, LINES = "store_sales_header", "store_sales_line_items"
#: Temporary tables this module may create (dropped with validation's other temporary tables).
TEMPORARY_TABLES = (f"rf_derived_{HEADER}",)


def lacking(backend: Backend, typed: ir.Table, column: str) -> bool:
    """Whether some typed candidate has no value of `column` (one count)."""
    return bool(backend.scalar(backend.compile(typed.filter(typed[TRIMMED_PREFIX + column].isnull()).count())))


def lacking_cells(backend: Backend, candidates: ir.Table, column: str) -> bool:
    """Whether some candidate row (as written) has no value of `column`: one count over the cells, not over their
    typed row (where an engine computes every typed cell once per row, `Backend.computed_once`, counting the typed
    rows computed them all: 1.5 s of 200k line items' validation on MariaDB)."""
    return bool(backend.scalar(backend.compile(candidates.filter(backend.trimmed(candidates[column]).isnull()).count())))


def _set(table: ir.Table, column: str, derived: ir.Value, text: ir.StringValue) -> ir.Table:
    """`table` with an empty cell of `column` replaced by `derived` (typed) and `text` (as if written)."""
    empty = table[TRIMMED_PREFIX + column].isnull()
    return table.mutate(**{TYPED_PREFIX + column: ibis.ifelse(empty, derived, table[TYPED_PREFIX + column]),
                           TRIMMED_PREFIX + column: ibis.ifelse(empty, text, table[TRIMMED_PREFIX + column])})


def line_ids(lines: ir.Table) -> ir.Table:
    """Typed line-item candidates with every missing line_item_id derived from its transaction and position."""
    transaction = lines[TYPED_PREFIX + "transaction_id"]
    position = ibis.row_number().over(group_by=transaction, order_by=[lines._batch_id, lines._source_line]) + 1
    derived = transaction + "-" + position.cast("string")
    return _set(lines, "line_item_id", derived, derived)


def header_totals(headers: ir.Table, lines: ir.Table) -> ir.Table:
    """Typed header candidates with every missing total_amount derived as the sum of their lines in `lines`."""
    sums = lines.group_by(_total_key=lines[TYPED_PREFIX + "transaction_id"]).aggregate(
        _line_total=lines[TYPED_PREFIX + "line_item_amount"].sum().cast("decimal(10, 2)"))
    joined = headers.left_join(sums, headers[TYPED_PREFIX + "transaction_id"] == sums._total_key)
    joined = joined.select(*headers.columns, "_line_total")
    return _set(joined, "total_amount", joined._line_total, joined._line_total.cast("string")).drop("_line_total")


def derive_missing(backend: Backend, typed: dict[str, ir.Table],
                   indexes: Callable[[str], Sequence[Sequence[str]]]) -> None:
    """Fill in `typed` (typed candidates by entity, updated in place) the header totals the export left out, which
    need both entities typed; `indexes` gives an entity's temporary-table indexes. (Line ids need only the lines:
    quality.engine.typed_candidates derives them as it types them.)"""
    if HEADER in typed and LINES in typed and lacking(backend, typed[HEADER], "total_amount"):
        typed[HEADER] = backend.create_temp_table(f"rf_derived_{HEADER}", header_totals(typed[HEADER], typed[LINES]),
                                                  indexed=indexes(HEADER))


def stage_implied_masters(backend: Backend, typed: dict[str, ir.Table]) -> None:
    """Stage the keys of every implied master never delivered, from the typed facts of this run that name them."""
    for master in (entity for entity in ENTITIES.values() if entity.implied):
        if backend.scalar(f"SELECT count(*) FROM audit.batches WHERE entity = {backend.literal(master.name)}"):
            continue
        key = master.primary_key[0]
        named = [table.select(**{key: table[TYPED_PREFIX + foreign_key.column]})
                 for name, table in typed.items()
                 for foreign_key in ENTITIES[name].foreign_keys if foreign_key.references == master.name]
        if not named:
            continue
        keys = named[0].union(*named[1:], distinct=True) if len(named) > 1 else named[0].distinct()
        staged = staging_table(master.name)
        keys = keys.filter(keys[key].notnull()).anti_join(staged, keys[key] == staged[key])
        backend.insert("staging", master.name, keys.select(key, _batch_id=ibis.literal(0, "int64"),
                                                           _source_line=ibis.literal(0, "int64")))
