"""The checks on a hand-made chain (shop.py), loaded night by night as a scheduler would, on DuckDB and
PostgreSQL: every planted incident found with the figures worked out by hand, nothing else; a killed run leaves
nothing behind; the nightly tables equal a rebuild."""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import decimal
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import checks_shop as shop
import pytest
import typer
from checks_engines import ENGINES, database
from typer.testing import CliRunner

from retailflow.backends import Backend, connect
from retailflow.catalog import STORE_DAY_METRICS
from retailflow.checks import ChecksOutcome, load_checks, run_checks, summary_text
from retailflow.checks import run as checks_run
from retailflow.checks.anomalies import anomalies
from retailflow.checks.findings import list_findings
from retailflow.checks.settings import ChecksSettings
from retailflow.commands.checks import checks_command
from retailflow.config import Settings
from retailflow.incremental import DateRange
from retailflow.ingest import discover, ingest
from retailflow.quality.engine import route_all
from retailflow.quality.rules import load_rules
from retailflow.report.sections import deliveries_and_volume

#: The command as the command line registers it, behind the global options it reads (--db, --rules).
COMMAND = typer.Typer()


@COMMAND.callback()
def _options(ctx: typer.Context, db: str = typer.Option(...), rules: Path = typer.Option(None)) -> None:
    ctx.obj = Settings.resolve(db, rules, True, None)


COMMAND.command("checks")(checks_command)

#: Tables a nightly run keeps that a rebuild must give again, row for row.
PER_DAY = ("analytics.store_day_metrics", "analytics.store_day_deliveries", "audit.anomalies")


@dataclass
class Story:
    backend: Backend
    url: str
    folder: Path
    files: dict[str, list[Path]]
    settings: ChecksSettings
    outcomes: dict[str, ChecksOutcome] = field(default_factory=dict)
    before_kill: dict[str, list] = field(default_factory=dict)
    after_kill: dict[str, list] = field(default_factory=dict)
    nightly: dict[str, list] = field(default_factory=dict)
    rebuilt: dict[str, list] = field(default_factory=dict)
    backfilled: dict[str, list] = field(default_factory=dict)


def _load(backend: Backend, paths: list[Path], restate: bool = False) -> None:
    ingest(backend, discover(paths), restate=restate)
    route_all(backend, load_rules(), "validate")


def _rows(backend: Backend, tables=PER_DAY + ("audit.expected_deliveries",)) -> dict[str, list]:
    """Each table's rows, sorted, floats to 9 places (the engines sum in different orders)."""
    def plain(value):
        return round(value, 9) if isinstance(value, float) else float(value) if isinstance(
            value, decimal.Decimal) else value

    return {name: sorted((tuple(plain(value) for value in row) for row in backend.fetch(f"SELECT * FROM {name}")[1]),
                         key=repr) for name in tables}


def _days(files: dict[str, list[Path]], first: dt.date, last: dt.date) -> list[Path]:
    return [path for day in shop.days() if first <= day <= last for path in files[f"day:{day}"]]


@contextlib.contextmanager
def told(engine: str, folder: Path) -> Iterator[Story]:
    """The chain loaded night by night on `engine`, checked after each load; the outcomes and snapshots kept."""
    files = shop.write(folder / "export")
    rules = folder / "rules.yaml"
    rules.write_text("checks:\n  holidays: export/holidays.csv\n")
    settings = load_checks(rules)
    with database(engine, folder) as url:
        backend = connect(url)
        story = Story(backend, url, folder, files, settings)
        try:
            _load(backend, files["masters"] + _days(files, shop.FIRST, dt.date(2025, 2, 3)))
            story.outcomes["history"] = run_checks(backend, settings=settings)
            _load(backend, _days(files, dt.date(2025, 2, 4), dt.date(2025, 2, 4)))
            story.before_kill = _rows(backend)
            killed = checks_run._record
            checks_run._record = _killed
            try:
                with pytest.raises(KeyboardInterrupt):
                    run_checks(backend, settings=settings)
            finally:
                checks_run._record = killed
            story.after_kill = _rows(backend)
            story.outcomes["02-04"] = run_checks(backend, settings=settings)
            _load(backend, _days(files, dt.date(2025, 2, 5), dt.date(2025, 2, 6)))
            story.outcomes["02-06"] = run_checks(backend, settings=settings)
            _load(backend, files["late"])
            story.outcomes["late"] = run_checks(backend, settings=settings)
            _load(backend, _restated(folder / "restated", dt.date(2025, 2, 6)), restate=True)
            story.outcomes["restated"] = run_checks(backend, settings=settings)
            _load(backend, _days(files, dt.date(2025, 2, 7), shop.FIRST + dt.timedelta(days=shop.DAYS - 1)))
            story.outcomes["end"] = run_checks(backend, settings=settings)
            story.nightly = _rows(backend, PER_DAY)
            run_checks(backend, settings=settings, rebuild=True)
            story.rebuilt = _rows(backend, PER_DAY)
            run_checks(backend, settings=settings, days=DateRange(dt.date(2025, 1, 27), dt.date(2025, 2, 9)))
            story.backfilled = _rows(backend, PER_DAY)
            yield story
        finally:
            backend.close()


