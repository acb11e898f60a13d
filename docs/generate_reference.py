"""Write the references that come from the code: docs/cli.md from every command's `--help`, and the README's
settings table from config.VARIABLES.

    python docs/generate_reference.py           # rewrite both
    python docs/generate_reference.py --check   # exit 1, writing nothing, when either is not what this writes

Written from the code, they cannot say something the code does not: tests/test_docs.py runs `--check`, so a
command, option or setting that changed fails the suite until this is run again.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

# Click's plain help, not Rich's boxes: Rich draws them to the terminal's width and style, which would make
# the file differ from machine to machine. Typer reads this once, when it is imported, so it is set first.
os.environ["TYPER_USE_RICH"] = "0"

import click  # noqa: E402
import typer  # noqa: E402

from retailflow.cli import app  # noqa: E402
from retailflow.config import VARIABLES  # noqa: E402

DOCS = Path(__file__).resolve().parent
CLI_REFERENCE = DOCS / "cli.md"
README = DOCS.parent / "README.md"
#: The README's settings table sits between these two lines; everything else in the README is written by hand.
SETTINGS_START = "<!-- settings: written by docs/generate_reference.py from config.VARIABLES; do not edit -->"
SETTINGS_END = "<!-- end of settings -->"
#: A fixed width, for the same reason as plain help: the file must not depend on the terminal.
WIDTH = 100

CLI_HEADER = """\
# Command-line reference

Every command's `--help`, as the command prints it. This file is written by
`python docs/generate_reference.py` from the commands themselves; do not edit it by hand
(tests/test_docs.py fails when it differs from what the script writes).
For a guided first use see the [tutorial](tutorial.md); for what each command is for, the
[README's command list](../README.md#commands).
"""


def command_contexts() -> list[click.Context]:
    """A Click context for every visible command, depth first in the order `retailflow --help` lists them."""
    found: list[click.Context] = []

    def walk(context: click.Context) -> None:
        found.append(context)
        command = context.command
        for name in getattr(command, "commands", {}):
            sub = command.get_command(context, name)
            if not sub.hidden:
                walk(click.Context(sub, info_name=name, parent=context, terminal_width=WIDTH,
                                   max_content_width=WIDTH))

    walk(click.Context(typer.main.get_command(app), info_name="retailflow", terminal_width=WIDTH,
                       max_content_width=WIDTH))
    return found


def anchor(heading: str) -> str:
    """The anchor GitHub gives a heading of inline code made of words and spaces: lower case, spaces as hyphens."""
    return heading.lower().replace(" ", "-")


def cli_reference() -> str:
    """docs/cli.md's text: a contents list, then each command's heading and help."""
    contexts = command_contexts()
    contents = [f"- [`{context.command_path}`](#{anchor(context.command_path)})" for context in contexts]
    sections = [f"## `{context.command_path}`\n\n```text\n{context.command.get_help(context)}\n```\n"
                for context in contexts]
    return "\n".join([CLI_HEADER, *contents, "", *sections])


def escape_cell(text: str) -> str:
    """Text for a Markdown table cell: a bar would end the cell."""
    return text.replace("|", "\\|")


def readme_with_settings(readme: str) -> str:
    """The README with its settings table rewritten from config.VARIABLES (the text around it kept)."""
    before, marker, rest = readme.partition(SETTINGS_START)
    _, end, after = rest.partition(SETTINGS_END)
    if not (marker and end):
        sys.exit(f"{README} has no settings table: put the lines {SETTINGS_START!r} and {SETTINGS_END!r} where it goes")
    rows = [f"| `{variable.name}` | {escape_cell(variable.description)} |" for variable in VARIABLES.values()]
    table = "\n".join(["| variable | what it sets |", "|---|---|", *rows])
    return f"{before}{SETTINGS_START}\n{table}\n{SETTINGS_END}{after}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when a reference is out of date, writing nothing")
    args = parser.parse_args()
    readme = README.read_text()
    wanted = {CLI_REFERENCE: cli_reference(), README: readme_with_settings(readme)}
    if args.check:
        stale = [path for path, text in wanted.items() if not path.exists() or path.read_text() != text]
        if stale:
            sys.exit(f"not what the code gives now: {', '.join(str(path) for path in stale)}; "
                     f"run python docs/generate_reference.py")
        return
    for path, text in wanted.items():
        path.write_text(text)


if __name__ == "__main__":
    main()
