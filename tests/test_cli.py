"""The command line as a user runs it: a real process, exit codes, one-line errors, documented commands."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from helpers import write_csv
from retailflow.cli import app

README = Path(__file__).resolve().parents[1] / "README.md"


def retailflow(*args: str, db: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "RETAILFLOW_DB": db, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "retailflow", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=300)


def test_run_reconcile_and_quarantine(db_url, sample_dir):
    run = retailflow("run", str(sample_dir), db=db_url)
    assert run.returncode == 0, run.stderr
    assert "store_sales_header" in run.stdout
    reconcile = retailflow("reconcile", "--format", "json", db=db_url)
    assert reconcile.returncode == 0
    assert all(batch["balanced"] for batch in json.loads(reconcile.stdout))
    summary = json.loads(retailflow("quarantine", "--format", "json", db=db_url).stdout)
    assert {"entity": "store_sales_header", "rule_id": "store_sales_header.store_id.exists", "rows": 1,
            "example_key": "T011", "example_reasons": "store_id 'ST99' not found in stores"} in summary
    again = retailflow("ingest", str(sample_dir), db=db_url)
    assert again.returncode == 0 and again.stdout.count("skipped") == 8


def test_reconcile_fails_while_batches_are_pending(tmp_path, sample_dir):
    db = f"duckdb:///{tmp_path}/pending.duckdb"
    assert retailflow("ingest", str(sample_dir / "stores.csv"), db=db).returncode == 0
    pending = retailflow("reconcile", db=db)
    assert pending.returncode == 1 and "retailflow validate" in pending.stderr


def test_user_errors_are_one_line_with_exit_code_2(tmp_path):
    db = f"duckdb:///{tmp_path}/errors.duckdb"
    bad = write_csv(tmp_path, "stores.csv", "id,name\nST01,x")
    result = retailflow("ingest", str(bad), db=db)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and re.search(r"stores\.csv:1: missing required column", lines[0])
    unknown = retailflow("--db", "oracle://x", "validate", db=db)
    assert unknown.returncode == 2 and "not supported" in unknown.stderr


def test_a_second_process_on_the_same_duckdb_file_is_refused(tmp_path, sample_dir):
    import duckdb

    database = tmp_path / "busy.duckdb"
    holder = duckdb.connect(str(database))
    try:
        result = retailflow("run", str(sample_dir), db=f"duckdb:///{database}")
    finally:
        holder.close()
    assert result.returncode == 2
    assert "is another retailflow process using it?" in result.stderr


def test_every_command_is_documented_in_the_readme():
    readme = README.read_text()
    commands = [command.name for command in app.registered_commands]
    groups = [group.name for group in app.registered_groups]
    assert commands and groups
    for name in commands + groups:
        # Global options may come first: `retailflow --db URL grant analyst ROLE`.
        assert re.search(rf"retailflow (--\S+ \S+ )*{name}\b", readme), f"`retailflow {name}` is not in the README"
    for command in app.registered_commands:
        assert (command.callback.__doc__ or "").strip(), f"{command.name} has no help text"


SOURCE = Path(__file__).resolve().parents[1] / "src" / "retailflow"
SETTINGS = sorted({name for path in SOURCE.rglob("*.py") for name in re.findall(r"RETAILFLOW_[A-Z_]+[A-Z]", path.read_text())})


def test_settings_are_found_in_the_source():
    assert {"RETAILFLOW_DB", "RETAILFLOW_RULES", "RETAILFLOW_QUIET", "RETAILFLOW_DUCKDB_MEMORY_LIMIT"} <= set(SETTINGS)


@pytest.mark.parametrize("variable", SETTINGS)
def test_settings_are_documented(variable):
    assert variable in README.read_text()


def test_global_options_are_documented():
    readme = README.read_text()
    command = typer.main.get_command(app)
    options = [opt for param in command.params for opt in param.opts if opt.startswith("--") and opt != "--help"]
    assert options
    for option in options:
        assert f"`{option}" in readme, f"global option {option} is not in the README"


def test_old_option_names_still_work_but_are_hidden(tmp_path):
    files = tmp_path / "parquet"
    result = subprocess.run([str(Path(sys.executable).with_name("retailflow")), "-q", "generate", "--out", str(files),
                             "--stores", "2", "--products", "16", "--customers", "100", "--days", "7",
                             "--format", "parquet"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (files / "stores.parquet").exists()
    command = typer.main.get_command(app)
    hidden = {name: [opt for param in command.commands[name].params if param.hidden for opt in param.opts]
              for name in ("generate", "notify", "demo")}
    assert hidden == {"generate": ["--format"], "notify": ["--out-dir"], "demo": ["--workdir"]}
    for name in hidden:
        assert "--out" in [opt for param in command.commands[name].params for opt in param.opts]


def test_tables_piped_to_a_log_keep_their_natural_width(tmp_path):
    """Without a terminal or COLUMNS, a table is not wrapped at 80 columns: every rule id stays whole on one
    line (greppable in a CI log), and no line ends in padding."""
    from retailflow.quality.rules import load_rules

    database = f"duckdb:///{tmp_path}/shop.duckdb"
    env = {key: value for key, value in os.environ.items() if key != "COLUMNS"}
    listed = subprocess.run([sys.executable, "-m", "retailflow", "--db", database, "rules"], capture_output=True,
                            text=True, env=env, timeout=120)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert all(any(rule.id in line for line in lines) for rule in load_rules(None))
    assert not any(line != line.rstrip() for line in lines)


def test_messages_piped_to_a_log_stay_on_one_line():
    """A message line (a path, a URL, a command to run) piped without COLUMNS is not broken at 80 columns; with
    COLUMNS, as on a terminal, it wraps to that width."""
    database = "duckdb:///" + "/".join(["a-long-folder-name"] * 8) + "/retailflow.duckdb"
    script = (f"from retailflow.output import console, errors\nconsole.print('database: {database} (retailflow --db "
              f"{database} quarantine)')\nerrors.print('error: {database} cannot be opened')")
    env = {key: value for key, value in os.environ.items() if key != "COLUMNS"}
    piped = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60)
    assert piped.stdout.splitlines() == [f"database: {database} (retailflow --db {database} quarantine)"]
    assert piped.stderr.splitlines() == [f"error: {database} cannot be opened"]
    narrow = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env={**env, "COLUMNS": "60"}, timeout=60)
    assert len(narrow.stdout.splitlines()) > 1 and max(map(len, narrow.stdout.splitlines())) <= 60
