"""Completeness, freshness and volume checks per store and day: the rows that never came.

Row rules catch a bad row; these catch a store's file that did not arrive, arrived late or with a tenth of its
lines. `run_checks` keeps per store and day what was delivered and what the day looked like
(analytics.store_day_deliveries, analytics.store_day_metrics), judges which deliveries were expected
(audit.expected_deliveries) and which days are anomalous against the same weekday of the weeks before
(audit.anomalies), and returns the findings; `block` findings name the business dates the analytics should
hold back. docs/explanation/checks.md explains what is checked, how the baseline works and how to tune or
silence a check.
"""

from retailflow.checks.findings import RECORDED, ChecksOutcome, Finding, list_findings, summary_subject, summary_text
from retailflow.checks.run import run_checks
from retailflow.checks.settings import ChecksSettings, load_checks

__all__ = ["RECORDED", "ChecksOutcome", "ChecksSettings", "Finding", "list_findings", "load_checks", "run_checks",
           "summary_subject", "summary_text"]
