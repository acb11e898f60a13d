"""`retailflow checks`: completeness, freshness and volume per store and day."""

from __future__ import annotations

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
    if outcome.blocked:
        for finding in outcome.findings:
            if finding.severity == "block":
                errors.print(f"blocking: {finding.line}", highlight=False, soft_wrap=True, markup=False)
        raise typer.Exit(1)


def _rounded(value: float | None, places: int = 4) -> float | None:
    return None if value is None else round(value, places)
