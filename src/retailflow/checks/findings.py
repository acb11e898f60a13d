"""Findings: the open results of the checks as one list, for the CLI, the report, schedulers and an operator's
e-mail; and the one-message summary of a run."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import ibis
import ibis.expr.types as ir

from retailflow.backends import Backend
from retailflow.catalog import ANOMALIES, EXPECTED_DELIVERIES
from retailflow.checks.settings import METRICS

#: Severities that are findings (info is listed on request only).
RECORDED = ("warn", "block")
#: How many findings a summary lists before it counts the rest.
SUMMARY_LIMIT = 40


@dataclass(frozen=True)
class Finding:
    """One finding: a check (missing, late, restated, closed, opened or anomaly) on a store's day."""

    check: str
    store_id: str
    business_date: dt.date
    #: The entity of a delivery finding, the metric of an anomaly.
    subject: str
    severity: str
    message: str
    value: float | None = None
    baseline: float | None = None
    score: float | None = None

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def line(self) -> str:
        """One line: severity, store, day and what is wrong."""
        return f"{self.severity}: {self.store_id} {self.business_date.isoformat()} {self.message}"


@dataclass
class ChecksOutcome:
    """What one checks run found."""

    #: Every open finding (warn and block) after the run, in store and day order.
    findings: list[Finding] = field(default_factory=list)
    #: The findings this run raised first (not open after the run before it).
    new: list[Finding] = field(default_factory=list)
    #: Business dates a blocking finding holds back: the analytics stages should leave them alone.
    blocked_dates: list[dt.date] = field(default_factory=list)
    #: Business dates whose metrics the run recomputed; None: every one.
    days_recomputed: int | None = None
    seconds: float = 0.0

    @property
    def blocked(self) -> bool:
        return bool(self.blocked_dates)


def finding_rows(deliveries: ir.Table, anomalies: ir.Table, severities: Sequence[str]) -> ir.Table:
    """One row per finding of the given severities, delivery findings and anomalies alike: check, store_id,
    business_date, subject, severity, value, baseline, score, explanation."""
    flagged = deliveries.filter(deliveries.finding.notnull() & deliveries.severity.isin(list(severities)))
    rows = flagged.select(check=flagged.finding, store_id=flagged.store_id, business_date=flagged.business_date,
                          subject=flagged.entity, severity=flagged.severity,
                          value=(flagged.staged_rows + flagged.quarantined_rows).cast("float64"),
                          baseline=ibis.null("float64"), score=ibis.null("float64"),
                          explanation=ibis.null("string"))
    odd = anomalies.filter(anomalies.severity.isin(list(severities)))
    return rows.union(odd.select(check=ibis.literal("anomaly"), store_id=odd.store_id,
                                 business_date=odd.business_date, subject=odd.metric, severity=odd.severity,
                                 value=odd.value, baseline=odd.baseline, score=odd.score,
                                 explanation=odd.explanation))


def _amount(value: float) -> str:
    """A count or an amount as people read it: 1,234 or 12.5."""
    return f"{value:,.0f}" if abs(value) >= 100 or value == int(value) else f"{value:,.2f}".rstrip("0").rstrip(".")


def _anomaly_message(row: dict) -> str:
    """'transactions 4 against a baseline of 40 (-90 %), score -5.6': a share in percent and its change in points."""
    metric, value, baseline = row["subject"], row["value"], row["baseline"]
    check = METRICS.get(metric)
    if check is not None and check.kind == "share":
        shown = f"{value * 100:.1f} % against a baseline of {baseline * 100:.1f} % " \
                f"({(value - baseline) * 100:+.1f} points)"
    else:
        change = f" ({(value / baseline - 1) * 100:+.0f} %)" if baseline else ""
        shown = f"{_amount(value)} against a baseline of {_amount(baseline)}{change}"
    text = f"{metric} {shown}, score {row['score']:+.1f}"
    return text + (f"; {row['explanation']}" if row.get("explanation") else "")


def _message(row: dict) -> str:
    check, subject = row["check"], row["subject"]
    if check == "anomaly":
        return _anomaly_message(row)
    return {
        "missing": f"{subject}: expected, nothing delivered",
        "late": f"{subject}: delivered late ({int(row['value'] or 0):,} rows)",
        "restated": f"{subject}: restated ({int(row['value'] or 0):,} rows)",
        "closed": "store closed: no sales from this day on",
        "opened": "store opened: first sales (expected from this day on)",
    }.get(check, check)


def to_findings(rows: list[dict]) -> list[Finding]:
    """Rows of finding_rows as Findings, each with its message."""
    return [Finding(row["check"], row["store_id"], row["business_date"], row["subject"], row["severity"],
                    _message(row), row["value"], row["baseline"], row["score"]) for row in rows]


def list_findings(backend: Backend, *, severities: Sequence[str] = RECORDED, first: dt.date | None = None,
                  last: dt.date | None = None) -> list[Finding]:
    """The open findings (of `severities`, between business dates `first` and `last`), by day, store and check;
    none when the checks never ran."""
    if not backend.has_table("audit", "anomalies"):
        return []
    rows = finding_rows(EXPECTED_DELIVERIES.table(), ANOMALIES.table(), severities)
    if first:
        rows = rows.filter(rows.business_date >= first)
    if last:
        rows = rows.filter(rows.business_date <= last)
    return to_findings(backend.fetch_dicts(rows.order_by(["business_date", "store_id", "check", "subject"])))


def summary_subject(outcome: ChecksOutcome) -> str:
    """The subject of the run's message: how many findings, new and blocking."""
    if not outcome.findings:
        return "retailflow checks: no findings"
    blocking = sum(finding.severity == "block" for finding in outcome.findings)
    return (f"retailflow checks: {len(outcome.new)} new, {len(outcome.findings)} open finding(s)"
            + (f", {len(outcome.blocked_dates)} day(s) blocked" if blocking else ""))


def summary_text(outcome: ChecksOutcome, *, limit: int = SUMMARY_LIMIT) -> str:
    """The run's findings as one plain-text message (for an operator's e-mail): the subject line, the counts
    by check, then one line per new finding and the open ones before them (up to `limit` lines)."""
    lines = [summary_subject(outcome), ""]
    if not outcome.findings:
        return "\n".join(lines + ["Every expected delivery arrived and no store-day was anomalous."]) + "\n"
    counts = Counter(finding.check for finding in outcome.findings)
    lines.append("Open: " + ", ".join(f"{check} {count}" for check, count in sorted(counts.items())))
    if outcome.blocked_dates:
        lines.append("Blocked business dates: " + ", ".join(day.isoformat() for day in outcome.blocked_dates))
    new = set(outcome.new)
    ordered = [*outcome.new, *(finding for finding in outcome.findings if finding not in new)]
    lines.append("")
    for index, finding in enumerate(ordered):
        if index == limit:
            lines.append(f"… and {len(ordered) - limit} more: `retailflow checks` lists them all.")
            break
        lines.append(("new  " if finding in new else "open ") + finding.line)
    return "\n".join(lines) + "\n"
