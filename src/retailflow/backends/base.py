"""The interface every engine implements: capabilities, execution, DDL derived from the data model and the
catalog, and the row changes stages make (delete_where, delete_matching, update_where, update_from, append_values)."""

from __future__ import annotations

import abc
import contextlib
import datetime as dt
import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Union
from urllib.parse import unquote, urlsplit

from retailflow import catalog
from retailflow.catalog import ALWAYS, FACT, StoredTable, existing_table, in_schema
from retailflow.errors import UserError
from retailflow.lazy import LazyModule
from retailflow.model import ENTITIES, IBIS_TYPES, TYPE_PATTERNS, Entity

if TYPE_CHECKING:
    from retailflow.sources.parsing import FileRows

# Imported at first use: a command that only reads stored tables never compiles (lazy.py).
ibis = LazyModule("ibis")
ops = LazyModule("ibis.expr.operations")
ir = LazyModule("ibis.expr.types")
sge = LazyModule("sqlglot.expressions")
run_values = LazyModule("retailflow.backends.run_values")
compiling = LazyModule("retailflow.backends.compiling")

SCHEMAS = ("raw", "staging", "quarantine", "audit", "analytics", "loyalty", "notifications")

QUARANTINE_COLUMNS = (("_rule_ids", "VARCHAR"), ("_reasons", "VARCHAR"), ("_quarantined_at", "TIMESTAMP"))


@dataclass(frozen=True)
class Capabilities:
    """What an engine can do and how it behaves, where retailflow's code must choose; one per backend class.

    Every difference between engines outside backends/ is one of these flags (or a Backend method an engine
    overrides), so that no module asks which engine it is on.
    """

    #: Staging tables declare FOREIGN KEY constraints (their references); the rules guarantee them either way.
    supports_foreign_keys: bool = True
    #: Fact tables (sales, line items, inventory, the points ledger) declare their primary keys (and foreign keys
    #: where supports_foreign_keys). The rules guarantee both either way.
    declares_fact_keys: bool = True
    #: Master tables declare their primary keys (the upsert of Backend needs them; an engine without them
    #: overrides upsert).
    declares_master_keys: bool = True
    #: Text compares byte for byte (a binary collation), so that `<` on text orders by code point.
    compares_text_bytewise: bool = False
    #: A median aggregate exists (Ibis compiles `median()`); without it the checks take the middle values by row
    #: number (checks.anomalies.medians).
    has_median: bool = True
    #: EXISTS / NOT EXISTS runs as a subquery per row rather than as a semi- or anti-join (tables.matching).
    joins_exists_per_row: bool = False
    #: A piece a statement reads several times is computed again at each reading, or joined without an index
    #: (MariaDB: a derived table; Spark: every reference is its own subplan), so tables.indexed_where_needed keeps
    #: such pieces as (indexed) temporary tables.
    keeps_shared_pieces: bool = False
    #: try_cast_temporal already returns NULL for text not of the type's pattern (model.TYPE_PATTERNS).
    temporal_cast_checks_pattern: bool = False
    #: Rows are updated in place inside a transaction, so that an erasure is all or nothing (an engine without it
    #: rewrites a whole table for a row change).
    updates_in_place: bool = True
    #: The engine has roles and grants (`retailflow grant analyst`).
    supports_roles: bool = False
    #: String literals follow the SQL standard (only a quote is escaped, by doubling it), so that literal() need
    #: not ask sqlglot (60 µs a value: 10,000 ids of a `forget` request took 1.3 s).
    standard_string_literals: bool = True


class _Now:
    """The statement's time, as a value of append_values and update_where (CURRENT_TIMESTAMP)."""

    def __repr__(self) -> str:
        return "NOW"


#: CURRENT_TIMESTAMP among the plain values a row change writes.
NOW = _Now()
#: A value a row change writes: a plain value (None is NULL), NOW, or an Ibis expression over the target table.
Value = Union["ir.Value", str, int, float, bool, dt.date, dt.datetime, _Now, None]
#: Which rows a row change touches: an Ibis condition over the target table, {column: value} (equal; a list or
#: set: one of; None: NULL), or None for every row.
Where = Union["ir.BooleanValue", Mapping[str, Any], None]
#: How a source joins its target: (target column, source column) pairs, or a function of (target, source) giving
#: the join conditions.
JoinOn = Union[Sequence[tuple[str, str]], Callable[["ir.Table", "ir.Table"], Sequence["ir.BooleanValue"]]]


class DriverConnection:
    """A database driver's connection (`con`), with the one method of an Ibis backend Backend calls (disconnect):
    the engines connect through their drivers, as Ibis's connect would, without importing Ibis (lazy.py)."""

    def __init__(self, con: Any) -> None:
        self.con = con

    def disconnect(self) -> None:
        self.con.close()


@functools.lru_cache(maxsize=4096)
def _quoted(dialect: str, identifier: str) -> str:
    """An identifier quoted in `dialect` (a night quotes the same few hundred names, at 40 µs each through sqlglot)."""
    return sge.to_identifier(identifier, quoted=True).sql(dialect)


