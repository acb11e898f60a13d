"""retailflow on a real (local) standalone Spark cluster against Spark's own floor, printed as one JSON object.

    python benchmarks/spark.py [--line-items 20000] [--data DIR] [--workers 2]

Starts a standalone master and one-core workers on 127.0.0.1 with PySpark's own launcher (spark_processes.py,
as the tests do), generates the data (or takes --data), and on that cluster measures:

- Spark's floor, the two writes retailflow must persist, through Spark alone: every file read as text (every
  column a string, as the raw tables keep them) and written, with its `_source_file`, into a raw Parquet table
  per entity; then every file read typed (the entity's columns as their types, a cell that does not parse
  becomes NULL) and written into a typed Parquet table per entity. No checks, rules, lineage numbering, keys or
  quarantine. Best of --floor-runs (the first warms the JVM up); the session's start is reported apart.
- retailflow's whole `run` (run_pipeline) on an empty warehouse on the same cluster, with ingest + validate (up
  to the first stage after them) timed inside it; the backend's connect (session start, schemas) apart.

Ratios: ingest + validate / floor and run / floor. The load average is printed: the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from spark_processes import standalone_cluster

from retailflow.backends import connect
from retailflow.generate import GeneratorOptions, generate_dataset
from retailflow.ingest import discover
from retailflow.model import ENTITIES, entity_for_file
from retailflow.pipeline import run_pipeline
from retailflow.quality.rules import load_rules
from retailflow.running import StageListener
from retailflow.sources import parsing

#: Spark's types for the model's SQL types (VARCHAR has no length in Spark's DDL: STRING).
SPARK_TYPES = {"VARCHAR": "STRING"}


class StageStarts(StageListener):
    """When each stage started (perf_counter)."""

    def __init__(self) -> None:
        self.started: dict[str, float] = {}

    def stage_started(self, name: str, files: Sequence[Path] = ()) -> None:
        self.started.setdefault(name, time.perf_counter())


def _file_groups(files: list[Path]) -> dict[str, dict[tuple[str, ...], list[str]]]:
    """Per entity, the files by header (one CSV read per header: Spark reads columns by position)."""
    groups: dict[str, dict[tuple[str, ...], list[str]]] = {}
    for path in files:
        entity = entity_for_file(path)
        if entity is not None:
            header = tuple(parsing.read_header(path))
            groups.setdefault(entity.name, {}).setdefault(header, []).append(str(path))
    return groups


def _ddl(header: Sequence[str], types: dict[str, str]) -> str:
    return ", ".join(f"`{column}` {types.get(column, 'STRING')}" for column in header)


def spark_floor_seconds(session, files: list[Path]) -> dict[str, float]:
    """Seconds of Spark's two writes of `files` (see the module's docstring) in `session`'s catalog."""
    from pyspark.sql import functions as F

    groups = _file_groups(files)
    for schema in ("floor_raw", "floor_staging"):
        session.sql(f"DROP DATABASE IF EXISTS {schema} CASCADE")
        session.sql(f"CREATE DATABASE {schema}")

    def write(schema: str, entity_name: str, typed: bool) -> None:
        entity = ENTITIES[entity_name]
        types = ({column.name: SPARK_TYPES.get(column.sql_type, column.sql_type) for column in entity.columns}
                 if typed else {})
        frames = []
        for header, paths in groups[entity_name].items():
            frame = session.read.csv(paths, schema=_ddl(header, types), header=True, quote='"', escape='"',
                                     mode="PERMISSIVE", timestampFormat="yyyy-MM-dd[ HH:mm[:ss]]")
            if typed:
                frame = frame.select(*[F.col(column.name) if column.name in header
                                       else F.lit(None).cast(types[column.name]).alias(column.name)
                                       for column in entity.columns])
            else:
                frame = frame.withColumn("_source_file", F.col("_metadata.file_name"))
            frames.append(frame)
        result = frames[0]
        for frame in frames[1:]:
            result = result.unionByName(frame, allowMissingColumns=True)
        result.write.mode("overwrite").format("parquet").saveAsTable(f"{schema}.`{entity_name}`")

    started = time.perf_counter()
    for entity_name in groups:
        write("floor_raw", entity_name, typed=False)
    text = time.perf_counter() - started
    started = time.perf_counter()
    for entity_name in groups:
        write("floor_staging", entity_name, typed=True)
    typed = time.perf_counter() - started
    return {"text_seconds": text, "typed_seconds": typed, "seconds": text + typed}


