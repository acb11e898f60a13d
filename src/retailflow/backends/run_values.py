"""Values that change from one run to the next, kept out of the compiled SQL.

A statement naming this run's id, the stage's mark (the last change it processed) or the day it computes as of
was a new expression every night, so sql_cache compiled it again: on a 14-day shop, 22 of a night's statements
and 0.5 s of its 2.5 s (every statement over the changed days carries the mark). A run value is compiled as a
named slot (`rf0run0mark0`, cast to its type); the SQL with slots is what the cache keeps, and
Backend._compiled writes each statement's values into it as plain literals (Backend.sql_value).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import ibis.expr.datashape as ds
import ibis.expr.datatypes as datatypes
import ibis.expr.operations as ops
import ibis.expr.types as ir
import sqlglot.expressions as sge

#: The text every slot starts with: a compiled statement without it has nothing to bind.
SLOT_PREFIX = "rf0run0"
#: A slot as it appears in compiled SQL, quoted or not (an engine that re-parses SQL may quote it).
SLOT = re.compile(rf'["`]?{SLOT_PREFIX}([a-z_]+)0["`]?')
NAME = re.compile(r"[a-z_]+")


class RunValue(ops.Value):
    """A value of this run (`value`), compiled as the slot of `name` so that the SQL is the same every run."""

    name: str
    value: Any
    dtype: datatypes.DataType

    shape = ds.scalar


def run_value(name: str, value: Any, dtype: str) -> ir.Scalar:
    """`value` as an Ibis scalar of `dtype` that compiles to the same SQL whatever the value (name: lowercase
    letters and underscores; one value per name in a statement)."""
    if not NAME.fullmatch(name):
        raise ValueError(f"a run value's name is lowercase letters and underscores, not {name!r}")
    return RunValue(name, value, datatypes.dtype(dtype)).to_expr()


class RunValues:
    """A compiler mixin: a run value is its slot, cast to the value's type (text as it is: a cast to text would
    give it the connection's collation on MySQL, which a comparison with a column may refuse)."""

    def visit_RunValue(self, op, *, name, value, dtype):
        slot = sge.Var(this=f"{SLOT_PREFIX}{name}0")
        return slot if dtype.is_string() else self.cast(slot, dtype)


def bind(sql: str, expr: ir.Expr, render: Callable[[Any], str]) -> str:
    """`sql`, compiled from `expr`, with each slot replaced by its value in `expr` as `render` writes it."""
    if SLOT_PREFIX not in sql:
        return sql
    values: dict[str, Any] = {}
    for op in expr.op().find(RunValue):
        if values.setdefault(op.name, op.value) != op.value:
            raise ValueError(f"two values of run value {op.name!r} in one statement: {values[op.name]!r}, {op.value!r}")
    return SLOT.sub(lambda slot: render(values[slot.group(1)]), sql)
