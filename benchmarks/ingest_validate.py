"""retailflow against its engine's floor, the same files in the same run, printed as one JSON object.

    python benchmarks/ingest_validate.py --data DIR [--engine duckdb|postgres|mysql] [--shape daily|per-entity] [--runs N]
    python benchmarks/ingest_validate.py --line-items 1000000 [--db URL]   # generates the data first

The floor (floor.py, issue 30) is the engine itself doing the two writes retailflow must persist: every file
as text into a raw table, and the castable rows typed into a staging table with its primary key (DuckDB:
floor.duckdb_floor_seconds; PostgreSQL: postgres_floor.py, COPY; MariaDB / MySQL: mysql_floor.py, LOAD DATA).
Each run measures that floor, DuckDB's typed load alone (floor.floor_seconds, the older figure), then a whole
`run` (run_pipeline: ingest + validate, the single pass, then every nightly stage) on an empty database (a
PostgreSQL or MySQL URL names the server: every run creates and drops its own database), timing ingest +
validate (up to the first nightly stage, the single pass's commit included) and the whole run, and then
`retailflow promotions`, an analytics command with nothing new to do, in its own process. The best of each
figure over the runs is reported, with the load average, since a busy machine slows every figure.

`--shape per-entity` loads one file per entity: the generated daily files of each entity concatenated, the
header once.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import unquote, urlsplit

import psycopg
from floor import duckdb_floor_seconds, floor_seconds
from mysql_floor import mysql_floor_seconds
from postgres_floor import postgres_floor_seconds

from retailflow.backends import connect
from retailflow.ingest import discover
from retailflow.model import entity_for_file
from retailflow.pipeline import PipelineResult, run_pipeline
from retailflow.quality.rules import load_rules
from retailflow.running import StageListener, load_and_validate

#: The server each engine name stands for (tests/engines.py's defaults).
SERVERS = {"duckdb": None, "postgres": "postgresql://postgres@127.0.0.1:5432", "mysql": "mysql://root@127.0.0.1:3306"}
#: The targets of issue 30: ingest + validate and the whole run against the engine's floor.
TARGETS = {"duckdb": 1.3, "postgres": 1.5, "mysql": 3.0}
RUN_TARGET = 2.0
IDLE_COMMAND_TARGET = 0.5
IDLE_COMMAND = "promotions"
RETAILFLOW = Path(sys.executable).with_name("retailflow")


class StageStarts(StageListener):
    """When each stage started (perf_counter)."""

    def __init__(self) -> None:
        self.started: dict[str, float] = {}

    def stage_started(self, name: str, files: Sequence[Path] = ()) -> None:
        self.started.setdefault(name, time.perf_counter())


def timed_run(url: str, data: Path, single_pass: bool = False) -> dict:
    """A whole run of `data` into the empty database at `url`, then the idle analytics command; seconds. With
    `single_pass`, ingest + validate alone (the run's and the command's seconds are None)."""
    load_before = os.getloadavg()[0]
    backend = connect(url)
    starts = StageStarts()
    try:
        started = time.perf_counter()
        if single_pass:
            seconds: dict[str, float] = {}
            ingested, validated = load_and_validate(backend, discover([data]), load_rules(), seconds=seconds)
            result = PipelineResult(ingested, validated, seconds=seconds)
        else:
            result = run_pipeline(backend, [data], load_rules(), listener=starts)
        finished = time.perf_counter()
    finally:
        backend.close()
    if result.blocked:
        raise SystemExit("the checks blocked the run: " + "; ".join(result.blocked))
    # The single pass ends when the first stage after it starts (its commit included).
    single_pass_end = min((at for name, at in starts.started.items() if name not in ("ingest", "validate")),
                          default=finished)
    ingest_validate = single_pass_end - started
    idle = None
    if not single_pass:
        command = [str(RETAILFLOW), "--db", url, "--quiet", IDLE_COMMAND]
        command_started = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        idle = round(time.perf_counter() - command_started, 2)
    return {
        "ingest_seconds": round(result.seconds["ingest"], 2),
        "validate_seconds": round(ingest_validate - result.seconds["ingest"], 2),
        "ingest_validate_seconds": round(ingest_validate, 2),
        "run_seconds": None if single_pass else round(finished - started, 2),
        "stage_seconds": {name: round(seconds, 2) for name, seconds in result.seconds.items()
                          if name not in ("ingest", "validate")},
        "idle_command_seconds": idle,
        "rows_ingested": sum(item.rows for item in result.ingested),
        "line_items": sum(item.rows for item in result.ingested if item.entity == "store_sales_line_items"),
        "quarantined_rows": result.validated.quarantined,
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }


def run_on_fresh_database(url: str | None, scratch: Path, data: Path, run: int, single_pass: bool) -> dict:
    """One timed run on a new DuckDB file or a new PostgreSQL or MySQL database, dropped afterwards."""
    if url is None:
        return timed_run(f"duckdb:///{scratch}/bench{run}.duckdb", data, single_pass)
    if not url.startswith(("postgres", "mysql")):
        return timed_run(url, data, single_pass)
    server = server_of(url)
    name = f"rf_bench_{uuid.uuid4().hex[:8]}"
    try:
        return timed_run(f"{server}/{name}", data, single_pass)
    finally:
        drop_database(server, name)


def server_of(url: str) -> str:
    """The server part of a PostgreSQL or MySQL URL (the URL itself when it names no database)."""
    parts = urlsplit(url)
    return url.rsplit("/", 1)[0] if parts.path.strip("/") else url.rstrip("/")


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


def engine_floor(engine: str, url: str | None, files: list[Path]) -> dict[str, float]:
    """The engine's own two-write floor on `files`."""
    if engine == "postgres":
        return postgres_floor_seconds(files, server_of(url))
    if engine == "mysql":
        return mysql_floor_seconds(files, server_of(url))
    return duckdb_floor_seconds(files)


