"""Ibis tables over the database's tables, typed from the data model, for building expressions."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

import ibis
import ibis.expr.types as ir

from retailflow import catalog
from retailflow.model import ENTITIES, IBIS_TYPES

if TYPE_CHECKING:
    from retailflow.backends import Backend


def staging_table(entity_name: str) -> ir.Table:
    """staging.<entity>: one typed column per model column, plus _batch_id and _source_line."""
    entity = ENTITIES[entity_name]
    schema = {column.name: IBIS_TYPES[column.type] for column in entity.columns}
    return ibis.table({**schema, "_batch_id": "int64", "_source_line": "int64"}, name=entity.name, database="staging")


RULE_RESULTS = catalog.table("audit.rule_results")


def per_rule_id(table: ir.Table, ids_column: str, entity: ir.StringValue) -> ir.Table:
    """One row per (row of `table`, rule id listed in its comma-separated `ids_column`), as `rule_id`.

    The ids are matched against the rule ids on record in audit.rule_results for the row's
    `entity` (every id that can appear in a list is counted there) instead of splitting the
    text, as not every engine has arrays. The equality on entity keeps the join a hash join:
    only that entity's few ids are tested against each row.
    """
    rule_ids = RULE_RESULTS.select(_rule_entity="entity", rule_id="rule_id").distinct()
    table = table.mutate(_row_entity=entity)
    joined = table.join(rule_ids, [table._row_entity == rule_ids._rule_entity,
                                   ("," + table[ids_column] + ",").contains("," + rule_ids.rule_id + ",")])
    return joined.drop("_row_entity", "_rule_entity")


def matching(backend: Backend, table: ir.Table, keys: ir.Table, on: Sequence[tuple[str, str]],
             keep: bool = True) -> ir.Table:
    """Rows of `table` that have (`keep`) or have not a match in `keys`, which is unique on its `on` columns.

    A semi- or anti-join (EXISTS / NOT EXISTS, DuckDB's and Spark's SEMI / ANTI JOIN), except where the
    engine runs EXISTS as a subquery per row (`Capabilities.joins_exists_per_row`: MariaDB, with its semi-join
    rewrites off, see backends/mysql.py, took 40 s for 30k staged customers against 52k candidate keys):
    there a LEFT JOIN keeping the unmatched (or matched) rows, which it hashes. PostgreSQL must not get the
    LEFT JOIN form: it estimates the IS NULL filter of an anti-join at 0.5 % of the rows, and planned
    nested loops of index probes over the million clean line items the staging insert reads (7.7 s).
    """
    return matching_rows(table, keys, on, keep, exists_per_row=backend.capabilities.joins_exists_per_row)


def matching_rows(table: ir.Table, keys: ir.Table, on: Sequence[tuple[str, str]], keep: bool = True, *,
                  exists_per_row: bool = False) -> ir.Table:
    """matching() for an expression built without a backend: `exists_per_row` is the engine's
    Capabilities.joins_exists_per_row."""
    if not exists_per_row:
        predicates = [table[left] == keys[right] for left, right in on]
        return table.semi_join(keys, predicates) if keep else table.anti_join(keys, predicates)
    marked = keys.select(*[keys[right].name(f"_m_{right}") for _, right in on], _matched=ibis.literal(True))
    joined = table.left_join(marked, [table[left] == marked[f"_m_{right}"] for left, right in on])
    joined = joined.select(*table.columns, "_matched")
    return joined.filter(joined._matched.notnull() if keep else joined._matched.isnull()).drop("_matched")


@contextlib.contextmanager
def indexed_where_needed(backend: Backend, name: str, table: ir.Table, *keys: Sequence[str]) -> Iterator[ir.Table]:
    """`table`, or where the engine would compute it again at each reading or join it without an index
    (`Capabilities.keeps_shared_pieces`: MariaDB, which has no index on a derived table and hashed some on a
    two-byte key; Spark, whose plans repeat a piece at each reference), `table` kept as the temporary table `name`
    with an index on each of `keys` where the engine has indexes, dropped on exit.
    """
    if not backend.capabilities.keeps_shared_pieces:
        yield table
        return
    try:
        yield backend.create_temp_table(name, table, indexed=[list(key) for key in keys])
    finally:
        backend.drop_temp_tables(name)


@contextlib.contextmanager
def scratch_tables(backend: Backend, *names: str) -> Iterator[None]:
    """A run that makes the temporary tables `names`: they are dropped when it ends, and when it fails too (MariaDB
    and Spark keep a temporary table past a rollback, for the session of a scheduler's worker); a failure to drop
    them after an error (in a transaction the error aborted) does not hide that error."""
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):
            backend.drop_temp_tables(*names)
        raise
    backend.drop_temp_tables(*names)


#: Keeps a piece of an expression (by name) as a table indexed on the key columns it is joined on where the engine
#: needs it (indexed_where_needed), and returns it.
Store = Callable[[str, ir.Table, Sequence[str]], ir.Table]


def as_is(name: str, table: ir.Table, key: Sequence[str]) -> ir.Table:
    """The Store that keeps nothing: every piece stays part of the expression (the default of those that take one)."""
    return table


def indexed_store(backend: Backend, scratch: contextlib.ExitStack) -> Store:
    """A Store keeping each piece with indexed_where_needed, dropped when `scratch` closes."""
    def store(name: str, table: ir.Table, key: Sequence[str]) -> ir.Table:
        return scratch.enter_context(indexed_where_needed(backend, name, table, key))

    return store
