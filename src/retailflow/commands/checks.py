"""`retailflow checks`: completeness, freshness and volume per store and day."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Optional

import typer

from retailflow.commands import date_range, open_backend
from retailflow.output import FORMAT_OPTION, Format, console, errors, render

FINDING_COLUMNS = ["business_date", "store_id", "check", "subject", "severity", "value", "baseline", "score",
                   "message"]
#: A terminal shows what fits: the message already says the subject, value, baseline and score.
TABLE_COLUMNS = ["business_date", "store_id", "check", "severity", "message"]


def checks_command(
    ctx: typer.Context,
    rebuild: bool = typer.Option(False, "--rebuild", help="Recompute every day's metrics and anomalies, not only "
                                 "the days loaded since the last check."),
    show_all: bool = typer.Option(False, "--all", help="Also list what is only information: anomalies a holiday "
                                  "or a promotion explains, restated days."),
    first: Optional[str] = typer.Option(None, "--from", metavar="DATE", help="List findings from this business "
                                        "date (YYYY-MM-DD)."),
    last: Optional[str] = typer.Option(None, "--to", metavar="DATE", help="List findings up to this business date."),
    email: Optional[str] = typer.Option(None, "--email", metavar="ADDRESS", help="Also send one message listing "
                                        "the run's findings to this operator address (none when nothing is open)."),
    sender: str = typer.Option("log", "--sender", help="How to send --email: log, file or smtp (RETAILFLOW_SMTP_*)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder of the .eml file with --sender file."),
    output_format: Format = FORMAT_OPTION,
) -> None:
    """Check that every store's expected files came, on time, and that no store's day looks unlike its usual
    weekday; list the open findings.

    Missing, late and restated deliveries, stores that closed or opened, and anomalies in lines, transactions,
    revenue, products, the anonymous share, the return rate and the quarantine rate. The rules file's
    `expectations:` and `checks:` sections tune them (docs/explanation/checks.md). Exits 1 when a finding is blocking.
    """
    from retailflow.checks import RECORDED, list_findings, run_checks

    days = date_range(first, last)
    backend = open_backend(ctx, writes=True)
    # Closed before a blocking finding exits: the exit's traceback would keep the connection, and a server's
    # writer lock with it, open.
    try:
        outcome = run_checks(backend, rules_path=ctx.obj.rules_path, rebuild=rebuild)
        severities = ("info", *RECORDED) if show_all else RECORDED
        findings = list_findings(backend, severities=severities, first=days and days.first, last=days and days.last)
    finally:
        backend.close()
    rows = [{**finding.as_dict(), "value": _rounded(finding.value), "baseline": _rounded(finding.baseline),
             "score": _rounded(finding.score, 1)} for finding in findings]
    render(rows, output_format, title=f"Open findings ({len(outcome.new)} new this run)",
           columns=TABLE_COLUMNS if output_format is Format.table else FINDING_COLUMNS)
    if output_format is Format.table and not ctx.obj.quiet:
        console.print(f"checked in {outcome.seconds:.2f} s: " + (
            f"{len(outcome.findings)} open finding(s)" if outcome.findings else "nothing missing, late or anomalous"))
    if email and outcome.findings:
        _email_findings(outcome, email, sender, out)
    if outcome.blocked:
        for finding in outcome.findings:
            if finding.severity == "block":
                errors.print(f"blocking: {finding.line}", highlight=False, soft_wrap=True, markup=False)
        raise typer.Exit(1)


def _email_findings(outcome, address: str, sender_name: str, out: Path | None) -> None:
    """One message per run to the operator, through the same senders as the loyalty e-mails."""
    from email.message import EmailMessage

    from retailflow.checks import summary_subject, summary_text
    from retailflow.notify.outbox import SENDER_ADDRESS
    from retailflow.notify.senders import make_sender

    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = SENDER_ADDRESS, address, summary_subject(outcome)
    message["X-Retailflow-Key"] = "checks:" + dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    message.set_content(summary_text(outcome))
    make_sender(sender_name, out).send(message)


def _rounded(value: float | None, places: int = 4) -> float | None:
    return None if value is None else round(value, places)
