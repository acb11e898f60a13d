"""`retailflow watch` latency: a day's files renamed into the landing folder until they are loaded, as JSON.

    python benchmarks/watch.py [--line-items-per-day 10000] [--days 5] [--interval 1]

Masters and a first day are loaded with `retailflow run`; then a watcher runs (`--interval`, DuckDB) and
each next day's files (headers, line items, inventory) are written aside and renamed in together. The
latency of a day is from the rename until the watcher has moved its files to --processed, which it does
once their single pass (ingest + validate) has committed: the day is staged. The analytics of the day run
after that; the watcher's batch lines (in the JSON) give the whole batch. Median over the days.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RETAILFLOW = Path(sys.executable).with_name("retailflow")
MASTERS = ("stores.csv", "products.csv", "customer_details.csv", "promotion_details.csv", "loyalty_rules.csv")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--line-items-per-day", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=5, help="days timed (after a first day loaded by run)")
    parser.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args()
    from retailflow.generate import GeneratorOptions, generate_dataset

    with tempfile.TemporaryDirectory(prefix="retailflow-bench-") as folder:
        scratch = Path(folder)
        data, landing, done, first = (scratch / name for name in ("data", "landing", "done", "first"))
        days = max(7, args.days + 1)
        generate_dataset(data, GeneratorOptions(line_items=args.line_items_per_day * days, days=days))
        day_files = [sorted(data.glob(f"*_{day}.csv")) for day in
                     sorted({path.stem.rsplit("_", 1)[1] for path in data.glob("store_sales_header_*.csv")})]
        first.mkdir()
        for path in [data / name for name in MASTERS] + day_files[0]:
            shutil.copy(path, first)
        database = f"duckdb:///{scratch}/watch.duckdb"
        subprocess.run([str(RETAILFLOW), "--db", database, "-q", "run", str(first)], check=True,
                       capture_output=True)
        landing.mkdir()
        watcher = subprocess.Popen([str(RETAILFLOW), "--db", database, "watch", str(landing), "--interval",
                                    str(args.interval), "--processed", str(done)], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, env={**os.environ, "COLUMNS": "200"})
        watcher.stdout.readline()  # "watching …": the watcher is up
        latencies, load, batches = [], [], []
        try:
            for files in day_files[1:args.days + 1]:
                for path in files:
                    shutil.copy(path, scratch / path.name)
                load.append(round(os.getloadavg()[0], 2))
                landed = time.perf_counter()
                for path in files:
                    os.replace(scratch / path.name, landing / path.name)
                while not all((done / path.name).exists() for path in files):
                    if watcher.poll() is not None:
                        raise SystemExit(f"the watcher ended: {watcher.stderr.read()[-2000:]}")
                    time.sleep(0.02)
                latencies.append(round(time.perf_counter() - landed, 2))
                # Days land a day apart: the next waits until this one's analytics are done too.
                line = ""
                while not line.startswith("batch "):
                    line = watcher.stdout.readline()
                batches.append(line.strip())
        finally:
            watcher.terminate()
            watcher.wait(timeout=120)
        line_items = sum(path.read_text().count("\n") - 1 for path in done.glob("store_sales_line_items_*.csv"))
        print(json.dumps({"engine": "duckdb", "interval": args.interval, "days": len(latencies),
                          "line_items_per_day": round(line_items / max(1, len(latencies))),
                          "latency_seconds": latencies, "median_latency_seconds": statistics.median(latencies),
                          "target_met": statistics.median(latencies) <= 5.0, "load_average": load, "batches": batches}))


if __name__ == "__main__":
    main()
