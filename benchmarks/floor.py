"""The floors benchmarks compare with.

An engine's floor (issue 30) is the engine itself doing the two writes retailflow must persist, from the same
files: every file as text into a raw table with its lineage, and the castable rows typed into a staging table
with its primary key — no shape checks, rules, quarantine or foreign keys. DuckDB's is `duckdb_floor_seconds`
here, PostgreSQL's and MariaDB's are in postgres_floor.py and mysql_floor.py. `floor_seconds` is the older,
narrower figure kept beside it: DuckDB loading each file once into a typed table (the typed load alone).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import ibis

from retailflow.backends import Backend
from retailflow.model import ENTITIES, Column, Entity, entity_for_file
from retailflow.quality.context import with_typed
from retailflow.sources import parsing

FloorFiles = dict[str, list[tuple[Path, list[str]]]]


def floor_seconds(files: list[Path]) -> float:
    """Seconds DuckDB takes to CREATE TABLE AS SELECT * FROM read_csv(file) for every file (the typed load alone).

    Types are auto-detected as a user would get them; the planted bad values (an impossible
    date, say) would abort that load, so rows that do not fit the detected types are skipped.
    """
    with tempfile.TemporaryDirectory(prefix="retailflow-floor-") as folder:
        connection = _connect(Path(folder) / "floor.duckdb")
        started = time.perf_counter()
        for index, path in enumerate(files):
            source = str(path).replace("'", "''")
            connection.execute(f"CREATE TABLE t{index} AS SELECT * FROM read_csv('{source}', ignore_errors = true)")
        seconds = time.perf_counter() - started
        connection.close()
        return seconds


def _connect(path: Path) -> duckdb.DuckDBPyConnection:
    """A new DuckDB database at `path`, without a progress bar on the benchmark's output."""
    connection = duckdb.connect(str(path))
    connection.execute("SET enable_progress_bar = false")
    return connection


def floor_files(files: list[Path]) -> FloorFiles:
    """The files by entity, each with its header."""
    by_entity: FloorFiles = {}
    for path in files:
        by_entity.setdefault(entity_for_file(path).name, []).append((path, parsing.read_header(path)))
    return by_entity


def floor_table_ddl(by_entity: FloorFiles) -> list[str]:
    """Per entity a text table raw.floor_<entity> with every column any of its files has (extra, denormalised
    columns too) and a typed, keyed staging.floor_<entity>."""
    statements = []
    for entity_name, entity_files in by_entity.items():
        entity = ENTITIES[entity_name]
        names = dict.fromkeys(column for _, header in entity_files for column in header)
        columns = ", ".join(f'"{column}" VARCHAR' for column in names)
        statements.append(f'CREATE TABLE raw."floor_{entity_name}" ({columns})')
        typed = ", ".join(f'"{column.name}" {column.sql_type}' for column in entity.columns)
        keys = ", ".join(f'"{key}"' for key in entity.primary_key)
        statements.append(f'CREATE TABLE staging."floor_{entity_name}" ({typed}, PRIMARY KEY ({keys}))')
    return statements


def create_floor_tables(backend: Backend, files: list[Path]) -> FloorFiles:
    """For a server engine's floor: the tables of floor_table_ddl; returns (file, header) by entity."""
    by_entity = floor_files(files)
    for statement in floor_table_ddl(by_entity):
        backend.execute(statement)
    return by_entity


def cast_insert_sql(entity: Entity, cast: Callable[[Column], str] | None = None) -> str:
    """INSERT INTO staging.floor_<entity> ... SELECT CAST(...) FROM raw.floor_clean_<entity> (the second write);
    `cast(column)` writes one column's cast where the engine wants another."""
    cast = cast or (lambda column: f'CAST("{column.name}" AS {column.sql_type})')
    names = ", ".join(f'"{column.name}"' for column in entity.columns)
    casts = ", ".join(cast(column) for column in entity.columns)
    return f'INSERT INTO staging."floor_{entity.name}" ({names}) SELECT {casts} FROM raw."floor_clean_{entity.name}"'


