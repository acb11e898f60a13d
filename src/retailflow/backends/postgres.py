"""PostgreSQL: the team's shared database, reached with psycopg 3."""

from __future__ import annotations

import contextlib
import functools
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
from psycopg import pq

from retailflow.backends.base import Backend, Capabilities, DriverConnection, hmac_pads
from retailflow.config import env
from retailflow.errors import UserError
from retailflow.lazy import LazyModule
from retailflow.model import TYPE_PATTERNS

if TYPE_CHECKING:
    import ibis.expr.types as ir
    import sqlglot.expressions as sge

# Imported at first use: a command that only reads stored tables never compiles nor loads a file (lazy.py).
ibis = LazyModule("ibis")
dt = LazyModule("ibis.expr.datatypes")
duckdb = LazyModule("duckdb")
parsing = LazyModule("retailflow.sources.parsing")

COPY_CHUNK = 1 << 20
#: pg_advisory_lock key of retailflow writers (any constant shared by all retailflow processes).
WRITER_LOCK_KEY = 7_402_615_001
#: pg_advisory_xact_lock key held while a process creates or checks the schemas.
SCHEMA_LOCK_KEY = 7_402_615_002

#: A LIMIT no table reaches (see computed_once).
NO_LIMIT = 1 << 62

#: Settings of every session. JIT: the planner overestimates the rule joins by orders of magnitude,
#: so even small batches paid for compiling the wide rule expressions (validating 20k line items
#: took 3.8 s with JIT, 2.3 s without); at a million rows compiling and faster evaluation cancel out.
#: Statistics target: ANALYZE samples 300 rows per unit of it. Our ANALYZEs (refresh_statistics: a night's raw
#: tables and every temporary table of a run) need row counts and rough distinct counts for join planning, not the
#: default's 30,000-row sample and 100 most common values per column: at 10 ANALYZE of 200k typed line items took
#: 26 ms instead of 145 (1.1 s of a 200k validation was ANALYZE), with distinct counts close enough to plan the
#: same hash joins. The server's own default still applies to autovacuum's ANALYZE of the stored tables.
SESSION_SETTINGS = {"jit": "off", "default_statistics_target": "10"}
#: Memory per sort or hash table before it spills to disk. PostgreSQL's 4MB made validating 1M line
#: items spill every key lookup (43 s; 35.7 s with 64MB, 34.5 s with 256MB). Each hash join of a
#: check may take up to twice this, so it stays moderate on a shared server; RETAILFLOW_POSTGRES_WORK_MEM overrides it.
DEFAULT_WORK_MEM = "64MB"

# Ibis compiles try_cast to a plain CAST on PostgreSQL, so one impossible date would abort
# the whole statement; these functions return NULL instead. An EXCEPTION block would do, but it
# makes every query calling it parallel unsafe (a subtransaction per value), so they check what
# PostgreSQL's input functions check: the shape, the calendar and the clock (24:00:00 and a leap
# second :60 are accepted, nothing past midnight). Most values pass the first, cheaper test.
SAFE_CAST_FUNCTIONS = {"date": "rf_try_date", "timestamp": "rf_try_timestamp"}
#: A day up to the 28th and a time before 24:00 always exist.
_PLAINLY_VALID = {
    "date": r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])$",
    "timestamp": r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])"
                 r"([ T]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?)?$",
}
_CALENDAR_CHECK = """
  year_number := substr(value, 1, 4)::int;
  month_number := substr(value, 6, 2)::int;
  day_number := substr(value, 9, 2)::int;
  IF year_number < 1 OR month_number NOT BETWEEN 1 AND 12 OR day_number NOT BETWEEN 1 AND (CASE
      WHEN month_number = 2 THEN CASE WHEN year_number % 4 = 0 AND (year_number % 100 <> 0 OR year_number % 400 = 0)
                                      THEN 29 ELSE 28 END
      WHEN month_number IN (4, 6, 9, 11) THEN 30 ELSE 31 END) THEN
    RETURN NULL;
  END IF;"""
_CLOCK_CHECK = """
  IF length(value) > 10 THEN
    hour_number := substr(value, 12, 2)::int;
    minute_number := substr(value, 15, 2)::int;
    seconds := coalesce(nullif(substr(value, 18), '')::numeric, 0);
    IF minute_number > 59 OR seconds >= 61 OR hour_number * 3600 + minute_number * 60 + seconds > 86400 THEN
      RETURN NULL;
    END IF;
  END IF;"""
