"""`retailflow map`: propose a source mapping from export files, or check one against them."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from retailflow.output import Format, console, errors, render


def map_command(
    ctx: typer.Context,
    files: list[Path] = typer.Argument(..., exists=True, dir_okay=False, readable=True,
                                       help="Export files; files whose names differ by a date share one source."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the proposed mapping here (default: standard "
                                                           "output, the summary then on standard error)."),
    check: bool = typer.Option(False, "--check", help="Run the mapping (--sources) over the files and print the "
                                                      "first problems per column, loading nothing."),
) -> None:
    """Propose a source mapping for export files: which entity each feeds, how its text is written and where each
    of our columns comes from, every choice with its reason and every column left out with why."""
    if check:
        from retailflow.sources.reading import check_files

        problems = check_files(ctx.obj.sources(), files)
        render(problems, Format.table, title="first problems per column")
        if problems:
            raise typer.Exit(2)
        console.print(f"{len(files)} file{'s' if len(files) > 1 else ''} read with the mapping: no problem found")
        return
    from retailflow.sources.propose import propose, render_yaml, summary_rows

    proposals = propose(files)
    text = render_yaml(proposals)
    table = _summary(summary_rows(proposals))
    if out is None:
        # The mapping alone on standard output, so `retailflow map FILE > sources.yaml` is the file to edit.
        sys.stdout.write(text)
        errors.print(table)
        return
    out.write_text(text, encoding="utf-8")
    console.print(table)
    unplaced = sum(len(proposal.unplaced) for proposal in proposals)
    console.print(f"wrote {out}: {len(proposals)} source{'s' if len(proposals) > 1 else ''}, {unplaced} "
                  f"column{'s' if unplaced != 1 else ''} to look at; then `retailflow --sources {out} run FOLDER`")


def _summary(rows: list[dict]) -> Table:
    """The proposal in brief: per source, our column, the file columns it reads and why."""
    table = Table(title="proposed mapping", title_justify="left")
    for name in ("source", "ours", "from", "why"):
        table.add_column(name, overflow="fold")
    for row in rows:
        table.add_row(row["source"], row["ours"], row["from"], row["why"])
    return table
