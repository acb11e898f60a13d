"""A nightly run: one day's files on a database that holds the history, printed as one JSON object.

    python benchmarks/daily.py [--line-items 1000000] [--days 90] [--stores 50] [--products 2000] [--data DIR] [--db URL]
                               [--day-memory-limit 700MB]

Generates `--days` days (or reuses --data), loads every day but the last with `run`, then times the
last day's `run` twice, each in a fresh process as a scheduler starts it: once on that history,
once on a database holding only the masters; then the same day restated on the history (its sales
re-sent with one transaction 1.00 dearer, `run --restate`). Seconds per stage, total and peak RSS of
each day run; `ratio_history_to_masters` is what the history costs the night (1.0: nothing) and
`ratio_restated_to_day` what a restatement costs against a normal night. Compiled SQL
is cached in a folder of this run (RETAILFLOW_CACHE_DIR), warmed by the history load, as on a
machine that ran yesterday too. `--db` names a PostgreSQL or MySQL server (a database per run,
dropped afterwards); default DuckDB files.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from ingest_validate import drop_database

DAY_FILE = re.compile(r"_(\d{4}-\d{2}-\d{2})\.(csv|parquet)$")


def run_files(url: str, files: list[Path], analytics: bool = True, restate: bool = False) -> dict:
    """`run` of files on url in this process (ingest + validate only without analytics; `restate`: as
    corrected days): seconds per stage and the process's peak RSS."""
    from retailflow.backends import connect
    from retailflow.ingest import discover
    from retailflow.pipeline import PipelineResult, run_pipeline
    from retailflow.quality.rules import load_rules
    from retailflow.running import load_and_validate

    started = time.perf_counter()
    backend = connect(url)
    try:
        connected = time.perf_counter() - started
        if analytics:
            result = run_pipeline(backend, files, load_rules(), restate=restate)
        else:
            result = PipelineResult(*load_and_validate(backend, discover(files), load_rules()))
    finally:
        backend.close()
    seconds = {"connect": connected, **result.seconds}
    return {"seconds": {stage: round(value, 3) for stage, value in seconds.items()},
            "total_seconds": round(time.perf_counter() - started, 3),
            "line_items": sum(r.rows for r in result.ingested if r.entity == "store_sales_line_items"),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def in_child(url: str, files: list[Path], env: dict[str, str], analytics: bool = True, restate: bool = False) -> dict:
    """run_files in a fresh Python process (imports and connection included, as a nightly job pays them)."""
    mode = "--child-restate" if restate else "--child" if analytics else "--child-load"
    command = [sys.executable, __file__, mode, url, *map(str, files)]
    output = subprocess.run(command, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(output.strip().splitlines()[-1])


def corrected(files: list[Path], folder: Path) -> list[Path]:
    """The day's sales files with the first transaction 1.00 dearer (its total and its first line)."""
    folder.mkdir(parents=True, exist_ok=True)
    sales = [path for path in files if "sales" in path.name]
    changed = None
    out = []
    for path in sorted(sales):  # headers first: store_sales_header sorts before store_sales_line_items
        with path.open(newline="", encoding="utf-8") as handle:
            header, *rows = list(csv.reader(handle))
        column = header.index("total_amount" if "header" in path.name else "line_item_amount")
        key = header.index("transaction_id")
        changed = changed or rows[0][key]
        row = next(row for row in rows if row[key] == changed)
        row[column] = f"{float(row[column]) + 1:.2f}"
        with (folder / path.name).open("w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows([header, *rows])
        out.append(folder / path.name)
    return out


def split_days(data: Path) -> tuple[list[Path], dict[str, list[Path]]]:
    """The master files, and the dated files by day."""
    masters, days = [], {}
    for path in sorted(p for p in data.iterdir() if p.is_file() and p.suffix in (".csv", ".parquet")):
        match = DAY_FILE.search(path.name)
        if match:
            days.setdefault(match.group(1), []).append(path)
        else:
            masters.append(path)
    return masters, dict(sorted(days.items()))


class Databases:
    """Fresh database URLs on one engine, dropped at the end."""

    def __init__(self, server: str | None, scratch: Path) -> None:
        self.server, self.scratch, self.made = server, scratch, []

    def new(self, label: str) -> str:
        if self.server is None:
            return f"duckdb:///{self.scratch}/{label}.duckdb"
        name = f"rf_bench_{uuid.uuid4().hex[:8]}"
        self.made.append(name)
        return f"{self.server}/{name}"

    def drop(self) -> None:
        for name in self.made:
            drop_database(self.server, name)


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] in ("--child", "--child-load", "--child-restate"):
        print(json.dumps(run_files(sys.argv[2], [Path(name) for name in sys.argv[3:]], sys.argv[1] != "--child-load",
                                   sys.argv[1] == "--child-restate")))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--line-items", type=int, default=1_000_000, help="line items over all days")
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--stores", type=int, default=50)
    parser.add_argument("--products", type=int, default=2000)
    parser.add_argument("--data", type=Path, help="a generated folder to reuse (one file per day)")
    parser.add_argument("--db", help="a PostgreSQL or MySQL server URL (default: DuckDB files)")
    parser.add_argument("--day-memory-limit", help="RETAILFLOW_DUCKDB_MEMORY_LIMIT for the day runs alone (e.g. 700MB); "
                        "the history load keeps the default")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="retailflow-daily-") as folder:
        scratch = Path(folder)
        data = args.data
        if data is None:
            from retailflow.generate import GeneratorOptions, generate_dataset

            data = scratch / "data"
            generate_dataset(data, GeneratorOptions(line_items=args.line_items, days=args.days, stores=args.stores,
                                                    products=args.products))
        masters, days = split_days(data)
        *history_days, last_day = days
        env = {**os.environ, "RETAILFLOW_CACHE_DIR": str(scratch / "sql-cache"), "RETAILFLOW_QUIET": "1"}
        databases = Databases(args.db.rsplit("/", 1)[0] if args.db else None, scratch)
        try:
            on_history = databases.new("history")
            history = in_child(on_history, masters + [path for day in history_days for path in days[day]], env)
            day_env = {**env, "RETAILFLOW_DUCKDB_MEMORY_LIMIT": args.day_memory_limit} if args.day_memory_limit else env
            day_on_history = in_child(on_history, days[last_day], day_env)
            restated = in_child(on_history, corrected(days[last_day], scratch / "restated"), day_env, restate=True)
            on_masters = databases.new("masters")
            in_child(on_masters, masters, env, analytics=False)
            day_on_masters = in_child(on_masters, days[last_day], day_env)
        finally:
            databases.drop()
    print(json.dumps({
        "engine": (args.db or "duckdb").split(":", 1)[0], "day": last_day, "history_days": len(history_days),
        "day_memory_limit": args.day_memory_limit or "default",
        "history_line_items": history["line_items"], "history_load_seconds": history["total_seconds"],
        "day_on_history": day_on_history, "day_on_masters": day_on_masters,
        "ratio_history_to_masters": round(day_on_history["total_seconds"] / day_on_masters["total_seconds"], 2),
        "restated_day_on_history": restated,
        "ratio_restated_to_day": round(restated["total_seconds"] / day_on_history["total_seconds"], 2),
        "load_average": os.getloadavg()[0],
    }))


if __name__ == "__main__":
    main()
