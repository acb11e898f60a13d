"""What a rule kind sees while a table is checked: the candidate rows, typed values and lookups."""

from __future__ import annotations

from collections.abc import Sequence

import ibis
import ibis.expr.types as ir

from retailflow.backends import Backend
from retailflow.config import anonymous_ids
from retailflow.model import Column, Entity, person_references
from retailflow.tables import matching, staging_table

TYPED_PREFIX = "_v_"
TRIMMED_PREFIX = "_t_"


def with_typed(backend: Backend, entity: Entity, candidates: ir.Table, names: Sequence[str] | None = None) -> ir.Table:
    """Candidate rows plus each cell trimmed (_t_<column>, NULL when empty) and typed (_v_<column>,
    NULL where it does not parse): every cell is trimmed once, whatever the rules read.

    With `names`, only those columns: an engine that computes the typed cells once per row
    (PostgreSQL, MariaDB: `computed_once`) would otherwise parse every column for a lookup of two.
    """
    columns = [column for column in entity.columns if names is None or column.name in names]
    people = person_references().get(entity.name) if not entity.master else None
    markers = anonymous_ids()

    def cell(column: Column) -> ir.StringValue:
        text = backend.trimmed(candidates[column.name])
        if column.name == people and markers:
            # A placeholder id (GUEST, 0) is an anonymous sale, exactly like an empty cell.
            return ibis.ifelse(text.upper().isin(markers), ibis.null("string"), text)
        return text

    def value(column: Column, trimmed: ir.Table) -> ir.Value:
        parsed = backend.parse(trimmed[TRIMMED_PREFIX + column.name], column.type, column.name)
        return parsed if column.default is None else parsed.fill_null(column.default)

    trimmed = candidates.mutate(**{TRIMMED_PREFIX + column.name: cell(column) for column in columns})
    return backend.computed_once(trimmed.mutate(**{TYPED_PREFIX + column.name: value(column, trimmed)
                                                   for column in columns}))


class CheckContext:
    """Candidate rows of one entity with their typed values, plus the lookups rules add."""

    def __init__(self, backend: Backend, entity: Entity, typed: ir.Table,
                 pending: dict[str, ir.Table], rule_ids: Sequence[str]) -> None:
        """`typed`: the candidate rows with_typed (every column); `pending`: the same of the other
        entities this run validates, by name."""
        self.backend = backend
        self.entity = entity
        self.pending = pending
        self._flag_names = {rule_id: f"_r{index}" for index, rule_id in enumerate(rule_ids)}
        #: (entity, its key, our column) -> the columns rules want from it, joined by join_references
        self._references: dict[tuple[str, str, str], dict[str, None]] = {}
        self._references_joined = False
        self.table = typed
        #: The typed candidates before any lookup was joined: what the lookups' key sets are taken from.
        self.candidates = typed

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

    def typed_rows(self, entity_name: str, columns: Sequence[str], wanted: str | None = None) -> ir.Table:
        """Typed `columns` of staging.<entity> plus that entity's candidates in this run (`pending`).

        With `wanted` (a column of this table), only staged rows whose first column is one of its values
        are read: a night's lookups hash the night's keys, not the history (a sum of every staged line
        per transaction was most of a validation on 10M line items).
        """
        staged = self.staging(entity_name).select(*columns)
        if wanted is not None:
            keys = self.candidates.select(_wanted=self.candidates[self.typed_name(wanted)]).distinct()
            staged = matching(self.backend, staged, keys, [(columns[0], "_wanted")])
        if entity_name not in self.pending:
            return staged
        typed = self.pending[entity_name]
        return staged.union(typed.select(**{column: typed[self.typed_name(column)] for column in columns}),
                            distinct=False)

    def reference_rows(self, entity_name: str, columns: Sequence[str], wanted: str | None = None) -> ir.Table:
        """One row per key (the first column; those in `wanted`), the other columns' largest value: safe to join."""
        rows = self.typed_rows(entity_name, columns, wanted)
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

    def reference(self, entity_name: str, key: str, column: str, values: Sequence[str] = ()) -> str:
        """Ask for the row of `entity_name` whose `key` equals this table's typed `column`.

        Returns the prefix of the columns it brings: <prefix> is TRUE where such a row exists and
        <prefix>_<value> holds each of `values`. Every rule asking about the same reference shares
        one LEFT JOIN, made by join_references once all rules are prepared: the line-item check
        joined the headers twice (an exists rule and the promotion rule), each a hash table of
        every transaction.
        """
        wanted = self._references.setdefault((entity_name, key, column), {})
        missing = [value for value in values if value not in wanted]
        if missing and self._references_joined:
            raise ValueError(f"{', '.join(missing)} of {entity_name} asked for after the references were joined")
        wanted.update(dict.fromkeys(missing))
        return f"_ref{list(self._references).index((entity_name, key, column))}"

    def join_references(self) -> None:
        """LEFT JOIN every reference the rules asked for, once each (see reference)."""
        for (entity_name, key, column), values in self._references.items():
            rows = self.reference_rows(entity_name, [key, *values], wanted=column)
            self.add_flag(None, rows, [(self.typed_name(column), key)], extra={value: value for value in values},
                          name=self.reference(entity_name, key, column))
        self._references_joined = True
