"""Crashes, re-runs and concurrent writers: whatever happens, the database ends as one clean run leaves it.

The crash test runs every stage through the real command line, in a subprocess, on the shipped
sample dataset, starting from the state the clean run of the previous stage left. Each attempt is
killed (SIGKILL) after a delay drawn from a seeded RNG across the stage's observed duration — a
delay past the end of the process makes it a re-run of a finished stage, which must change
nothing either — then the stage is re-run to completion, and every table of every retailflow
schema is compared with the clean run: the same rows, no duplicates, none missing. Only the
columns in snapshots.VOLATILE_COLUMNS are ignored.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import duckdb
import psycopg
import pytest

from helpers import POSTGRES_ADMIN, POSTGRES_SKIP, SAMPLE_DIR
from snapshots import SCHEMAS, Snapshot, differences, snapshot
from retailflow.notify import outbox
from retailflow.notify.senders import LogSender
from retailflow.pipeline import run_pipeline
from retailflow.quality.rules import load_rules

#: Kill/re-run iterations per stage, on each engine; each costs about 1.5 runs of the stage.
#: One each keeps the file near a minute and a half per engine with the restate stage; the kill
#: delays differ per engine, and RETAILFLOW_TEST_KILL_ROUNDS multiplies them for a long local pass.
#: A kill between an SMTP acceptance and its outbox row is tested exactly in tests/notify.
KILLS_PER_STAGE = {
    "ingest": 1, "validate": 1, "promotions": 1, "inventory": 1,
    "loyalty": 1, "segments": 1, "notify": 1, "report": 1, "forget": 1, "restate": 1,
}
#: More kills for a long local pass: RETAILFLOW_TEST_KILL_ROUNDS=10 runs each stage's count ten times.
KILL_ROUNDS = int(os.environ.get("RETAILFLOW_TEST_KILL_ROUNDS", "1"))
STAGES = list(KILLS_PER_STAGE)
SEED = 20241213



def _stage_args(stage: str, workdir: Path) -> list[str]:
    return {
        "ingest": ["ingest", str(SAMPLE_DIR)],
        "validate": ["validate"],
        "promotions": ["promotions"],
        "inventory": ["inventory"],
        "loyalty": ["loyalty"],
        "segments": ["segments"],
        "notify": ["notify", "--sender", "log"],
        "report": ["report", "--out", str(workdir / "report.html")],
        # Before the restate stage, whose corrected sales of C01 are then pseudonymised on the way in.
        "forget": ["forget", "C01", "C99", "--reason", "crash test"],
        # The whole loop again with the sample's sales corrected: T001 costs 10.00 more (write_restated_sales).
        "restate": ["run", "--restate", str(workdir / "restated")],
    }[stage]


def write_restated_sales(workdir: Path) -> None:
    """The sample's sales files with one amount corrected, for the restate stage."""
    folder = workdir / "restated"
    folder.mkdir(exist_ok=True)
    for name, old, new in (("store_sales_header.csv", "T001,C01,ST01,2024-12-01 10:00:00,70.00",
                            "T001,C01,ST01,2024-12-01 10:00:00,80.00"),
                           ("store_sales_line_items.csv", "2,T001,P04,,2,20.00", "2,T001,P04,,2,30.00")):
        text = (SAMPLE_DIR / name).read_text(encoding="utf-8")
        assert old in text
        (folder / name).write_text(text.replace(old, new), encoding="utf-8")


@pytest.fixture(autouse=True)
def pii_key(monkeypatch):
    """The pseudonym key the forget stage (and every stage after it) needs, inherited by the commands."""
    monkeypatch.setenv("RETAILFLOW_PII_KEY", "crash-test-key-0123456789")


def _command(url: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "retailflow", "--db", url, *args]


def _run_to_completion(url: str, args: list[str]) -> float:
    """Run the CLI until it ends; its duration in seconds (it must succeed)."""
    started = time.perf_counter()
    result = subprocess.run(_command(url, *args), capture_output=True, text=True, timeout=300,
                            env={**os.environ, "COLUMNS": "200"})
    assert result.returncode == 0, f"retailflow {' '.join(args)} failed on {url}:\n{result.stdout}\n{result.stderr}"
    return time.perf_counter() - started