_SAFE_CAST_CHECKS = {"date": _CALENDAR_CHECK, "timestamp": _CALENDAR_CHECK + _CLOCK_CHECK}


@functools.cache
def _compiler():
    """Ibis's PostgreSQL compiler, with engine scalars (EngineScalars); made when the first statement is compiled
    (lazy.py)."""
    from ibis.backends.sql.compilers.postgres import PostgresCompiler

    from retailflow.backends.compiling import EngineScalars

    class _Compiler(EngineScalars, PostgresCompiler):
        pass

    return _Compiler()


@functools.cache
def _safe_casts() -> dict[str, Callable]:
    """The SAFE_CAST_FUNCTIONS as Ibis functions, by logical type (their return types read through the lazy `dt`,
    as Ibis evaluates the annotations in this module)."""
    @ibis.udf.scalar.builtin(name="rf_try_date", database="audit")
    def _rf_try_date(value: str) -> dt.date: ...

    @ibis.udf.scalar.builtin(name="rf_try_timestamp", database="audit")
    def _rf_try_timestamp(value: str) -> dt.timestamp: ...

    return {"date": _rf_try_date, "timestamp": _rf_try_timestamp}


def _batch_index(table: str) -> str:
    """The name of a raw table's BRIN index on _batch_id (in the table's schema)."""
    return f"{table}_batch_range"


@dataclass(frozen=True)
class _ForeignKey:
    """A FOREIGN KEY constraint as the catalog has it."""

    referenced: str
    columns: list[str]
    referenced_columns: list[str]


class _OrphanRows(Exception):
    """The set-based check found rows whose foreign key has no referenced row."""


