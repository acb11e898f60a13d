"""`retailflow generate`: synthetic data with planted truth."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer
from retailflow.errors import UserError
from retailflow.output import console

if TYPE_CHECKING:
    from retailflow.generate import GeneratorOptions


def generate_with_progress(out: Path, options: GeneratorOptions, quiet: bool = False) -> dict:
    """Generate a dataset showing a Rich progress bar over the simulated days (none when quiet)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from retailflow.generate import generate_dataset

    if quiet:
        return generate_dataset(out, options)
    with Progress(TextColumn("generating"), BarColumn(), MofNCompleteColumn(), TextColumn("days"),
                  TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task("days", total=options.days)
        return generate_dataset(out, options, progress=lambda stage, done, total: bar.update(task, completed=done))


def generate_command(
    ctx: typer.Context,
    out: Path = typer.Option(Path("data/generated"), "--out", help="Folder to write the files into."),
    seed: int = typer.Option(7, help="Random seed: the same seed and options give byte-identical files."),
    stores: int = typer.Option(20, help="Number of stores."),
    products: int = typer.Option(300, help="Number of products."),
    customers: int = typer.Option(5000, help="Number of customers (ignored with --line-items)."),
    days: int = typer.Option(30, help="Days of sales."),
    start: str = typer.Option("2024-12-01", help="First day, YYYY-MM-DD."),
    anomaly_rate: float = typer.Option(0.02, "--anomaly-rate", help="Share of transactions with a planted problem."),
    file_format: str = typer.Option("csv", "--file-format", help="Files to write: csv or parquet."),
    old_file_format: Optional[str] = typer.Option(None, "--format", hidden=True, help="Old name of --file-format."),
    line_items: Optional[int] = typer.Option(None, "--line-items", help="Size the data to about this many line items."),
) -> None:
    """Generate realistic synthetic retail data with labelled problems and ground truth in _truth/."""
    from retailflow.generate import GeneratorOptions

    try:
        first_day = dt.date.fromisoformat(start)
    except ValueError:
        raise UserError(f"--start {start!r} is not a date; use YYYY-MM-DD") from None
    options = GeneratorOptions(seed=seed, stores=stores, products=products, customers=customers, days=days,
                               start=first_day, anomaly_rate=anomaly_rate, format=old_file_format or file_format,
                               line_items=line_items)
    manifest = generate_with_progress(out, options, quiet=ctx.obj.quiet)
    console.print(f"wrote {len(manifest['rows'])} files, {manifest['line_items']:,} line items to {out}")
    console.print("planted problems: " + ", ".join(f"{kind} {count}" for kind, count in manifest["anomaly_kinds"].items()))
    console.print(f"ground truth: {out / '_truth'}")
