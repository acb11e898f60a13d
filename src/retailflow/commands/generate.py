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
    return_rate: float = typer.Option(0.04, "--return-rate", help="Share of sold lines returned, averaged over "
                                      "categories (apparel most, grocery least); a tenth of it cancelled the same day."),
    anonymous_share: float = typer.Option(0.4, "--anonymous-share", help="Mean share of sales without a loyalty "
                                          "card; each store draws its own within ±0.20."),
    free_line_rate: float = typer.Option(0.01, "--free-line-rate", help="Share of lines given free (amount 0.00)."),
    without: str = typer.Option("", "--without", help="Inputs to leave out, comma-separated: inventory, promotions."),
    incidents: bool = typer.Option(False, "--incidents", help="Plant delivery and volume incidents (a missing, a late "
                                   "and a truncated day, a store closing and one opening, a holiday, a promotion day) "
                                   "with their truth in _truth/incidents.csv; needs 42 days and 5 stores."),
) -> None:
    """Generate realistic synthetic retail data with labelled problems and ground truth in _truth/."""
    from retailflow.generate import GeneratorOptions
    from retailflow.generate.options import OPTIONAL_INPUTS

    try:
        first_day = dt.date.fromisoformat(start)
    except ValueError:
        raise UserError(f"--start {start!r} is not a date; use YYYY-MM-DD") from None
    left_out = {name.strip() for name in without.split(",") if name.strip()}
    if unknown := sorted(left_out - set(OPTIONAL_INPUTS)):
        raise UserError(f"--without {', '.join(unknown)}: only {' and '.join(OPTIONAL_INPUTS)} can be left out")
    options = GeneratorOptions(seed=seed, stores=stores, products=products, customers=customers, days=days,
                               start=first_day, anomaly_rate=anomaly_rate, format=old_file_format or file_format,
                               line_items=line_items, inventory="inventory" not in left_out,
                               promotions="promotions" not in left_out, return_rate=return_rate,
                               anonymous_share=anonymous_share, free_line_rate=free_line_rate, incidents=incidents)
    manifest = generate_with_progress(out, options, quiet=ctx.obj.quiet)
    console.print(f"wrote {len(manifest['rows'])} files, {manifest['line_items']:,} line items to {out}")
    counts = manifest["transactions"]
    console.print(f"transactions: {counts['sales']:,} sales, {counts['returns']:,} returns, "
                  f"{manifest['anonymous_share']:.0%} anonymous; net revenue {manifest['net_revenue']} "
                  f"(gross {manifest['gross_revenue']}, returned {manifest['returned_revenue']})")
    console.print("planted problems: " + ", ".join(f"{kind} {count}" for kind, count in manifest["anomaly_kinds"].items()))
    console.print(f"ground truth: {out / '_truth'}")
