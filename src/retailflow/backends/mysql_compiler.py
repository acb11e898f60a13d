"""Ibis's MySQL compiler as retailflow compiles with it: imported at the first statement compiled on MySQL or
MariaDB (MySQLBackend._sql_tree), so that a command that only reads stored tables never imports Ibis (lazy.py)."""

from __future__ import annotations

import ibis.expr.datatypes as dt
import ibis.expr.operations as ops
import sqlglot.expressions as sge
from ibis.backends.sql.compilers.mysql import MySQLCompiler

from retailflow.backends.compiling import EngineScalars, IntegerSums


class _Compiler(EngineScalars, IntegerSums, MySQLCompiler):
    """Ibis's MySQL compiler with the result types the other engines give.

    MySQL sums integers into DECIMAL, and averages and divides integers into DECIMAL with 4
    decimals (div_precision_increment); Ibis types these int64 / float64, so the SQL says so. Also
    REGEXP_REPLACE, which MySQL 8 and MariaDB 10 both have.
    """

    UNSUPPORTED_OPS = tuple(op for op in MySQLCompiler.UNSUPPORTED_OPS if op is not ops.RegexReplace)

    def visit_Equals(self, op, *, left, right):
        # Ibis writes text equality as CAST(left AS BINARY) = right for MySQL's case-insensitive
        # default collations. Every retailflow database and the connection compare byte for byte
        # (MySQLBackend._connect), and the cast hid the join key: no index, no hash join.
        return self.binop(sge.EQ, left, right)

    def visit_Cast(self, op, *, arg, to):
        # Ibis casts to any string as CHAR (TEXT); a length makes a VARCHAR(n), a joinable key.
        # Text to text without a length changes nothing but would lose that length again.
        if to.is_string() and to.length is not None:
            return sge.Cast(this=arg, to=sge.DataType.build(f"CHAR({to.length})", dialect="mysql"))
        if to.is_string() and op.arg.dtype.is_string():
            return arg
        return super().visit_Cast(op, arg=arg, to=to)

    def visit_Literal(self, op, *, value, dtype):
        # Ibis writes a typed NULL bare, and CREATE TABLE … AS types a bare NULL column BINARY(0), where a later
        # row's value is "too long": a date, time stamp or number says its type. (Text stays bare: CAST(NULL AS
        # CHAR) makes a CHAR(0).)
        if value is None and dtype.is_timestamp():
            return sge.Cast(this=sge.Null(), to=sge.DataType.build("DATETIME(6)", dialect="mysql"))
        if value is None and (dtype.is_date() or dtype.is_floating() or dtype.is_integer()):
            return self.cast(sge.Null(), dtype)
        return super().visit_Literal(op, value=value, dtype=dtype)

    def visit_TimestampNow(self, op):
        # CURRENT_TIMESTAMP keeps whole seconds here: two writes in one second would look the same.
        return sge.CurrentTimestamp(this=sge.convert(6))

    def visit_RegexReplace(self, op, *, arg, pattern, replacement):
        return self.f.regexp_replace(arg, pattern, replacement)

    def visit_Mean(self, op, *, arg, where):
        if op.arg.dtype.is_integer() or op.arg.dtype.is_boolean():
            arg = self.cast(arg, dt.float64)
        return self.agg.avg(arg, where=where)

    def visit_Round(self, op, *, arg, digits):
        # MySQL rounds a double's halves to even (5.625 -> 5.62); DuckDB and PostgreSQL round
        # them away from zero, on the scaled double. Do the same: sign * floor(|x| * 10^d + 0.5) / 10^d.
        if not op.arg.dtype.is_floating() or digits is None:
            return super().visit_Round(op, arg=arg, digits=digits)
        scale = self.f.pow(10, digits)
        return self.f.sign(arg) * self.f.floor(self.f.abs(arg) * scale + 0.5) / scale

    def visit_Divide(self, op, *, left, right):
        if op.dtype.is_floating():
            left = self.cast(left, dt.float64)
        return self.binop(sge.Div, left, right)


COMPILER = _Compiler()