def one_file_per_entity(data: Path, folder: Path) -> Path:
    """`data`'s files concatenated per entity into `folder` (<entity>.csv, the header once, files in name order)."""
    folder.mkdir(parents=True)
    by_entity: dict[str, list[Path]] = {}
    for path, _ in discover([data]):
        by_entity.setdefault(entity_for_file(path).name, []).append(path)
    for entity_name, paths in by_entity.items():
        with (folder / f"{entity_name}.csv").open("wb") as merged:
            for index, path in enumerate(paths):
                with path.open("rb") as handle:
                    header = handle.readline()
                    if index == 0:
                        merged.write(header)
                    shutil.copyfileobj(handle, merged)
                    if merged.tell() and not _ends_with_newline(path):
                        merged.write(b"\n")
    return folder


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as handle:
        handle.seek(max(path.stat().st_size - 1, 0))
        return handle.read(1) in (b"\n", b"")


def engine_of(args: argparse.Namespace) -> tuple[str, str | None]:
    """The engine name and URL the options give (--db wins; --engine alone takes the local server)."""
    if args.db:
        scheme = args.db.split(":", 1)[0]
        engine = "postgres" if scheme.startswith("postgres") else "mysql" if scheme.startswith("mysql") else "duckdb"
        return engine, args.db
    return args.engine, SERVERS[args.engine]


def ratio(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 2) if denominator else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="folder of input files (as `retailflow generate` writes them)")
    parser.add_argument("--line-items", type=int, default=1_000_000, help="without --data: generate this many")
    parser.add_argument("--days", type=int, default=30, help="without --data: days of sales to generate")
    parser.add_argument("--stores", type=int, default=20, help="without --data: stores to generate")
    parser.add_argument("--products", type=int, default=300, help="without --data: products to generate")
    parser.add_argument("--engine", choices=sorted(SERVERS), default="duckdb", help="engine, on its local server")
    parser.add_argument("--db", default=None, help="database URL instead (a PostgreSQL or MySQL URL names the server)")
    parser.add_argument("--shape", choices=("daily", "per-entity"), default="daily",
                        help="the files as generated (one a day per fact) or one file per entity")
    parser.add_argument("--single-pass", action="store_true",
                        help="ingest + validate alone: no whole run, no idle command (a slow engine)")
    parser.add_argument("--runs", type=int, default=1, help="repeat on a fresh database; the best is reported")
    args = parser.parse_args()
    engine, url = engine_of(args)
    with tempfile.TemporaryDirectory(prefix="retailflow-bench-") as folder:
        scratch = Path(folder)
        data = args.data
        if data is None:
            from retailflow.generate import GeneratorOptions, generate_dataset

            data = scratch / "data"
            generate_dataset(data, GeneratorOptions(line_items=args.line_items, days=args.days, stores=args.stores,
                                                    products=args.products))
        if args.shape == "per-entity":
            data = one_file_per_entity(data, scratch / "per_entity")
        files = [path for path, _ in discover([data])]
        floors, typed_loads, runs = [], [], []
        for run in range(args.runs):
            floors.append(engine_floor(engine, url, files))
            typed_loads.append(floor_seconds(files))
            runs.append(run_on_fresh_database(url, scratch, data, run, args.single_pass))
        best = min(runs, key=lambda run: run["ingest_validate_seconds"])
        floor = min(floors, key=lambda floor: floor["seconds"])
        typed_load = min(typed_loads)
        whole_run = None if args.single_pass else min(run["run_seconds"] for run in runs)
        idle = None if args.single_pass else min(run["idle_command_seconds"] for run in runs)
        ratios = {"ratio_to_floor": ratio(best["ingest_validate_seconds"], floor["seconds"]),
                  "ratio_run_to_floor": None if whole_run is None else ratio(whole_run, floor["seconds"]),
                  "ratio_to_typed_load": ratio(best["ingest_validate_seconds"], typed_load)}
        print(json.dumps({
            "engine": engine, "shape": args.shape, "files": len(files),
            "input_bytes": sum(path.stat().st_size for path in files),
            **{key: value for key, value in best.items() if key not in ("run_seconds", "idle_command_seconds")},
            "run_seconds": whole_run, "idle_command": IDLE_COMMAND, "idle_command_seconds": idle,
            "line_items_per_second": round(best["line_items"] / best["ingest_validate_seconds"]),
            "floor": {key: round(value, 2) for key, value in floor.items()},
            "floor_seconds": round(floor["seconds"], 2),
            "typed_load_seconds": round(typed_load, 2),
            **ratios,
            "targets_met": {
                f"ingest_validate <= {TARGETS[engine]}x floor": ratios["ratio_to_floor"] <= TARGETS[engine],
                **({f"run <= {RUN_TARGET}x floor": ratios["ratio_run_to_floor"] <= RUN_TARGET,
                    f"{IDLE_COMMAND} after run <= {IDLE_COMMAND_TARGET} s": idle <= IDLE_COMMAND_TARGET}
                   if engine == "duckdb" and not args.single_pass else {}),
            },
            "runs": [{**{key: run[key] for key in ("ingest_validate_seconds", "run_seconds", "idle_command_seconds",
                                                   "load_average")},
                      "floor_seconds": round(floor_run["seconds"], 2), "typed_load_seconds": round(typed_run, 2),
                      # The same run's own ratio: on a busy machine the best of each figure may come from different runs.
                      "ratio_to_floor": ratio(run["ingest_validate_seconds"], floor_run["seconds"])}
                     for run, floor_run, typed_run in zip(runs, floors, typed_loads)],
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        }))


if __name__ == "__main__":
    main()
