"""What schedulers share: a day's files in a landing folder, and the rules that block a day's downstream work."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from retailflow.backends import Backend
from retailflow.ingest import is_input_name
from retailflow.quality.rules import Rule
from retailflow.sources.mapping import SourceMap

#: A business date in a file name.
DATE_IN_NAME = re.compile(r"(\d{4}-\d{2}-\d{2})")


def landed_files(landing: Path, day: str | None = None, sources: SourceMap = SourceMap()) -> list[Path]:
    """Input files in the landing folder (contract or mapped): those named for `day` and the undated ones (every
    file when None)."""
    files = []
    for path in sorted(landing.iterdir()) if landing.is_dir() else []:
        if not is_input_name(path.name) or not path.is_file() or not sources.source_for(path):
            continue
        found = DATE_IN_NAME.search(path.name)
        if day is None or found is None or found.group(1) == day:
            files.append(path)
    return files


def landed_days(landing: Path, sources: SourceMap = SourceMap()) -> list[str]:
    """The business dates the landing folder holds files for."""
    return sorted({found.group(1) for path in landed_files(landing, sources=sources)
                   if (found := DATE_IN_NAME.search(path.name))})


def failure_rate(backend: Backend, rule_id: str, day: str) -> tuple[int, int]:
    """(failed, checked) rows of a rule over the batches validated for a business date."""
    _, rows = backend.fetch(
        "SELECT coalesce(sum(r.failed), 0), coalesce(sum(r.checked), 0) FROM audit.rule_results r "
        "JOIN (SELECT DISTINCT batch_id FROM audit.batch_dates "
        f"WHERE business_date = DATE {backend.literal(day)}) d ON r.batch_id = d.batch_id "
        f"WHERE r.rule_id = {backend.literal(rule_id)} AND r.phase = 'validate'")
    return int(rows[0][0]), int(rows[0][1])


def threshold(rule: Rule) -> float:
    """Percent of a day's rows that may fail the rule: its max_failed_pct, else none."""
    return rule.max_failed_pct if rule.max_failed_pct is not None else 0.0


def blocking_rules(rules: Sequence[Rule]) -> list[Rule]:
    """Reject rules with a failure-rate threshold: above it, a day's downstream stages do not run."""
    return [rule for rule in rules if rule.severity == "reject" and rule.max_failed_pct is not None]


def blocked_by(backend: Backend, rules: Sequence[Rule], day: str) -> list[str]:
    """One line per blocking rule over its threshold on `day` (empty when the day may go on)."""
    lines = []
    for rule in blocking_rules(rules):
        failed, checked = failure_rate(backend, rule.id, day)
        if checked and 100.0 * failed / checked > threshold(rule):
            lines.append(f"{rule.id}: {failed} of {checked} rows failed ({100.0 * failed / checked:.2f}%), "
                         f"above max_failed_pct {threshold(rule):g}")
    return lines