def _killed(*args, **kwargs) -> None:
    """Stands in for the run's last write: the process dies after everything else was written."""
    raise KeyboardInterrupt("killed")


def _restated(folder: Path, day: dt.date) -> list[Path]:
    """The day's files again, with one more ST2 sale (a till that had not sent its last receipt)."""
    folder.mkdir(parents=True, exist_ok=True)
    headers, lines = [shop.HEADER_COLUMNS], [shop.LINE_COLUMNS]
    for _store, (store_headers, store_lines) in shop.sales(day).items():
        headers += store_headers
        lines += store_lines
    headers.append(f"T2-EXTRA,C2,ST2,{day} 20:00:00,4.50")
    lines.append("T2-EXTRA-1,T2-EXTRA,P3,,1,4.50")
    paths = [folder / f"store_sales_header_{day}.csv", folder / f"store_sales_line_items_{day}.csv"]
    paths[0].write_text("\n".join(headers) + "\n")
    paths[1].write_text("\n".join(lines) + "\n")
    return paths


def _keys(findings) -> set[tuple[str, str, str, str]]:
    return {(finding.check, finding.store_id, finding.business_date.isoformat(), finding.subject)
            for finding in findings}


def a_normal_day_counts_returns_and_anonymous_sales(story):
    row = story.backend.fetch_dicts("SELECT * FROM analytics.store_day_metrics "
                                    "WHERE store_id = 'ST1' AND business_date = DATE '2025-01-14'")[0]
    assert (row["transactions"], row["line_count"], row["distinct_products"]) == (40, 76, 2)
    assert decimal.Decimal(row["revenue"]) == decimal.Decimal("680.00")  # 36 x 20.00 - 4 x 10.00
    assert (row["anonymous_transactions"], row["sold_units"], row["returned_units"]) == (16, 108, 4)
    assert row["anonymous_share"] == pytest.approx(0.4)
    assert row["return_rate"] == pytest.approx(4 / 108)
    assert (row["staged_headers"], row["quarantined_headers"], row["quarantine_rate"]) == (40, 0, 0)
    assert row["weekday"] == 1  # a Tuesday


def the_history_finds_the_missing_day_the_closed_and_the_new_store(story):
    found = story.outcomes["history"]
    assert _keys(found.findings) == {
        ("opened", "ST4", "2025-01-20", "store_sales_header"),
        ("closed", "ST3", "2025-01-26", "store_sales_header"),
        ("missing", "ST2", "2025-01-29", "store_sales_header"),
        ("missing", "ST2", "2025-01-29", "store_sales_line_items"),
        ("anomaly", "ST2", "2025-02-03", "quarantine_rate"),
    }
    assert found.new == found.findings and not found.blocked_dates and found.days_recomputed is None


def a_store_shut_on_sundays_is_not_expected_then(story):
    sundays = story.backend.fetch_dicts(
        "SELECT count(*) AS n FROM audit.expected_deliveries WHERE store_id = 'ST2' AND expected "
        "AND extract(dow FROM business_date) = 0")[0]["n"]
    mondays = story.backend.fetch_dicts(
        "SELECT count(*) AS n FROM audit.expected_deliveries WHERE store_id = 'ST2' AND expected "
        "AND entity = 'store_sales_header' AND extract(dow FROM business_date) = 1")[0]["n"]
    assert (sundays, mondays) == (0, 5)


def quarantined_sales_count_in_the_quarantine_rate(story):
    odd = next(finding for finding in story.outcomes["history"].findings if finding.check == "anomaly")
    # 6 of 26 headers quarantined against 0 on the four Mondays before: the spread is the 0.05 floor (the share's
    # noise at 26 headers, sqrt(1/26 x 25/26 / 26) = 0.038, is below it), so the score is 0.2308 / 0.05.
    assert (odd.value, odd.baseline) == (pytest.approx(6 / 26), 0)
    assert odd.score == pytest.approx(6 / 26 / 0.05)
    parked = story.backend.fetch_dicts("SELECT staged_headers, quarantined_headers FROM analytics.store_day_metrics "
                                       "WHERE store_id = 'ST2' AND business_date = DATE '2025-02-03'")
    assert parked == [{"staged_headers": 20, "quarantined_headers": 6}]


