"""Every `retailflow` command the README and docs/ show, run as a user types it through the installed executable.

The commands are read from the pages themselves (their fenced blocks and their inline `retailflow …` spans, in the
page's order), so a command added to a page is tested without anyone remembering to. Each page is one test, in a
folder and database of its own, so the pages run in parallel. The pages generated from the code (their usage
lines and table cells are not instructions) are left out.

Every page starts where the tutorial's first two commands leave a newcomer — `generate` two weeks of a shop into
`shop/`, then `run shop` into `./retailflow.duckdb` — since the README's tour begins with them too and every how-to
guide continues from the tutorial's folder. Those two commands run once per test session (shared by the xdist
workers), and each page test works in its own copy of the folder. The environment is a newcomer's: none of our
settings, except what a page itself sets with an `export` line.

Each command must exit 0 without a traceback and print something; a command that lists results with `--format` is
run again with `--format json`, which must parse, on one page that shows it (the one running the fewest commands).
docs/development.md describes the placeholders and saved files a page may use.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
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
TUTORIAL = DOCS / "tutorial" / "first-15-minutes.md"
#: A page written from the code says so; its commands are not instructions (the CLI reference's usage lines hold
#: [OPTIONS], a table cell names the command that writes it).
GENERATED = "written by `python docs/generate_reference.py`"
RETAILFLOW = Path(sys.executable).with_name("retailflow")
#: A fenced block: its info string (`yaml title="my_rules.yaml"`) and its text.
FENCED_BLOCK = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
INLINE_COMMAND = re.compile(r"(?<!`)`(retailflow [^`]+)`")
#: A setting a page asks the reader to make: `export RETAILFLOW_PII_KEY=…` on a line of a fenced block.
EXPORT = re.compile(r"^export (RETAILFLOW_[A-Z_]+)=(\S+)")
PLACEHOLDER = re.compile(r"^[A-Z][A-Z_]*(\.[a-z]+)?$")
#: A file the reader is asked to save: a fenced block whose info string names it (```yaml title="my_rules.yaml").
SAVED_FILE = re.compile(r'\btitle="([^"]+)"')
#: Business dates of the tutorial's data (generate's default start, 14 days).
LAST_DAY = "2024-12-14"


@dataclass(frozen=True)
class Step:
    """One thing a page asks the reader to do: run a command, or set a variable (`name` and `value`)."""

    command: str = ""
    name: str = ""
    value: str = ""


def page_steps(page: Path) -> list[Step]:
    """A page's commands and `export` lines in the order the page shows them (comments cut)."""
    text = page.read_text()
    found: list[tuple[int, Step]] = []
    for block in FENCED_BLOCK.finditer(text):
        position = block.start(2)
        for line in block.group(2).splitlines(keepends=True):
            if line.startswith("retailflow "):
                found.append((position, Step(command=line.split("  #")[0].strip())))
            elif match := EXPORT.match(line):
                found.append((position, Step(name=match.group(1), value=match.group(2))))
            position += len(line)
    outside = FENCED_BLOCK.sub(lambda block: " " * len(block.group(0)), text)
    found += [(match.start(), Step(command=match.group(1))) for match in INLINE_COMMAND.finditer(outside)]
    return [step for _, step in sorted(found, key=lambda item: item[0])]


def page_commands(page: Path) -> list[str]:
    return [step.command for step in page_steps(page) if step.command]


def run_pages() -> list[Path]:
    """The pages whose commands are run: the README, then every hand-written page of docs/ by path."""
    pages = [README, *sorted(DOCS.rglob("*.md"))]
    return [page for page in pages if GENERATED not in page.read_text() and page_commands(page)]


#: The tutorial's first two commands: what every page starts from.
SHARED_START = page_commands(TUTORIAL)[:2]


def saved_files(page: Path) -> dict[str, str]:
    """The files a page asks the reader to save, by name: its fenced blocks with a title."""
    return {match.group(1): block for info, block in FENCED_BLOCK.findall(page.read_text())
            if (match := SAVED_FILE.search(info))}


