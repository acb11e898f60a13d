"""The whole pipeline on N generated line items, printed as one JSON object.

    python benchmarks/pipeline.py [--line-items N] [--data DIR] [--db URL]

Seconds per stage (ingest, validate, each analytics stage, notify queueing, report), total,
peak RSS, and the floor: DuckDB alone loading the same CSV files into tables, in the same run.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

from floor import floor_seconds

from retailflow.backends import connect
from retailflow.generate import GeneratorOptions, generate_dataset
from retailflow.ingest import discover
from retailflow.pipeline import run_pipeline
from retailflow.quality.rules import load_rules
from retailflow.report.dashboard import build_report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--line-items", type=int, default=1_000_000)
    parser.add_argument("--data", type=Path, help="reuse a generated folder")
    parser.add_argument("--db", help="database URL (default: a temporary DuckDB file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="retailflow-pipeline-") as scratch:
        folder = Path(scratch)
        data = args.data
        if data is None:
            data = folder / "data"
            generate_dataset(data, GeneratorOptions(line_items=args.line_items, days=90, stores=50, products=2000))
        files = [path for path, _ in discover([data])]
        floor = floor_seconds(files)
        backend = connect(args.db or f"duckdb:///{folder}/bench.duckdb")
        started = time.perf_counter()
        result = run_pipeline(backend, [data], load_rules())
        report_started = time.perf_counter()
        report = build_report(backend, folder / "report.html")
        seconds = {**result.seconds, "report": time.perf_counter() - report_started}
        total = time.perf_counter() - started
        lines = sum(r.rows for r in result.ingested if r.entity == "store_sales_line_items")
        print(json.dumps({
            "line_items": lines, "input_bytes": sum(path.stat().st_size for path in files),
            "seconds": {stage: round(value, 2) for stage, value in seconds.items()},
            "total_seconds": round(total, 2), "floor_seconds": round(floor, 2), "ratio_to_floor": round(total / floor, 1),
            "report_mb": round(report.bytes / 1e6, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        }))


if __name__ == "__main__":
    main()
