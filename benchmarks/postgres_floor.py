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
from floor import cast_insert_sql, create_floor_tables, keep_castable_rows

from retailflow.backends import connect
from retailflow.model import ENTITIES

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
            keep_castable_rows(backend, ENTITIES[entity_name])
        connection.commit()
        cast_started = time.perf_counter()
        for entity_name in by_entity:
            backend.execute(cast_insert_sql(ENTITIES[entity_name]))
        connection.commit()
        finished = time.perf_counter()
        return {"copy_seconds": copied - started, "cast_keyed_insert_seconds": finished - cast_started,
                "seconds": (copied - started) + (finished - cast_started)}
    finally:
        backend.close()
        with psycopg.connect(f"{server_url}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
