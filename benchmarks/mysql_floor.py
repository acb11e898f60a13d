"""MariaDB's (or MySQL's) own floor for ingest + validate: the least any pipeline writing raw and staging must do there.

For the same CSV files, in a scratch database on the same server, two timed steps: LOAD DATA LOCAL
INFILE of every file as it is into a text table (the bytes received once), and INSERT ... SELECT
CAST(...) of every castable row (one per key, picked beforehand, not timed) into a typed table
with its primary key: the server's native casts, no shape checks, rules, lineage, quarantine or
foreign keys. A lower bound for any pipeline that writes raw and staging there, not a pipeline.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from floor import cast_insert_sql, create_floor_tables, keep_castable_rows

from retailflow.backends import connect
from retailflow.backends.mysql import drop_database
from retailflow.model import ENTITIES, Column


def cast_or_keep_text(column: Column) -> str:
    """A text column as it is; any other cast to its type."""
    return f'"{column.name}"' if column.type == "text" else f'CAST("{column.name}" AS {column.sql_type})'


def mysql_floor_seconds(files: list[Path], server_url: str) -> dict[str, float]:
    """Seconds to LOAD DATA `files` into text tables and to cast-insert them into keyed tables, on the server at `server_url`."""
    name = f"rf_floor_{uuid.uuid4().hex[:8]}"
    backend = connect(f"{server_url}/{name}")
    try:
        by_entity = create_floor_tables(backend, files)
        started = time.perf_counter()
        with backend.transaction():
            for entity_name, entity_files in by_entity.items():
                for path, header in entity_files:
                    kept = ", ".join(backend.quote(column) for column in header)
                    backend.execute_built(
                        f"LOAD DATA LOCAL INFILE {backend.literal(str(path))} "
                        f"INTO TABLE {backend.qualified('raw', f'floor_{entity_name}')} CHARACTER SET utf8mb4 "
                        "FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '' "
                        f"LINES TERMINATED BY '\\n' IGNORE 1 LINES ({kept})")
        copied = time.perf_counter()
        for entity_name in by_entity:
            keep_castable_rows(backend, ENTITIES[entity_name])
        cast_started = time.perf_counter()
        with backend.transaction():
            for entity_name in by_entity:
                backend.execute(cast_insert_sql(ENTITIES[entity_name], cast_or_keep_text))
        finished = time.perf_counter()
        return {"load_seconds": copied - started, "cast_keyed_insert_seconds": finished - cast_started,
                "seconds": (copied - started) + (finished - cast_started)}
    finally:
        with backend.ibis.con.cursor() as cursor:
            drop_database(cursor, name)
        backend.close()