def a_killed_run_leaves_the_state_as_it_was(story):
    assert story.after_kill == story.before_kill
    night = story.outcomes["02-04"]
    assert _keys(night.new) == {("missing", "ST4", "2025-02-04", "store_sales_header"),
                                ("missing", "ST4", "2025-02-04", "store_sales_line_items")}
    assert night.days_recomputed == 1 and len(night.findings) == 7


def a_truncated_file_is_anomalous_in_lines_and_transactions(story):
    new = {finding.subject: finding for finding in story.outcomes["02-06"].new}
    assert set(new) == {"line_count", "transactions"}
    assert {finding.store_id for finding in new.values()} == {"ST1"}
    # 4 transactions against 40 on the four Wednesdays before: the spread is the 16 % floor, 6.4.
    assert new["transactions"].score == pytest.approx((4 - 40) / 6.4)
    # 8 lines against 76: the 20 % floor, 15.2, is above the basket noise sqrt(3 x 76) = 15.1.
    assert new["line_count"].score == pytest.approx((8 - 76) / 15.2)


def a_late_file_clears_its_missing_finding(story):
    found = story.outcomes["late"]
    assert _keys(found.new) == {("late", "ST4", "2025-02-04", "store_sales_header"),
                                ("late", "ST4", "2025-02-04", "store_sales_line_items")}
    assert not any(finding.check == "missing" and finding.store_id == "ST4" for finding in found.findings)
    row = story.backend.fetch_dicts("SELECT status, reported_missing_at FROM audit.expected_deliveries WHERE "
                                    "store_id = 'ST4' AND business_date = DATE '2025-02-04' "
                                    "AND entity = 'store_sales_header'")[0]
    assert row["status"] == "late" and row["reported_missing_at"] is not None


def a_restated_day_recomputes_and_is_noted(story):
    assert not story.outcomes["restated"].new  # restated is information, not a finding
    noted = list_findings(story.backend, severities=("info",), first=dt.date(2025, 2, 6), last=dt.date(2025, 2, 6))
    assert {(finding.check, finding.store_id) for finding in noted} == {
        ("restated", "ST1"), ("restated", "ST2"), ("restated", "ST4")}
    transactions = story.backend.fetch_dicts("SELECT transactions FROM analytics.store_day_metrics WHERE "
                                             "store_id = 'ST2' AND business_date = DATE '2025-02-06'")
    assert transactions == [{"transactions": 21}]


def a_holiday_and_a_promotion_explain_their_days(story):
    assert not story.outcomes["end"].new
    explained = {(row["store_id"], str(row["business_date"]), row["metric"]): row["explanation"]
                 for row in story.backend.fetch_dicts("SELECT * FROM audit.anomalies WHERE severity = 'info'")}
    assert explained == {
        # 12 transactions against 40: (12 - 40) / 6.4 = -4.4.
        ("ST1", "2025-02-07", "transactions"): "holiday: Founders' day",
        # 152 lines against 76 (+76, 5.0 spreads), every extra line promoted: 144 promoted against none.
        ("ST1", "2025-02-08", "line_count"): "promotion: 144 of 76 extra lines promoted",
        # 80 transactions against 40: 6.25 spreads.
        ("ST1", "2025-02-08", "transactions"): "promotion: 144 of 76 extra lines promoted",
    }


def without_the_calendar_the_holiday_is_a_finding(story):
    found = story.backend.fetch_dicts(anomalies(STORE_DAY_METRICS.table(), None, ChecksSettings(),
                                                story.backend.create_temp_table))
    holiday = [row for row in found if row["business_date"] == shop.HOLIDAY]
    assert [(row["store_id"], row["metric"], row["severity"]) for row in holiday] == [("ST1", "transactions", "warn")]


def the_open_findings_at_the_end(story):
    found = story.outcomes["end"]
    assert _keys(found.findings) == {
        ("opened", "ST4", "2025-01-20", "store_sales_header"),
        ("closed", "ST3", "2025-01-26", "store_sales_header"),
        ("missing", "ST2", "2025-01-29", "store_sales_header"),
        ("missing", "ST2", "2025-01-29", "store_sales_line_items"),
        ("anomaly", "ST2", "2025-02-03", "quarantine_rate"),
        ("late", "ST4", "2025-02-04", "store_sales_header"),
        ("late", "ST4", "2025-02-04", "store_sales_line_items"),
        ("anomaly", "ST1", "2025-02-05", "line_count"),
        ("anomaly", "ST1", "2025-02-05", "transactions"),
    }
    text = summary_text(found)
    assert text.startswith("retailflow checks: 0 new, 9 open finding(s)\n")
    assert "open warn: ST2 2025-01-29 store_sales_header: expected, nothing delivered" in text


