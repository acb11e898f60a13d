"""`retailflow watch`: a landing-folder watcher with a live status."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from retailflow.commands import open_backend
from retailflow.output import console


def _status_table(status):
    from rich.table import Table

    table = Table(title="retailflow watch", show_header=False)
    for label, value in (("polls", status.polls), ("files seen", status.seen), ("loaded", status.loaded),
                         ("failed", status.failed), ("batches", status.batches)):
        table.add_row(label, f"{value:,}")
    if status.last:
        timings = ", ".join(f"{name} {seconds:.2f}s" for name, seconds in status.last.seconds.items())
        table.add_row("last batch", f"{len(status.last.files)} file(s): {timings}")
    return table


def _batch_line(number: int, report) -> str:
    failed = "".join(f"\n  failed {name}: {error}" for name, error in report.failed.items())
    return (f"batch {number}: {len(report.files)} file(s), {report.loaded} loaded, {report.skipped} already loaded, "
            f"{len(report.failed)} failed; {report.staged:,} rows staged, {report.quarantined:,} quarantined "
            f"in {report.seconds.get('batch', 0):.2f} s{failed}")


def watch_command(
    ctx: typer.Context,
    landing: Path = typer.Argument(..., help="The folder files land in."),
    interval: float = typer.Option(5.0, "--interval", min=0.1, help="Seconds between two looks at the folder."),
    once: bool = typer.Option(False, "--once", help="Load what is complete after one interval, then exit."),
    processed: Optional[Path] = typer.Option(None, "--processed", help="Move loaded files here (default: leave "
                                             "them; they are remembered by checksum)."),
    failed: Optional[Path] = typer.Option(None, "--failed", help="Where files that cannot be loaded go, each with a "
                                          ".error.txt (default: LANDING/_failed)."),
    notify: bool = typer.Option(False, "--notify", help="Also send the loyalty e-mails after each batch."),
    sender: str = typer.Option("log", "--sender", help="With --notify: log, file or smtp (as `retailflow notify`)."),
    out: Path = typer.Option(Path("outbox"), "--out", help="With --notify --sender file: folder of the .eml files."),
) -> None:
    """Load files as they land in LANDING: each group that landed together is one run (ingest + validate + the
    analytics of the days it touched). A file is taken once its size and time stay the same over two looks.

    SIGTERM or Ctrl-C finishes the current batch and exits 0. One watcher per database.
    """
    from rich.live import Live

    from retailflow.notify.senders import make_sender
    from retailflow.pipeline import run_analytics
    from retailflow.quality.rules import load_rules
    from retailflow.watch import Watcher

    chosen_sender = make_sender(sender, out) if notify else None

    def after_batch(backend):
        seconds = run_analytics(backend)
        if chosen_sender is not None:
            from retailflow.notify import outbox

            outbox.send(backend, chosen_sender)
        return seconds

    watcher = Watcher(open_backend(ctx, writes=True), landing, load_rules(ctx.obj.rules_path), processed=processed,
                      failed=failed, after_batch=after_batch, sources=ctx.obj.sources())
    live = Live(_status_table(watcher.status), console=console, auto_refresh=False) if (
        console.is_terminal and not ctx.obj.quiet) else None
    printed = 0

    def on_poll(status) -> None:
        nonlocal printed
        if status.batches > printed:
            printed = status.batches
            console.print(_batch_line(printed, status.last), highlight=False)
        if live:
            live.update(_status_table(status), refresh=True)

    if not ctx.obj.quiet:
        console.print(f"watching {landing} every {interval:g} s (Ctrl-C to stop)", highlight=False)
    if live:
        with live:
            watcher.run(interval, once=once, on_poll=on_poll)
    else:
        watcher.run(interval, once=once, on_poll=on_poll)
    if not ctx.obj.quiet:
        console.print(f"stopped after {watcher.status.batches} batch(es): {watcher.status.loaded} file(s) loaded, "
                      f"{watcher.status.failed} failed", highlight=False)
