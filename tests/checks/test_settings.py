"""The `expectations:` and `checks:` sections of the rules file and the holiday calendar: read as written, and a
mistake stops with one line naming the file, the line and what to do."""

from __future__ import annotations

import datetime as dt

import pytest

from retailflow.checks.settings import METRICS, ChecksSettings, load_checks, read_holidays
from retailflow.errors import UserError
from retailflow.quality.rules import load_rules

RULES = """\
rules:
  - id: store_sales_header.total_amount.sums_to_lines
    severity: warn
expectations:
  stores: [ST1, ST2]
  entities: [store_sales_header, store_sales_line_items]
  cutoff: "06:30"
  closed_after_days: 10
  store_end_dates:
    ST2: 2025-01-31
checks:
  baseline_weeks: 6
  min_baseline_days: 3
  holidays: calendar/holidays.csv
  promotion_share: 0.6
  severity:
    missing: block
    restated: "off"
  metrics:
    line_count: {threshold: 5, severity: block}
    quarantine_rate: {severity: "off"}
    return_rate: {directions: [high], min_spread: 0.1}
"""


def test_a_rules_file_sets_what_is_expected_and_how_it_is_judged(tmp_path):
    (tmp_path / "calendar").mkdir()
    (tmp_path / "calendar" / "holidays.csv").write_text(
        "date,name,store_id,closed\n2025-12-25,Christmas,,yes\n2025-03-17,Fair day,ST2,\n")
    (tmp_path / "rules.yaml").write_text(RULES)
    settings = load_checks(tmp_path / "rules.yaml")
    assert (settings.stores, settings.entities) == (("ST1", "ST2"), ("store_sales_header", "store_sales_line_items"))
    assert (settings.cutoff_minutes, settings.closed_after_days) == (6 * 60 + 30, 10)
    assert settings.store_end_dates == {"ST2": dt.date(2025, 1, 31)}
    assert (settings.baseline_weeks, settings.min_baseline_days, settings.promotion_share) == (6, 3, 0.6)
    assert settings.deliveries == {"missing": "block", "late": "warn", "restated": "off", "closed": "warn",
                                   "opened": "warn"}
    assert (settings.metrics["line_count"].threshold, settings.metrics["line_count"].severity) == (5, "block")
    assert settings.metrics["return_rate"].directions == ("high",) and settings.metrics["return_rate"].min_spread == 0.1
    assert "quarantine_rate" not in settings.checked_metrics
    assert settings.metrics["revenue"] == METRICS["revenue"]
    assert [(holiday.day, holiday.store_id, holiday.closed) for holiday in settings.holidays] == [
        (dt.date(2025, 12, 25), None, True), (dt.date(2025, 3, 17), "ST2", False)]
    # The same file still gives its rules; the digest follows every setting.
    assert any(rule.id == "store_sales_header.total_amount.sums_to_lines" and rule.severity == "warn"
               for rule in load_rules(tmp_path / "rules.yaml"))
    assert settings.digest() != ChecksSettings().digest()


def test_a_file_of_checks_alone_is_a_rules_file(tmp_path):
    (tmp_path / "rules.yaml").write_text("checks:\n  baseline_weeks: 4\n")
    assert load_checks(tmp_path / "rules.yaml").baseline_weeks == 4
    assert len(load_rules(tmp_path / "rules.yaml")) == len(load_rules())
    assert load_checks(None) == ChecksSettings()


@pytest.mark.parametrize("text, message", [
    ("checks:\n  metrics:\n    lines: {threshold: 3}\n",
     "rules.yaml:3: checks.metrics.lines: Input should be 'line_count', 'transactions'"),
    ("checks:\n  baseline_weeks: 8\n  metrics:\n    revenue:\n      threshold: -1\n",
     "rules.yaml:5: checks.metrics.revenue.threshold: Input should be greater than 0"),
    ("expectations:\n  cutoff: '25:00'\n", "rules.yaml:2: expectations.cutoff: Value error, '25:00' is not a time"),
    ("expectations:\n  entities: [stores]\n",
     "rules.yaml:2: expectations.entities: Value error, 'stores' is not delivered per day"),
    ("checks:\n  severity:\n    missing: loud\n", "rules.yaml:3: checks.severity.missing: Input should be"),
    ("checks:\n  baseline_weeks: 3\n  min_baseline_days: 4\n",
     "rules.yaml:3: checks.min_baseline_days: at most baseline_weeks (3) days can be in a baseline"),
    ("checks:\n  holidays: nowhere.csv\n", "nowhere.csv: cannot read the holiday calendar"),
    ("checks: [1, 2]\n", "rules.yaml:1: checks: expected a mapping of settings"),
    ("expectations:\n  cutoff: '06:00'\n  colour: blue\n", "rules.yaml:3: expectations.colour: Extra inputs"),
], ids=["unknown metric", "negative threshold", "bad cutoff", "not a daily entity", "bad severity",
        "baseline too short", "no calendar", "not a mapping", "unknown key"])
def test_a_mistake_names_its_line(tmp_path, text, message):
    (tmp_path / "rules.yaml").write_text(text)
    with pytest.raises(UserError) as raised:
        load_checks(tmp_path / "rules.yaml")
    assert message in str(raised.value) and "\n" not in str(raised.value)


@pytest.mark.parametrize("text, message", [
    ("day,name\n2025-01-01,New year\n", "holidays.csv:1: no 'date' column"),
    ("date,name,region\n2025-01-01,New year,North\n", "holidays.csv:1: unknown column 'region'"),
    ("date,name\n2025-01-01,New year\n2025-13-01,Nonsense\n",
     "holidays.csv:3: column 1 (date): '2025-13-01' is not a date YYYY-MM-DD"),
    ("name,date,closed\nNew year,2025-01-01,maybe\n", "holidays.csv:2: column 3 (closed): 'maybe' is not yes or no"),
])
def test_a_bad_calendar_names_its_line(tmp_path, text, message):
    (tmp_path / "holidays.csv").write_text(text)
    with pytest.raises(UserError) as raised:
        read_holidays(tmp_path / "holidays.csv")
    assert message in str(raised.value)
