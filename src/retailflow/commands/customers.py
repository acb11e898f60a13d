"""`retailflow loyalty`, `loyalty explain`, `segments` and `notify`: the customer loop."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Optional

import typer

from retailflow.commands import FROM_OPTION, TO_OPTION, date_range, open_backend
from retailflow.errors import UserError
from retailflow.output import FORMAT_OPTION as FORMAT
from retailflow.output import Format, console, errors, render

loyalty_app = typer.Typer(help="Loyalty points: run the engine, or explain one transaction.", invoke_without_command=True)


@loyalty_app.callback()
def loyalty_command(
    ctx: typer.Context,
    policy: str = typer.Option("best", help="How several applicable rules combine: best or stack."),
    first: str = FROM_OPTION,
    last: str = TO_OPTION,
    output_format: Format = FORMAT,
) -> None:
    """Credit staged transactions with points (append-only ledger), refresh balances and tiers.

    Only the days changed since the last run are looked at (or --from/--to); a restated day's changed points are
    reversed and credited again; returns take points back. Without loyalty rules or customers loaded, a line says
    which file is missing (and the row's status, with --format json/csv) instead of zero points.
    """
    if ctx.invoked_subcommand:
        return
    from retailflow.analytics.loyalty import run_loyalty
    from retailflow.commands.analytics import say_missing
    from retailflow.report.inputs import missing_inputs, output_statuses

    backend = open_backend(ctx, writes=True)
    summary = run_loyalty(backend, policy=policy, days=date_range(first, last))
    missing = missing_inputs(backend, "loyalty")
    render([{**summary, "status": output_statuses(missing, ["points_ledger"])["points_ledger"]}], output_format,
           title="Loyalty run")
    say_missing(missing, output_format)


@loyalty_app.command("explain")
def loyalty_explain_command(
    ctx: typer.Context,
    transaction_id: str = typer.Argument(..., help="A staged transaction id."),
    output_format: Format = FORMAT,
) -> None:
    """Show which loyalty rules fired for one transaction, why the others did not, and the points."""
    from retailflow.analytics.loyalty import explain

    render(explain(open_backend(ctx), transaction_id), output_format, title=f"Loyalty rules for {transaction_id}")


def segments_command(
    ctx: typer.Context,
    as_of: Optional[str] = typer.Option(None, "--as-of", help="Date recency is measured to (default: last sale day)."),
    at_risk_days: int = typer.Option(60, "--at-risk-days", help="Days without a purchase that make a customer At-Risk."),
    refit: bool = typer.Option(False, "--refit", help="Fit the churn model again now (by default it is refitted once "
                               "its fit is 7 days of data old)."),
    output_format: Format = FORMAT,
) -> None:
    """RFM scores and segments per customer, High-Spenders and At-Risk beside a model's churn probability.

    Writes segment_id back; per customer in analytics.customer_rfm and analytics.customer_churn.
    """
    from retailflow.analytics.churn import stored_fit
    from retailflow.analytics.segmentation import run_segments

    try:
        day = dt.date.fromisoformat(as_of) if as_of else None
    except ValueError:
        raise UserError(f"--as-of {as_of!r} is not a date; use YYYY-MM-DD") from None
    from retailflow.commands.analytics import say_missing
    from retailflow.report.inputs import missing_inputs

    backend = open_backend(ctx, writes=True)
    render(run_segments(backend, as_of=day, at_risk_days=at_risk_days, refit=refit), output_format,
           title="Customer segments")
    say_missing(missing_inputs(backend, "segments"), output_format)
    fit = stored_fit(backend)
    # Machines read stdout; they only hear about the model (on stderr) when it could not be estimated.
    if output_format is Format.table:
        console.print(fit.describe())
    elif not fit.estimated:
        errors.print(fit.describe())


def notify_command(
    ctx: typer.Context,
    sender: str = typer.Option("log", help="log (simulated), file (.eml files) or smtp (RETAILFLOW_SMTP_* settings)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Render the due messages without sending."),
    out: Path = typer.Option(Path("outbox"), "--out", help="Folder for the .eml files of --sender file."),
    out_dir: Optional[Path] = typer.Option(None, "--out-dir", hidden=True, help="Old name of --out."),
    templates: Optional[Path] = typer.Option(None, "--templates", help="Folder overriding the e-mail templates."),
    output_format: Format = FORMAT,
) -> None:
    """Queue one e-mail per customer whose points changed in the latest loyalty run, then send the due ones."""
    from retailflow.notify import outbox
    from retailflow.notify.senders import make_sender

    out_dir = out_dir or out
    # A bad sender or template folder is reported before anything is queued.
    chosen_sender = make_sender(sender, out_dir)
    outbox.templates(templates)
    backend = open_backend(ctx, writes=True)
    queued = outbox.queue(backend)
    result = outbox.send(backend, chosen_sender, template_dir=templates, dry_run=dry_run)
    render([{"run_id": queued["run_id"], "queued": queued["queued"], "skipped": queued["skipped"],
             "due": result["due"], "sent": result["sent"], "failed": result["failed"]}], output_format,
           title="Notifications" + (" (dry run)" if dry_run else ""))
    if dry_run and output_format is Format.table:
        for preview in result["previews"][:10]:
            console.print(f"to {preview['to']}: {preview['subject']}")
