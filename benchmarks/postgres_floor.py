"""PostgreSQL's own floor for ingest + validate: the least any pipeline writing raw and staging must do there.

For the same CSV files, in a scratch database on the same server, two timed steps: COPY every file
as it is into a text table (the bytes received once), and INSERT ... SELECT CAST(...) of every
castable row (one per key, picked beforehand, not timed) into a typed table with its primary key:
PostgreSQL's native casts, no shape checks, rules, lineage, quarantine or foreign keys. A lower
bound for any pipeline that writes raw and staging there, not a pipeline.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import psycopg

from floor import create_floor_tables
from retailflow.backends import connect
from retailflow.model import ENTITIES
from retailflow.quality.context import with_typed

COPY_CHUNK = 1 << 20


def postgres_floor_seconds(files: list[Path], server_url: str) -> dict[str, float]:
    """Seconds to COPY `files` into text tables and to cast-insert them into keyed tables, on the server at `server_url`."""
    name = f"rf_floor_{uuid.uuid4().hex[:8]}"
    backend = connect(f"{server_url}/{name}")
    connection = backend.ibis.con
    try:
        by_entity = create_floor_tables(backend, files)
        connection.commit()
        started = time.perf_counter()
        for entity_name, entity_files in by_entity.items():
            for path, header in entity_files:
                kept = ", ".join(f'"{column}"' for column in header)
                with connection.cursor() as cursor, cursor.copy(
                        f'COPY raw."floor_{entity_name}" ({kept}) FROM STDIN (FORMAT csv, HEADER true)') as copy:
                    with path.open("rb") as handle:
                        while chunk := handle.read(COPY_CHUNK):
                            copy.write(chunk)
        connection.commit()
        copied = time.perf_counter()
        for entity_name in by_entity:
            _keep_castable_rows(backend, ENTITIES[entity_name])
        connection.commit()
        cast_started = time.perf_counter()
        for entity_name in by_entity:
            entity = ENTITIES[entity_name]
            names = ", ".join(f'"{column.name}"' for column in entity.columns)
            casts = ", ".join(f'CAST("{column.name}" AS {column.sql_type})' for column in entity.columns)
            backend.execute(f'INSERT INTO staging."floor_{entity_name}" ({names}) '
                            f'SELECT {casts} FROM raw."floor_clean_{entity_name}"')
        connection.commit()
        finished = time.perf_counter()
        return {"copy_seconds": copied - started, "cast_keyed_insert_seconds": finished - cast_started,
                "seconds": (copied - started) + (finished - cast_started)}
    finally:
        backend.close()
        with psycopg.connect(f"{server_url}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _keep_castable_rows(backend, entity) -> None:
    """raw.floor_clean_<entity>: trimmed cells PostgreSQL's casts accept, one row per key (not timed)."""
    backend.refresh_statistics(f'raw."floor_{entity.name}"')
    typed = with_typed(backend, entity, backend.raw_table("raw", f"floor_{entity.name}"))
    castable = [typed[f"_t_{column.name}"].isnull() | typed[f"_v_{column.name}"].notnull() for column in entity.columns]
    keys = [typed[f"_t_{key}"] for key in entity.primary_key]
    rows = typed.filter(*castable, *[key.notnull() for key in keys])
    # One row per key: each other cell is the largest of its key's (castable all the same).
    rows = rows.group_by([rows[f"_t_{key}"].name(key) for key in entity.primary_key]).aggregate(
        **{column.name: rows[f"_t_{column.name}"].max() for column in entity.columns
           if column.name not in entity.primary_key})
    backend.execute(f'CREATE TABLE raw."floor_clean_{entity.name}" AS {backend.compile(rows)}')