# -- engines: a database per state, copied cheaply ----------------------------------------------

class Engine:
    """Copy, read and drop databases of one engine without going through retailflow."""

    name: str
    #: Stages killed and re-run on this engine (every stage still runs once, cleanly, in order).
    killed_stages: tuple[str, ...]

    def url(self, database: str) -> str:
        raise NotImplementedError

    def copy(self, source: str | None, target: str) -> None:
        """Make `target` a copy of `source`; None is the state before anything ran (no database)."""
        raise NotImplementedError

    def drop(self, database: str) -> None:
        raise NotImplementedError

    def query(self, database: str, sql: str) -> tuple[list[str], list[tuple]]:
        raise NotImplementedError

    def wait_until_idle(self, database: str) -> None:
        """Let a killed client's server session end (its writer lock goes with it)."""


class DuckDBEngine(Engine):
    name = "duckdb"
    killed_stages = tuple(STAGES)

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _files(self, database: str) -> tuple[Path, Path]:
        path = self.folder / f"{database}.duckdb"
        return path, path.with_suffix(".duckdb.wal")

    def url(self, database: str) -> str:
        return f"duckdb:///{self._files(database)[0]}"

    def copy(self, source: str | None, target: str) -> None:
        if source is None:
            return
        for source_file, target_file in zip(self._files(source), self._files(target)):
            if source_file.exists():
                shutil.copyfile(source_file, target_file)

    def drop(self, database: str) -> None:
        for path in self._files(database):
            path.unlink(missing_ok=True)

    def query(self, database: str, sql: str) -> tuple[list[str], list[tuple]]:
        with duckdb.connect(str(self._files(database)[0]), read_only=True) as connection:
            cursor = connection.execute(sql)
            return [column[0] for column in cursor.description], cursor.fetchall()


class PostgresEngine(Engine):
    name = "postgres"
    #: The stages whose writes take a PostgreSQL-specific path (COPY, the single pass's transaction, the
    #: ledger and outbox inserts, the erasure's key moves, a restatement's deletes). The others replace
    #: their tables in one transaction exactly as on DuckDB, where every stage is killed (suite time).
    killed_stages = ("ingest", "validate", "loyalty", "notify", "forget", "restate")

    def __init__(self) -> None:
        self.prefix = f"rf_crash_{uuid.uuid4().hex[:8]}"
        self.created: set[str] = set()

    def _name(self, database: str) -> str:
        return f"{self.prefix}_{database}"

    def url(self, database: str) -> str:
        self.created.add(database)
        return f"{POSTGRES_ADMIN.rsplit('/', 1)[0]}/{self._name(database)}"

    def _admin(self, sql: str) -> None:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
            admin.execute(sql)

    def copy(self, source: str | None, target: str) -> None:
        if source is not None:
            self.wait_until_idle(source)
            self.created.add(target)
            self._admin(f'CREATE DATABASE "{self._name(target)}" TEMPLATE "{self._name(source)}"')

    def drop(self, database: str) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{self._name(database)}" WITH (FORCE)')
        self.created.discard(database)

    def query(self, database: str, sql: str) -> tuple[list[str], list[tuple]]:
        with psycopg.connect(self.url(database)) as connection:
            cursor = connection.execute(sql)
            return [column.name for column in cursor.description], cursor.fetchall()

    def wait_until_idle(self, database: str) -> None:
        deadline = time.monotonic() + 30
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
            while admin.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s",
                                (self._name(database),)).fetchone()[0]:
                assert time.monotonic() < deadline, f"sessions on {database} did not end"
                time.sleep(0.05)


@pytest.fixture
def postgres_engine() -> Iterator[PostgresEngine]:
    if POSTGRES_SKIP:
        pytest.skip(POSTGRES_SKIP)
    engine = PostgresEngine()
    try:
        yield engine
    finally:
        for database in list(engine.created):
            engine.drop(database)


# -- snapshots: every table, as a multiset of normalised rows ------------------------------------

def _normalised_report(path: Path, url: str) -> str:
    """The report's HTML without what names the moment and the database it was made from."""
    html = path.read_text(encoding="utf-8")
    html = re.sub(r"<dt>Generated</dt><dd>[^<]*</dd>", "<dt>Generated</dt><dd></dd>", html)
    return html.replace(url, "URL")


