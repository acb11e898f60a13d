"""Ingest + validate throughput on one engine (the single pass of `run`), printed as one JSON object.

    python benchmarks/ingest_validate.py --data DIR [--db URL] [--runs N]
    python benchmarks/ingest_validate.py --line-items 1000000 [--db URL]   # generates the data first

Each run starts from an empty database (a PostgreSQL or MySQL URL names the server: every run
creates and drops its own database); the best run is reported, with the load average around
each run because a busy machine slows every figure. Also measures the floor: DuckDB alone
loading the same CSV files into typed tables; on PostgreSQL also PostgreSQL's own floor
(postgres_floor.py): COPY of the files plus a native-cast insert of the castable rows into
keyed tables, without any rule; on MySQL / MariaDB likewise its own (mysql_floor.py), with
LOAD DATA LOCAL INFILE.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import unquote, urlsplit

import duckdb
import psycopg
from floor import floor_seconds
from mysql_floor import mysql_floor_seconds
from postgres_floor import postgres_floor_seconds

from retailflow.backends import connect
from retailflow.ingest import discover
from retailflow.quality.rules import load_rules
from retailflow.stages import load_and_validate


def timed_run(url: str, data: Path) -> dict:
    """Ingest and validate `data` into the empty database at `url`; seconds and outcome."""
    load_before = os.getloadavg()[0]
    backend = connect(url)
    seconds: dict[str, float] = {}
    try:
        started = time.perf_counter()
        ingested, outcome = load_and_validate(backend, discover([data]), load_rules(), seconds=seconds)
        # The commit of the single pass (its one transaction) is part of the validation's cost.
        seconds["validate"] = time.perf_counter() - started - seconds["ingest"]
    finally:
        backend.close()
    return {
        "ingest_seconds": round(seconds["ingest"], 2), "validate_seconds": round(seconds["validate"], 2),
        "rows_ingested": sum(result.rows for result in ingested), "quarantined_rows": outcome.quarantined,
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }


def run_on_fresh_database(url: str | None, scratch: Path, data: Path, run: int) -> dict:
    """One timed run on a new DuckDB file or a new PostgreSQL or MySQL database, dropped afterwards."""
    if url is None:
        return timed_run(f"duckdb:///{scratch}/bench{run}.duckdb", data)
    if not url.startswith(("postgres", "mysql")):
        return timed_run(url, data)
    server = url.rsplit("/", 1)[0]
    name = f"rf_bench_{uuid.uuid4().hex[:8]}"
    try:
        return timed_run(f"{server}/{name}", data)
    finally:
        drop_database(server, name)


def drop_database(server: str, name: str) -> None:
    """Drop database `name` on the server; on MySQL also its per-schema databases (name_raw, ...)."""
    if server.startswith("postgres"):
        with psycopg.connect(f"{server}/postgres", autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        return
    import MySQLdb

    from retailflow.backends import mysql

    parts = urlsplit(server)
    connection = MySQLdb.connect(host=parts.hostname or "localhost", port=parts.port or 3306,
                                 user=unquote(parts.username or "root"), passwd=unquote(parts.password or ""))
    try:
        mysql.drop_database(connection.cursor(), name)
    finally:
        connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="folder of input files")
    parser.add_argument("--line-items", type=int, default=1_000_000, help="generate this many line items")
    parser.add_argument("--db", default=None, help="database URL (default: a temporary DuckDB file)")
    parser.add_argument("--runs", type=int, default=1, help="repeat on a fresh database; the best run is reported")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="retailflow-bench-") as folder:
        scratch = Path(folder)
        data = args.data
        if data is None:
            from retailflow.generate import GeneratorOptions, generate_dataset

            data = scratch / "data"
            generate_dataset(data, GeneratorOptions(line_items=args.line_items, inventory=False))
        files = [path for path, _ in discover([data])]
        line_files = [path for path in files if path.name.startswith("store_sales_line_items")]
        line_items = sum(int(duckdb.sql(f"SELECT count(*) FROM read_csv('{p}', quote = '\"', all_varchar = true)").fetchone()[0])
                         for p in line_files)
        runs = [run_on_fresh_database(args.db, scratch, data, run) for run in range(args.runs)]
        best = min(runs, key=lambda run: run["ingest_seconds"] + run["validate_seconds"])
        floor = floor_seconds(files)
        total = best["ingest_seconds"] + best["validate_seconds"]
        server_floor = {}
        for engine, server_floor_seconds in (("postgres", postgres_floor_seconds), ("mysql", mysql_floor_seconds)):
            if args.db and args.db.startswith(engine):
                seconds = server_floor_seconds(files, args.db.rsplit("/", 1)[0])
                server_floor = {f"{engine}_floor": {key: round(value, 2) for key, value in seconds.items()},
                                f"{engine}_floor_line_items_per_second": round(line_items / seconds["seconds"]),
                                f"ratio_to_{engine}_floor": round(total / seconds["seconds"], 1)}
        print(json.dumps({
            "engine": (args.db or "duckdb").split(":", 1)[0],
            "line_items": line_items,
            "input_bytes": sum(path.stat().st_size for path in files),
            **best,
            "line_items_per_second": round(line_items / total),
            "floor_seconds": round(floor, 2),
            "ratio_to_floor": round(total / floor, 1),
            **server_floor,
            "runs": [{key: run[key] for key in ("ingest_seconds", "validate_seconds", "load_average")} for run in runs],
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        }))


if __name__ == "__main__":
    main()