def hmac_pads(key: bytes) -> tuple[str, str]:
    """The inner and outer padded keys of HMAC-SHA256 as hex, for engines that hash but have no HMAC."""
    import hashlib

    block = (hashlib.sha256(key).digest() if len(key) > 64 else key).ljust(64, b"\0")
    return bytes(byte ^ 0x36 for byte in block).hex(), bytes(byte ^ 0x5C for byte in block).hex()


class Backend(abc.ABC):
    """A database retailflow runs on: execution, transactions, DDL, safe casts and bulk load."""

    #: sqlglot/Ibis dialect name used to compile expressions.
    dialect: str
    #: What the engine can do and how it behaves (each engine sets its own).
    capabilities = Capabilities()

    def __init__(self, url: str) -> None:
        self.url = url
        self.ibis = self._connect()

    @property
    def display_url(self) -> str:
        from retailflow.backends import mask_url

        return mask_url(self.url)

    @abc.abstractmethod
    def _connect(self) -> DriverConnection | ibis.BaseBackend: ...

    def server_address(self, default_port: int, default_user: str) -> dict[str, Any]:
        """host, port, user, password (None when absent) and database of a server URL, percent-decoded.

        URLs percent-encode reserved characters: a password with '@' is written %40.
        """
        parts = urlsplit(self.url)
        try:
            port = parts.port or default_port
        except ValueError:
            scheme = parts.scheme or "scheme"
            raise UserError(f"database URL {self.display_url!r} has an invalid port; "
                            f"use {scheme}://user:password@host:{default_port}/dbname") from None
        return dict(host=parts.hostname or "localhost", port=port, user=unquote(parts.username or default_user),
                    password=unquote(parts.password) if parts.password is not None else None,
                    database=unquote(parts.path.lstrip("/")) or "retailflow")

    @abc.abstractmethod
    def execute(self, sql: str) -> int:
        """Run one statement; returns the affected row count where the engine reports it."""

    @abc.abstractmethod
    def fetch(self, sql: str) -> tuple[list[str], list[tuple]]:
        """Run a query; returns (column names, rows)."""

    def execute_built(self, sql: str) -> int:
        """Run a statement made only of compile(), qualified() and quote() output: already this engine's SQL."""
        return self.execute(sql)

    def fetch_built(self, sql: str) -> tuple[list[str], list[tuple]]:
        """fetch() for a query from compile()."""
        return self.fetch(sql)

    @abc.abstractmethod
    def transaction(self) -> contextlib.AbstractContextManager[None]:
        """Everything executed inside commits together or not at all."""

    @contextlib.contextmanager
    def _joined_transaction(self, begin: Callable[[], Any], commit: Callable[[], Any],
                            rollback: Callable[[], Any]) -> Iterator[None]:
        """A transaction from the driver's begin/commit/rollback; a nested one joins the outer."""
        if getattr(self, "_depth", 0):
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        begin()
        self._depth = 1
        try:
            yield
        except BaseException:
            rollback()
            raise
        else:
            commit()
        finally:
            self._depth = 0

    @abc.abstractmethod
    def bulk_load(self, rows: FileRows, table: str, batch_id: int, source_name: str) -> int:
        """Append one entity's rows of a file to raw.<table> with the engine's native bulk path; returns rows loaded."""

    def bulk_load_files(self, table: str, loads: Sequence[tuple[FileRows, int, str]]) -> list[int]:
        """Append one entity's rows of many files, each (rows, batch id, source name), to raw.<table>; returns the
        rows loaded per file, in order. One bulk_load per file here; an engine that reads files itself reads them
        at once."""
        return [self.bulk_load(rows, table, batch_id, source_name) for rows, batch_id, source_name in loads]

    @abc.abstractmethod
    def try_cast_temporal(self, value: ir.StringValue, logical_type: str) -> ir.Value:
        """Cast well-formed text to a date or timestamp, NULL where the value does not exist (2024-02-30)."""

    def ensure_schema(self, schema: str) -> None:
        """Create a schema (a namespace for tables and views) if it is missing."""
        self.execute(f"CREATE SCHEMA IF NOT EXISTS {self.quote(schema)}")

    def views(self, schema: str) -> list[str]:
        """Names of the schema's views, sorted."""
        _, rows = self.fetch("SELECT table_name FROM information_schema.views "
                             f"WHERE table_schema = {self.literal(self.catalog_schema(schema))} ORDER BY table_name")
        return [row[0] for row in rows]

    def create_role_if_missing(self, role: str) -> None:
        """Create a role without login (people log in as their own users and are granted it)."""
        raise NotImplementedError

    def grant_schema_read(self, role: str, schema: str) -> None:
        """Let `role` read every table and view of `schema`, and nothing more."""
        raise NotImplementedError

    def lock_for_writing(self) -> None:
        """Refuse to go on while another retailflow process writes to this database.

        DuckDB's file lock already keeps a second process out, so only server engines act here.
        """

    def close(self) -> None:
        """Disconnect; a second call does nothing."""
        if not getattr(self, "_closed", False):
            self._closed = True
            self.ibis.disconnect()

    # -- queries ------------------------------------------------------------------

    def compile(self, expr: ir.Expr) -> str:
        """The engine's SQL for expr; compiled once, then kept by the expression's fingerprint (sql_cache)."""
        return self._compiled(expr, "", self.compile_uncached)

    def _compiled(self, expr: ir.Expr, kind: str, build: Callable[[ir.Expr], str]) -> str:
        """build(expr) (SQL of the `kind` of statement made from expr), kept by expr's fingerprint (sql_cache)."""
        from retailflow.backends import sql_cache

        # SQL holding a secret (the pseudonym key's HMAC pads) is never kept: sql_cache builds it each time.
        return run_values.bind(sql_cache.compiled(expr, f"{self.compile_key}{kind}", build), expr, self.sql_value)

    @property
    def compile_key(self) -> str:
        """Everything besides the expression that the compiled SQL depends on."""
        return f"{type(self).__name__} {self.dialect}"

    def compile_uncached(self, expr: ir.Expr) -> str:
        return self._render(self._sql_tree(expr))

    def _sql_tree(self, expr: ir.Expr) -> sge.Expression:
        """expr as the engine's Ibis compiler builds it: a sqlglot tree, before it is written as text."""
        import ibis.backends.sql.compilers as compilers

        return getattr(compilers, self.dialect).compiler.to_sqlglot(expr.unbind())

    def _render(self, tree: sge.Expression) -> str:
        """A sqlglot tree written as the engine's SQL."""
        import ibis.backends.sql.compilers as compilers

        return tree.sql(dialect=getattr(compilers, self.dialect).compiler.dialect)

    def fetch_dicts(self, sql_or_expr: str | ir.Expr) -> list[dict[str, Any]]:
        if isinstance(sql_or_expr, str):
            names, rows = self.fetch(sql_or_expr)
            return [dict(zip(names, row)) for row in rows]
        return self.fetch_compiled_dicts(self.compile(sql_or_expr), flag_positions(sql_or_expr))

    def fetch_compiled_dicts(self, sql: str, flags: Sequence[int]) -> list[dict[str, Any]]:
        """The rows of a query from compile(), as dicts, the columns at `flags` (flag_positions) as booleans."""
        names, rows = self.fetch_built(sql)
        if flags:
            rows = [tuple(bool(value) if index in flags and value is not None else value
                          for index, value in enumerate(row)) for row in rows]
        return [dict(zip(names, row)) for row in rows]

    def holds_secret(self, expr: ir.Expr) -> bool:
        """Whether expr's SQL holds a secret (an engine scalar's HMAC key pads): never kept in a cache."""
        return any(node.secret for node in expr.op().find(compiling.EngineScalar))

    def scalar(self, sql: str) -> Any:
        _, rows = self.fetch(sql)
        return rows[0][0] if rows else None

    def quote(self, identifier: str) -> str:
        return _quoted(self.dialect, identifier)

    def literal(self, value: str) -> str:
        if self.capabilities.standard_string_literals:
            return "'" + value.replace("'", "''") + "'"
        return sge.Literal.string(value).sql(self.dialect)

    def qualified(self, schema: str, table: str) -> str:
        return f"{self.quote(schema)}.{self.quote(table)}"

    def catalog_schema(self, schema: str) -> str:
        """The schema's name in information_schema (MySQL keeps each schema as a database)."""
        return schema

    def table_columns(self, schema: str, table: str) -> list[str]:
        """Column names of schema.table in order, [] when the table does not exist."""
        _, rows = self.fetch(
            "SELECT column_name FROM information_schema.columns "
            f"WHERE table_schema = {self.literal(self.catalog_schema(schema))} AND table_name = {self.literal(table)} "
            "ORDER BY ordinal_position"
        )
        return [row[0] for row in rows]

    def schema_columns(self, schema: str) -> dict[str, list[str]]:
        """Column names of every table of the schema, in order, by table (one catalog query)."""
        _, rows = self.fetch(
            "SELECT table_name, column_name FROM information_schema.columns "
            f"WHERE table_schema = {self.literal(self.catalog_schema(schema))} ORDER BY table_name, ordinal_position")
        columns: dict[str, list[str]] = {}
        for table, column in rows:
            columns.setdefault(table, []).append(column)
        return columns

    def tables(self, schema: str) -> list[str]:
        """Names of the schema's tables, sorted."""
        _, rows = self.fetch(
            "SELECT table_name FROM information_schema.tables "
            f"WHERE table_schema = {self.literal(self.catalog_schema(schema))} AND table_type = 'BASE TABLE' "
            "ORDER BY table_name"
        )
        return [row[0] for row in rows]

    def has_table(self, schema: str, table: str) -> bool:
        return bool(self.table_columns(schema, table))

    def raw_table(self, schema: str, table: str, columns: Sequence[str] | None = None) -> ir.Table:
        """An Ibis table over a raw or quarantine table (whose `columns` are known, or looked up): every column
        text, lineage typed."""
        return existing_table(schema, table, columns or self.table_columns(schema, table))

    def insert(self, schema: str, table: str, expr: ir.Table) -> int:
        """INSERT INTO schema.table (expr's columns) SELECT expr; returns rows inserted. A value of the run in every
        row (its change id) is a run value (run_values), so that the SQL is the same text every night."""
        columns = ", ".join(self.quote(name) for name in expr.columns)
        return self.execute_built(f"INSERT INTO {self.qualified(schema, table)} ({columns}) {self.compile(expr)}")

    def upsert(self, schema: str, table: str, columns: Sequence[str], key: Sequence[str], select_sql: str) -> None:
        """Insert the SELECT's rows; a row whose key is already there replaces that row's other columns."""
        updates = ", ".join(f"{self.quote(name)} = EXCLUDED.{self.quote(name)}" for name in columns if name not in key)
        self.execute(f"INSERT INTO {self.qualified(schema, table)} ({', '.join(map(self.quote, columns))}) "
                     f"{select_sql} ON CONFLICT ({', '.join(map(self.quote, key))}) DO UPDATE SET {updates}")

    def create_temp_table(self, name: str, expr: ir.Table, indexed: Sequence[Sequence[str]] = ()) -> ir.Table:
        """Materialise expr as a temporary table and return an Ibis table over it.

        `indexed`: column lists the queries reading it join or group on, for an engine that needs an
        index to do either well (MariaDB); the others plan hash joins without one.
        """
        self.execute(f"DROP TABLE IF EXISTS {self.quote(name)}")
        self.execute(f"CREATE TEMPORARY TABLE {self.quote(name)} AS {self.compile(expr)}")
        self.refresh_statistics(self.quote(name))
        return ibis.table(expr.schema(), name=name)

    def analyse_loaded_tables(self) -> None:
        """Give the planner statistics of the raw tables a load just wrote, before anything reads them."""

    def refresh_statistics(self, qualified_name: str) -> None:
        """Give the planner fresh statistics after a bulk write (engines that plan without them skip this)."""

    def computed_once(self, table: ir.Table) -> ir.Table:
        """`table` such that the engine computes its columns once per row, however often the query above uses them.

        Engines that share a derived column between its uses need nothing (the default).
        """
        return table

    def replace_table(self, schema: str, name: str, expr: ir.Table) -> int:
        """(Re)create schema.name from expr inside the current transaction; returns its row count."""
        target = self.qualified(schema, name)
        with self.transaction():
            self.execute(f"DROP TABLE IF EXISTS {target}")
            self.execute(f"CREATE TABLE {target} AS {self.compile(expr)}")
            return int(self.scalar(f"SELECT count(*) FROM {target}"))

    # -- row changes ---------------------------------------------------------------
    #
    # Stages change stored rows through these methods, never through UPDATE or DELETE text: each engine does it
    # its own way below (Spark has no UPDATE or DELETE of plain tables and rewrites the table). The target is an
    # unbound Ibis table (catalog.table, tables.staging_table, raw_table, or a temporary table's), conditions and
    # new values Ibis expressions over it or plain values. Plain values and {column: value} conditions are written
    # as SQL at once; a statement with Ibis expressions is compiled once and kept (sql_cache), like a query.

    def delete_where(self, table: ir.Table, where: Where = None) -> int:
        """Delete the rows of `table` that `where` holds for (every row for None); returns how many.

        Cost: one DELETE on DuckDB, PostgreSQL and MySQL. Spark rewrites the whole table when a row matches
        (every row read, the kept ones written back), so delete a night's rows in one call.
        """
        if where is None or isinstance(where, Mapping):
            condition = self._plain_condition(where)
            return self.execute_built(f"DELETE FROM {self._target(table)}{f' WHERE {condition}' if condition else ''}")
        statement = table.filter(where)
        return self.execute_built(self._compiled(statement, " delete", self._delete_statement))

    def delete_matching(self, table: ir.Table, keys: ir.Table, columns: Sequence[str] | None = None) -> int:
        """Delete the rows of `table` whose `columns` (default: keys' column names) equal a row of `keys`, column
        for column: (columns) IN (SELECT keys); returns how many.

        Cost: one DELETE with an IN subquery on DuckDB, PostgreSQL and MySQL; Spark rewrites the table through a
        LEFT JOIN with the distinct keys when a row matches.
        """
        names = self._matched_columns(table, keys, columns)
        tuple_sql = ", ".join(map(self.quote, names))
        if len(names) > 1:
            tuple_sql = f"({tuple_sql})"
        return self.execute_built(f"DELETE FROM {self._target(table)} WHERE {tuple_sql} IN ({self.compile(keys)})")

    def _matched_columns(self, table: ir.Table, keys: ir.Table, columns: Sequence[str] | None) -> list[str]:
        """delete_matching's columns of `table`, one per column of `keys` (default: keys' column names)."""
        names = list(columns or keys.columns)
        if len(names) != len(keys.columns):
            raise ValueError(f"{len(names)} columns of {self._target(table)} against {len(keys.columns)} key columns")
        return names

    def update_where(self, table: ir.Table, values: Mapping[str, Value], where: Where = None) -> int:
        """Set `values` (column: new value) in the rows of `table` that `where` holds for; returns how many.

        Cost: one UPDATE in place on DuckDB, PostgreSQL and MySQL (MySQL counts the rows it changed, not the rows
        matched). Spark rewrites the whole table when a row matches: give one call all the rows of a change
        (conditional values such as Ibis cases rather than a call per row).
        """
        if (where is None or isinstance(where, Mapping)) and not any(
                isinstance(value, ir.Expr) for value in values.values()):
            assignments = ", ".join(f"{self.quote(name)} = {self.sql_value(value)}" for name, value in values.items())
            condition = self._plain_condition(where)
            return self.execute_built(f"UPDATE {self._target(table)} SET {assignments}"
                                      f"{f' WHERE {condition}' if condition else ''}")
        condition, new = row_condition(table, where), typed_values(table, values)
        # Compiled apart: Ibis nests a filter under a projection of CASE expressions instead of fusing them.
        statement = _filtered(table, condition).select(**new)
        return self.execute_built(self._compiled(statement, " update", lambda _: self._update_statement(
            table.select(**new), None if condition is None else table.filter(condition))))

    def update_from(self, table: ir.Table, source: ir.Table, on: JoinOn,
                    values: Callable[[ir.Table, ir.Table], Mapping[str, Value]], where: Where = None) -> int:
        """Set, in the rows of `table` that a row of `source` joins `on` (and `where` holds for), the `values`
        that function gives for the target and the source table (column: new value); returns how many.

        `source` must join each row of `table` at most once. Cost: DuckDB and PostgreSQL run UPDATE … FROM,
        MySQL a multi-table UPDATE … JOIN, each a join of the source with the table. Spark rewrites the whole table
        through a LEFT JOIN with the source, however few rows change.
        """
        condition = row_condition(table, where)
        # The target's own condition joins with the source's: for an inner join ON a AND b is WHERE a AND b.
        joined = table.join(source, [*join_conditions(on, table, source), *([condition] if condition is not None
                                                                             else [])])
        statement = joined.select(**typed_values(table, values(table, source)))
        return self.execute_built(self._compiled(statement, " update from", self._update_from_statement))

    def append_values(self, table: ir.Table, rows: Sequence[Sequence[Value]],
                      columns: Sequence[str] | None = None) -> int:
        """INSERT the `rows` of plain values (in `columns` order, default the table's) into `table`; returns how
        many. For the few rows a run records about itself, not for data: those are INSERT … SELECT (insert())."""
        if not rows:
            return 0
        names = list(columns or table.columns)
        values = ", ".join(f"({', '.join(self.sql_value(value) for value in row)})" for row in rows)
        self.execute_built(f"INSERT INTO {self._target(table)} ({', '.join(map(self.quote, names))}) VALUES {values}")
        return len(rows)

    def drop_temp_tables(self, *names: str) -> None:
        """Drop the temporary tables (create_temp_table) of these names that exist."""
        for name in names:
            self.execute_built(f"DROP TABLE IF EXISTS {self.quote(name)}")

    def sql_value(self, value: Value) -> str:
        """A plain value as an SQL literal: NULL, CURRENT_TIMESTAMP (NOW), a number, text, a date or a date-time."""
        if value is None:
            return "NULL"
        if value is NOW:
            return "CURRENT_TIMESTAMP"
        if isinstance(value, bool):
            return "TRUE" if value else "FALSE"
        if isinstance(value, int):
            return str(value)
        if isinstance(value, float):
            return repr(value)
        if isinstance(value, str):
            return self.literal(value)
        if isinstance(value, dt.datetime):
            return self.literal(value.isoformat(sep=" "))
        if isinstance(value, dt.date):
            return f"CAST({self.literal(value.isoformat())} AS DATE)"
        raise TypeError(f"{value!r} ({type(value).__name__}) is no plain SQL value")

    def _target(self, table: ir.Table) -> str:
        """The qualified name of the table an unbound Ibis table stands for."""
        schema, name = _table_name(table)
        return self.qualified(schema, name) if schema else self.quote(name)

    def _plain_condition(self, where: Mapping[str, Any] | None) -> str:
        """{column: value} as SQL: each column equal to its value (one of a list or set; NULL for None), ANDed."""
        parts = []
        for name, value in (where or {}).items():
            column = self.quote(name)
            if value is None:
                parts.append(f"{column} IS NULL")
            elif isinstance(value, (list, tuple, set, frozenset)):
                parts.append(f"{column} IN ({', '.join(self.sql_value(item) for item in value)})" if value
                             else "1 = 0")
            else:
                parts.append(f"{column} = {self.sql_value(value)}")
        return " AND ".join(parts)

    def _delete_statement(self, statement: ir.Table) -> str:
        select = self._sql_tree(statement)
        target, where = _only_from(select), select.args.get("where")
        return self._render(sge.Delete(this=target, where=where, with_=select.args.get("with_")))

    def _update_statement(self, values: ir.Table, rows: ir.Table | None) -> str:
        """UPDATE from the compiled projection of new `values` and filter of the `rows` to change (None: all)."""
        select = self._sql_tree(values)
        where = self._sql_tree(rows).args.get("where") if rows is not None else None
        return self._render(sge.Update(this=_only_from(select), expressions=_assignments(select), where=where,
                                       with_=select.args.get("with_")))

    def _update_from_statement(self, statement: ir.Table) -> str:
        select = self._sql_tree(statement)
        target, (join,) = _only_from(select), select.args["joins"]
        return self._render(sge.Update(this=target, expressions=_assignments(select), from_=sge.From(this=join.this),
                                       where=sge.Where(this=join.args["on"]), with_=select.args.get("with_")))

    def hmac_sha256(self, text_sql: str, key: bytes) -> str:
        """SQL for the HMAC-SHA256 of a text value's UTF-8 bytes under `key`, as lower-case hex (RFC 2104)."""
        inner, outer = hmac_pads(key)
        return f"sha256(unhex('{outer}') || unhex(sha256(unhex('{inner}') || encode({text_sql}))))"

    def engine_scalar(self, value: ir.Value, template: str, *, secret: bool = False) -> ir.StringValue:
        """Text the engine computes from `value` with SQL of its own, `template` ({value} standing for the value):
        for what Ibis has no operation for, such as an HMAC (hmac_sha256). A `secret` template (a key in it) keeps
        the statements holding it out of the compiled-SQL cache."""
        return compiling.EngineScalar(value, template, secret).to_expr()

    @staticmethod
    def calendar_checked_cast(value: ir.StringValue, logical_type: str) -> ir.Value:
        """Cast text of the date/timestamp pattern, NULL where the day or time does not exist.

        For engines whose cast of 2024-02-30 is an error rather than NULL and that have no
        safe-cast function: the calendar is checked with integer arithmetic first.
        """
        year, month, day = (value.substr(start, length).cast("int32") for start, length in ((0, 4), (5, 2), (8, 2)))
        leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
        month_days = (ibis.cases((month == 2, ibis.ifelse(leap, 29, 28)), (month.isin([4, 6, 9, 11]), 30),
                                 else_=31))
        valid = (year >= 1) & month.between(1, 12) & day.between(1, month_days)
        if logical_type == "timestamp":
            clock = value.length() > 10
            hour, minute = value.substr(11, 2).cast("int32"), value.substr(14, 2).cast("int32")
            second = ibis.ifelse(value.length() >= 19, value.substr(17, 2).cast("int32"), 0)
            valid &= ibis.ifelse(clock, (hour <= 23) & (minute <= 59) & (second <= 59), True)
        return ibis.ifelse(valid, value.cast(logical_type), ibis.null(logical_type))

    def trimmed(self, cell: ir.StringValue) -> ir.StringValue:
        """The cell without leading and trailing white space, NULL when nothing is left."""
        trimmed = cell.strip().nullif("")
        if not self.capabilities.compares_text_bytewise:
            return trimmed
        # Most cells have nothing to trim, and trimming is dear: DuckDB's TRIM with a character set
        # under NULLIF (which evaluates it twice) cost 0.13 µs a cell, MySQL's strip is six nested
        # TRIMs that MariaDB evaluates again at every use. Every white space character sorts below
        # '!' byte for byte, so only a cell whose first or last character does is trimmed; one that
        # passes but holds no white space is trimmed to itself. DuckDB: 5x faster on 6M cells;
        # MariaDB: typing 100k line items 1.64 s -> 0.57 s.
        return ibis.ifelse((cell < "!") | (cell.right(1) < "!"), trimmed, cell)

    def parse(self, trimmed: ir.StringValue, logical_type: str, column: str | None = None) -> ir.Value:
        """Typed value of a trimmed text cell (NULL when empty), NULL when it is not a valid value of that type;
        `column` names the model column it is of, for an engine that types some columns apart (MySQL's keys)."""
        if logical_type == "text":
            return trimmed
        ibis_type = IBIS_TYPES[logical_type]
        if logical_type in ("date", "timestamp"):
            typed = self.try_cast_temporal(trimmed, logical_type)
            if self.capabilities.temporal_cast_checks_pattern:
                return typed
        elif logical_type == "percent":
            # Exports write 15% as 15.00 or as 0.15; staging keeps percent.
            number = trimmed.cast("decimal(12, 4)")
            typed = ibis.ifelse(number.abs() < 1, number * 100, number).cast(ibis_type)
        else:
            typed = trimmed.cast(ibis_type)
        return ibis.ifelse(trimmed.re_search(TYPE_PATTERNS[logical_type]), typed, ibis.null(ibis_type))

    # -- schema ---------------------------------------------------------------------

    def set_up(self) -> None:
        """Make the database ready for this code: create_schemas, unless this same code did it already (the
        digest in audit.setup). Every connection comes through here; the check is two small reads where the
        whole set-up is about sixty statements (0.3 s on DuckDB, 0.1-0.4 s each on Spark)."""
        if self.has_table("audit", "setup") and self.scalar("SELECT max(code) FROM audit.setup") == self._setup_code():
            return
        self.create_schemas()

    def _setup_code(self) -> str:
        from retailflow.backends.sql_cache import code_version

        return f"{code_version()} {type(self).__name__}"

    def create_schemas(self) -> None:
        """Create the schemas and tables retailflow needs where they are missing, bring older ones to this
        release's model, and record in audit.setup that this code did (set_up)."""
        with self.transaction():
            self._create_schemas()
            table = catalog.table("audit.setup")
            self.delete_where(table, None)
            self.append_values(table, [(self._setup_code(), NOW)])

    def _create_schemas(self) -> None:
        self._serialise_schema_changes()
        for schema in SCHEMAS:
            self.execute(f"CREATE SCHEMA IF NOT EXISTS {self.quote(schema)}")
        self._create_support_functions()
        self.ensure_tables(in_schema("audit"))
        for entity in ENTITIES.values():
            text_columns = [(name, "VARCHAR") for name in entity.column_names]
            lineage = [("_batch_id", "BIGINT NOT NULL"), ("_source_file", "VARCHAR NOT NULL"),
                       ("_source_line", "BIGINT NOT NULL")]
            self._create_table("raw", entity.name, text_columns + lineage)
            self._index_batches("raw", entity.name)
            self._create_table("quarantine", entity.name, text_columns + lineage + list(QUARANTINE_COLUMNS))
        for entity in ENTITIES.values():
            if not self.has_table("staging", entity.name):
                self.execute(self.staging_ddl(entity))
        self._upgrade_entity_tables()

    def _upgrade_entity_tables(self) -> None:
        """Bring a database made by an earlier release to the model: columns the model added (optional ones,
        NULL in old rows) and columns it made nullable (an anonymous sale's customer, an uncategorised product).

        Every command connects through here: one catalog query per schema (a query per table was 48 of a
        DuckDB connection's 119 ms)."""
        for schema in ("raw", "quarantine", "staging"):
            existing = self.schema_columns(schema)
            for entity in ENTITIES.values():
                for column in entity.columns:
                    if column.name not in existing.get(entity.name, []):
                        sql_type = column.sql_type if schema == "staging" else "VARCHAR"
                        self.execute(f"ALTER TABLE {self.qualified(schema, entity.name)} "
                                     f"ADD COLUMN {self.quote(column.name)} {sql_type}")
        nullable = {(entity.name, column.name) for entity in ENTITIES.values() for column in entity.columns
                    if column.nullable}
        for table, column in self.not_null_columns("staging") & nullable:
            self.allow_null("staging", table, column)

    def not_null_columns(self, schema: str) -> set[tuple[str, str]]:
        """(table, column) of every column of the schema declared NOT NULL."""
        _, rows = self.fetch("SELECT table_name, column_name FROM information_schema.columns "
                             f"WHERE table_schema = {self.literal(self.catalog_schema(schema))} AND is_nullable = 'NO'")
        return {(table, column) for table, column in rows}

    def allow_null(self, schema: str, table: str, column: str) -> None:
        """Drop a column's NOT NULL constraint."""
        self.execute(f"ALTER TABLE {self.qualified(schema, table)} ALTER COLUMN {self.quote(column)} DROP NOT NULL")

    def _serialise_schema_changes(self) -> None:
        """Make a concurrent process wait while this one creates the schemas (a server engine's lock)."""

    def _create_support_functions(self) -> None:
        """Engine-specific helpers (e.g. safe casts) created once per database."""

    def _index_batches(self, schema: str, table: str) -> None:
        """Let a night's statements find a batch's rows without reading the whole table (engines without zone maps)."""

    def _create_table(self, schema: str, table: str, columns: Sequence[tuple[str, str]]) -> None:
        body = ", ".join(f"{self.quote(name)} {sql_type}" for name, sql_type in columns)
        self.execute(f"CREATE TABLE IF NOT EXISTS {self.qualified(schema, table)} ({body})")

    def ensure_tables(self, tables: Sequence[StoredTable]) -> None:
        """Create the declared tables (catalog) that are missing; add to the others the columns a later release
        declared, nullable (their old rows have none). One catalog query per schema."""
        for table in tables:
            self.execute(self.table_ddl(table))
        for schema in dict.fromkeys(table.schema for table in tables):
            existing = self.schema_columns(schema)
            for table in (table for table in tables if table.schema == schema):
                for column in table.columns:
                    if column.name not in existing.get(table.name, []):
                        self.execute(f"ALTER TABLE {self.qualified(schema, table.name)} "
                                     f"ADD COLUMN {self.quote(column.name)} {column.sql_type}")

    def create_table(self, table: StoredTable) -> None:
        """Create a declared table (catalog) afresh, dropping the one there."""
        self.execute(f"DROP TABLE IF EXISTS {self.qualified(table.schema, table.name)}")
        self.execute(self.table_ddl(table, if_not_exists=False))

    def table_ddl(self, table: StoredTable, *, if_not_exists: bool = True) -> str:
        """CREATE TABLE for a declared table: its columns' SQL types, NOT NULL, and its key where declared."""
        keyed = table.key_constraint == ALWAYS or (table.key_constraint == FACT
                                                   and self.capabilities.declares_fact_keys)
        inline = keyed and len(table.key) == 1
        parts = []
        for column in table.columns:
            constraint = (" PRIMARY KEY" if inline and column.name == table.key[0]
                          else " NOT NULL" if column.not_null else "")
            parts.append(f"{self.quote(column.name)} {column.sql_type}{constraint}")
        if keyed and not inline:
            parts.append(f"PRIMARY KEY ({', '.join(map(self.quote, table.key))})")
        exists = "IF NOT EXISTS " if if_not_exists else ""
        return f"CREATE TABLE {exists}{self.qualified(table.schema, table.name)} ({', '.join(parts)})"

    def staging_ddl(self, entity: Entity) -> str:
        """CREATE TABLE for staging.<entity>: typed columns, lineage, primary and foreign keys."""
        parts = [
            f"{self.quote(column.name)} {column.sql_type}{'' if column.nullable else ' NOT NULL'}"
            for column in entity.columns
        ]
        parts += ['"_batch_id" BIGINT NOT NULL', '"_source_line" BIGINT NOT NULL']
        if not (self.capabilities.declares_master_keys if entity.master else self.capabilities.declares_fact_keys):
            return f"CREATE TABLE {self.qualified('staging', entity.name)} ({', '.join(parts)})"
        parts.append(f"PRIMARY KEY ({', '.join(self.quote(name) for name in entity.primary_key)})")
        if self.capabilities.supports_foreign_keys:
            for foreign_key in entity.foreign_keys:
                target = ENTITIES[foreign_key.references]
                parts.append(
                    f"FOREIGN KEY ({self.quote(foreign_key.column)}) REFERENCES "
                    f"{self.qualified('staging', target.name)} ({self.quote(target.primary_key[0])})"
                )
        return f"CREATE TABLE {self.qualified('staging', entity.name)} ({', '.join(parts)})"

    def add_text_columns(self, table: str, names: Sequence[str]) -> None:
        """Add extra file columns to raw.<table> and quarantine.<table> (kept as text)."""
        for schema in ("raw", "quarantine"):
            existing = set(self.table_columns(schema, table))
            for name in names:
                if name not in existing:
                    self.execute(f"ALTER TABLE {self.qualified(schema, table)} ADD COLUMN {self.quote(name)} VARCHAR")


