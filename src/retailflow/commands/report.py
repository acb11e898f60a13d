"""`retailflow report`: the dashboard as one shareable HTML file."""

from __future__ import annotations

import webbrowser
from pathlib import Path
from typing import Optional

import typer

from retailflow.commands import open_backend
from retailflow.output import console
from retailflow.report.dashboard import build_report


def report_command(
    ctx: typer.Context,
    out: Path = typer.Option(Path("report.html"), "--out", help="Where to write the HTML file."),
    open_browser: bool = typer.Option(False, "--open", help="Open the report in the default browser."),
    png: Optional[Path] = typer.Option(None, "--png", help="Also write one PNG per chart here (needs kaleido)."),
    title: Optional[str] = typer.Option(None, "--title", help="Title shown at the top of the report."),
) -> None:
    """Write one self-contained interactive HTML report (works offline, e-mails masked)."""
    info = build_report(open_backend(ctx), out, title=title, png_dir=png)
    console.print(f"report: {info.path} ({info.bytes / 1e6:.1f} MB, {info.charts} charts)")
    if info.sections_missing:
        console.print(f"not run yet: {', '.join(info.sections_missing)}")
    if info.png_note:
        console.print(info.png_note)
    if open_browser:
        webbrowser.open(info.path.resolve().as_uri())
