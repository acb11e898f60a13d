"""`retailflow report`: the dashboard as one shareable HTML file."""

from __future__ import annotations

import webbrowser
from functools import partial
from pathlib import Path
from typing import Optional

import typer

from retailflow.commands import open_backend
from retailflow.output import console, errors


def report_command(
    ctx: typer.Context,
    out: Path = typer.Option(Path("report.html"), "--out", help="HTML file to write (a folder gets report.html)."),
    open_: bool = typer.Option(False, "--open", help="Open the report in the default browser."),
    png: Optional[Path] = typer.Option(None, "--png", help="Also write one PNG per chart into this folder "
                                                           "(needs the optional kaleido package)."),
    title: Optional[str] = typer.Option(None, "--title", help="Title at the top of the report."),
) -> None:
    """Write the dashboard: one self-contained interactive HTML file (works offline, e-mails masked).

    Sections whose stage has not run yet say which command fills them; a section whose stage ran without an input
    file it needs (inventory snapshots, promotions, loyalty rules, a stores file) says which.
    """
    from retailflow.report.dashboard import build_report

    info = build_report(open_backend(ctx), out, title=title, png_dir=png)
    say = partial(console.print, soft_wrap=True, highlight=False)  # paths stay whole, on one line
    say(f"report: {info.path} ({info.bytes / 1e6:.1f} MB, {info.charts} charts)")
    if info.sections_missing:
        say(f"not run yet: {', '.join(info.sections_missing)} (the report says which command fills each)")
    for key, lines in info.inputs_missing.items():
        for line in lines:
            say(f"{key}: {line}")
    if info.png_note:
        say(info.png_note)
    if open_ and not webbrowser.open(info.path.resolve().as_uri()):
        say(f"no browser found here: open {info.path} yourself")
    if info.sections_failed:
        for key, message in info.sections_failed.items():
            errors.print(f"[red]section {key} could not be built:[/red] {message}", soft_wrap=True, highlight=False)
        raise typer.Exit(1)
