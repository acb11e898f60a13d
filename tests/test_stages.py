"""The stage registry is the one list of stages: its order, its declared tables and what the callers build from it."""

from __future__ import annotations

import fnmatch

from helpers import SAMPLE_DIR
from retailflow.backends import connect
from retailflow.pipeline import run_analytics, run_pipeline
from retailflow.quality.rules import load_rules
from retailflow.stages import BY_NAME, NIGHTLY, OTHER_WRITERS, STAGES, Recompute

WRITTEN_SCHEMAS = ("analytics", "loyalty", "notifications", "audit")


def test_every_stage_runs_after_the_stages_it_reads():
    seen: set[str] = set()
    for stage in STAGES:
        assert set(stage.after) <= seen, f"{stage.name} runs before {set(stage.after) - seen}"
        seen.add(stage.name)
    assert [stage.name for stage in NIGHTLY] == ["checks", "purchases", "promotions", "inventory", "loyalty", "segments",
                                                 "notify"]


def test_no_table_has_two_writers():
    writers: dict[str, str] = dict.fromkeys(OTHER_WRITERS, "another writer")
    for stage in STAGES:
        for table in stage.writes:
            assert table not in writers, f"{table} written by {writers.get(table)} and {stage.name}"
            writers[table] = stage.name


def test_a_run_writes_what_the_stages_declare_and_nothing_else(tmp_path):
    """The sample's whole loop (and the report) on DuckDB: every table in the written schemas is declared by
    exactly one stage, and every table a stage declares is there."""
    backend = connect(f"duckdb:///{tmp_path / 'shop.duckdb'}")
    try:
        run_pipeline(backend, [SAMPLE_DIR], load_rules(None))
        BY_NAME["report"].run(backend, Recompute(report=tmp_path / "report.html"))
        assert (tmp_path / "report.html").exists()
        declared = [table for stage in STAGES for table in stage.writes] + list(OTHER_WRITERS)
        present = {f"{schema}.{name}" for schema in WRITTEN_SCHEMAS for name in backend.tables(schema)}
        undeclared = {table for table in present if not any(fnmatch.fnmatch(table, pattern) for pattern in declared)}
        assert not undeclared, f"tables no stage declares: {sorted(undeclared)}"
        missing = {table for table in declared if "*" not in table and table not in present}
        assert not missing, f"declared but not written by the sample's run: {sorted(missing)}"
        assert set(run_analytics(backend)) == {stage.name for stage in NIGHTLY}
    finally:
        backend.close()


def test_the_stages_command_lists_the_registry():
    import json

    from typer.testing import CliRunner

    from retailflow.cli import app

    listed = CliRunner().invoke(app, ["stages", "--format", "json"])
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout)
    assert [row["stage"] for row in rows] == [stage.name for stage in STAGES]
    assert {row["stage"]: row["in run"] for row in rows}["report"] == "no"
    assert {row["stage"]: row["grain"] for row in rows}["loyalty"] == "day"


def test_the_declared_tables_are_the_catalog_s():
    """Every table a stage declares is in the catalog of stored tables, and every stored table of the analytics,
    loyalty and notifications schemas has a stage that writes it."""
    from retailflow.catalog import STORED_TABLES

    stored = {table.qualified_name for table in STORED_TABLES}
    declared = [table for stage in STAGES for table in stage.writes] + list(OTHER_WRITERS)
    concrete = {table for table in declared if "*" not in table and table.split(".")[0] not in ("raw", "staging",
                                                                                                "quarantine")}
    assert concrete <= stored, sorted(concrete - stored)
    unwritten = {name for name in stored if name.split(".")[0] in ("analytics", "loyalty", "notifications")
                 and not any(fnmatch.fnmatch(name, pattern) for pattern in declared)}
    assert not unwritten, sorted(unwritten)


def test_a_blocking_check_holds_the_analytics_back_until_it_is_cleared(tmp_path):
    """The sample's stores skip days. Sales headers per store (staged or quarantined) fall on: ST01 the 1st, 2nd,
    5th and 7th of December; ST02 the 1st, 4th and 6th; ST03 the 3rd, 6th and 7th (it starts sending on the 3rd).
    So 9 store-days have no sales files (ST01 3, 4, 6; ST02 2, 3, 5, 7; ST03 4, 5), each for headers and lines.
    With `missing: block` the run loads and validates, exits 1 with one line per finding (18) and runs no
    analytics stage; with the default (warn) the next run of the same files (skipped as identical) brings every
    stage up to date."""
    import os
    import shutil
    import subprocess
    import sys

    shutil.copytree(SAMPLE_DIR, tmp_path / "data", ignore=shutil.ignore_patterns("*.md"))
    (tmp_path / "blocking.yaml").write_text("checks:\n  severity: {missing: block}\n")
    database = f"duckdb:///{tmp_path}/shop.duckdb"

    def retailflow(*arguments: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "retailflow", "--db", database, "-q", *arguments],
                              capture_output=True, text=True, cwd=tmp_path, timeout=300,
                              env={**os.environ, "COLUMNS": "200"})

    blocked = retailflow("--rules", "blocking.yaml", "run", "data")
    assert blocked.returncode == 1, blocked.stderr
    lines = [line for line in blocked.stderr.splitlines() if line.startswith("blocking:")]
    assert "blocking: block: ST03 2024-12-05 store_sales_header: expected, nothing delivered" in lines
    missing = {(line.split()[2], line.split()[3][-2:]) for line in lines}
    assert missing == {("ST01", "03"), ("ST01", "04"), ("ST01", "06"), ("ST02", "02"), ("ST02", "03"),
                       ("ST02", "05"), ("ST02", "07"), ("ST03", "04"), ("ST03", "05")}
    assert len(lines) == 18 and "the analytics stages did not run" in blocked.stderr
    backend = connect(database)
    try:
        assert backend.tables("analytics") and not backend.has_table("analytics", "promotion_effectiveness")
        assert int(backend.scalar("SELECT count(*) FROM staging.store_sales_header")) == 9
    finally:
        backend.close()
    cleared = retailflow("run", "data")
    assert cleared.returncode == 0, cleared.stderr
    backend = connect(database)
    try:
        assert backend.has_table("analytics", "promotion_effectiveness") and backend.has_table("loyalty", "balances")
    finally:
        backend.close()
