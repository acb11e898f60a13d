"""`retailflow forget` on a loaded DuckDB database: seconds to erase N customers, beside the engine's floor.

    python benchmarks/forget.py --line-items 1000000 [--days 30] [--stores 20] [--products 300] [--customers 1 10000]
                                [--keep DIR]
    python benchmarks/forget.py --database FILE.duckdb [--customers 1 10000]   # a database built before

The database holds the whole loop (run_pipeline: staging, quarantine, analytics, loyalty, the outbox).
Each size erases that many customers (the first ids in staging) on its own copy of the database. The
floor is what any erasure must at least do: read every table holding a person's id joined with the
request's ids (one count per table, same engine, same copy, before the erasure). Printed as one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

from retailflow.backends import connect
from retailflow.generate import GeneratorOptions, generate_dataset
from retailflow.pipeline import run_pipeline
from retailflow.privacy import pseudonyms
from retailflow.privacy.forget import forget, person_tables
from retailflow.quality.rules import load_rules


def build(database: Path, options: GeneratorOptions, scratch: Path) -> float:
    """Generate the data `options` describe and run the whole loop into a new DuckDB file; seconds taken."""
    data = scratch / "data"
    generate_dataset(data, options)
    started = time.perf_counter()
    backend = connect(f"duckdb:///{database}")
    try:
        run_pipeline(backend, [data], load_rules())
    finally:
        backend.close()
    shutil.rmtree(data)
    return time.perf_counter() - started


def floor_seconds(backend, ids: list[str]) -> float:
    """Read every person table joined with the ids (the least an erasure reads)."""
    values = ", ".join(f"({backend.literal(person)})" for person in ids)
    backend.execute("CREATE OR REPLACE TEMPORARY TABLE floor_ids AS SELECT * FROM (VALUES " + values + ") v(original)")
    started = time.perf_counter()
    for table in person_tables(backend):
        qualified = backend.qualified(table.schema, table.name)
        backend.scalar(f"SELECT count(*) FROM {qualified} JOIN floor_ids "
                       f"ON {qualified}.{backend.quote(table.person)} = floor_ids.original")
    return time.perf_counter() - started


def erase(database: Path, copy: Path, customers: int) -> dict:
    shutil.copyfile(database, copy)
    backend = connect(f"duckdb:///{copy}")
    try:
        ids = [row[0] for row in backend.fetch(
            f"SELECT customer_id FROM staging.customer_details ORDER BY customer_id LIMIT {customers}")[1]]
        floor = floor_seconds(backend, ids)
        load_before = os.getloadavg()[0]
        started = time.perf_counter()
        result = forget(backend, ids, reason="benchmark")
        seconds = time.perf_counter() - started
    finally:
        backend.close()
        copy.unlink(missing_ok=True)
    return {"customers": len(result.erased), "seconds": round(seconds, 2), "floor_seconds": round(floor, 2),
            "ratio_to_floor": round(seconds / floor, 1), "rows_changed": sum(result.rows.values()),
            "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--line-items", type=int, default=1_000_000, help="generate this many line items")
    # The generator's defaults; a smoke run takes fewer (the inventory snapshots are stores x products x days).
    parser.add_argument("--days", type=int, default=30, help="days of sales to generate")
    parser.add_argument("--stores", type=int, default=20, help="stores to generate")
    parser.add_argument("--products", type=int, default=300, help="products to generate")
    parser.add_argument("--database", type=Path, help="a DuckDB file holding a loaded database (not changed)")
    parser.add_argument("--keep", type=Path, help="keep the database built here, for another run with --database")
    parser.add_argument("--customers", type=int, nargs="+", default=[1, 10_000], help="request sizes")
    args = parser.parse_args()
    os.environ.setdefault(pseudonyms.KEY_VARIABLE, "benchmark-key-0123456789")
    with tempfile.TemporaryDirectory(prefix="retailflow-bench-") as folder:
        scratch = Path(folder)
        database, build_seconds = args.database, None
        if database is None:
            database = args.keep or scratch / "loaded.duckdb"
            database.parent.mkdir(parents=True, exist_ok=True)
            options = GeneratorOptions(line_items=args.line_items, days=args.days, stores=args.stores,
                                       products=args.products)
            build_seconds = round(build(database, options, scratch), 1)
        source = connect(f"duckdb:///{database}")
        try:
            line_items = int(source.scalar("SELECT count(*) FROM staging.store_sales_line_items"))
            customers = int(source.scalar("SELECT count(*) FROM staging.customer_details"))
        finally:
            source.close()
        runs = [erase(database, scratch / "copy.duckdb", size) for size in args.customers]
        print(json.dumps({"engine": "duckdb", "staged_line_items": line_items, "staged_customers": customers,
                          "build_seconds": build_seconds, "runs": runs,
                          "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))


if __name__ == "__main__":
    main()
