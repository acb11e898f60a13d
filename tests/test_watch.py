"""`retailflow watch`: files are taken once complete, a landed group is one run equal to `retailflow run` on the
same files, bad files are set aside with their error, and a stop or a kill loses nothing."""

from __future__ import annotations

import concurrent.futures
import os
import shutil
import signal
import time
from multiprocessing.process import BaseProcess
from pathlib import Path

import pytest

from helpers import command_output, start_command
from retailflow import audit
from retailflow.backends import Backend, connect
from retailflow.generate import GeneratorOptions, generate_dataset
from retailflow.pipeline import run_analytics, run_pipeline
from retailflow.quality.rules import load_rules
from retailflow.running import StageListener
from retailflow.watch import Watcher
from snapshots import differences, snapshot

MASTERS = ("stores.csv", "products.csv", "customer_details.csv", "promotion_details.csv", "loyalty_rules.csv")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("watch") / "data"
    generate_dataset(folder, GeneratorOptions(seed=4, stores=2, products=20, customers=80, days=7, anomaly_rate=0.05))
    return folder


def _day(data: Path, day: int) -> list[Path]:
    return sorted(data.glob(f"*_2024-12-0{day}.csv"))


def _land(paths, landing: Path) -> None:
    """Files arrive as an uploader delivers them: written aside, then renamed in."""
    for path in paths:
        partial = landing / f".{path.name}.part"
        shutil.copyfile(path, partial)
        os.replace(partial, landing / path.name)


def _watcher(backend: Backend, landing: Path, **options) -> Watcher:
    return Watcher(backend, landing, load_rules(), after_batch=run_analytics, **options)


def _in_watch_order(files: list[Path]) -> list[Path]:
    """A batch's files in the order the watcher loads them (by name), so that batch ids agree."""
    return sorted(files, key=lambda path: path.name)


def _outputs(backend: Backend):
    tables = [(schema, table) for schema in ("staging", "analytics", "loyalty") for table in backend.tables(schema)]
    return snapshot(backend.fetch, tables)


