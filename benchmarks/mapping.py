"""The same sales loaded in our contract and as a line-level export read through a source mapping, printed as one
JSON object.

    python benchmarks/mapping.py [--line-items 1000000] [--days 30] [--runs 3] [--wait-quiet]

Generates the data with the generator of `retailflow generate` (without anomalies: an export without a header
file cannot carry a header's own mistakes, such as a total that disagrees with its lines or a header sent twice,
so the two shapes would not stage the same rows), then writes the same sales with DuckDB as an online shop
exports them: one row per line under other names (InvoiceNo, StockCode, Quantity, InvoiceDate, UnitPrice,
CustomerID, StoreID), month-first dates, no header file, no line ids, no totals, no amount. UnitPrice is the
amount over the quantity with up to ten decimals; every row is checked to give its amount back as
round(Quantity * UnitPrice, 2), the mapping's expression. The export is written twice: one file per day, as
the generator writes, and one file for all days.

Each shape is timed with the single pass of `retailflow ingest --validate` (stages.load_and_validate) on a new
DuckDB file whose masters were loaded first, untimed. The rounds alternate the shapes. Reported: the median
and the best of the runs and the median of the process's CPU seconds, each as a ratio to the contract's (issue
28's target: the median, mapped / contract, at most 1.3); per run ingest and validate apart, the load average
around it and the CPU seconds other processes took meanwhile (on a shared machine they sway every figure:
--wait-quiet waits for them before each run and runs again a run they disturbed). The staged rows of the
shapes are then compared row for row.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

import duckdb

from retailflow.backends import connect
from retailflow.generate import GeneratorOptions, generate_dataset
from retailflow.ingest import discover
from retailflow.quality.rules import load_rules
from retailflow.running import load_and_validate
from retailflow.sources.mapping import load_sources

MAPPING = """\
sources:
  online_shop:
    files: "online_retail*.csv"
    feeds: sales_lines
    read:
      timestamp_format: "%m/%d/%Y %H:%M:%S"
    columns:
      transaction_id: InvoiceNo
      customer_id: CustomerID
      store_id: StoreID
      transaction_date: InvoiceDate
      product_id: StockCode
      quantity: Quantity
      line_item_amount: round(Quantity * UnitPrice, 2)
"""

#: The export's rows, from the generator's header and line files: the line's position in its day kept to order it.
EXPORT_SQL = """
CREATE TABLE export AS
SELECT h.transaction_id AS InvoiceNo, l.product_id AS StockCode, l.quantity AS Quantity,
       strftime(CAST(h.transaction_date AS TIMESTAMP), '%-m/%-d/%Y %-H:%M:%S') AS InvoiceDate,
       CAST(round(abs(CAST(l.line_item_amount AS DOUBLE) / CAST(l.quantity AS INTEGER)), 10) AS VARCHAR) AS UnitPrice,
       h.customer_id AS CustomerID, h.store_id AS StoreID,
       CAST(l.line_item_amount AS DECIMAL(18, 2)) AS amount,
       CAST(h.transaction_date AS DATE) AS day, CAST(l.line_item_id AS BIGINT) AS position
