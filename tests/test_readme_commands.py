"""Every `retailflow` command the README shows, run as a user types it through the installed executable.

The commands are read from the README itself (its fenced blocks and its inline `retailflow …`
spans), in the README's order, on one small generated dataset and one DuckDB file, so a command
added to the README is tested without anyone remembering to. Each must exit 0 without a
traceback; a command that takes `--format` is run again with `--format json`, which must parse.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import uuid
from collections.abc import Iterator

import duckdb
import psycopg
import pytest
import typer

from exports import write_online_shop
from helpers import POSTGRES_ADMIN, POSTGRES_SKIP

from retailflow.cli import app

README = Path(__file__).resolve().parents[1] / "README.md"
RETAILFLOW = Path(sys.executable).with_name("retailflow")
FENCED_BLOCK = re.compile(r"^```[a-z]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
INLINE_COMMAND = re.compile(r"(?<!`)`(retailflow [^`]+)`")
PLACEHOLDER = re.compile(r"^[A-Z][A-Z_]*(\.[a-z]+)?$")


def readme_commands() -> list[str]:
    """The README's retailflow commands in order: fenced-block lines first, then inline spans (comments cut)."""
    text = README.read_text()
    fenced = [line.split("  #")[0].strip() for block in FENCED_BLOCK.findall(text)
              for line in block.splitlines() if line.startswith("retailflow ")]
    inline = INLINE_COMMAND.findall(FENCED_BLOCK.sub("", text))
    return fenced + inline


def as_typed(command: str, placeholders: dict[str, str]) -> list[str]:
    """The words a user types for a README command: optional parts included, the first of a|b|c, placeholders filled."""
    words = []
    for word in shlex.split(command.replace("[", " ").replace("]", " "))[1:]:
        word = word.removesuffix("...").split("|")[0]
        if PLACEHOLDER.match(word) and not word.endswith(".html"):
            assert word in placeholders, f"README placeholder {word} in `{command}` has no value in this test"
            word = placeholders[word]
        words.append(word)
    return words


def click_command(words: list[str]):
    """The Click command a list of words reaches (sub-commands followed as far as they go)."""
    command = typer.main.get_command(app)
    for word in words:
        if word not in getattr(command, "commands", {}):
            break
        command = command.commands[word]
    return command


def takes_json(command) -> bool:
    """Whether the command lists results with `--format table|json|csv` (generate's hidden old --format does not)."""
    return any("--format" in param.opts and not param.hidden for param in command.params)


def run(words: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    result = subprocess.run([str(RETAILFLOW), *words], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)
    shown = f"`retailflow {shlex.join(words)}` exited {result.returncode}:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    assert result.returncode == 0, shown
    assert "Traceback" not in result.stdout + result.stderr, shown
    return result


def test_the_readme_lists_the_commands():
    commands = readme_commands()
    assert len(commands) >= 15
    assert commands[0].startswith("retailflow ingest") and any(c.startswith("retailflow demo") for c in commands)


@pytest.fixture
def postgres_database() -> Iterator[tuple[str, str]]:
    """A scratch PostgreSQL database URL and a role name for the README's `grant analyst`; both dropped after."""
    if POSTGRES_SKIP:
        pytest.skip(POSTGRES_SKIP)
    name, role = (f"rf_{kind}_{uuid.uuid4().hex[:12]}" for kind in ("readme", "role"))
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{POSTGRES_ADMIN.rsplit('/', 1)[0]}/{name}"
    try:
        yield url, role
    finally:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.execute(f'DROP ROLE IF EXISTS "{role}"')


@pytest.mark.slow
def test_every_readme_command_runs_as_typed(tmp_path, postgres_database):
    env = {**os.environ, "COLUMNS": "200", "RETAILFLOW_DB": f"duckdb:///{tmp_path}/readme.duckdb",
           "RETAILFLOW_PII_KEY": "readme-test-key-0123456789"}
    env.pop("RETAILFLOW_RULES", None)
    data = tmp_path / "data"
    run(["generate", "--out", str(data), "--seed", "3", "--stores", "3", "--products", "30", "--customers", "300",
         "--days", "14"], tmp_path, env)
    export = write_online_shop(tmp_path / "exports")
    erasures = tmp_path / "ids.csv"
    erasures.write_text("customer_id\nC0002\nC0003\n")
    placeholders = {"PATH": str(data), "DIR": str(tmp_path / "out"), "ENTITY": "store_sales_header",
                    "DATE": "2024-12-14", "TXN_ID": "", "CUSTOMER_ID": "C0001", "IDS.csv": str(erasures),
                    "TEXT": "erasure request", "POSTGRES_URL": postgres_database[0], "ROLE": postgres_database[1],
                    "LANDING": str(tmp_path / "landing"), "EXPORT.csv": str(export.files[0]),
                    "EXPORTS": str(export.export)}
    (tmp_path / "landing").mkdir()
    for command in readme_commands():
        words = as_typed(command, placeholders)
        result = run(words, tmp_path, env)
        if takes_json(click_command(words)):
            json.loads(run([*words, "--format", "json"], tmp_path, env).stdout)
        if not placeholders["TXN_ID"] and words[:1] == ["validate"]:
            with duckdb.connect(f"{tmp_path}/readme.duckdb", read_only=True) as database:
                placeholders["TXN_ID"] = database.sql("SELECT min(transaction_id) FROM staging.store_sales_header"
                                                      ).fetchone()[0]
        assert result.stdout.strip() or words[:1] in (["generate"],), f"`retailflow {shlex.join(words)}` printed nothing"


def every_command_path() -> list[list[str]]:
    found = []

    def walk(command, path: list[str]) -> None:
        found.append(path)
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return found


@pytest.mark.parametrize("path", every_command_path(), ids=lambda path: " ".join(path) or "retailflow")
def test_every_command_has_working_help(path, tmp_path):
    result = run([*path, "--help"], tmp_path, {**os.environ, "COLUMNS": "200"})
    assert "Usage: retailflow" in result.stdout
    assert not (tmp_path / "retailflow.duckdb").exists(), "--help must not open the database"
