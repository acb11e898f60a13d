"""What a rule kind sees while a table is checked: the candidate rows, typed values and lookups."""

from __future__ import annotations

from collections.abc import Sequence

import ibis
import ibis.expr.types as ir

from retailflow.backends import Backend
from retailflow.model import Entity
from retailflow.tables import staging_table

TYPED_PREFIX = "_v_"
TRIMMED_PREFIX = "_t_"


def with_typed(backend: Backend, entity: Entity, candidates: ir.Table) -> ir.Table:
    """Candidate rows plus each cell trimmed (_t_<column>, NULL when empty) and typed (_v_<column>,
    NULL where it does not parse): every cell is trimmed once, whatever the rules read."""
    trimmed = candidates.mutate(**{TRIMMED_PREFIX + column.name: candidates[column.name].strip().nullif("")
                                   for column in entity.columns})
    return backend.computed_once(trimmed.mutate(**{
        TYPED_PREFIX + column.name: backend.parse(trimmed[TRIMMED_PREFIX + column.name], column.type)
        for column in entity.columns}))


class CheckContext:
    """Candidate rows of one entity with their typed values, plus the lookups rules add."""

    def __init__(self, backend: Backend, entity: Entity, candidates: ir.Table,
                 pending: dict[str, ir.Table], rule_ids: Sequence[str]) -> None:
        self.backend = backend
        self.entity = entity
        self.pending = pending
        self._flag_names = {rule_id: f"_r{index}" for index, rule_id in enumerate(rule_ids)}
        self.table = with_typed(backend, entity, candidates)

    @staticmethod
    def typed_name(column: str) -> str:
        return TYPED_PREFIX + column

    def typed(self, column: str) -> ir.Value:
        return self.table[self.typed_name(column)]

    def text(self, column: str) -> ir.StringValue:
        """The cell as written (trimmed), NULL when empty."""
        return self.table[TRIMMED_PREFIX + column]

    def flag_name(self, rule) -> str:
        return self._flag_names[rule.id]

    def flag(self, rule) -> ir.Value:
        return self.table[self.flag_name(rule)]

    def add_column(self, name: str, expr: ir.Value) -> None:
        self.table = self.table.mutate(**{name: expr})

    def staging(self, entity_name: str) -> ir.Table:
        return staging_table(entity_name)

    def typed_rows(self, entity_name: str, columns: Sequence[str]) -> ir.Table:
        """Typed `columns` of staging.<entity> plus that entity's candidates in this run.

        `pending` holds those candidates with their typed _v_ columns: parsed from raw, or the
        entity's materialised check once it has one, so they are not parsed twice.
        """
        staged = self.staging(entity_name).select(*columns)
        if entity_name not in self.pending:
            return staged
        typed = self.pending[entity_name]
        return staged.union(typed.select(**{column: typed[self.typed_name(column)] for column in columns}),
                            distinct=False)

    def reference_keys(self, entity_name: str, column: str) -> ir.Table:
        rows = self.typed_rows(entity_name, [column])
        return rows.select(_key=rows[column]).filter(lambda t: t._key.notnull()).distinct()

    def reference_rows(self, entity_name: str, columns: Sequence[str]) -> ir.Table:
        """One row per key (the first column), the other columns' largest value: safe to join."""
        rows = self.typed_rows(entity_name, columns)
        key, *values = columns
        return rows.filter(rows[key].notnull()).group_by(key).aggregate(**{name: rows[name].max() for name in values})

    def add_flag(self, rule, lookup: ir.Table, on: Sequence[tuple[str, str]],
                 extra: dict[str, str] | None = None, name: str | None = None) -> None:
        """LEFT JOIN `lookup` (unique on its `on` columns): column <flag> (or `name`) is TRUE where a row matched."""
        prefix = name or self.flag_name(rule)
        extra = extra or {}
        right = lookup.select(
            *[lookup[right].name(f"{prefix}_k{index}") for index, (_, right) in enumerate(on)],
            **{prefix: ibis.literal(True)},
            **{f"{prefix}_{suffix}": lookup[column] for column, suffix in extra.items()},
        )
        predicates = [self.table[left] == right[f"{prefix}_k{index}"] for index, (left, _) in enumerate(on)]
        kept = [*self.table.columns, prefix, *[f"{prefix}_{suffix}" for suffix in extra.values()]]
        self.table = self.table.left_join(right, predicates).select(*kept)

    def add_lookup(self, prefix: str, lookup: ir.Table, on: tuple[str, str], values: Sequence[str]) -> None:
        """LEFT JOIN columns `values` of `lookup` (unique on its key) as <prefix>_<value>, by a typed column."""
        left, right_key = on
        right = lookup.select(**{f"{prefix}_k": lookup[right_key]}, **{f"{prefix}_{value}": lookup[value] for value in values})
        self.table = self.table.left_join(right, self.typed(left) == right[f"{prefix}_k"]).select(
            *self.table.columns, *[f"{prefix}_{value}" for value in values])