FROM read_csv({lines}, all_varchar = true) AS l JOIN read_csv({headers}, all_varchar = true) AS h USING (transaction_id)
"""
EXPORT_COLUMNS = "InvoiceNo, StockCode, Quantity, InvoiceDate, UnitPrice, CustomerID, StoreID"

#: --wait-quiet: a run counts when the other processes used under this share of a core during it (else it is run
#: again, up to RETRIES times); before each run, up to QUIET_WAIT seconds are waited for that, in windows of
#: QUIET_WINDOW seconds.
QUIET_SHARE, RETRIES, QUIET_WAIT, QUIET_WINDOW = 0.15, 3, 900, 2.0

#: Staged columns both shapes must agree on (the export has no line ids, promotions, types or returns' origins).
COMPARED = {"store_sales_header": "transaction_id, customer_id, store_id, transaction_date, total_amount",
            "store_sales_line_items": "transaction_id, product_id, quantity, line_item_amount"}


def write_exports(data: Path, daily: Path, one_file: Path) -> dict:
    """The generated sales as the online shop's export, per day into `daily` and all in `one_file`; what was
    written and how many rows' unit price does not give their amount back."""
    def files(prefix: str) -> str:
        return "[" + ", ".join(f"'{path}'" for path in sorted(data.glob(f"{prefix}_*.csv"))) + "]"

    connection = duckdb.connect()
    connection.execute(EXPORT_SQL.format(lines=files("store_sales_line_items"), headers=files("store_sales_header")))
    # What the mapping computes: both cells read as numbers (expressions.cell_sql), the product rounded.
    inexact = connection.execute(
        "SELECT count(*) FROM export WHERE CAST(round(TRY_CAST(Quantity AS DOUBLE) * TRY_CAST(UnitPrice AS DOUBLE), 2) "
        "AS DECIMAL(18, 2)) IS DISTINCT FROM amount").fetchone()[0]
    daily.mkdir()
    days = [row[0] for row in connection.execute("SELECT DISTINCT day FROM export ORDER BY day").fetchall()]
    for day in days:
        connection.execute(f"COPY (SELECT {EXPORT_COLUMNS} FROM export WHERE day = DATE '{day}' ORDER BY position) "
                           f"TO '{daily / f'online_retail_{day}.csv'}' (HEADER)")
    connection.execute(f"COPY (SELECT {EXPORT_COLUMNS} FROM export ORDER BY day, position) TO '{one_file}' (HEADER)")
    rows = connection.execute("SELECT count(*) FROM export").fetchone()[0]
    connection.close()
    return {"rows": rows, "daily_files": len(days), "unit_price_inexact_rows": inexact,
            "export_bytes": one_file.stat().st_size}


def timed_run(database: Path, masters: list, facts: list, wait_quiet: bool) -> dict:
    """The masters loaded and validated untimed, then the facts through the single pass, timed; with `wait_quiet`,
    once the machine's other processes are quiet."""
    backend = connect(f"duckdb:///{database}")
    rules = load_rules()
    seconds: dict[str, float] = {}
    try:
        load_and_validate(backend, masters, rules)
        if wait_quiet:
            wait_for_quiet()
        load_before, busy_before, cpu_before = os.getloadavg()[0], machine_busy_seconds(), cpu_seconds()
        started = time.perf_counter()
        _, outcome = load_and_validate(backend, facts, rules, seconds=seconds)
        total = time.perf_counter() - started
        cpu = cpu_seconds() - cpu_before
        others = machine_busy_seconds() - busy_before - cpu
        staged = {entity: int(backend.scalar(f"SELECT count(*) FROM staging.{entity}")) for entity in COMPARED}
    finally:
        backend.close()
    return {"seconds": round(total, 2), "cpu_seconds": round(cpu, 2), "ingest": round(seconds["ingest"], 2),
            "validate": round(total - seconds["ingest"], 2), "quarantined": outcome.quarantined, "staged": staged,
            "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
            "others_cpu_seconds": round(others, 2)}


def cpu_seconds() -> float:
    """CPU seconds of this process, every thread of DuckDB's included."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has been busy since it started (Linux's /proc/stat; 0 elsewhere): with this
    process's own CPU seconds, what else ran during a run, which the load average tells only roughly."""
    stat = Path("/proc/stat")
    if not stat.exists():
        return 0.0
    ticks = [int(value) for value in stat.read_text().splitlines()[0].split()[1:]]
    idle = ticks[3] + ticks[4]
    return (sum(ticks) - idle) / os.sysconf("SC_CLK_TCK")


def wait_for_quiet() -> None:
    """Wait until the other processes use under QUIET_SHARE of a core over a few seconds (at most QUIET_WAIT)."""
    deadline = time.monotonic() + QUIET_WAIT
    while time.monotonic() < deadline:
        busy, cpu = machine_busy_seconds(), cpu_seconds()
        time.sleep(QUIET_WINDOW)
        if (machine_busy_seconds() - busy - (cpu_seconds() - cpu)) / QUIET_WINDOW < QUIET_SHARE:
            return


def measured_run(database: Path, masters: list, facts: list, wait_quiet: bool) -> dict:
    """A timed run on a new database file; with `wait_quiet`, run again (up to RETRIES times) while other processes
    took more than QUIET_SHARE of its wall time."""
    for attempt in range(RETRIES + 1 if wait_quiet else 1):  # noqa: B007 (counted after the loop)
        database.unlink(missing_ok=True)
        run = timed_run(database, masters, facts, wait_quiet)
        if run["others_cpu_seconds"] < QUIET_SHARE * run["seconds"]:
            break
    return {**run, "attempts": attempt + 1}


