"""The docs cannot drift from the code: generated references are current, every command is in the CLI reference,
every page is reachable from the index, and no relative link or anchor leads nowhere.

The commands the pages show are run in test_readme_commands.py; the settings and global options the README
must name are checked in test_cli.py.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from retailflow.cli import app

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
CLI_REFERENCE = DOCS / "cli.md"
PAGES = [ROOT / "README.md", ROOT / "benchmarks" / "RESULTS.md", *sorted(DOCS.glob("*.md"))]
FENCED_BLOCK = re.compile(r"^```.*?^```[ \t]*$", re.MULTILINE | re.DOTALL)
HEADING = re.compile(r"^#{1,6} +(.+?) *#*$", re.MULTILINE)
LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_generated_references_are_current():
    result = subprocess.run([sys.executable, str(DOCS / "generate_reference.py"), "--check"], capture_output=True,
                            text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr


def command_paths() -> list[str]:
    """`retailflow …` for every visible command and sub-command."""
    found = []

    def walk(command, path: str) -> None:
        found.append(path)
        for name, sub in getattr(command, "commands", {}).items():
            if not sub.hidden:
                walk(sub, f"{path} {name}")

    walk(typer.main.get_command(app), "retailflow")
    return found


@pytest.mark.parametrize("path", command_paths())
def test_every_command_is_in_the_cli_reference(path):
    assert f"\n## `{path}`\n" in CLI_REFERENCE.read_text(), f"{path} is not in docs/cli.md"


def test_every_page_is_linked_from_the_index():
    index = (DOCS / "index.md").read_text()
    linked = {target.split("#")[0] for target in LINK.findall(index)}
    assert {page.name for page in DOCS.glob("*.md")} - {"index.md"} <= linked


def anchors(page: Path) -> set[str]:
    """The anchors GitHub gives a page's headings: lower case, punctuation dropped, spaces as hyphens, repeats
    numbered (-1, -2…)."""
    seen: dict[str, int] = {}
    found = set()
    for heading in HEADING.findall(FENCED_BLOCK.sub("", page.read_text())):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        found.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
        seen[slug] = seen.get(slug, 0) + 1
    return found


def test_anchors_follow_github():
    # "## Ingest + validate (`ingest_validate.py`)" as GitHub renders it.
    page = ROOT / "benchmarks" / "RESULTS.md"
    assert {"ingest--validate-ingest_validatepy", "mariadb-at-volume"} <= anchors(page)


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_relative_links_lead_somewhere(page):
    broken = []
    for target in LINK.findall(FENCED_BLOCK.sub("", page.read_text())):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists() or (anchor and linked.suffix == ".md" and anchor not in anchors(linked)):
            broken.append(target)
    assert not broken, f"{page.relative_to(ROOT)} links to nothing: {broken}"
