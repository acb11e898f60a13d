"""Rendering command results: Rich tables for people, JSON or CSV for machines."""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import json
import os
import sys
from collections.abc import Sequence
from enum import Enum

import typer
from rich.console import Console
from rich.table import Table


def _console(stderr: bool = False) -> Console:
    """A console that wraps lines at the terminal's width on a terminal, and not at all piped to a file or a CI log
    (unless COLUMNS is set): a path, a database URL or a command in a message stays on one line, greppable."""
    made = Console(stderr=stderr)
    made.soft_wrap = _unbounded(made)
    return made


def _unbounded(target: Console) -> bool:
    """Whether output to `target` has no width to fit: not a terminal, and no COLUMNS given."""
    return not target.is_terminal and not os.environ.get("COLUMNS")


console = _console()
errors = _console(stderr=True)


class Format(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


#: The one `--format` option of every listing command.
FORMAT_OPTION = typer.Option(Format.table, "--format", help="Output format: table, json or csv.")


def _plain(value: object) -> object:
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def render(rows: Sequence[dict], output_format: Format, title: str = "", columns: Sequence[str] | None = None) -> None:
    """Print rows as a Rich table, a JSON array or CSV."""
    columns = list(columns or (rows[0].keys() if rows else []))
    if output_format is Format.json:
        json.dump([{name: _plain(row.get(name)) for name in columns} for row in rows], sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif output_format is Format.csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        writer.writerows([[_plain(row.get(name)) for name in columns] for row in rows])
    else:
        table = Table(title=title or None, title_justify="left")
        for name in columns:
            table.add_column(name, overflow="fold")
        for row in rows:
            table.add_row(*["" if row.get(name) is None else str(_plain(row.get(name))) for name in columns])
        _show(table)


def render_listings(listings: dict[str, tuple[Sequence[str], Sequence[dict]]], output_format: Format) -> None:
    """Several tables for machines (`name -> (columns, rows)`): JSON gives one key per table, each row with its
    own table's columns only; CSV, a flat file, gives one listing with a `table` column and every column."""
    if output_format is Format.json:
        json.dump({name: [{column: _plain(row.get(column)) for column in columns} for row in rows]
                   for name, (columns, rows) in listings.items()}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    every = dict.fromkeys(["table", *(column for columns, _ in listings.values() for column in columns)])
    render([{"table": name, **row} for name, (_, rows) in listings.items() for row in rows], output_format,
           columns=list(every))


def _show(table: Table) -> None:
    """A table on a terminal fits the terminal; piped to a file or a CI log (and no COLUMNS set) it keeps its
    natural width, so a rule id or a database URL is never broken across lines and logs stay greppable."""
    if not _unbounded(console):
        console.print(table)
    else:
        wide = Console(width=_UNBOUNDED, color_system=None)
        with wide.capture() as captured:
            wide.print(table)
        sys.stdout.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))


#: Wide enough for any table we print: a table that does not expand is laid out at its natural width.
_UNBOUNDED = 100_000
