"""What retailflow adds to Ibis's SQL compilers, imported only to compile (every engine's compiler class mixes
these in): engine scalars (SQL of the engine's own around a value), run values' slots (run_values.py) and
integer sums kept 64-bit."""

from __future__ import annotations

import ibis.backends.sql.dialects  # noqa: F401 (its changes to sqlglot's dialects, below)
import ibis.expr.datatypes as datatypes
import ibis.expr.operations as ops
import ibis.expr.rules as rlz
import sqlglot
import sqlglot.expressions as sge
import sqlglot.generator

from retailflow.backends.run_values import RunValues

# Importing Ibis's dialects changes sqlglot's own MySQL and PostgreSQL generators (MySQL's regex match becomes
# RLIKE, which MariaDB has where it lacks REGEXP_LIKE), and sqlglot builds a generator's dispatch table once, at
# its first use. A process that quoted or translated SQL before compiling anything (lazy.py: a command reads
# stored tables first) has built those tables without Ibis's changes: they are built again (sqlglot keeps them in
# a private dict, absent from older sqlglot, which looked each expression up at every use).
getattr(sqlglot.generator, "_DISPATCH_CACHE", {}).clear()


class EngineScalar(ops.Value):
    """Text computed by SQL of the engine's own (Backend.engine_scalar): `template`, {value} standing for `arg`;
    `secret` when the template holds one (an HMAC's key pads)."""

    arg: ops.Value
    template: str
    secret: bool = False

    dtype = datatypes.string
    shape = rlz.shape_like("arg")


#: What stands for the value while a template is parsed.
_VALUE_SLOT = "rf0engine0value"


class EngineScalars(RunValues):
    """A compiler mixin: an EngineScalar is its template, parsed in the engine's dialect, around the value; a run
    value is its slot (run_values)."""

    def visit_EngineScalar(self, op, *, arg, template, secret):
        tree = sqlglot.parse_one(template.replace("{value}", _VALUE_SLOT), dialect=self.dialect)
        return tree.transform(lambda node: arg.copy() if isinstance(node, sge.Column) and node.name == _VALUE_SLOT
                              else node)


class IntegerSums:
    """A compiler mixin: an integer SUM comes out with the 64-bit type Ibis gives it.

    MySQL sums integers into DECIMAL and DuckDB into 128-bit HUGEINT, which a table then stores and
    DuckDB scans several times slower (the units of 2.6M store-days: 0.47 s, as BIGINT 0.05 s).
    """

    def visit_Sum(self, op, *, arg, where):
        total = super().visit_Sum(op, arg=arg, where=where)
        return self.cast(total, op.dtype) if op.dtype.is_integer() else total

    def visit_WindowFunction(self, op, *, func, **kwargs):
        # An integer SUM over a window: the cast goes around the window, not inside OVER.
        if isinstance(func, sge.Cast):
            return func.__class__(this=super().visit_WindowFunction(op, func=func.this, **kwargs), to=func.to)
        return super().visit_WindowFunction(op, func=func, **kwargs)
