"""Small helpers shared by tests: write CSV files, run the pipeline and the command line, read tables."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import sys
from importlib import resources
from multiprocessing.process import BaseProcess
from pathlib import Path

from engines import (
    MYSQL_ADMIN,
    POSTGRES_ADMIN,
    Engine,
    MySQLEngine,
    PostgresEngine,
    drop_mysql_database,
    mysql_connection,
)
from retailflow.backends import Backend
from retailflow.ingest import discover, ingest
from retailflow.pipeline import run_pipeline
from retailflow.quality.engine import RouteOutcome, route_all
from retailflow.quality.rules import load_rules

# MYSQL_SKIP and POSTGRES_SKIP too, answered by __getattr__ below.
__all__ = ["MYSQL_ADMIN", "POSTGRES_ADMIN", "SAMPLE_DIR", "after_one_run", "column", "command_output",
           "drop_mysql_database", "load_and_validate", "start_command", "write_csv", "write_small_shop"]

SAMPLE_DIR = Path(str(resources.files("retailflow").joinpath("sample_data")))

_mysql_connection = mysql_connection  # the name tests/privacy/test_analyst.py imports


def __getattr__(name: str) -> str | None:
    """POSTGRES_SKIP and MYSQL_SKIP, for tests that reach a server without the `engine` fixture: why the server
    cannot be used, or None. Asked when first imported, so that importing this module connects nowhere."""
    if name == "POSTGRES_SKIP":
        return PostgresEngine.unavailable()
    if name == "MYSQL_SKIP":
        return MySQLEngine.unavailable()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: Commands run in processes forked from a server process that imported the command line and the engines
#: once (multiprocessing's fork server), not in new interpreters that import them each time: `ingest` of the
#: sample took 0.9-1.4 s this way and 2.6-4.2 s as `python -m retailflow` (load 7, 2 cores), and test_crash.py
#: runs 48 commands. A forked process dies by SIGKILL exactly as a new one does. Its working directory is the
#: fork server's: give paths in full. The backends import Ibis's compilers at the first statement (lazy.py), so they
#: are named here with every stage a `run` imports (the churn fit's scipy among them): 0.9 s less per command.
COMMANDS = multiprocessing.get_context("forkserver")
COMMANDS.set_forkserver_preload([
    "helpers", "retailflow.cli", "retailflow.pipeline", "retailflow.backends.duckdb", "retailflow.backends.postgres",
    "retailflow.report.dashboard", "ibis.backends.sql.compilers", "retailflow.backends.compiling", "retailflow.stages",
    "retailflow.quality.engine", "retailflow.checks.run", "retailflow.analytics.promotions",
    "retailflow.analytics.inventory", "retailflow.analytics.loyalty", "retailflow.analytics.segmentation",
    "retailflow.notify.outbox", "scipy.optimize"])


def start_command(args: list[str], output: Path, columns: int = 300) -> BaseProcess:
    """`retailflow args…` started in a process of its own with this process's environment; its stdout and stderr
    are written to output.out and output.err (read them with command_output)."""
    process = COMMANDS.Process(target=_run_command, args=(["retailflow", *args],
                                                          {**os.environ, "COLUMNS": str(columns)}, str(output)))
    process.start()
    return process


def _run_command(argv: list[str], environment: dict[str, str], output: str) -> None:
    os.environ.clear()
    os.environ.update(environment)
    for stream, suffix in ((sys.stdout, "out"), (sys.stderr, "err")):
        with open(f"{output}.{suffix}", "w", encoding="utf-8") as handle:
            os.dup2(handle.fileno(), stream.fileno())
    sys.argv = argv
    from retailflow.cli import entry

    entry()


def command_output(output: Path) -> tuple[str, str]:
    """(stdout, stderr) of a command started with start_command(…, output)."""
    return Path(f"{output}.out").read_text(encoding="utf-8"), Path(f"{output}.err").read_text(encoding="utf-8")


def write_csv(folder: Path, name: str, text: str) -> Path:
    """Write `text` (leading/trailing blank lines removed) as folder/name."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text.strip("\n") + "\n", encoding="utf-8")
    return path


def write_small_shop(folder: Path, products: list[str], headers: list[str], lines: list[str],
                     snapshots: list[str]) -> None:
    """Input files of two stores (ST1, ST2) and one customer (C1) with the given rows (no header lines) of
    products, sales headers, line items and inventory snapshots."""
    write_csv(folder, "stores.csv", "store_id,store_name,store_city,store_region,opening_date\n"
              "ST1,One,Town,North,2020-01-01\nST2,Two,Town,North,2020-01-01")
    write_csv(folder, "customer_details.csv", "customer_id,first_name,email,loyalty_status,total_loyalty_points,"
              "last_purchase_date,segment_id\nC1,Al,al@example.com,Gold,0,,")
    for name, columns, rows in (
            ("products.csv", "product_id,product_name,product_category,unit_price,current_stock_level", products),
            ("store_sales_header.csv", "transaction_id,customer_id,store_id,transaction_date,total_amount", headers),
            ("store_sales_line_items.csv",
             "line_item_id,transaction_id,product_id,promotion_id,quantity,line_item_amount", lines),
            ("inventory_daily.csv", "snapshot_date,store_id,product_id,stock_on_hand", snapshots)):
        write_csv(folder, name, "\n".join([columns, *rows]))


def load_and_validate(backend: Backend, *paths: Path, rules_path: Path | None = None) -> RouteOutcome:
    ingest(backend, discover(list(paths)))
    return route_all(backend, load_rules(rules_path), "validate")


def after_one_run(engine: Engine, data: Path) -> Backend:
    """A copy of the database one pipeline run on the files in `data` leaves, on `engine`. The run happens once
    per test run and engine, for every test that starts there (parity, the incremental tests' full run, re-runs)."""
    key = "run" + hashlib.sha256(str(data).encode()).hexdigest()[:10]
    return engine.connect(engine.copy(engine.prepared(key, lambda backend: run_pipeline(backend, [data], load_rules()))))


def column(backend: Backend, sql: str) -> list:
    """The first column of a query, as a list."""
    return [row[0] for row in backend.fetch(sql)[1]]


def table_exists(backend: Backend, name: str) -> bool:
    """Whether `name` (a temporary table too) can be read in the backend's session."""
    try:
        backend.fetch(f"SELECT 1 FROM {name} LIMIT 1")
    except Exception:  # noqa: BLE001 (each driver raises its own "no such table")
        return False
    return True