class PostgresBackend(Backend):
    """A PostgreSQL database; created on first use when the server allows it."""

    dialect = "postgres"
    capabilities = Capabilities(
        # rf_try_date / rf_try_timestamp test the pattern themselves: a second regex outside them cost
        # 1 s per 531k headers.
        temporal_cast_checks_pattern=True,
        supports_roles=True,
    )

    def __init__(self, url: str) -> None:
        #: raw tables (their names) bulk-loaded in the open transaction, analysed once when it ends
        self._loaded_tables: set[str] = set()
        self._may_skip_triggers: bool | None = None
        self._duckdb: duckdb.DuckDBPyConnection | None = None
        super().__init__(url)

    def _connect(self) -> DriverConnection:
        params = self.server_address(5432, "postgres")
        database = params["database"]
        try:
            return self._with_session_settings(self._driver_connection(params))
        except psycopg.OperationalError as error:
            if f'database "{database}" does not exist' not in str(error):
                raise UserError(f"cannot connect to {self.display_url}: {str(error).strip().splitlines()[-1]}") from None
        admin_params = {key: value for key, value in params.items() if key != "database"}
        try:
            with psycopg.connect(**admin_params, dbname="postgres", autocommit=True) as admin:
                admin.execute(f"CREATE DATABASE {self.quote(database)}")
        except (psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
            pass  # another process created it a moment ago (at the same moment: the catalog's unique index)
        except psycopg.Error as error:
            raise UserError(f"database {database!r} does not exist on {self.display_url} and cannot be created "
                            f"({str(error).strip().splitlines()[0]}); create it or ask for CREATEDB") from None
        return self._with_session_settings(self._driver_connection(params))

    @staticmethod
    def _driver_connection(params: dict) -> DriverConnection:
        """psycopg's connection as Ibis's PostgreSQL connect made it (autocommit, the session in UTC), without
        importing Ibis: a command that only reads stored tables never needs it (lazy.py)."""
        connection = psycopg.connect(host=params["host"], port=params["port"], user=params["user"],
                                     password=params["password"], dbname=params["database"], autocommit=True)
        connection.execute("SET TIMEZONE = UTC")
        return DriverConnection(connection)

    def _with_session_settings(self, connection: DriverConnection) -> DriverConnection:
        for name, value in SESSION_SETTINGS.items():
            connection.con.execute(f"SET {name} = {self.literal(value)}")
        work_mem = env("RETAILFLOW_POSTGRES_WORK_MEM") or DEFAULT_WORK_MEM
        try:
            connection.con.execute(f"SET work_mem = {self.literal(work_mem)}")
        except psycopg.Error as error:
            connection.disconnect()
            raise UserError(f"RETAILFLOW_POSTGRES_WORK_MEM={work_mem!r} is not a valid work_mem "
                            f"({error.diag.message_primary}); use a size such as 64MB") from None
        return connection

    def _sql_tree(self, expr: ir.Expr) -> sge.Expression:
        return _compiler().to_sqlglot(expr.unbind())

    @property
    def _raw(self) -> psycopg.Connection:
        return self.ibis.con

    @property
    def _csv_parser(self) -> duckdb.DuckDBPyConnection:
        # One in-memory DuckDB for all files: opening one per file cost 30 ms each (60 daily files).
        if self._duckdb is None:
            self._duckdb = duckdb.connect()
        return self._duckdb

    def close(self) -> None:
        if self._duckdb is not None:
            self._duckdb.close()
            self._duckdb = None
        super().close()

    def execute(self, sql: str) -> int:
        with self._raw.cursor() as cursor:
            cursor.execute(sql)
            return max(cursor.rowcount, 0)

    def fetch(self, sql: str) -> tuple[list[str], list[tuple]]:
        with self._raw.cursor() as cursor:
            cursor.execute(sql)
            return [column.name for column in cursor.description], cursor.fetchall()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        outermost = self._raw.info.transaction_status == pq.TransactionStatus.IDLE
        with self._raw.transaction():
            yield
            if outermost:
                self.analyse_loaded_tables()

    def create_role_if_missing(self, role: str) -> None:
        if not self.scalar(f"SELECT count(*) FROM pg_roles WHERE rolname = {self.literal(role)}"):
            self.execute(f"CREATE ROLE {self.quote(role)} NOLOGIN")

    def grant_schema_read(self, role: str, schema: str) -> None:
        self.execute(f"GRANT USAGE ON SCHEMA {self.quote(schema)} TO {self.quote(role)}")
        self.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA {self.quote(schema)} TO {self.quote(role)}")

    def hmac_sha256(self, text_sql: str, key: bytes) -> str:
        inner, outer = hmac_pads(key)
        return (f"encode(sha256(decode('{outer}', 'hex') || sha256(decode('{inner}', 'hex') || "
                f"convert_to({text_sql}, 'UTF8'))), 'hex')")

    def analyse_loaded_tables(self) -> None:
        # Once per table, not once per file: ANALYZE after each of 60 daily files was half the load time.
        while self._loaded_tables:
            table = self._loaded_tables.pop()
            self.refresh_statistics(self.qualified("raw", table))
            # The block ranges a load added enter the batch index now, not at a VACUUM that may never come
            # (autovacuum can be off); until then a range counts as matching every batch.
            # Only the index's owner may summarise it; another writer leaves the ranges to the owner's VACUUM.
            self.execute(f"SELECT brin_summarize_new_values(oid) FROM pg_class WHERE oid = "
                         f"{self.literal(self.qualified('raw', _batch_index(table)))}::regclass "
                         "AND pg_has_role(relowner, 'USAGE')")

    def _index_batches(self, schema: str, table: str) -> None:
        # Validation reads the night's batches out of raw (its candidates, then the cells of the rows it
        # quarantines): without an index that was a scan of every row ever loaded, twice a night per file
        # (9M inventory rows of history: 1.5 s for the day's 100k, 2.1 s of a day's 8.4 s). Batch ids grow
        # with the table, so a BRIN index of their block ranges is a few pages, built in 2 s on 9M rows
        # of an older database, and costs nothing to keep.
        target, index = self.qualified(schema, table), _batch_index(table)
        # Only the table's owner may index it: a database another role made keeps its tables as they are.
        if self.scalar(f"SELECT to_regclass({self.literal(self.qualified(schema, index))}) IS NULL "
                       f"AND pg_has_role(relowner, 'USAGE') FROM pg_class WHERE oid = {self.literal(target)}::regclass"):
            self.execute(f"CREATE INDEX IF NOT EXISTS {self.quote(index)} ON {target} USING brin (_batch_id)")

    def trimmed(self, cell: ir.StringValue) -> ir.StringValue:
        # As on the engines comparing bytewise (Backend.trimmed), only a cell that starts or ends with a
        # character at or below the space is trimmed, tested by its code (a comparison under the
        # database's collation costs more than the TRIM it saves). TRIM with Ibis's set of six characters,
        # evaluated again at each use of the cell, was half the parse: typing 1M line items 4.6 s -> 2.2 s.
        edge = (cell.ascii_str() <= 32) | (cell.right(1).ascii_str() <= 32)
        return ibis.ifelse(edge, cell.strip().nullif(""), cell)

    def try_cast_temporal(self, value: ir.StringValue, logical_type: str) -> ir.Value:
        return _safe_casts()[logical_type](value)

    def insert(self, schema: str, table: str, expr: ir.Table) -> int:
        """INSERT ... SELECT; into staging, foreign keys are checked once for the whole set, not row by row."""
        foreign_keys = self._foreign_keys(schema, table) if schema == "staging" else None
        if not foreign_keys:
            return super().insert(schema, table, expr)
        # A foreign key's trigger runs one lookup per inserted row: 14 of the 17 s that inserting 910k
        # line items took. With triggers off (session_replication_role) one anti-join per key checks them
        # all; SHARE locks keep the referenced rows in place until commit, as the triggers' row locks did.
        columns, select = ", ".join(self.quote(name) for name in expr.columns), self.compile(expr)
        returned = sorted({name for key in foreign_keys for name in key.columns})
        orphans = ", ".join(self._orphans_of(key) for key in foreign_keys)
        try:
            with self.transaction():
                self.execute(f"LOCK TABLE {', '.join(sorted({key.referenced for key in foreign_keys}))} IN SHARE MODE")
                replication_role = self.scalar("SELECT current_setting('session_replication_role')")
                self.execute("SET LOCAL session_replication_role = replica")
                _, rows = self.fetch_built(
                    f"WITH inserted AS (INSERT INTO {self.qualified(schema, table)} ({columns}) {select} "
                    f"RETURNING {', '.join(self.quote(name) for name in returned)}) "
                    f"SELECT (SELECT count(*) FROM inserted), {orphans}")
                self.execute(f"SET LOCAL session_replication_role = {self.literal(replication_role)}")
                if any(rows[0][1:]):
                    raise _OrphanRows
                return int(rows[0][0])
        except _OrphanRows:
            # Rolled back: insert again with the triggers on, which raise PostgreSQL's own error.
            return super().insert(schema, table, expr)

    def _orphans_of(self, key: _ForeignKey) -> str:
        """A scalar subquery: how many rows of `inserted` have the key set but no referenced row."""
        present = " AND ".join(f"{self.quote(name)} IS NOT NULL" for name in key.columns)
        matches = " AND ".join(f"referenced.{self.quote(to)} = inserted.{self.quote(name)}"
                               for name, to in zip(key.columns, key.referenced_columns))
        return (f"(SELECT count(*) FROM inserted WHERE {present} "
                f"AND NOT EXISTS (SELECT FROM {key.referenced} AS referenced WHERE {matches}))")

    def _foreign_keys(self, schema: str, table: str) -> list[_ForeignKey]:
        """The table's foreign keys when a set-based check may replace their triggers, else []."""
        if self._may_skip_triggers is None:
            # Turning triggers off takes a superuser, or (PostgreSQL 15+) a role granted SET on the setting.
            privilege = ("has_parameter_privilege('session_replication_role', 'SET')"
                         if self._raw.info.server_version >= 150000 else "current_setting('is_superuser') = 'on'")
            self._may_skip_triggers = bool(self.scalar(f"SELECT {privilege}"))
        if not self._may_skip_triggers:
            return []
        relation = f"{self.literal(self.qualified(schema, table))}::regclass"
        # User triggers and rules would be skipped too: their tables keep the row-by-row path.
        if self.scalar(f"SELECT EXISTS (SELECT FROM pg_trigger WHERE tgrelid = {relation} AND NOT tgisinternal) "
                       f"OR EXISTS (SELECT FROM pg_rewrite WHERE ev_class = {relation})"):
            return []
        _, rows = self.fetch(
            "SELECT confrelid::regclass::text, "
            "array(SELECT attname FROM unnest(conkey) WITH ORDINALITY AS k(number, position) JOIN pg_attribute "
            "ON attrelid = conrelid AND attnum = k.number ORDER BY k.position), "
            "array(SELECT attname FROM unnest(confkey) WITH ORDINALITY AS k(number, position) JOIN pg_attribute "
            "ON attrelid = confrelid AND attnum = k.number ORDER BY k.position) "
            f"FROM pg_constraint WHERE conrelid = {relation} AND contype = 'f' ORDER BY conname")
        return [_ForeignKey(referenced, list(columns), list(referenced_columns))
                for referenced, columns, referenced_columns in rows]

    def computed_once(self, table: ir.Table) -> ir.Table:
        # The planner pulls a subquery up into the query that reads it and then evaluates a derived
        # column at every use: a typed cell parsed by every rule that reads it, a rule evaluated again
        # for its reason (the line-item check took 16.5 s instead of 9). A subquery with a LIMIT is
        # never pulled up, so its columns are computed once per row. (A volatile column does the same
        # but runs the subquery without parallel workers: the header check went from 8 s to 10 s.)
        return table.limit(NO_LIMIT)

    def lock_for_writing(self) -> None:
        # A session-level advisory lock: held until this process disconnects.
        if not self.scalar(f"SELECT pg_try_advisory_lock({WRITER_LOCK_KEY})"):
            raise UserError(f"another retailflow process is writing to {self.display_url}; "
                            "wait for it to finish and run the command again")

    def refresh_statistics(self, qualified_name: str) -> None:
        # Freshly loaded and temporary tables have no statistics until ANALYZE; without them
        # the planner assumes a few rows and picks nested loops over a million.
        self.execute(f"ANALYZE {qualified_name}")

    def _serialise_schema_changes(self) -> None:
        # Two processes starting at once on a new database would both create the schemas and
        # one would fail on the catalog's unique index; this lock, released at commit, queues them.
        self.execute(f"SELECT pg_advisory_xact_lock({SCHEMA_LOCK_KEY})")

    def _create_support_functions(self) -> None:
        for sql_type, function in SAFE_CAST_FUNCTIONS.items():
            # IMMUTABLE holds: the patterns admit only ISO input, which DateStyle does not change.
            self.execute(
                f"CREATE OR REPLACE FUNCTION audit.{function}(value text) RETURNS {sql_type} "
                "LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $body$\n"
                "DECLARE\n  year_number int; month_number int; day_number int;\n"
                "  hour_number int; minute_number int; seconds numeric;\nBEGIN\n"
                f"  IF value ~ {self.literal(_PLAINLY_VALID[sql_type])} AND left(value, 4) <> '0000' THEN\n"
                f"    RETURN value::{sql_type};\n  END IF;\n"
                f"  IF value !~ {self.literal(TYPE_PATTERNS[sql_type])} THEN\n    RETURN NULL;\n  END IF;"
                f"{_SAFE_CAST_CHECKS[sql_type]}\n  RETURN value::{sql_type};\nEND $body$"
            )

    def bulk_load(self, rows: parsing.FileRows, table: str, batch_id: int, source_name: str) -> int:
        columns = [*rows.columns, "_batch_id", "_source_file", "_source_line"]
        select = rows.select_sql(batch_id, source_name)
        path = rows.path
        with tempfile.TemporaryDirectory(prefix="retailflow-") as folder:
            parsed = Path(folder) / "rows.csv"
            try:
                # DuckDB writes NULL as an empty field and an empty string as "", which is
                # exactly how COPY ... CSV tells them apart.
                self._csv_parser.execute(f"COPY ({select}) TO '{parsed}' (FORMAT csv, HEADER false)")
            except duckdb.Error as error:
                raise parsing.explain_read_error(path, error) from None
            target = f"{self.qualified('raw', table)} ({', '.join(self.quote(name) for name in columns)})"
            try:
                with self._raw.cursor() as cursor:
                    with cursor.copy(f"COPY {target} FROM STDIN (FORMAT csv)") as copy:
                        with parsed.open("rb") as handle:
                            while chunk := handle.read(COPY_CHUNK):
                                copy.write(chunk)
                    # COPY's own count: counting the batch afterwards scanned the whole raw table per file.
                    loaded = cursor.rowcount
            except psycopg.DataError as error:
                # COPY counts records of the parsed file: record N is data row N of the input.
                record = re.search(r"line (\d+)", str(error))
                where = f"{path}:{int(record.group(1)) + 1}" if record else str(path)
                raise UserError(f"{where}: PostgreSQL refused a value ({error.diag.message_primary}); "
                                "fix the value or re-export the file") from None
        self._loaded_tables.add(table)
        if self._raw.info.transaction_status == pq.TransactionStatus.IDLE:
            self.analyse_loaded_tables()
        return loaded