def differing_rows(contract: Path, mapped: Path) -> dict:
    """Per compared entity, the staged rows one database has and the other has not (both ways, duplicates kept)."""
    connection = duckdb.connect()
    connection.execute(f"ATTACH '{contract}' AS contract (READ_ONLY)")
    connection.execute(f"ATTACH '{mapped}' AS mapped (READ_ONLY)")
    differing = {}
    for entity, columns in COMPARED.items():
        one, other = (f"SELECT {columns} FROM {side}.staging.{entity}" for side in ("contract", "mapped"))
        differing[entity] = connection.execute(
            f"SELECT (SELECT count(*) FROM ({one} EXCEPT ALL {other})) + "
            f"(SELECT count(*) FROM ({other} EXCEPT ALL {one}))").fetchone()[0]
    connection.close()
    return differing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--line-items", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--runs", type=int, default=3, help="runs of each shape; the median is reported")
    parser.add_argument("--wait-quiet", action="store_true",
                        help="time each run when other processes leave the machine alone (Linux)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="retailflow-mapping-") as folder:
        scratch = Path(folder)
        data = scratch / "contract"
        started = time.perf_counter()
        generate_dataset(data, GeneratorOptions(line_items=args.line_items, days=args.days, inventory=False,
                                                anomaly_rate=0.0))
        export = write_exports(data, scratch / "daily", scratch / "online_retail.csv")
        prepare_seconds = time.perf_counter() - started
        if export["unit_price_inexact_rows"]:
            raise SystemExit(f"{export['unit_price_inexact_rows']} rows' unit price does not give their amount back")
        (scratch / "sources.yaml").write_text(MAPPING, encoding="utf-8")
        sources = load_sources(scratch / "sources.yaml")
        contract = discover([data])
        masters = [(path, source) for path, source in contract if source.entities[0].master]
        shapes = {"contract": [(path, source) for path, source in contract if not source.entities[0].master],
                  "mapped_daily": discover([scratch / "daily"], sources=sources),
                  "mapped_one_file": discover([scratch / "online_retail.csv"], sources=sources)}
        runs: dict[str, list[dict]] = {shape: [] for shape in shapes}
        databases = {shape: scratch / f"{shape}.duckdb" for shape in shapes}
        for _ in range(args.runs):
            for shape, facts in shapes.items():
                runs[shape].append(measured_run(databases[shape], masters, facts, args.wait_quiet))
        figures = {"median": median_of(runs, "seconds"), "best": best_of(runs, "seconds"),
                   "cpu_median": median_of(runs, "cpu_seconds")}
        ratios = {name: {shape: round(seconds[shape] / seconds["contract"], 2) for shape in shapes
                         if shape != "contract"} for name, seconds in figures.items()}
        last = {shape: shape_runs[-1] for shape, shape_runs in runs.items()}
        print(json.dumps({
            **export, "mapping_lines": MAPPING.count("\n"), "prepare_seconds": round(prepare_seconds, 1),
            "seconds": figures, "ratio_mapped_to_contract": ratios["median"]["mapped_daily"], "ratios": ratios,
            "staged": {shape: run["staged"] for shape, run in last.items()},
            "quarantined": {shape: run["quarantined"] for shape, run in last.items()},
            "staged_equal": len({json.dumps(run["staged"]) for run in last.values()}) == 1,
            "differing_rows": {shape: differing_rows(databases["contract"], databases[shape])
                               for shape in shapes if shape != "contract"},
            "runs": {shape: [{key: run[key] for key in ("seconds", "cpu_seconds", "ingest", "validate", "load_average",
                                                       "others_cpu_seconds", "attempts")}
                             for run in shape_runs] for shape, shape_runs in runs.items()},
        }))


def median_of(runs: dict[str, list[dict]], key: str) -> dict[str, float]:
    """The median of one figure of each shape's runs."""
    return {shape: round(statistics.median(run[key] for run in shape_runs), 2) for shape, shape_runs in runs.items()}


def best_of(runs: dict[str, list[dict]], key: str) -> dict[str, float]:
    """The least of one figure of each shape's runs (what else the machine ran only ever adds to it)."""
    return {shape: min(run[key] for run in shape_runs) for shape, shape_runs in runs.items()}


if __name__ == "__main__":
    main()
