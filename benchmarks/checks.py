"""The completeness and volume checks on generated incidents: precision and recall, and a night's cost of the
checks against the night's run, printed as one JSON object.

    python benchmarks/checks.py [--line-items 1000000] [--days 90] [--stores 50] [--products 2000] [--seed 7]
                                [--nights 3] [--data DIR] [--wait-quiet]

Generates `--days` days with `--incidents` (or reuses --data), runs every day but the last two with `run` on a
new DuckDB file and checks it, then the day before the last as a night (compiling and caching a night's SQL, as
yesterday's run does). Then, `--nights` times on a copy of that file, a fresh process (as a scheduler starts one)
runs the last day with `run` and the checks after it: the medians of both and their ratio (the target is at most
0.10). Last, the late files arrive a night later (`run` of _late/ and the checks), and the
open findings are scored against _truth/incidents.csv: a finding counts once per check, store and day; the
holiday and the promotion day must have none. With --wait-quiet each night waits until the other processes
use under a sixth of a core (at most 15 minutes); the load average before and after is printed either way.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_RATIO = 0.10
QUIET_SHARE, QUIET_WAIT, QUIET_WINDOW = 0.15, 900, 2.0


def busy_seconds() -> float:
    """CPU seconds the whole machine has been busy since it started (Linux's /proc/stat; 0 elsewhere)."""
    stat = Path("/proc/stat")
    if not stat.exists():
        return 0.0
    ticks = [int(value) for value in stat.read_text().splitlines()[0].split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def wait_for_quiet() -> None:
    """Wait until the machine's other processes use under QUIET_SHARE of a core over QUIET_WINDOW seconds."""
    deadline = time.monotonic() + QUIET_WAIT
    while time.monotonic() < deadline:
        before = busy_seconds()
        time.sleep(QUIET_WINDOW)
        if (busy_seconds() - before) / QUIET_WINDOW < QUIET_SHARE:
            return


def day_files(data: Path) -> tuple[list[Path], list[Path], list[Path], list[Path]]:
    """The masters and every day's files but the last two, the day before the last's, the last day's, and the late
    files."""
    inputs = sorted(path for path in data.glob("*.csv") if not path.name.startswith("_"))
    before_last, last = sorted({path.stem[-10:] for path in inputs if path.stem[-10:-8] == "20"})[-2:]
    history = [path for path in inputs if not path.stem.endswith((before_last, last))]
    return (history, [path for path in inputs if path.stem.endswith(before_last)],
            [path for path in inputs if path.stem.endswith(last)], sorted((data / "_late").glob("*.csv")))


def settings_for(data: Path):
    from retailflow.checks.settings import ChecksSettings, read_holidays

    return ChecksSettings(holidays=read_holidays(data / "_holidays.csv"))


def night(database: str, data: Path, files: list[Path]) -> dict:
    """`run` of `files` then the checks, in this process: the seconds of each (connecting counted in the run)."""
    from retailflow.backends import connect
    from retailflow.checks import run_checks
    from retailflow.pipeline import run_pipeline
    from retailflow.quality.rules import load_rules

    started = time.perf_counter()
    backend = connect(f"duckdb:///{database}")
    try:
        run_pipeline(backend, files, load_rules())
        ran = time.perf_counter() - started
        outcome = run_checks(backend, settings=settings_for(data))
    finally:
        backend.close()
    return {"run_seconds": round(ran, 3), "checks_seconds": round(outcome.seconds, 3),
            "days_recomputed": outcome.days_recomputed}


def in_child(database: Path, data: Path, files: list[Path]) -> dict:
    command = [sys.executable, __file__, "--child-night", str(database), str(data), *map(str, files)]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--line-items", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--stores", type=int, default=50)
    parser.add_argument("--products", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--nights", type=int, default=3)
    parser.add_argument("--data", type=Path)
    parser.add_argument("--wait-quiet", action="store_true")
    arguments = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="rf-checks-bench-"))
    # Compiled SQL cached for this benchmark: the history warms it, as the nights before warm a real one.
    os.environ["RETAILFLOW_CACHE_DIR"] = str(folder / "sql-cache")
    try:
        print(json.dumps(measure(arguments, folder)))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def measure(arguments: argparse.Namespace, folder: Path) -> dict:
    from retailflow.backends import connect
    from retailflow.checks import run_checks
    from retailflow.generate import GeneratorOptions, generate_dataset
    from retailflow.generate.incidents import evaluate
    from retailflow.pipeline import run_pipeline
    from retailflow.quality.rules import load_rules

    load_before = os.getloadavg()
    data = arguments.data
    if data is None:
        data = folder / "data"
        generate_dataset(data, GeneratorOptions(seed=arguments.seed, stores=arguments.stores, days=arguments.days,
                                                products=arguments.products, line_items=arguments.line_items,
                                                incidents=True))
    history_files, day_before, last_day, late = day_files(data)
    history = folder / "history.duckdb"
    backend = connect(f"duckdb:///{history}")
    try:
        started = time.perf_counter()
        run_pipeline(backend, history_files, load_rules())
        history_seconds = time.perf_counter() - started
        full = run_checks(backend, settings=settings_for(data))
    finally:
        backend.close()
    # The night before the measured ones: the compiled SQL of a night's statements is cached, as yesterday's run
    # left it on a machine that runs every night.
    before = in_child(history, data, day_before)
    nights = []
    for _ in range(arguments.nights):
        if arguments.wait_quiet:
            wait_for_quiet()
        copy = folder / "night.duckdb"
        shutil.copyfile(history, copy)
        nights.append(in_child(copy, data, last_day))
    backend = connect(f"duckdb:///{copy}")
    try:
        run_pipeline(backend, late, load_rules())
        final = run_checks(backend, settings=settings_for(data))
        line_items = int(backend.scalar("SELECT count(*) FROM staging.store_sales_line_items"))
    finally:
        backend.close()
    with open(data / "_truth" / "incidents.csv", newline="") as handle:
        truth = list(csv.DictReader(handle))
    scores = evaluate([(finding.check, finding.store_id, finding.business_date.isoformat())
                       for finding in final.findings], truth)
    run_seconds = statistics.median(night["run_seconds"] for night in nights)
    checks_seconds = statistics.median(night["checks_seconds"] for night in nights)
    ratio = round(checks_seconds / run_seconds, 4)
    return {
        "line_items_staged": line_items, "stores": arguments.stores, "days": arguments.days,
        **{key: scores[key] for key in ("precision", "recall", "findings", "incidents", "missed", "false")},
        "history_run_seconds": round(history_seconds, 3), "checks_full_seconds": round(full.seconds, 3),
        "night_before": before, "nights": nights, "night_run_seconds": run_seconds,
        "night_checks_seconds": checks_seconds,
        "ratio_checks_to_run": ratio, "target_ratio": TARGET_RATIO,
        "targets_met": ratio <= TARGET_RATIO and scores["recall"] == 1.0 and scores["precision"] >= 0.95,
        "load_average_before": [round(value, 2) for value in load_before],
        "load_average_after": [round(value, 2) for value in os.getloadavg()],
    }


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child-night":
        print(json.dumps(night(sys.argv[2], Path(sys.argv[3]), [Path(path) for path in sys.argv[4:]])))
    else:
        main()
