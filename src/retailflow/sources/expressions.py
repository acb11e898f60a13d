"""A mapped column as DuckDB SQL over a file's text cells: what raw stores for one of our columns.

A file's cells are text. An expression uses them as text, except where it computes with them (arithmetic,
`round`, `abs`, a comparison with a number): there a cell is read as a number with the source's decimal and
thousands separators, and one that is not a number is NULL — never an error, so a bad cell becomes a
data-quality reason of its row, not a failed load. Casts are made error-free (`TRY_CAST`) for the same reason.

What the expression yields is then written as our contract writes it (the typed parsing downstream is
unchanged): a number with the decimals our column has when it has no more, a date or date-time in ISO form,
text as it is. A value that does not fit (a third decimal on an amount, a date that no format reads) is kept
as written, so the type rule quarantines it with its text.
"""

from __future__ import annotations

import functools

import duckdb
import sqlglot.expressions as sge

from retailflow.model import Column
from retailflow.sources.mapping import ColumnSpec, ReadOptions

#: Functions whose arguments are numbers: a cell inside them is read as one.
NUMERIC_FUNCTIONS = (sge.Round, sge.Abs, sge.Floor, sge.Ceil, sge.Sign, sge.Least, sge.Greatest, sge.Sqrt, sge.Pow,
                     sge.Ln, sge.Exp)
ARITHMETIC = (sge.Add, sge.Sub, sge.Mul, sge.Div, sge.Mod, sge.IntDiv, sge.Neg)
COMPARISONS = (sge.EQ, sge.NEQ, sge.GT, sge.GTE, sge.LT, sge.LTE)
#: Decimals of each numeric logical type: a computed number with no more is written with exactly these.
SCALES = {"int": 0, "money": 2, "rate": 4, "percent": 4}
ISO_FORMATS = {"date": "%Y-%m-%d", "timestamp": "%Y-%m-%d %H:%M:%S"}


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def cell(name: str, read: ReadOptions) -> str:
    """A file cell as text, with the source's null markers read as empty."""
    if not read.null_values:
        return quote(name)
    return f"CASE WHEN {quote(name)} IN ({', '.join(map(literal, read.null_values))}) THEN NULL ELSE {quote(name)} END"


def number_text(text_sql: str, read: ReadOptions) -> str:
    """Number text as our contract writes it: thousands separators removed, a decimal comma made a point."""
    if read.thousands:
        text_sql = f"replace({text_sql}, {literal(read.thousands)}, '')"
    if read.decimal != ".":
        text_sql = f"replace({text_sql}, {literal(read.decimal)}, '.')"
    return text_sql


def _numeric_context(column: sge.Column) -> bool:
    node, parent = column, column.parent
    while isinstance(parent, sge.Paren):
        node, parent = parent, parent.parent
    if isinstance(parent, ARITHMETIC + NUMERIC_FUNCTIONS):
        return True
    if isinstance(parent, COMPARISONS):
        other = parent.expression if parent.this is node else parent.this
        return (isinstance(other, sge.Literal) and not other.is_string) or isinstance(other, ARITHMETIC)
    return False


def cell_sql(spec: ColumnSpec, read: ReadOptions, missing: frozenset[str] = frozenset()) -> str:
    """The spec's value over the file's cells, as DuckDB SQL (its type is the expression's); NULL where it reads a
    column in `missing` (not in this file)."""
    if spec.expression is None:
        return literal(spec.value or "")
    if set(spec.file_columns) & missing:
        return "NULL"

    def rewrite(node: sge.Expression) -> sge.Expression:
        # A cast of a cell must not fail on a bad cell; a cast of a constant is the author's and fails at start-up.
        if isinstance(node, sge.Cast) and not isinstance(node, sge.TryCast) and not isinstance(node.this, sge.Literal):
            return sge.TryCast(this=node.this, to=node.to)
        if isinstance(node, sge.Column):
            text = cell(node.name.lower(), read)
            if _numeric_context(node):
                return sge.maybe_parse(f"TRY_CAST({number_text(text, read)} AS DOUBLE)", dialect="duckdb")
            return sge.maybe_parse(text, dialect="duckdb")
        return node

    return spec.expression.copy().transform(rewrite).sql(dialect="duckdb")


@functools.lru_cache(maxsize=512)
def _result_type(sql: str, columns: tuple[str, ...]) -> str:
    relation = ", ".join(f"NULL::VARCHAR AS {quote(name)}" for name in columns) or "NULL AS _none"
    return str(duckdb.sql(f"SELECT {sql} AS v FROM (SELECT {relation})").types[0]).upper()


def text_valued(spec: ColumnSpec, read: ReadOptions) -> bool:
    """Whether the spec yields text (a file column, a text expression), which formats and separators then read."""
    value = cell_sql(spec, read)
    return spec.expression is not None and _result_type(value, spec.file_columns) in ("VARCHAR", '"NULL"', "NULL")


def target_sql(spec: ColumnSpec, column: Column, read: ReadOptions, missing: frozenset[str] = frozenset()) -> str:
    """The text raw stores for our `column`, mapped by `spec` (see the module docstring)."""
    value = cell_sql(spec, read, missing)
    if spec.expression is None or value == "NULL":
        return value
    kind = _result_type(value, spec.file_columns)
    if kind in ("VARCHAR", '"NULL"', "NULL"):
        return _text_target(value, column, spec, read)
    if column.type in ISO_FORMATS and (kind.startswith("DATE") or kind.startswith("TIMESTAMP")):
        return f"strftime({value}, {literal(ISO_FORMATS[column.type])})"
    if column.type in SCALES and kind != "BOOLEAN":
        scale = SCALES[column.type]
        number = f"TRY_CAST({value} AS DOUBLE)"
        fitted = f"TRY_CAST(TRY_CAST(round({number}, {scale}) AS DECIMAL(38, {scale})) AS VARCHAR)"
        return f"CASE WHEN {number} = round({number}, {scale}) THEN {fitted} ELSE CAST({value} AS VARCHAR) END"
    return f"CAST({value} AS VARCHAR)"


def _text_target(value: str, column: Column, spec: ColumnSpec, read: ReadOptions) -> str:
    if column.type in SCALES:
        return number_text(value, read)
    # A date column read from date-times keeps the day; a date-time column read from dates starts at midnight.
    formats = spec.formats or {"date": read.date_format + read.timestamp_format,
                               "timestamp": read.timestamp_format + read.date_format}.get(column.type, ())
    if not formats:
        return value
    parsed = f"try_strptime({value}, [{', '.join(map(literal, formats))}])"
    return f"coalesce(strftime({parsed}, {literal(ISO_FORMATS[column.type])}), {value})"
