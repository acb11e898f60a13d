"""Command start-up: wall seconds of whole `retailflow` processes, printed as one JSON object.

    python benchmarks/startup.py [--runs 5]

Times `retailflow --help` and `retailflow reconcile` on an empty DuckDB file (a real connection,
schemas created, nothing to reconcile), each as a fresh process after one warm-up run, and gives
the median and the range. The floor beside them is a bare `python -c pass` of the same
interpreter: what no command can go below. Targets: --help <= 0.4 s, empty reconcile <= 1.0 s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RETAILFLOW = Path(sys.executable).with_name("retailflow")


def timed(command: list[str], runs: int) -> dict:
    """Median, min and max wall seconds of `runs` runs of command, after one warm-up."""
    seconds = []
    for run in range(runs + 1):
        started = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if run:
            seconds.append(time.perf_counter() - started)
    return {"median": round(statistics.median(seconds), 3), "min": round(min(seconds), 3),
            "max": round(max(seconds), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="counted runs of each command")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="retailflow-startup-") as folder:
        database = f"duckdb:///{folder}/empty.duckdb"
        result = {
            "python_floor_seconds": timed([sys.executable, "-c", "pass"], args.runs),
            "help_seconds": timed([str(RETAILFLOW), "--help"], args.runs),
            "reconcile_empty_seconds": timed([str(RETAILFLOW), "--db", database, "reconcile"], args.runs),
        }
    result["targets_met"] = (result["help_seconds"]["median"] <= 0.4
                             and result["reconcile_empty_seconds"]["median"] <= 1.0)
    result["runs"], result["load_average"] = args.runs, os.getloadavg()[0]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