def flag_positions(expr: ir.Table) -> list[int]:
    """The positions of expr's boolean columns: engines without a boolean type (MySQL) return 0/1."""
    return [index for index, dtype in enumerate(expr.schema().types) if dtype.is_boolean()]


def _table_name(table: ir.Table) -> tuple[str | None, str]:
    """(schema, name) of an unbound Ibis table (schema None: a temporary table)."""
    op = table.op()
    if not isinstance(op, ops.PhysicalTable):
        raise TypeError(f"a row change needs a table to change, not an expression ({type(op).__name__})")
    return op.namespace.database, op.name


def row_condition(table: ir.Table, where: Where) -> ir.BooleanValue | None:
    """`where` as an Ibis condition over `table` (None: every row)."""
    if where is None or isinstance(where, ir.Expr):
        return where
    parts = []
    for name, value in where.items():
        column = table[name]
        if value is None:
            parts.append(column.isnull())
        elif isinstance(value, (list, tuple, set, frozenset)):
            parts.append(column.isin(list(value)) if value else ibis.literal(False))
        else:
            parts.append(column == value)
    return ibis.and_(*parts) if parts else None


def _filtered(table: ir.Table, condition: ir.BooleanValue | None) -> ir.Table:
    return table if condition is None else table.filter(condition)


def typed_values(table: ir.Table, values: Mapping[str, Value]) -> dict[str, ir.Value]:
    """The new values as Ibis expressions, each of its column's type."""
    new = {}
    for name, value in values.items():
        dtype = table[name].type()
        if value is NOW:
            new[name] = ibis.now().cast(dtype)
        elif isinstance(value, ir.Expr):
            new[name] = value
        else:
            new[name] = ibis.literal(value, type=dtype) if value is not None else ibis.null(dtype)
    return new


def join_conditions(on: JoinOn, table: ir.Table, source: ir.Table) -> list[ir.BooleanValue]:
    if callable(on):
        return list(on(table, source))
    return [table[left] == source[right] for left, right in on]


def _only_from(select: sge.Select) -> sge.Expression:
    """The one table a compiled row change reads from: its target (with Ibis's alias)."""
    target = select.args["from_"].this
    if not isinstance(target, sge.Table):
        raise ValueError(f"a row change must read its target table directly, not {target.sql()}")
    return target


def _assignments(select: sge.Select) -> list[sge.EQ]:
    """SET items from a compiled SELECT of new values, one per output column."""
    return [sge.EQ(this=sge.column(item.alias_or_name, quoted=True), expression=item.unalias())
            for item in select.expressions]
