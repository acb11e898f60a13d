"""`retailflow generate`: synthetic data with planted truth."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path
from typing import Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from retailflow.errors import UserError
from retailflow.generate import GeneratorOptions, generate_dataset
from retailflow.output import console


def generate_with_progress(out: Path, options: GeneratorOptions, quiet: bool = False) -> dict:
    """Generate a dataset showing a Rich progress bar over the simulated days (none when quiet)."""
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
    output_format: str = typer.Option("csv", "--format", help="csv or parquet."),
    line_items: Optional[int] = typer.Option(None, "--line-items", help="Size the data to about this many line items."),
) -> None:
    """Generate realistic synthetic retail data with labelled problems and ground truth in _truth/."""
    try:
        first_day = dt.date.fromisoformat(start)
    except ValueError:
        raise UserError(f"--start {start!r} is not a date; use YYYY-MM-DD") from None
    options = GeneratorOptions(seed=seed, stores=stores, products=products, customers=customers, days=days,
                               start=first_day, anomaly_rate=anomaly_rate, format=output_format,
                               line_items=line_items)
    manifest = generate_with_progress(out, options, quiet=ctx.obj.quiet)
    kinds = Counter(line.split('","')[3] for line in (out / "_truth" / "anomalies.csv").read_text().splitlines()[1:])
    console.print(f"wrote {len(manifest['rows'])} files, {manifest['line_items']:,} line items to {out}")
    console.print("planted problems: " + ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items())))
    console.print(f"ground truth: {out / '_truth'}")