def as_typed(command: str, placeholders: dict[str, str]) -> list[str]:
    """The words a user types for a shown command: optional parts included, the first of a|b|c, placeholders filled."""
    words = []
    for word in shlex.split(command.replace("[", " ").replace("]", " "), comments=True)[1:]:
        word = word.removesuffix("...").removesuffix("…").split("|")[0]
        if PLACEHOLDER.match(word) and not word.endswith(".html"):
            assert word in placeholders, f"placeholder {word} in `{command}` has no value in this test"
            word = placeholders[word]
        words.append(word)
    return words


def click_command(words: list[str]) -> tuple[str, object]:
    """The Click command a list of words reaches (sub-commands followed as far as they go), and its path."""
    command, path = typer.main.get_command(app), []
    words = iter(words)
    for word in words:
        if word.startswith("-"):
            # An option before the sub-command (`--rules FILE rules`): skip it and its value.
            option = next((param for param in command.params if word in param.opts), None)
            if option is not None and not getattr(option, "is_flag", False) and "=" not in word:
                next(words, None)
            continue
        if word not in getattr(command, "commands", {}):
            break
        command, path = command.commands[word], [*path, word]
    return " ".join(path), command


def listing(words: list[str]) -> str | None:
    """The path of the command the words run (`quarantine show`) when it lists results with `--format
    table|json|csv` (generate's hidden old --format does not), else None."""
    path, command = click_command(words)
    return path if any("--format" in param.opts and not param.hidden for param in command.params) else None


def json_pages() -> dict[str, Path]:
    """Per listing command, the page that checks its JSON: of the pages showing it, the one running the fewest
    commands, so no page's test grows long. Once is enough: its variants (`promotions --top 3`) print through the
    same code, and every rerun is a process start."""
    first: dict[str, Path] = {}
    for page in sorted(run_pages(), key=lambda page: (len(page_commands(page)), str(page))):
        for command in page_commands(page):
            if path := listing(shlex.split(command)[1:]):
                first.setdefault(path, page)
    return first


