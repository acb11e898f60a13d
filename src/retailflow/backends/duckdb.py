"""DuckDB: the embedded default, a single database file."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from retailflow.backends.base import Backend, Capabilities, DriverConnection
from retailflow.config import env
from retailflow.errors import UserError

if TYPE_CHECKING:
    import ibis.expr.types as ir
    import sqlglot.expressions as sge

    from retailflow.sources import parsing

#: DuckDB alone takes up to 80% of RAM; past this it spills to a folder beside the database file.
#: 10M line items ran the whole pipeline within 3.5 GB of RSS; the cap cost a few seconds of
#: validation, whose temporary tables spill (docs/reference/databases.md; figures in benchmarks/RESULTS.md). RETAILFLOW_DUCKDB_MEMORY_LIMIT raises or lowers it.
DEFAULT_MEMORY_LIMIT = "3GB"
#: Temporary table of the rows an upsert writes.
UPSERTED = "rf_upserted"


@functools.cache
def _compiler():
    """Ibis's DuckDB compiler, with integer sums kept BIGINT (IntegerSums) and engine scalars (EngineScalars); made
    when the first statement is compiled (lazy.py)."""
    from ibis.backends.sql.compilers.duckdb import DuckDBCompiler

    from retailflow.backends.compiling import EngineScalars, IntegerSums

    class _Compiler(EngineScalars, IntegerSums, DuckDBCompiler):
        pass

    return _Compiler()


def database_path(url: str) -> str:
    """duckdb:///relative.duckdb and duckdb:////absolute/path.duckdb, as for SQLAlchemy URLs."""
    path = url.split("://", 1)[1]
    return path[1:] if path.startswith("/") else path


class DuckDBBackend(Backend):
    """An embedded DuckDB database file; reads CSV natively."""

    dialect = "duckdb"
    capabilities = Capabilities(
        # DuckDB keeps an ART index per key and checks it row by row: on fact tables that made
        # staging inserts 8-15x slower and held gigabytes of memory (measured on 9M inventory rows),
        # while the unique and exists rules already guarantee the keys before a row is staged.
        declares_fact_keys=False,
        # Masters too: the upsert of 309k customers into a keyed table took 1.05 s, a third of it
        # maintaining the index; a delete of the keys sent again plus a plain insert takes 0.3 s.
        declares_master_keys=False,
        compares_text_bytewise=True,
    )

    def _sql_tree(self, expr: ir.Expr) -> sge.Expression:
        return _compiler().to_sqlglot(expr.unbind())

    def _render(self, tree: sge.Expression) -> str:
        return tree.sql(self.dialect)

    def _connect(self) -> DriverConnection:
        path = database_path(self.url) or ":memory:"
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        try:
            connection = duckdb.connect(path)
        except duckdb.IOException as error:
            raise UserError(f"cannot open DuckDB file {path}: {str(error).splitlines()[0]}; "
                            "is another retailflow process using it?") from None
        # What Ibis's DuckDB connect sets (UTC; no Python variables read as tables), without the
        # 0.2 s that connect costs every command: retailflow compiles its SQL itself.
        # Insertion order is kept (DuckDB's default, set here because raw's line numbers rely on it).
        settings = [("TimeZone", "UTC"), ("python_enable_replacements", False), ("preserve_insertion_order", True)]
        for setting, variable, default in (("memory_limit", "RETAILFLOW_DUCKDB_MEMORY_LIMIT", DEFAULT_MEMORY_LIMIT),
                                           ("threads", "RETAILFLOW_DUCKDB_THREADS", None)):
            value = env(variable) or default
            if value:
                settings.append((setting, value))
        for setting, value in settings:
            literal = str(value).lower() if isinstance(value, bool) else self.literal(value)
            connection.execute(f"SET {setting} = {literal}")
        return DriverConnection(connection)

    @property
    def _raw(self) -> duckdb.DuckDBPyConnection:
        return self.ibis.con

    def execute(self, sql: str) -> int:
        cursor = self._raw.execute(sql)
        try:
            row = cursor.fetchone()
        except duckdb.InvalidInputError:
            return 0
        return int(row[0]) if row and len(row) == 1 and isinstance(row[0], int) else 0

    def fetch(self, sql: str) -> tuple[list[str], list[tuple]]:
        cursor = self._raw.execute(sql)
        return [column[0] for column in cursor.description], cursor.fetchall()

    def transaction(self) -> contextlib.AbstractContextManager[None]:
        return self._joined_transaction(lambda: self._raw.execute("BEGIN TRANSACTION"),
                                        lambda: self._raw.execute("COMMIT"), lambda: self._raw.execute("ROLLBACK"))

    def upsert(self, schema: str, table: str, columns: Sequence[str], key: Sequence[str], select_sql: str) -> None:
        target = self.qualified(schema, table)
        names = ", ".join(self.quote(name) for name in columns)
        same_key = " AND ".join(f"{target}.{self.quote(name)} = {UPSERTED}.{self.quote(name)}" for name in key)
        self.execute(f"CREATE OR REPLACE TEMPORARY TABLE {UPSERTED} AS {select_sql}")
        self.execute(f"DELETE FROM {target} USING {UPSERTED} WHERE {same_key}")
        self.execute(f"INSERT INTO {target} ({names}) SELECT {names} FROM {UPSERTED}")
        self.execute(f"DROP TABLE {UPSERTED}")

    def try_cast_temporal(self, value: ir.StringValue, logical_type: str) -> ir.Value:
        return value.try_cast(logical_type)

    def bulk_load(self, rows: parsing.FileRows, table: str, batch_id: int, source_name: str) -> int:
        columns = ", ".join(self.quote(name) for name in [*rows.columns, "_batch_id", "_source_file", "_source_line"])
        # Numbering the rows with a window in the same statement hands them on from one thread, and
        # the compressing insert after it then ran on that one thread too (1M line items: 2.2 s). The
        # insert keeps the file's order (preserve_insertion_order), so the rows are stored first, on
        # every core, and numbered by their position in the table after (1.4 s).
        select = rows.select_sql(batch_id, source_name, numbered=False)
        target = self.qualified("raw", table)
        try:
            loaded = self.execute(f"INSERT INTO {target} ({columns}) {select}")
        except duckdb.Error as error:
            from retailflow.sources.parsing import explain_read_error

            raise explain_read_error(rows.path, error) from None
        if rows.numbers_itself:
            return loaded
        self.execute(f"UPDATE {target} SET _source_line = rowid - (SELECT min(rowid) FROM {target} "
                     f"WHERE _batch_id = {batch_id}) + {rows.first_line} WHERE _batch_id = {batch_id}")
        return loaded