def keep_castable_rows(backend: Backend, entity: Entity) -> None:
    """raw.floor_clean_<entity>: the trimmed cells of raw.floor_<entity> that the server's casts accept, one row
    per key (a server floor's untimed preparation)."""
    backend.refresh_statistics(backend.qualified("raw", f"floor_{entity.name}"))
    raw = backend.raw_table("raw", f"floor_{entity.name}")
    # A column no file sent (an optional one) is empty in every row.
    raw = raw.mutate(**{name: ibis.null("string") for name in entity.column_names if name not in raw.columns})
    typed = with_typed(backend, entity, raw)
    castable = [typed[f"_t_{column.name}"].isnull() | typed[f"_v_{column.name}"].notnull() for column in entity.columns]
    keys = [typed[f"_t_{key}"] for key in entity.primary_key]
    rows = typed.filter(*castable, *[key.notnull() for key in keys])
    # One row per key: each other cell is the largest of its key's (castable all the same).
    rows = rows.group_by([rows[f"_t_{key}"].name(key) for key in entity.primary_key]).aggregate(
        **{column.name: rows[f"_t_{column.name}"].max() for column in entity.columns
           if column.name not in entity.primary_key})
    backend.execute_built(f"CREATE TABLE {backend.qualified('raw', f'floor_clean_{entity.name}')} AS "
                          f"{backend.compile(rows)}")


def _literal(value: object) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def duckdb_floor_seconds(files: list[Path]) -> dict[str, float]:
    """DuckDB's own floor, in a fresh database file, through DuckDB's SQL alone; seconds of each timed write.

    1. text: per file, INSERT INTO raw.floor_<entity> the file read by read_csv with every column as VARCHAR,
       with its lineage (`_source_file`, and `_source_line` numbered in the same statement) — one transaction;
    2. typed: INSERT INTO staging.floor_<entity> SELECT CAST(...) of every castable row, one per key (picked
       beforehand with TRY_CAST, not timed), into a table with its primary key — one transaction.
    """
    by_entity = floor_files(files)
    with tempfile.TemporaryDirectory(prefix="retailflow-floor-") as folder:
        connection = _connect(Path(folder) / "floor.duckdb")
        try:
            connection.execute("CREATE SCHEMA raw; CREATE SCHEMA staging")
            for statement in floor_table_ddl(by_entity):
                connection.execute(statement)
            for entity_name in by_entity:
                connection.execute(f'ALTER TABLE raw."floor_{entity_name}" ADD COLUMN _source_file VARCHAR')
                connection.execute(f'ALTER TABLE raw."floor_{entity_name}" ADD COLUMN _source_line BIGINT')
            started = time.perf_counter()
            connection.execute("BEGIN")
            for entity_name, entity_files in by_entity.items():
                for path, header in entity_files:
                    struct = ", ".join(f"{_literal(column)}: 'VARCHAR'" for column in header)
                    names = ", ".join(f'"{column}"' for column in header)
                    connection.execute(
                        f'INSERT INTO raw."floor_{entity_name}" ({names}, _source_file, _source_line) '
                        f"SELECT {names}, {_literal(path.name)}, row_number() OVER () + 1 "
                        f"FROM read_csv({_literal(path)}, header = true, auto_detect = false, quote = '\"', "
                        f"escape = '\"', columns = {{{struct}}})")
            connection.execute("COMMIT")
            text_seconds = time.perf_counter() - started
            for entity_name in by_entity:
                _keep_castable_rows_duckdb(connection, ENTITIES[entity_name])
            started = time.perf_counter()
            connection.execute("BEGIN")
            for entity_name in by_entity:
                connection.execute(cast_insert_sql(ENTITIES[entity_name]))
            connection.execute("COMMIT")
            typed_seconds = time.perf_counter() - started
        finally:
            connection.close()
    return {"text_seconds": text_seconds, "typed_keyed_seconds": typed_seconds,
            "seconds": text_seconds + typed_seconds}


def _keep_castable_rows_duckdb(connection: duckdb.DuckDBPyConnection, entity: Entity) -> None:
    """raw.floor_clean_<entity>: the trimmed cells DuckDB's casts accept, one row per key (untimed)."""
    present = {row[0] for row in connection.execute(f'DESCRIBE raw."floor_{entity.name}"').fetchall()}
    trimmed = {column.name: f'nullif(trim("{column.name}"), \'\')' if column.name in present else "NULL::VARCHAR"
               for column in entity.columns}
    castable = " AND ".join(f"({cell} IS NULL OR TRY_CAST({cell} AS {column.sql_type}) IS NOT NULL)"
                            for column, cell in ((column, trimmed[column.name]) for column in entity.columns))
    keys = " AND ".join(f"{trimmed[key]} IS NOT NULL" for key in entity.primary_key)
    cells = ", ".join(f'{cell} AS "{name}"' for name, cell in trimmed.items())
    picked = ", ".join(f'"{column.name}"' if column.name in entity.primary_key else f'max("{column.name}") AS "{column.name}"'
                       for column in entity.columns)
    group = ", ".join(f'"{key}"' for key in entity.primary_key)
    connection.execute(f'CREATE TABLE raw."floor_clean_{entity.name}" AS SELECT {picked} FROM '
                       f'(SELECT {cells} FROM raw."floor_{entity.name}" WHERE {castable} AND {keys}) GROUP BY {group}')