def run(words: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    result = subprocess.run([str(RETAILFLOW), *words], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)
    shown = f"`retailflow {shlex.join(words)}` exited {result.returncode}:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    assert result.returncode == 0, shown
    assert "Traceback" not in result.stdout + result.stderr, shown
    return result


def run_as_shown(words: list[str], cwd: Path, env: dict[str, str], *, also_json: bool) -> None:
    """Run a command as typed (and with --format json when asked); it must print something."""
    result = run(words, cwd, env)
    if also_json:
        json.loads(run([*words, "--format", "json"], cwd, env).stdout)
    assert result.stdout.strip() or words[:1] in (["generate"],), f"`retailflow {shlex.join(words)}` printed nothing"


def newcomer_env() -> dict[str, str]:
    """A newcomer's shell: none of our settings (the test run's compiled-SQL cache changes no result). `report
    --open` opens the report with $BROWSER: `true` is a browser that opens nothing."""
    env = {name: value for name, value in os.environ.items()
           if not name.startswith("RETAILFLOW_") or name == "RETAILFLOW_CACHE_DIR"}
    return {**env, "COLUMNS": "200", "BROWSER": "true"}


def test_the_pages_list_the_commands():
    pages = run_pages()
    commands = [command for page in pages for command in page_commands(page)]
    assert len(set(commands)) >= 30 and pages[0] == README and TUTORIAL in pages
    assert SHARED_START[0].startswith("retailflow generate --out shop") and SHARED_START[1] == "retailflow run shop"
    assert [command for command in page_commands(README) if command in SHARED_START] == SHARED_START
    demo_page = DOCS / "reference" / "synthetic-data.md"
    assert any(command.startswith("retailflow demo") for command in page_commands(demo_page))
    assert any(command.startswith("retailflow watch") for command in page_commands(DOCS / "how-to" / "nightly-run.md"))
    tutorial = page_commands(TUTORIAL)
    assert "retailflow quarantine replay" in tutorial
    assert set(saved_files(TUTORIAL)) == {"online_retail_2010-12.csv", "stores_online.csv"}
    assert not any(GENERATED in page.read_text() for page in pages)
    assert {"quarantine", "promotions", "rules"} <= set(json_pages())


@pytest.fixture(scope="session")
def tutorial_start(tmp_path_factory) -> Path:
    """A folder after the tutorial's first two commands, run as typed by a newcomer: shop/ and retailflow.duckdb.

    Made once per test session: the xdist workers share their run's temporary root, and the first to take the
    lock makes it (about 10 s); the others wait for it and use it as it is. Tests copy it, never change it.
    """
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    folder, done = root / "tutorial-start", root / "tutorial-start.done"
    with open(root / "tutorial-start.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            for command in SHARED_START:
                run(as_typed(command, {}), folder, newcomer_env())
            done.touch()
    return folder


@pytest.fixture
def postgres_database() -> Iterator[tuple[str, str]]:
    """A scratch PostgreSQL database URL and a role name for `grant analyst`; both dropped after."""
    if POSTGRES_SKIP:
        pytest.skip(POSTGRES_SKIP)
    name, role = (f"rf_{kind}_{uuid.uuid4().hex[:12]}" for kind in ("docs", "role"))
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{POSTGRES_ADMIN.rsplit('/', 1)[0]}/{name}"
    try:
        yield url, role
    finally:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.execute(f'DROP ROLE IF EXISTS "{role}"')


def placeholder_values(page: Path, folder: Path, request) -> dict[str, str]:
    """A value for every placeholder the page uses; what a value needs (a database, a file) is made only then."""
    used = {word.removesuffix("...").removesuffix("…") for command in page_commands(page)
            for word in shlex.split(command.replace("[", " ").replace("]", " "), comments=True)}
    values = {"PATH": "shop", "DIR": str(folder / "out"), "ENTITY": "store_sales_header", "DATE": LAST_DAY,
              "CUSTOMER_ID": "C0001"}
    if "LANDING" in used:
        (folder / "landing").mkdir()
        values["LANDING"] = str(folder / "landing")
    if used & {"EXPORT.csv", "EXPORTS", "FILE"}:
        export = write_online_shop(folder / "exports")
        values |= {"EXPORT.csv": str(export.files[0]), "FILE": str(export.files[0]), "EXPORTS": str(export.export)}
    if used & {"POSTGRES_URL", "ROLE"}:
        values["POSTGRES_URL"], values["ROLE"] = request.getfixturevalue("postgres_database")
    if "TXN_ID" in used:
        with duckdb.connect(str(folder / "retailflow.duckdb"), read_only=True) as database:
            values["TXN_ID"] = database.sql("SELECT min(transaction_id) FROM staging.store_sales_header").fetchone()[0]
    return values


@pytest.mark.slow
@pytest.mark.parametrize("page", run_pages(), ids=lambda page: str(page.relative_to(ROOT)))
def test_every_shown_command_runs_as_typed(page, tutorial_start, tmp_path, request):
    folder = tmp_path / "work"
    shutil.copytree(tutorial_start, folder)
    for name, text in saved_files(page).items():
        (folder / name).write_text(text)
    values = placeholder_values(page, folder, request)
    env = newcomer_env()
    json_here = {name for name, first in json_pages().items() if first == page}
    # The tutorial's first two commands already ran, in a fresh folder, before anything else.
    skipped = list(SHARED_START) if page in (README, TUTORIAL) else []
    for step in page_steps(page):
        if step.name:
            env[step.name] = step.value
            continue
        if step.command in skipped:
            skipped.remove(step.command)
            continue
        words = as_typed(step.command, values)
        path = listing(words)
        run_as_shown(words, folder, env, also_json=path in json_here)
        json_here.discard(path)
    if page == TUTORIAL:
        with duckdb.connect(str(folder / "retailflow.duckdb"), read_only=True) as database:
            online = database.sql("SELECT count(*) FROM staging.store_sales_header WHERE store_id = 'ONLINE'"
                                  ).fetchone()
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