def floor_on_cluster(cluster, scratch: Path, files: list[Path], runs: int) -> dict:
    """Spark's floor in a session of its own on the cluster (catalog in memory): its start, then the best run."""
    from pyspark.sql import SparkSession

    started = time.perf_counter()
    builder = SparkSession.builder.master(cluster.master).appName("retailflow-floor")
    for name, value in {**cluster.settings(), "spark.sql.catalogImplementation": "in-memory",
                        "spark.sql.warehouse.dir": str(scratch / "floor-warehouse"), "spark.ui.enabled": "false",
                        "spark.ui.showConsoleProgress": "false"}.items():
        builder = builder.config(name, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    session.sql("SELECT 1").collect()
    session_start = time.perf_counter() - started
    try:
        measured = [spark_floor_seconds(session, files) for _ in range(runs)]
    finally:
        session.stop()
    best = min(measured, key=lambda run: run["seconds"])
    return {"session_start_seconds": session_start, **best, "all_seconds": [run["seconds"] for run in measured]}


def retailflow_on_cluster(cluster, warehouse: Path, data: Path) -> dict:
    """A whole run of `data` on an empty warehouse on the cluster; ingest + validate timed inside it."""
    started = time.perf_counter()
    backend = connect(cluster.url(warehouse))
    connected = time.perf_counter() - started
    starts = StageStarts()
    try:
        started = time.perf_counter()
        result = run_pipeline(backend, [data], load_rules(), listener=starts)
        finished = time.perf_counter()
    finally:
        backend.close()
    single_pass_end = min((at for name, at in starts.started.items() if name not in ("ingest", "validate")),
                          default=finished)
    return {
        "connect_seconds": connected,
        "ingest_seconds": result.seconds["ingest"],
        "ingest_validate_seconds": single_pass_end - started,
        "run_seconds": finished - started,
        "stage_seconds": {name: round(seconds, 2) for name, seconds in result.seconds.items()},
        "line_items": sum(item.rows for item in result.ingested if item.entity == "store_sales_line_items"),
        "rows_ingested": sum(item.rows for item in result.ingested),
        "blocked": list(result.blocked),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--line-items", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--stores", type=int, default=5)
    parser.add_argument("--products", type=int, default=200)
    parser.add_argument("--data", type=Path, help="reuse a generated folder")
    parser.add_argument("--workers", type=int, default=2, help="one-core workers of the local cluster")
    parser.add_argument("--floor-runs", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="copy the cluster's logs here")
    args = parser.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="retailflow-spark-bench-") as scratch_name:
        scratch = Path(scratch_name)
        data = args.data
        if data is None:
            data = scratch / "data"
            generate_dataset(data, GeneratorOptions(line_items=args.line_items, days=args.days, stores=args.stores,
                                                    products=args.products))
        files = [path for path, _ in discover([data])]
        input_bytes = sum(path.stat().st_size for path in files)
        started = time.perf_counter()
        try:
            with standalone_cluster(scratch / "cluster", args.workers) as cluster:
                cluster_start = time.perf_counter() - started
                floor = floor_on_cluster(cluster, scratch, files, args.floor_runs)
                ours = retailflow_on_cluster(cluster, scratch / "warehouse", data)
        finally:
            if args.keep:
                shutil.copytree(scratch / "cluster", args.keep, dirs_exist_ok=True)
    print(json.dumps({
        "line_items": ours["line_items"], "files": len(files),
        "input_bytes": input_bytes, "workers": args.workers,
        "cluster_start_seconds": round(cluster_start, 2),
        "floor_session_start_seconds": round(floor["session_start_seconds"], 2),
        "floor_text_seconds": round(floor["text_seconds"], 2), "floor_typed_seconds": round(floor["typed_seconds"], 2),
        "floor_seconds": round(floor["seconds"], 2), "floor_runs_seconds": [round(s, 2) for s in floor["all_seconds"]],
        "connect_seconds": round(ours["connect_seconds"], 2), "ingest_seconds": round(ours["ingest_seconds"], 2),
        "ingest_validate_seconds": round(ours["ingest_validate_seconds"], 2), "run_seconds": round(ours["run_seconds"], 2),
        "stage_seconds": ours["stage_seconds"], "blocked": ours["blocked"],
        "ratio_ingest_validate_to_floor": round(ours["ingest_validate_seconds"] / floor["seconds"], 1),
        "ratio_run_to_floor": round(ours["run_seconds"] / floor["seconds"], 1),
        "load_average": [round(value, 2) for value in (*load_before[:1], os.getloadavg()[0])],
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }))


if __name__ == "__main__":
    main()
