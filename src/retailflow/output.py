"""Rendering command results: Rich tables for people, JSON or CSV for machines."""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import json
import sys
from collections.abc import Sequence
from enum import Enum

import typer
from rich.console import Console
from rich.table import Table

console = Console()
errors = Console(stderr=True)


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
        console.print(table)