# -- the tests -------------------------------------------------------------------------------------

def _state_after(engine: Engine, database: str, stage: str, workdir: Path) -> Snapshot:
    engine.wait_until_idle(database)
    state = snapshot(lambda sql: engine.query(database, sql))
    if stage == "report":
        state.report = _normalised_report(workdir / "report.html", engine.url(database))
    return state


def _kill_and_rerun(engine: Engine, before: str | None, stage: str, delay: float,
                    workdir: Path) -> tuple[str, Snapshot]:
    """Start the stage on a copy of `before`, SIGKILL it after `delay` seconds, re-run it; the state after."""
    database = f"{stage}_killed"
    engine.copy(before, database)
    try:
        process = subprocess.Popen(_command(engine.url(database), *_stage_args(stage, workdir)),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            process.wait(timeout=delay)
            outcome = f"ended before the kill at {delay:.2f}s"
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            outcome = f"killed at {delay:.2f}s"
        engine.wait_until_idle(database)
        _run_to_completion(engine.url(database), _stage_args(stage, workdir))
        return outcome, _state_after(engine, database, stage, workdir)
    finally:
        engine.drop(database)


def _kill_every_stage(engine: Engine, workdir: Path, subtests) -> None:
    """Stages in pipeline order, each from the state the clean run of the previous one left."""
    rng = random.Random(f"{SEED}:{engine.name}")
    write_restated_sales(workdir)
    before: str | None = None
    for stage in STAGES:
        clean = f"{stage}_clean"
        engine.copy(before, clean)
        seconds = _run_to_completion(engine.url(clean), _stage_args(stage, workdir))
        expected = _state_after(engine, clean, stage, workdir)
        for iteration in range(KILLS_PER_STAGE[stage] * KILL_ROUNDS if stage in engine.killed_stages else 0):
            delay = rng.uniform(0, seconds)
            with subtests.test(stage=stage, iteration=iteration):
                outcome, actual = _kill_and_rerun(engine, before, stage, delay, workdir)
                problems = differences(expected, actual)
                assert not problems, f"{stage} {outcome}, then re-run:\n" + "\n".join(problems)
        if before is not None:
            engine.drop(before)
        before = clean


# The two long tests are apart in collection order: pytest-xdist hands out consecutive tests,
# and two workers should each get one.
@pytest.mark.slow
def test_killed_stages_rerun_to_the_clean_result_on_duckdb(tmp_path, subtests):
    _kill_every_stage(DuckDBEngine(tmp_path), tmp_path, subtests)


def test_two_runs_at_once_on_postgresql_the_second_is_refused(postgres_engine):
    url = postgres_engine.url("concurrent")  # not created yet: both processes also race to create it
    runs = [subprocess.Popen(_command(url, "run", str(SAMPLE_DIR)), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env={**os.environ, "COLUMNS": "300"}) for _ in range(2)]
    outputs = [run.communicate(timeout=300) for run in runs]
    results = [(run.returncode, out, err) for run, (out, err) in zip(runs, outputs)]
    assert sorted(code for code, _, _ in results) == [0, 2], results
    _, _, refusal = next(result for result in results if result[0] == 2)
    assert refusal.strip().splitlines() == [
        f"error: another retailflow process is writing to {url}; wait for it to finish and run the command again"]
    _, batches = postgres_engine.query("concurrent", "SELECT count(*), count(DISTINCT sha256) FROM audit.batches")
    assert batches == [(8, 8)]


@pytest.mark.slow
def test_killed_stages_rerun_to_the_clean_result_on_postgresql(postgres_engine, tmp_path, subtests):
    _kill_every_stage(postgres_engine, tmp_path, subtests)


def test_running_everything_again_changes_nothing(backend):
    """The deterministic end of the range above: every stage re-run after it finished."""
    def run_everything() -> Snapshot:
        run_pipeline(backend, [SAMPLE_DIR], load_rules())
        outbox.send(backend, LogSender())
        return snapshot(backend.fetch, [(schema, table) for schema in SCHEMAS for table in backend.tables(schema)])

    once = run_everything()
    assert once.tables["notifications.outbox"][1], "the sample should produce messages"
    problems = differences(once, run_everything())
    assert not problems, "\n".join(problems)


