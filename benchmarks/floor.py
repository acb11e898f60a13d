"""The floor every benchmark compares with: DuckDB alone loading the same CSV files into typed tables."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import duckdb

from retailflow.backends import Backend
from retailflow.model import ENTITIES, Entity, entity_for_file
from retailflow.quality.context import with_typed
from retailflow.sources import parsing


def floor_seconds(files: list[Path]) -> float:
    """Seconds DuckDB takes to CREATE TABLE AS SELECT * FROM read_csv(file) for every file.

    Types are auto-detected as a user would get them; the planted bad values (an impossible
    date, say) would abort that load, so rows that do not fit the detected types are skipped.
    """
    with tempfile.TemporaryDirectory(prefix="retailflow-floor-") as folder:
        connection = duckdb.connect(str(Path(folder) / "floor.duckdb"))
        started = time.perf_counter()
        for index, path in enumerate(files):
            source = str(path).replace("'", "''")
            connection.execute(f"CREATE TABLE t{index} AS SELECT * FROM read_csv('{source}', ignore_errors = true)")
        seconds = time.perf_counter() - started
        connection.close()
        return seconds


def create_floor_tables(backend: Backend, files: list[Path]) -> dict[str, list[tuple[Path, list[str]]]]:
    """For a server engine's floor: per entity a text table raw.floor_<entity> with every column any of its files has
    (extra, denormalised columns too) and a typed, keyed staging.floor_<entity>; returns (file, header) by entity."""
    by_entity: dict[str, list[tuple[Path, list[str]]]] = {}
    for path in files:
        by_entity.setdefault(entity_for_file(path).name, []).append((path, parsing.read_header(path)))
    for entity_name, entity_files in by_entity.items():
        entity = ENTITIES[entity_name]
        names = dict.fromkeys(column for _, header in entity_files for column in header)
        columns = ", ".join(f'"{column}" VARCHAR' for column in names)
        backend.execute(f'CREATE TABLE raw."floor_{entity_name}" ({columns})')
        typed = ", ".join(f'"{column.name}" {column.sql_type}' for column in entity.columns)
        keys = ", ".join(f'"{key}"' for key in entity.primary_key)
        backend.execute(f'CREATE TABLE staging."floor_{entity_name}" ({typed}, PRIMARY KEY ({keys}))')
    return by_entity


def keep_castable_rows(backend: Backend, entity: Entity) -> None:
    """raw.floor_clean_<entity>: the trimmed cells of raw.floor_<entity> that the server's casts accept, one row
    per key (a server floor's untimed preparation)."""
    backend.refresh_statistics(backend.qualified("raw", f"floor_{entity.name}"))
    typed = with_typed(backend, entity, backend.raw_table("raw", f"floor_{entity.name}"))
    castable = [typed[f"_t_{column.name}"].isnull() | typed[f"_v_{column.name}"].notnull() for column in entity.columns]
    keys = [typed[f"_t_{key}"] for key in entity.primary_key]
    rows = typed.filter(*castable, *[key.notnull() for key in keys])
    # One row per key: each other cell is the largest of its key's (castable all the same).
    rows = rows.group_by([rows[f"_t_{key}"].name(key) for key in entity.primary_key]).aggregate(
        **{column.name: rows[f"_t_{column.name}"].max() for column in entity.columns
           if column.name not in entity.primary_key})
    backend.execute_built(f"CREATE TABLE {backend.qualified('raw', f'floor_clean_{entity.name}')} AS "
                          f"{backend.compile(rows)}")
