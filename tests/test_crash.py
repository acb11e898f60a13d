"""Crashes, re-runs and concurrent writers: whatever happens, the database ends as one clean run leaves it.

The crash test runs every stage through the command line, each command in a process of its own
(helpers.start_command), on the shipped sample dataset, starting from the state the clean run of the previous
stage left. Each attempt is killed (SIGKILL) after a delay drawn from a seeded RNG across the stage's observed
duration — a delay past the end of the process makes it a re-run of a finished stage, which must change
nothing either — then the stage is re-run to completion, and every table of every retailflow schema is
compared with the clean run: the same rows, no duplicates, none missing. Only the columns in
snapshots.VOLATILE_COLUMNS are ignored.
"""

from __future__ import annotations

import os
import random
import re
import time
from pathlib import Path

import pytest

from engines import Engine
from helpers import SAMPLE_DIR, after_one_run, command_output, start_command
from retailflow.notify import outbox
from retailflow.notify.senders import LogSender
from retailflow.pipeline import run_pipeline
from retailflow.quality.rules import load_rules
from snapshots import SCHEMAS, Snapshot, differences, snapshot

#: Kill/re-run iterations per stage; each costs about 1.5 runs of the stage. The kill delays differ per
#: engine. A kill between an SMTP acceptance and its outbox row is tested exactly in tests/notify.
KILLS_PER_STAGE = {
    "ingest": 1, "validate": 1, "promotions": 1, "inventory": 1,
    "loyalty": 1, "segments": 1, "notify": 1, "report": 1, "forget": 1, "restate": 1,
}
#: More kills for a long local pass: RETAILFLOW_TEST_KILL_ROUNDS=10 runs each stage's count ten times.
KILL_ROUNDS = int(os.environ.get("RETAILFLOW_TEST_KILL_ROUNDS", "1"))
STAGES = list(KILLS_PER_STAGE)
#: The stages killed on each engine: those whose writes take a path of their own there (every stage still runs
#: once, cleanly, in order). promotions, inventory and segments each replace their tables in one transaction
#: (replace_days, replace_table, update_from): inventory, with the most writes, stands for the three on DuckDB; on
#: PostgreSQL they take that path exactly as on DuckDB, as does the report, a file whatever the engine.
#: PostgreSQL's own paths: COPY, the single pass's transaction, the ledger and outbox inserts, the erasure's
#: key moves, a restatement's deletes.
KILLED_STAGES = {
    "duckdb": ("ingest", "validate", "inventory", "loyalty", "notify", "report", "forget", "restate"),
    "postgres": ("ingest", "validate", "loyalty", "notify", "forget", "restate"),
}
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


def _run_to_completion(url: str, args: list[str], workdir: Path) -> float:
    """Run the command until it ends; its duration in seconds (it must succeed)."""
    started = time.perf_counter()
    process = start_command(["--db", url, *args], workdir / "command")
    process.join(timeout=300)
    seconds = time.perf_counter() - started
    out, err = command_output(workdir / "command")
    assert process.exitcode == 0, f"retailflow {' '.join(args)} failed on {url}:\n{out}\n{err}"
    return seconds


# -- snapshots: every table, as a multiset of normalised rows ------------------------------------

def _normalised_report(path: Path, url: str) -> str:
    """The report's HTML without what names the moment and the database it was made from."""
    html = path.read_text(encoding="utf-8")
    html = re.sub(r"<dt>Generated</dt><dd>[^<]*</dd>", "<dt>Generated</dt><dd></dd>", html)
    return html.replace(url, "URL")


# -- the tests -------------------------------------------------------------------------------------

def _state_after(engine: Engine, database: str, stage: str, workdir: Path) -> Snapshot:
    engine.wait_until_idle(database)
    with engine.reader(database) as query:
        state = snapshot(query)
    if stage == "report":
        state.report = _normalised_report(workdir / "report.html", engine.url(database))
    return state


def _copy_of(engine: Engine, state: str | None) -> str:
    """A new database holding `state`; None is the state before anything ran (no database)."""
    return engine.fresh() if state is None else engine.copy(state)


def _kill_and_rerun(engine: Engine, before: str | None, stage: str, delay: float,
                    workdir: Path) -> tuple[str, Snapshot]:
    """Start the stage on a copy of `before`, SIGKILL it after `delay` seconds, re-run it; the state after."""
    database = _copy_of(engine, before)
    try:
        process = start_command(["--db", engine.url(database), *_stage_args(stage, workdir)], workdir / "killed")
        process.join(timeout=delay)
        if process.exitcode is None:
            process.kill()
            process.join()
            outcome = f"killed at {delay:.2f}s"
        else:
            outcome = f"ended before the kill at {delay:.2f}s"
        engine.wait_until_idle(database)
        _run_to_completion(engine.url(database), _stage_args(stage, workdir), workdir)
        return outcome, _state_after(engine, database, stage, workdir)
    finally:
        engine.discard(database)


@pytest.mark.slow
@pytest.mark.engines("duckdb", "postgres")
def test_killed_stages_rerun_to_the_clean_result(engine, tmp_path, subtests):
    """Stages in pipeline order, each from the state the clean run of the previous one left."""
    rng = random.Random(f"{SEED}:{engine.name}")
    write_restated_sales(tmp_path)
    before: str | None = None
    for stage in STAGES:
        clean = _copy_of(engine, before)
        seconds = _run_to_completion(engine.url(clean), _stage_args(stage, tmp_path), tmp_path)
        expected = _state_after(engine, clean, stage, tmp_path)
        for iteration in range(KILLS_PER_STAGE[stage] * KILL_ROUNDS if stage in KILLED_STAGES[engine.name] else 0):
            delay = rng.uniform(0, seconds)
            with subtests.test(stage=stage, iteration=iteration):
                outcome, actual = _kill_and_rerun(engine, before, stage, delay, tmp_path)
                problems = differences(expected, actual)
                assert not problems, f"{stage} {outcome}, then re-run:\n" + "\n".join(problems)
        if before is not None:
            engine.discard(before)
        before = clean


@pytest.mark.engines("postgres")
def test_two_runs_at_once_on_postgresql_the_second_is_refused(engine, tmp_path):
    database = engine.fresh()  # not created yet: both processes also race to create it
    url = engine.url(database)
    outputs = [tmp_path / f"run{index}" for index in range(2)]
    runs = [start_command(["--db", url, "run", str(SAMPLE_DIR)], output) for output in outputs]
    for run in runs:
        run.join(timeout=300)
    results = [(run.exitcode, *command_output(output)) for run, output in zip(runs, outputs)]
    assert sorted(code for code, _, _ in results) == [0, 2], results
    _, _, refusal = next(result for result in results if result[0] == 2)
    assert refusal.strip().splitlines() == [
        f"error: another retailflow process is writing to {url}; wait for it to finish and run the command again"]
    with engine.reader(database) as query:
        _, batches = query("SELECT count(*), count(DISTINCT sha256) FROM audit.batches")
    assert batches == [(8, 8)]


def test_running_everything_again_changes_nothing(engine):
    """The deterministic end of the range above: every stage re-run after it finished."""
    backend = after_one_run(engine, SAMPLE_DIR)

    def everything_sent() -> Snapshot:
        outbox.send(backend, LogSender())
        return snapshot(backend.fetch, [(schema, table) for schema in SCHEMAS for table in backend.tables(schema)])

    once = everything_sent()
    assert once.tables["notifications.outbox"][1], "the sample should produce messages"
    run_pipeline(backend, [SAMPLE_DIR], load_rules())
    problems = differences(once, everything_sent())
    assert not problems, "\n".join(problems)
