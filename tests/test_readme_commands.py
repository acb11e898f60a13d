"""Every `retailflow` command the README and docs/ show, run as a user types it through the installed executable.

The commands are read from the pages themselves (their fenced blocks and their inline `retailflow …` spans),
so a command added to a page is tested without anyone remembering to. The README's and the reference pages'
commands run in that order (README first, then docs/*.md by name), each distinct command once, on one small
generated dataset and one DuckDB file. The tutorial runs apart, in a fresh folder with no setting of ours, as
a newcomer types it. docs/cli.md is left out: it is the generated `--help`, whose usage lines are not commands.
Each command must exit 0 without a traceback and print something; outside the tutorial, a command that takes
`--format` is run again with `--format json`, which must parse.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import duckdb
import psycopg
import pytest
import typer

from exports import write_online_shop
from helpers import POSTGRES_ADMIN, POSTGRES_SKIP

from retailflow.cli import app

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
TUTORIAL = DOCS / "tutorial.md"
#: Pages whose commands are not run here: the generated reference (its usage lines hold [OPTIONS] and the like)
#: and the tutorial, which runs on its own.
NOT_RUN_IN_ORDER = {DOCS / "cli.md", TUTORIAL}
RETAILFLOW = Path(sys.executable).with_name("retailflow")
#: A fenced block: its info string (`csv title="stores.csv"`) and its text.
FENCED_BLOCK = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
INLINE_COMMAND = re.compile(r"(?<!`)`(retailflow [^`]+)`")
PLACEHOLDER = re.compile(r"^[A-Z][A-Z_]*(\.[a-z]+)?$")
#: A file the reader is asked to save: a fenced block whose info string names it (```csv title="stores.csv").
SAVED_FILE = re.compile(r'\btitle="([^"]+)"')


def page_commands(page: Path) -> list[str]:
    """A page's retailflow commands in order: fenced-block lines first, then inline spans (comments cut)."""
    text = page.read_text()
    fenced = [line.split("  #")[0].strip() for _, block in FENCED_BLOCK.findall(text)
              for line in block.splitlines() if line.startswith("retailflow ")]
    inline = INLINE_COMMAND.findall(FENCED_BLOCK.sub("", text))
    return fenced + inline


def shown_commands() -> list[str]:
    """The README's commands, then those of docs/*.md by page name (not cli.md or the tutorial), each once."""
    pages = [README, *sorted(path for path in DOCS.glob("*.md") if path not in NOT_RUN_IN_ORDER)]
    return list(dict.fromkeys(command for page in pages for command in page_commands(page)))


def saved_files(page: Path) -> dict[str, str]:
    """The files a page asks the reader to save, by name: its fenced blocks with a title."""
    return {match.group(1): block for info, block in FENCED_BLOCK.findall(page.read_text())
            if (match := SAVED_FILE.search(info))}


def as_typed(command: str, placeholders: dict[str, str]) -> list[str]:
    """The words a user types for a shown command: optional parts included, the first of a|b|c, placeholders filled."""
    words = []
    for word in shlex.split(command.replace("[", " ").replace("]", " "))[1:]:
        word = word.removesuffix("...").removesuffix("…").split("|")[0]
        if PLACEHOLDER.match(word) and not word.endswith(".html"):
            assert word in placeholders, f"placeholder {word} in `{command}` has no value in this test"
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


def run_as_shown(words: list[str], cwd: Path, env: dict[str, str], *, also_json: bool = True) -> None:
    """Run a command as typed (and with --format json when it lists results); it must print something."""
    result = run(words, cwd, env)
    if also_json and takes_json(click_command(words)):
        json.loads(run([*words, "--format", "json"], cwd, env).stdout)
    assert result.stdout.strip() or words[:1] in (["generate"],), f"`retailflow {shlex.join(words)}` printed nothing"


def test_the_pages_list_the_commands():
    commands = shown_commands()
    assert len(commands) >= 15 and len(commands) == len(set(commands))
    assert commands[0].startswith("retailflow ingest") and any(c.startswith("retailflow demo") for c in commands)
    assert any(command in page_commands(DOCS / "operations.md") for command in commands)
    tutorial = page_commands(TUTORIAL)
    assert tutorial[0].startswith("retailflow generate") and "retailflow quarantine replay" in tutorial
    assert set(saved_files(TUTORIAL)) == {"online_retail_2010-12.csv", "stores_online.csv"}


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
def test_every_shown_command_runs_as_typed(tmp_path, postgres_database):
    # `report --open` opens the report with $BROWSER: `true` is a browser that opens nothing.
    env = {**os.environ, "COLUMNS": "200", "RETAILFLOW_DB": f"duckdb:///{tmp_path}/readme.duckdb",
           "RETAILFLOW_PII_KEY": "readme-test-key-0123456789", "BROWSER": "true"}
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
                    "EXPORTS": str(export.export), "FILE": str(export.files[0])}
    (tmp_path / "landing").mkdir()
    # Each command's JSON is parsed once, at its first appearance: its variants (`promotions --top 3`) print
    # through the same code, and every rerun is a process start (suite time).
    json_checked: set[str] = set()
    for command in shown_commands():
        words = as_typed(command, placeholders)
        listing = click_command(words)
        run_as_shown(words, tmp_path, env, also_json=listing.name not in json_checked)
        json_checked.add(listing.name)
        if not placeholders["TXN_ID"] and words[:1] == ["validate"]:
            with duckdb.connect(f"{tmp_path}/readme.duckdb", read_only=True) as database:
                placeholders["TXN_ID"] = database.sql("SELECT min(transaction_id) FROM staging.store_sales_header"
                                                      ).fetchone()[0]


@pytest.mark.slow
def test_the_tutorial_runs_as_typed(tmp_path):
    # A newcomer's shell: none of our settings (the test run's compiled-SQL cache changes no result), so the
    # database is ./retailflow.duckdb and the mapping ./retailflow.yaml once `map` has written it.
    env = {name: value for name, value in os.environ.items()
           if not name.startswith("RETAILFLOW_") or name == "RETAILFLOW_CACHE_DIR"}
    env["COLUMNS"] = "200"
    for name, text in saved_files(TUTORIAL).items():
        (tmp_path / name).write_text(text)
    # No placeholders (the tutorial gives real values), and no --format json runs: the tutorial types none, and
    # the same commands' JSON is checked above.
    for command in page_commands(TUTORIAL):
        run_as_shown(as_typed(command, {}), tmp_path, env, also_json=False)
    with duckdb.connect(str(tmp_path / "retailflow.duckdb"), read_only=True) as database:
        online = database.sql("SELECT count(*) FROM staging.store_sales_header WHERE store_id = 'ONLINE'").fetchone()
    assert online == (8,), "the tutorial says the online shop's 8 transactions are staged after the replay"


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
