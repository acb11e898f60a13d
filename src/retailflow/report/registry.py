"""The section registry: what each report section shows, the tables it needs, the command that fills them.

A section is a function `(backend) -> Section | None` registered, in report order, with
`@section(key, title, needs=("schema.table", ...), command="retailflow …")`. The report calls
it only when every needed table exists and has rows; otherwise the section shows "not run
yet — run `<command>`". Returning None means "the tables are there but hold nothing to show".
"""

from __future__ import annotations

import decimal
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import ibis.expr.types as ir

from retailflow.backends import Backend
from retailflow.report.charts import Chart
from retailflow.report.stored import known, stored
from retailflow.report.values import is_missing, shown


@dataclass
class Table:
    """A small table of formatted cells (every cell already went through `values.shown`)."""

    title: str
    columns: list[str]
    rows: list[list[str]]
    note: str = ""
    numeric: list[bool] = field(default_factory=list)  # per column: right-aligned


@dataclass
class Section:
    """What one report section shows: KPI tiles, charts, tables and short notes."""

    kpis: list[tuple[str, str]] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SectionSpec:
    key: str
    title: str
    needs: tuple[str, ...]
    command: str
    build: Callable[[Backend], Section | None]


SECTIONS: list[SectionSpec] = []


def stored_table(qualified_name: str) -> ir.Table:
    """An unbound table over a stored table (staging from the input model, the rest from the catalog)."""
    return stored(qualified_name)


def known_table(qualified_name: str) -> bool:
    return known(qualified_name)


def section(key: str, title: str, *, needs: Sequence[str], command: str):
    """Register the decorated `(backend) -> Section | None` as the next section of the report."""
    unknown = [name for name in needs if not known_table(name)]
    if unknown or any(spec.key == key for spec in SECTIONS):
        raise ValueError(f"section {key!r}: duplicate key or unknown tables {unknown} (add them to report.stored)")

    def register(build: Callable[[Backend], Section | None]) -> Callable[[Backend], Section | None]:
        SECTIONS.append(SectionSpec(key, title, tuple(needs), command, build))
        return build

    return register


def table(title: str, rows: list[dict], columns: Sequence[str], *, note: str = "") -> Table:
    """A Table of `rows` showing `columns` (headers read with spaces for underscores).

    A column is right-aligned when its values are numbers (ids stored as text stay left).
    """
    numeric = [all(isinstance(row.get(column), (int, float, decimal.Decimal)) and not isinstance(row.get(column), bool)
                   or is_missing(row.get(column)) for row in rows) or column.endswith("%") for column in columns]
    return Table(title, [column.replace("_", " ") for column in columns],
                 [[shown(row.get(column)) for column in columns] for row in rows], note, numeric)