def test_a_landed_group_is_one_run_equal_to_retailflow_run(data, tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    files = [data / name for name in MASTERS] + _day(data, 1) + _day(data, 2)
    backend = connect(f"duckdb:///{tmp_path}/watched.duckdb")
    watcher = _watcher(backend, landing)
    assert watcher.poll() is None
    _land(files, landing)
    assert watcher.poll() is None, "a file is taken only once it stayed the same over two polls"
    report = watcher.poll()
    assert report is not None and report.loaded == len(files) and not report.failed
    assert {"ingest", "validate", "promotions", "loyalty", "batch"} <= set(report.seconds)
    assert watcher.poll() is None, "files left in place are not loaded again"

    reference = connect(f"duckdb:///{tmp_path}/reference.duckdb")
    run_pipeline(reference, _in_watch_order(files), load_rules())
    problems = differences(_outputs(reference), _outputs(backend))
    assert not problems, "\n".join(problems)
    assert all(balance.balanced for balance in audit.reconcile(backend))


def test_half_written_and_late_files_wait_for_the_next_batch(data, tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    _land([data / name for name in MASTERS], landing)
    day_two = _day(data, 2)

    class LandsDuringTheBatch(StageListener):
        def stage_started(self, name, files=()):
            if name == "validate":
                _land(day_two, landing)

    backend = connect(f"duckdb:///{tmp_path}/watched.duckdb")
    watcher = _watcher(backend, landing, listener=LandsDuringTheBatch())
    watcher.poll()
    first = watcher.poll()
    assert sorted(first.files) == sorted(MASTERS)

    header = data / "store_sales_header_2024-12-01.csv"
    text = header.read_text()
    growing = landing / header.name
    growing.write_text(text[: len(text) // 2])
    assert watcher.poll() is None, "first look at the files that landed during the batch, and at the growing one"
    with growing.open("a") as handle:
        handle.write(text[len(text) // 2:])
    assert watcher.poll().files == [path.name for path in day_two], "the growing file changed since the last look"
    assert watcher.poll().files == [header.name]
    assert backend.scalar("SELECT count(*) FROM raw.store_sales_header") == text.count("\n") - 1 + sum(
        path.read_text().count("\n") - 1 for path in day_two if path.name.startswith("store_sales_header"))


def test_a_bad_file_beside_good_ones_is_set_aside_with_its_error(data, tmp_path):
    landing, failed = tmp_path / "landing", tmp_path / "failed"
    landing.mkdir()
    (landing / "store_sales_header_2024-12-03.csv").write_text("transaction,who\nT1,C1\n")
    (landing / "inventory_daily_2024-12-04.csv").write_bytes(b"\xff\xfesnapshot_date\n")
    (landing / "weather.csv").write_text("day,rain\n")
    _land([data / name for name in MASTERS] + _day(data, 1), landing)
    backend = connect(f"duckdb:///{tmp_path}/watched.duckdb")
    watcher = _watcher(backend, landing, failed=failed, processed=tmp_path / "done")
    watcher.poll()
    report = watcher.poll()

    bad = {"store_sales_header_2024-12-03.csv", "inventory_daily_2024-12-04.csv", "weather.csv"}
    assert set(report.failed) == bad and report.loaded == len(MASTERS) + 3
    for name in bad:
        error = (failed / f"{name}.error.txt").read_text()
        assert error.count("\n") == 1 and name in error
    assert sorted(path.name for path in (tmp_path / "done").iterdir()) == sorted([*MASTERS, *(p.name for p in _day(data, 1))])
    assert not [path for path in landing.iterdir() if path.is_file()]
    assert all(balance.balanced for balance in audit.reconcile(backend))


def _watch(database: Path, landing: Path, output: Path, *args: str) -> BaseProcess:
    """`retailflow watch` in a process forked from helpers' command server (no interpreter start and imports
    each time: 2-3 s of each of this test's three watchers, load 4); stdout and stderr go to output.out/.err."""
    return start_command(["--db", f"duckdb:///{database}", "watch", str(landing), "--interval", "0.2", *args],
                         output, columns=200)


def _printed(output: Path) -> str:
    """What a watcher started with _watch(…, output) printed so far."""
    path = Path(f"{output}.out")
    return path.read_text(encoding="utf-8") if path.exists() else ""


@pytest.mark.slow
def test_a_stop_finishes_the_batch_and_a_kill_loses_nothing(data, tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    files = [data / name for name in MASTERS] + _day(data, 1)
    _land(files, landing)
    database = tmp_path / "watched.duckdb"

    def build_reference() -> None:
        reference = connect(f"duckdb:///{tmp_path}/reference.duckdb")
        try:
            run_pipeline(reference, _in_watch_order(files), load_rules())
            run_pipeline(reference, _day(data, 2), load_rules())
        finally:
            reference.close()

    # The reference the watched database is compared with (two runs, 8 s at load 3) is built in a thread while
    # this one waits on the watchers, which run in processes of their own.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as builder:
        reference_built = builder.submit(build_reference)
        killed = _watch(database, landing, tmp_path / "killed")
        time.sleep(3)
        killed.kill()
        killed.join()
        assert killed.exitcode == -signal.SIGKILL, command_output(tmp_path / "killed")
        restarted = _watch(database, landing, tmp_path / "restarted", "--once")
        restarted.join(timeout=120)
        assert restarted.exitcode == 0, command_output(tmp_path / "restarted")[1]

        stopped = _watch(database, landing, tmp_path / "stopped")
        _land(_day(data, 2), landing)
        deadline = time.monotonic() + 120
        while "batch 1" not in _printed(tmp_path / "stopped") and time.monotonic() < deadline:
            time.sleep(0.05)
        stopped.terminate()
        stopped.join(timeout=60)
        assert stopped.exitcode == 0, command_output(tmp_path / "stopped")[1]
        assert "stopped after 1 batch(es)" in command_output(tmp_path / "stopped")[0]
        reference_built.result()

    reference = connect(f"duckdb:///{tmp_path}/reference.duckdb")
    backend = connect(f"duckdb:///{database}")
    problems = differences(_outputs(reference), _outputs(backend))
    assert not problems, "\n".join(problems)
    assert all(balance.balanced for balance in audit.reconcile(backend))
