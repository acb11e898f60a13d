"""Ingest + validate throughput on one engine, printed as one JSON object.

    python benchmarks/ingest_validate.py --data DIR [--db URL]
    python benchmarks/ingest_validate.py --line-items 1000000 [--db URL]   # generates the data first

Also measures the floor: DuckDB alone loading the same CSV files into typed tables.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
import uuid
from pathlib import Path

import duckdb
import psycopg

from floor import floor_seconds
from retailflow.backends import connect
from retailflow.ingest import discover, ingest
from retailflow.quality.engine import route_all
from retailflow.quality.rules import load_rules


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="folder of input files")
    parser.add_argument("--line-items", type=int, default=1_000_000, help="generate this many line items")
    parser.add_argument("--db", default=None, help="database URL (default: a temporary DuckDB file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="retailflow-bench-") as scratch:
        data = args.data
        if data is None:
            from retailflow.generate import GeneratorOptions, generate_dataset

            data = Path(scratch) / "data"
            generate_dataset(data, GeneratorOptions(line_items=args.line_items, inventory=False))
        url, cleanup = args.db, None
        if url is None:
            url = f"duckdb:///{scratch}/bench.duckdb"
        elif url.startswith("postgres"):
            name = f"rf_bench_{uuid.uuid4().hex[:8]}"
            admin = url.rsplit("/", 1)[0] + "/postgres"
            url, cleanup = url.rsplit("/", 1)[0] + f"/{name}", (admin, name)
        files = [path for path, _ in discover([data])]
        line_files = [path for path in files if path.name.startswith("store_sales_line_items")]
        line_items = sum(int(duckdb.sql(f"SELECT count(*) FROM read_csv('{p}')").fetchone()[0]) for p in line_files)
        backend = connect(url)
        started = time.perf_counter()
        ingested = ingest(backend, discover([data]))
        ingest_seconds = time.perf_counter() - started
        started = time.perf_counter()
        outcome = route_all(backend, load_rules(), "validate")
        validate_seconds = time.perf_counter() - started
        backend.close()
        if cleanup:
            with psycopg.connect(cleanup[0], autocommit=True) as connection:
                connection.execute(f'DROP DATABASE IF EXISTS "{cleanup[1]}" WITH (FORCE)')
        floor = floor_seconds(files)
        total = ingest_seconds + validate_seconds
        print(json.dumps({
            "engine": url.split(":", 1)[0],
            "line_items": line_items,
            "rows_ingested": sum(result.rows for result in ingested),
            "input_bytes": sum(path.stat().st_size for path in files),
            "ingest_seconds": round(ingest_seconds, 2),
            "validate_seconds": round(validate_seconds, 2),
            "quarantined_rows": outcome.quarantined,
            "line_items_per_second": round(line_items / total),
            "floor_seconds": round(floor, 2),
            "ratio_to_floor": round(total / floor, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        }))


if __name__ == "__main__":
    main()