def nightly_tables_equal_a_rebuild(story):
    assert story.nightly == story.rebuilt == story.backfilled
    assert all(story.nightly[name] for name in PER_DAY)


def a_blocking_check_names_its_dates(story):
    blocking = ChecksSettings(holidays=story.settings.holidays,
                              deliveries={**story.settings.deliveries, "missing": "block"})
    found = run_checks(story.backend, settings=blocking)
    assert found.blocked_dates == [dt.date(2025, 1, 29)] and found.blocked
    assert "Blocked business dates: 2025-01-29" in summary_text(found)


def the_command_lists_findings_and_fails_on_a_blocking_one(story):
    rules = story.folder / "blocking.yaml"
    rules.write_text("checks:\n  holidays: export/holidays.csv\n  severity: {missing: block}\n")
    runner, options = CliRunner(), ["--db", story.url, "--rules", str(rules), "checks"]
    as_json = runner.invoke(COMMAND, [*options, "--format", "json"])
    assert as_json.exit_code == 1, as_json.output
    rows = json.loads(as_json.stdout)
    assert {(row["check"], row["store_id"], row["business_date"], row["severity"]) for row in rows} >= {
        ("missing", "ST2", "2025-01-29", "block"), ("late", "ST4", "2025-02-04", "warn"),
        ("anomaly", "ST1", "2025-02-05", "warn")}
    assert "blocking: block: ST2 2025-01-29 store_sales_header: expected, nothing delivered" in as_json.stderr
    assert {"business_date", "store_id", "check", "subject", "severity", "value", "baseline", "score",
            "message"} == set(rows[0])
    as_csv = runner.invoke(COMMAND, [*options, "--format", "csv", "--all", "--from", "2025-02-07",
                                     "--to", "2025-02-08"])
    assert as_csv.exit_code == 1, as_csv.output
    listed = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert {(row["business_date"], row["subject"], row["severity"]) for row in listed} == {
        ("2025-02-07", "transactions", "info"), ("2025-02-08", "transactions", "info"),
        ("2025-02-08", "line_count", "info")}
    table = runner.invoke(COMMAND, options)
    assert table.exit_code == 1, table.output
    assert "Open findings (0 new this run)" in table.stdout and "nothing delivered" in table.stdout


def the_report_section_shows_the_grid(story):
    shown = deliveries_and_volume(story.backend)
    kpis = dict(shown.kpis)
    # Open: ST3 closed, ST4 opened, ST2 missing (2 entities), ST4 late (2), ST2's quarantine rate and ST1's
    # truncated day (2 anomalies); the missing day blocks (the command's rules made it so).
    assert (kpis["Open findings"], kpis["Missing"], kpis["Late"], kpis["Anomalies"], kpis["Blocked days"]) == (
        "9", "2", "2", "3", "1")
    grid = shown.charts[0].figure.data[0]
    # Days with a finding first: ST2 and ST4 two each (by id), ST1 one.
    assert list(grid.y[:3]) == ["ST2", "ST4", "ST1"]
    assert len(grid.x) == shop.DAYS and shown.tables[0].title == "Latest open findings"


#: What the story must show, in the order it was told.
STORY = (a_normal_day_counts_returns_and_anonymous_sales,
         the_history_finds_the_missing_day_the_closed_and_the_new_store, a_store_shut_on_sundays_is_not_expected_then, quarantined_sales_count_in_the_quarantine_rate,
         a_killed_run_leaves_the_state_as_it_was, a_truncated_file_is_anomalous_in_lines_and_transactions,
         a_late_file_clears_its_missing_finding, a_restated_day_recomputes_and_is_noted,
         a_holiday_and_a_promotion_explain_their_days, without_the_calendar_the_holiday_is_a_finding,
         the_open_findings_at_the_end, nightly_tables_equal_a_rebuild, a_blocking_check_names_its_dates,
         the_command_lists_findings_and_fails_on_a_blocking_one, the_report_section_shows_the_grid)


@pytest.mark.parametrize("engine_name", ENGINES)
def test_the_chain_night_by_night(engine_name, tmp_path, subtests):
    """One story per engine, its checks as subtests: the nights are told once (a module fixture would be told
    again by every pytest-xdist worker that runs one of its tests)."""
    with told(engine_name, tmp_path) as story:
        for check in STORY:
            with subtests.test(check.__name__):
                check(story)
