"""PostgreSQL: the team's shared database, reached with psycopg 3."""

from __future__ import annotations

import contextlib
import re
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import unquote, urlsplit

import duckdb
import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import psycopg

from retailflow.backends import csv_reader
from retailflow.backends.base import Backend
from retailflow.errors import UserError

COPY_CHUNK = 1 << 20
#: pg_advisory_lock key of retailflow writers (any constant shared by all retailflow processes).
WRITER_LOCK_KEY = 7_402_615_001
#: pg_advisory_xact_lock key held while a process creates or checks the schemas.
SCHEMA_LOCK_KEY = 7_402_615_002

# Ibis compiles try_cast to a plain CAST on PostgreSQL, so one impossible date would abort
# the whole statement; these functions return NULL instead.
SAFE_CAST_FUNCTIONS = {"date": "rf_try_date", "timestamp": "rf_try_timestamp"}


@ibis.udf.scalar.builtin(name="rf_try_date", database="audit")
def _rf_try_date(value: str) -> dt.date: ...


@ibis.udf.scalar.builtin(name="rf_try_timestamp", database="audit")
def _rf_try_timestamp(value: str) -> dt.timestamp: ...


class PostgresBackend(Backend):
    """A PostgreSQL database; created on first use when the server allows it."""

    dialect = "postgres"

    def _connect(self) -> ibis.BaseBackend:
        parts = urlsplit(self.url)
        try:
            port = parts.port or 5432
        except ValueError:
            raise UserError(f"database URL {self.display_url!r} has an invalid port; "
                            "use postgresql://user:password@host:5432/dbname") from None
        # URLs percent-encode reserved characters (a password with '@' is written %40).
        database = unquote(parts.path.lstrip("/")) or "retailflow"
        params = dict(host=parts.hostname or "localhost", port=port,
                      user=unquote(parts.username or "postgres"),
                      password=unquote(parts.password) if parts.password is not None else None, database=database)
        try:
            return ibis.postgres.connect(**params)
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
        return ibis.postgres.connect(**params)

    @property
    def _raw(self) -> psycopg.Connection:
        return self.ibis.con

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
        with self._raw.transaction():
            yield

    def try_cast_temporal(self, value: ir.StringValue, logical_type: str) -> ir.Value:
        return _rf_try_date(value) if logical_type == "date" else _rf_try_timestamp(value)

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
            self.execute(
                f"CREATE OR REPLACE FUNCTION audit.{function}(value text) RETURNS {sql_type} "
                "LANGUAGE plpgsql IMMUTABLE AS $body$ BEGIN "
                f"RETURN value::{sql_type}; EXCEPTION WHEN others THEN RETURN NULL; END $body$"
            )

    def bulk_load(self, path: Path, file_format: str, table: str, file_columns: Sequence[str],
                  batch_id: int, source_name: str) -> int:
        columns = [*file_columns, "_batch_id", "_source_file", "_source_line"]
        select = csv_reader.select_sql(path, file_columns, batch_id, source_name)
        with tempfile.TemporaryDirectory(prefix="retailflow-") as folder:
            parsed = Path(folder) / "rows.csv"
            try:
                # DuckDB writes NULL as an empty field and an empty string as "", which is
                # exactly how COPY ... CSV tells them apart.
                duckdb.connect().execute(f"COPY ({select}) TO '{parsed}' (FORMAT csv, HEADER false)")
            except duckdb.Error as error:
                raise csv_reader.explain_read_error(path, error) from None
            target = f"{self.qualified('raw', table)} ({', '.join(self.quote(name) for name in columns)})"
            try:
                with self._raw.cursor() as cursor, cursor.copy(f"COPY {target} FROM STDIN (FORMAT csv)") as copy:
                    with parsed.open("rb") as handle:
                        while chunk := handle.read(COPY_CHUNK):
                            copy.write(chunk)
            except psycopg.DataError as error:
                # COPY counts records of the parsed file: record N is data row N of the input.
                record = re.search(r"line (\d+)", str(error))
                where = f"{path}:{int(record.group(1)) + 1}" if record else str(path)
                raise UserError(f"{where}: PostgreSQL refused a value ({error.diag.message_primary}); "
                                "fix the value or re-export the file") from None
            self.refresh_statistics(self.qualified("raw", table))
            return self.scalar(f"SELECT count(*) FROM {self.qualified('raw', table)} WHERE _batch_id = {batch_id}")
