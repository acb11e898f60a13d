"""A year of sales without inventory snapshots against the same sales with them, `retailflow run` end to end,
printed as one JSON object.

    python benchmarks/no_inventory.py [--stores 300] [--products 20000] [--days 365] [--line-items 75000]
                                      [--with-products 60]

Generates the data twice with the generator of `retailflow generate` (its inventory switch,
GeneratorOptions.inventory): once without inventory files, once with them. The generator writes a
snapshot for every store × product × day, so with 300 stores, 20,000 products and 365 days the
inventory files alone would be 2.2 billion rows: the run with inventory keeps the stores, days and
line items and has --with-products products (default 60: 6.6M snapshot rows). Each `retailflow run`
runs in a fresh process on a new DuckDB file; the JSON gives its wall time, its seconds per stage
(from the run's timing lines), the in-stock cells promotions measured on, and
`ratio_without_to_with` (issue 27's target: at most 2). `load_average` is read before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from retailflow.backends import connect
from retailflow.generate import GeneratorOptions, generate_dataset

STAGE_LINE = re.compile(r"^\W*(?P<stage>[a-z][a-z ]*?)\s+(?P<seconds>\d+(?:\.\d+)?) s\s*$")


def run(data: Path, database: Path) -> dict:
    """`retailflow run data` in a fresh process on a new DuckDB file: wall time, seconds per stage, in-stock cells."""
    command = [sys.executable, "-m", "retailflow", "--db", f"duckdb:///{database}", "run", str(data)]
    started = time.perf_counter()
    output = subprocess.run(command, check=True, capture_output=True, text=True,
                            env={**os.environ, "COLUMNS": "200"}).stdout
    seconds = time.perf_counter() - started
    stages = {match["stage"]: float(match["seconds"]) for line in output.splitlines()
              if (match := STAGE_LINE.match(line)) and match["stage"] != "total"}
    backend = connect(f"duckdb:///{database}")
    try:
        cells = backend.scalar("SELECT coalesce(sum(cells), 0) FROM analytics.promotion_daily")
        lines = backend.scalar("SELECT count(*) FROM staging.store_sales_line_items")
        snapshots = backend.scalar("SELECT count(*) FROM staging.inventory_daily")
    finally:
        backend.close()
    return {"seconds": round(seconds, 2), "stages": stages, "staged_line_items": int(lines),
            "staged_snapshots": int(snapshots), "in_stock_cells": int(cells)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", type=int, default=300)
    parser.add_argument("--products", type=int, default=20_000, help="catalogue of the run without inventory")
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--line-items", type=int, default=75_000)
    parser.add_argument("--with-products", type=int, default=60, help="catalogue of the run with inventory")
    args = parser.parse_args()
    load_before = os.getloadavg()
    runs = {}
    with tempfile.TemporaryDirectory(prefix="retailflow-no-inventory-") as scratch:
        for name, products, inventory in (("without_inventory", args.products, False),
                                          ("with_inventory", args.with_products, True)):
            data = Path(scratch) / name
            options = GeneratorOptions(stores=args.stores, products=products, days=args.days,
                                       line_items=args.line_items, inventory=inventory)
            started = time.perf_counter()
            generated = generate_dataset(data, options)
            runs[name] = {"stores": args.stores, "products": products, "days": args.days,
                          "line_items": generated["line_items"],
                          "generate_seconds": round(time.perf_counter() - started, 1),
                          **run(data, Path(scratch) / f"{name}.duckdb")}
    ratio = runs["without_inventory"]["seconds"] / runs["with_inventory"]["seconds"]
    print(json.dumps({**runs, "ratio_without_to_with": round(ratio, 2),
                      "load_average": {"before": load_before[0], "after": os.getloadavg()[0]}}))


if __name__ == "__main__":
    main()
