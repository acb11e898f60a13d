"""The docs cannot drift from the code: the site builds strictly, generated references are current, every command
is in the CLI reference, every page is reachable from the index, no relative link or anchor leads nowhere on
GitHub either, and the architecture's picture of the layers agrees with the source's imports.

The commands the pages show are run in test_readme_commands.py; the settings and global options the README
must name are checked in test_cli.py.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from retailflow.cli import app

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
CLI_REFERENCE = DOCS / "reference" / "cli.md"
ARCHITECTURE = DOCS / "explanation" / "architecture.md"
PACKAGE = ROOT / "src" / "retailflow"
DOC_PAGES = sorted(DOCS.rglob("*.md"))
PAGES = [ROOT / "README.md", ROOT / "benchmarks" / "RESULTS.md", *DOC_PAGES]
FENCED_BLOCK = re.compile(r"^```.*?^```[ \t]*$", re.MULTILINE | re.DOTALL)
HEADING = re.compile(r"^#{1,6} +(.+?) *#*$", re.MULTILINE)
LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_the_docs_build_strictly(tmp_path):
    # The real site, as docs/development.md builds it, with warnings as errors: a link to a missing page or anchor,
    # a page in no table of contents or a Markdown mistake fails. About 3 s.
    result = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
                             "-d", str(tmp_path / "doctrees"), "-c", str(DOCS), str(ROOT), str(tmp_path / "site")],
                            capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    assert (tmp_path / "site" / "docs" / "index.html").exists()


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
    assert f"\n## `{path}`\n" in CLI_REFERENCE.read_text(), f"{path} is not in docs/reference/cli.md"


def test_every_page_is_linked_from_the_index():
    index = DOCS / "index.md"
    linked = {(index.parent / target.split("#")[0]).resolve() for target in LINK.findall(index.read_text())}
    missing = [str(page.relative_to(DOCS)) for page in DOC_PAGES if page != index and page.resolve() not in linked]
    assert not missing, f"not linked from docs/index.md: {missing}"


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
    # On GitHub, which the strict build does not check: the README and RESULTS.md are read there first.
    broken = []
    for target in LINK.findall(FENCED_BLOCK.sub("", page.read_text())):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists() or (anchor and linked.suffix == ".md" and anchor not in anchors(linked)):
            broken.append(target)
    assert not broken, f"{page.relative_to(ROOT)} links to nothing: {broken}"


# --- The picture of the layers ---------------------------------------------------------------------------------

def drawn_layers() -> list[set[str]]:
    """The rows of the architecture page's picture, top row first: the module names each row shows."""
    text = ARCHITECTURE.read_text()
    picture = re.search(r"<!-- layers:.*?-->\n```text\n(.*?)```", text, re.DOTALL)
    assert picture, f"{ARCHITECTURE.relative_to(ROOT)} has no picture of the layers (a text block after '<!-- layers: -->')"
    # A row is a line naming modules. A line that does not start with a space starts with the row's caption, which
    # ends at the first wide gap; the lines between rows (arrows) name nothing.
    rows = []
    for line in picture.group(1).splitlines():
        names = line if line[:1].isspace() else line.partition("  ")[2]
        if found := set(re.findall(r"[a-z_]+", names)):
            rows.append(found)
    return rows


def source_imports() -> dict[str, set[str]]:
    """Per top-level module or subpackage of retailflow, the other ones it imports (in any function, and under
    TYPE_CHECKING too, as tests/test_layering.py counts them)."""
    paths = [path for path in PACKAGE.rglob("*.py") if path != PACKAGE / "__init__.py"]
    found: dict[str, set[str]] = {path.relative_to(PACKAGE).parts[0].removesuffix(".py"): set() for path in paths}
    for path in paths:
        layer = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + ([f"{node.module}.{alias.name}" for alias in node.names]
                                         if node.module == "retailflow" else [])
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                names = []
            for name in names:
                parts = name.split(".")
                # `from retailflow import __version__` names no module.
                if parts[0] == "retailflow" and len(parts) > 1 and parts[1] != layer and parts[1] in found:
                    found[layer].add(parts[1])
    return found


def test_the_picture_of_the_layers_shows_every_module_once():
    drawn = [name for row in drawn_layers() for name in row]
    modules = set(source_imports())
    assert len(drawn) == len(set(drawn)), f"drawn twice: {sorted({name for name in drawn if drawn.count(name) > 1})}"
    assert set(drawn) == modules, (f"not drawn: {sorted(modules - set(drawn))}; "
                                   f"drawn but not in src/retailflow: {sorted(set(drawn) - modules)}")


def listed_upward_imports() -> set[tuple[str, str]]:
    """The imports the architecture page lists as still going upwards: `- `a` → `b`: why`."""
    listed = re.search(r"<!-- upward imports:.*?-->\n((?:- .*\n(?:  .*\n)*)*)", ARCHITECTURE.read_text())
    return set(re.findall(r"^- `(\w+)` → `(\w+)`", listed.group(1), re.MULTILINE)) if listed else set()


def test_the_picture_of_the_layers_matches_the_imports():
    # A module may import what is drawn in its own row or below it, never above, but for the imports the page lists
    # as debts. Listed and found must be the same, so a debt paid is noticed as a gap that closes.
    row = {name: index for index, names in enumerate(drawn_layers()) for name in names}
    upward = {(module, imported) for module, imported_names in source_imports().items() for imported in imported_names
              if module in row and imported in row and row[imported] < row[module]}
    listed = listed_upward_imports()
    assert upward <= listed, (f"{ARCHITECTURE.relative_to(ROOT)}: a module imports one drawn above it: "
                              f"{sorted(upward - listed)}")
    assert listed <= upward, f"no longer imported upwards; take them off the page's list: {sorted(listed - upward)}"


def test_the_picture_of_the_layers_agrees_with_the_layering_test():
    import test_layering

    row = {name: index for index, names in enumerate(drawn_layers()) for name in names}
    wrong = sorted(f"{layer} may not import {forbidden}, so {forbidden} is drawn above it"
                   for layer, forbidden_names in test_layering.FORBIDDEN.items() for forbidden in forbidden_names
                   if layer in row and forbidden in row and row[forbidden] >= row[layer])
    assert not wrong, wrong
