"""A checks run: bring the per-day tables up to date for the days the loads since the last run touched, then
judge every expected delivery and the anomalies those days reach, in one transaction.

Incremental like the analytics stages: audit.stage_marks keeps the last change of audit.batch_dates the run
has seen (stage "checks"), audit.check_runs the last batch (whose quarantined rows may fall on days no staged
row touched). A killed run leaves the previous state whole; the next run starts from it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from pathlib import Path

import ibis
import ibis.expr.types as ir

from retailflow import incremental, marks
from retailflow.analytics.sales import shifted
from retailflow.backends import NOW, Backend
from retailflow.backends.run_values import run_value
from retailflow.catalog import (
    ANOMALIES,
    CHECK_RUNS,
    EXPECTED_DELIVERIES,
    STORE_DAY_DELIVERIES,
    STORE_DAY_METRICS,
    StoredTable,
)
from retailflow.checks.anomalies import KEPT, Keep, anomalies, computed
from retailflow.checks.expected import expected_deliveries
from retailflow.checks.findings import RECORDED, ChecksOutcome, finding_rows, to_findings
from retailflow.checks.metrics import (
    HEADER,
    INVENTORY,
    LINES,
    dated_headers,
    dated_lines,
    store_day_deliveries,
    store_day_metrics,
)
from retailflow.checks.settings import ChecksSettings, load_checks
from retailflow.incremental import EVERY_DAY, DateRange, Days
from retailflow.tables import indexed_store, scratch_tables, staging_table

STAGE = "checks"
#: Temporary tables of a run: its parameters, the days it recomputes, the days whose anomalies it recomputes,
#: the findings open before it and the new state of the expected deliveries.
PARAMS, DAYS, ANOMALY_DAYS, BEFORE, JUDGED, LINES_TABLE = (
    "rf_checks_params", "rf_checks_days", "rf_checks_anomaly_days", "rf_checks_before", "rf_checks_judged",
    "rf_checks_lines")
PARAMS_TABLE = ibis.table({"now": "timestamp", "first_check_at": "timestamp", "last_due": "date",
                           "last_batch_seen": "int64"}, name=PARAMS)
BATCHES = ibis.table({"batch_id": "int64", "loaded_at": "timestamp", "mode": "string", "status": "string"},
                     name="batches", database="audit")


def _quarantined(backend: Backend) -> dict[str, ir.Table]:
    """The quarantined sales headers, lines and snapshots with their store and day where those read (as the
    QUARANTINED_* schemas of checks.metrics), only of staged stores."""
    def cell(table: ir.Table, name: str) -> ir.StringValue:
        return backend.trimmed(table[name])

    stores = staging_table("stores").select("store_id")
    headers = backend.raw_table("quarantine", HEADER, ["transaction_id", "store_id", "transaction_date", "_batch_id"])
    headers = headers.select(transaction_id=cell(headers, "transaction_id"), store_id=cell(headers, "store_id"),
                             business_date=backend.parse(cell(headers, "transaction_date"), "timestamp").date(),
                             _batch_id=headers._batch_id)
    lines = backend.raw_table("quarantine", LINES, ["transaction_id", "_batch_id"])
    lines = lines.select(transaction_id=cell(lines, "transaction_id"), _batch_id=lines._batch_id)
    snapshots = backend.raw_table("quarantine", INVENTORY, ["store_id", "snapshot_date", "_batch_id"])
    snapshots = snapshots.select(store_id=cell(snapshots, "store_id"),
                                 business_date=backend.parse(cell(snapshots, "snapshot_date"), "date"),
                                 _batch_id=snapshots._batch_id)
    return {"headers": headers.filter(headers.business_date.notnull()).semi_join(stores, "store_id"),
            "lines": lines,
            "snapshots": snapshots.filter(snapshots.business_date.notnull()).semi_join(stores, "store_id")}


def _days_quarantined_since(quarantined: dict[str, ir.Table], params: ir.Table) -> ir.Table:
    """The business dates of rows quarantined in batches the last run had not seen."""
    seen = params.last_batch_seen.max()
    headers, snapshots = quarantined["headers"], quarantined["snapshots"]
    return headers.filter(headers._batch_id > seen).select("business_date").union(
        snapshots.filter(snapshots._batch_id > seen).select("business_date"))


def per_day_tables(quarantined: dict[str, ir.Table], days: Days,
                   keep: Keep = computed) -> dict[str, ir.Table]:
    """analytics.store_day_deliveries and store_day_metrics of `days` (incremental.EVERY_DAY: every day), from staging and
    `quarantined` (_quarantined); `keep` may materialise the days' lines, which both read."""
    headers = dated_headers(staging_table("store_sales_header"))
    headers = incremental.on_days(headers, headers.business_date, days)
    inventory = staging_table("inventory_daily")
    inventory = incremental.on_days(inventory, inventory.snapshot_date, days)
    parked = {name: (table if name == "lines" else incremental.on_days(table, table.business_date, days))
              for name, table in quarantined.items()}
    lines = keep(LINES_TABLE, dated_lines(headers, staging_table("store_sales_line_items")))
    return {
        STORE_DAY_DELIVERIES.name: store_day_deliveries(headers, lines, inventory, parked["headers"],
                                                        parked["lines"], parked["snapshots"], BATCHES),
        STORE_DAY_METRICS.name: store_day_metrics(headers, lines, parked["headers"]),
    }


def empty(table: StoredTable) -> ir.Table:
    """No rows, of `table`'s columns (read from the run's parameters, which always exist)."""
    return table.cast(PARAMS_TABLE.select(**{column.name: ibis.null(column.ibis_type) for column in table.columns})
                      .filter(ibis.literal(False)))


def _stored(backend: Backend) -> set[str]:
    """The qualified names of the tables in audit and analytics (one catalog query each, not one per table)."""
    return {f"{schema}.{name}" for schema in ("audit", "analytics") for name in backend.tables(schema)}


def _last_run(backend: Backend, stored: set[str]) -> dict | None:
    if CHECK_RUNS.qualified_name not in stored:
        return None
    runs = CHECK_RUNS.table()
    rows = backend.fetch_dicts(runs.order_by(ibis.desc("run_id")).limit(1).mutate(
        first_ran_at=runs.ran_at.min().over(ibis.window())))
    return rows[0] if rows else None


def _write_params(backend: Backend, now: dt.datetime, first_check_at: dt.datetime | None, last_due: dt.date | None,
                  last_batch_seen: int) -> None:
    """The run's parameters as a one-row temporary table: the statements reading it are the same text every night."""
    def stamp(value: dt.datetime | None) -> str:
        return f"CAST({backend.literal(value.isoformat(sep=' '))} AS TIMESTAMP)" if value else "CAST(NULL AS TIMESTAMP)"

    due = f"CAST({backend.literal(last_due.isoformat())} AS DATE)" if last_due else "CAST(NULL AS DATE)"
    backend.execute(f"DROP TABLE IF EXISTS {PARAMS}")
    backend.execute(f"CREATE TEMPORARY TABLE {PARAMS} AS SELECT {stamp(now)} AS now, {stamp(first_check_at)} AS "
                    f"first_check_at, {due} AS last_due, CAST({int(last_batch_seen)} AS BIGINT) AS last_batch_seen")


def _anomaly_days(changed: Days, settings: ChecksSettings) -> Days:
    """The days whose anomalies a change of `changed` reaches: those days and the same weekday of the
    2 × baseline_weeks weeks after them (their baselines, and the first pass judging those baselines, read it)."""
    if not isinstance(changed, ir.Table):
        return EVERY_DAY
    return ibis.union(*(changed.select(business_date=shifted(changed.business_date, 7 * weeks))
                        for weeks in range(2 * settings.baseline_weeks + 1)), distinct=True)


def run_checks(backend: Backend, *, settings: ChecksSettings | None = None, rules_path: Path | None = None,
               days: DateRange | None = None, rebuild: bool = False,
               now: dt.datetime | None = None) -> ChecksOutcome:
    """Update the per-day tables for the changed days (`days`: a backfill; every day on the first run or with
    `rebuild`), judge the expected deliveries and the anomalies, record the run; what it found.

    `settings` default to the `expectations:`/`checks:` sections of the rules file at `rules_path`; `now` (what
    is due is judged against it) to the database's clock.
    """
    started = time.perf_counter()
    settings = settings or load_checks(rules_path)
    with scratch_tables(backend, PARAMS, DAYS, ANOMALY_DAYS, BEFORE, JUDGED, LINES_TABLE, *KEPT):
        with backend.transaction():
            # The engine's NOW, with the fractions of a second every engine keeps (MariaDB's bare CURRENT_TIMESTAMP has none).
            now = now or backend.scalar(f"SELECT CAST({backend.sql_value(NOW)} AS TIMESTAMP)")
            stored = _stored(backend)
            last_run = _last_run(backend, stored)
            fresh = rebuild or last_run is None or not {STORE_DAY_DELIVERIES.qualified_name,
                                                        STORE_DAY_METRICS.qualified_name} <= stored
            with incremental.window(backend, STAGE, days=days, rebuild=fresh) as changed:
                # The change the window marks as processed: the same transaction reads the same one.
                latest = marks.latest_change(backend)
                last_due = None
                if settings.cutoff_minutes is not None:
                    last_due = (now - dt.timedelta(minutes=settings.cutoff_minutes)).date() - dt.timedelta(days=1)
                _write_params(backend, now, last_run and last_run["first_ran_at"], last_due,
                              int(last_run["last_batch_id"]) if last_run else 0)
                quarantined = _quarantined(backend)
                if isinstance(changed, ir.Table):
                    changed = backend.create_temp_table(DAYS, changed.union(
                        _days_quarantined_since(quarantined, PARAMS_TABLE), distinct=True))
                recomputed = None if changed is EVERY_DAY or isinstance(changed, DateRange) else int(
                    backend.scalar(f"SELECT count(*) FROM {DAYS}"))
                _keep_open_findings(backend, stored)
                for name, rows in per_day_tables(quarantined, changed, backend.create_temp_table).items():
                    incremental.replace_days(backend, "analytics", name, "business_date", rows, changed)
                reach = EVERY_DAY
                if not (fresh or last_run["settings_digest"] != settings.digest() or ANOMALIES.qualified_name not in stored):
                    reach = _anomaly_days(changed, settings)
                if isinstance(reach, ir.Table):
                    reach = backend.create_temp_table(ANOMALY_DAYS, reach)
                # MySQL / MariaDB have no median aggregate: the middle values by row number instead.
                found = anomalies(STORE_DAY_METRICS.table(), reach if isinstance(reach, ir.Table) else None, settings,
                                  backend.create_temp_table, windowed_median=not backend.capabilities.has_median)
                incremental.replace_days(backend, ANOMALIES.schema, ANOMALIES.name, "business_date", found, reach)
                previous = (EXPECTED_DELIVERIES.table() if EXPECTED_DELIVERIES.qualified_name in stored
                            else empty(EXPECTED_DELIVERIES))
                with contextlib.ExitStack() as scratch:
                    # The stores' bounds and closures, kept (indexed on the store) where the engine needs them kept.
                    store = indexed_store(backend, scratch)
                    judged = backend.create_temp_table(JUDGED, expected_deliveries(
                        STORE_DAY_DELIVERIES.table(), staging_table("stores"), previous, PARAMS_TABLE, settings,
                        lambda name, table: store(name, table, ("store_id",))))
                backend.replace_table(EXPECTED_DELIVERIES.schema, EXPECTED_DELIVERIES.name, judged)
                outcome = _outcome(backend, recomputed)
                _record(backend, outcome, latest, settings, CHECK_RUNS.qualified_name in stored, backfill=days is not None)
    outcome.seconds = time.perf_counter() - started
    return outcome


def _keep_open_findings(backend: Backend, stored: set[str]) -> None:
    """The findings open before the run (as a temporary table BEFORE): those after it that are not there are new."""
    present = {EXPECTED_DELIVERIES.qualified_name, ANOMALIES.qualified_name} <= stored
    rows = finding_rows(*(table.table() if present else empty(table) for table in (EXPECTED_DELIVERIES, ANOMALIES)),
                        RECORDED)
    backend.create_temp_table(BEFORE, rows.select("check", "store_id", "business_date", "subject"))


def _outcome(backend: Backend, recomputed: int | None) -> ChecksOutcome:
    rows = finding_rows(EXPECTED_DELIVERIES.table(), ANOMALIES.table(), RECORDED)
    before = ibis.table(rows.select("check", "store_id", "business_date", "subject").schema(), name=BEFORE)
    keys = ["check", "store_id", "business_date", "subject"]
    rows = rows.left_join(before.mutate(_open=ibis.literal(True)), keys).select(*rows.columns, "_open")
    found = backend.fetch_dicts(rows.order_by(["business_date", "store_id", "check", "subject"]))
    findings = to_findings(found)
    new = [finding for finding, row in zip(findings, found) if not row["_open"]]
    blocked = sorted({finding.business_date for finding in findings if finding.severity == "block"})
    return ChecksOutcome(findings, new, blocked, recomputed)


def _record(backend: Backend, outcome: ChecksOutcome, latest: int, settings: ChecksSettings, exists: bool, *,
            backfill: bool = False) -> None:
    """Append the run to audit.check_runs: its marks (the last validated batch: a batch loaded but not validated yet
    has no quarantined rows yet; a backfill keeps the last run's, as the rows it skipped are still due), what it
    found."""
    run_id = 1 + int(backend.scalar(f"SELECT coalesce(max(run_id), 0) FROM "
                                    f"{backend.qualified(CHECK_RUNS.schema, CHECK_RUNS.name)}") if exists else 0)
    counts = {"run_id": run_id, "change_id": latest, "findings": len(outcome.findings),
              "new_findings": len(outcome.new), "blocked_dates": len(outcome.blocked_dates)}
    validated = BATCHES.filter(BATCHES.status == "validated")
    row = PARAMS_TABLE.cross_join(validated.aggregate(_last=validated.batch_id.max())).select(
        ran_at=PARAMS_TABLE.now,
        last_batch_id=PARAMS_TABLE.last_batch_seen if backfill else ibis._._last.fill_null(0),
        settings_digest=ibis.literal(settings.digest()),
        # The counts are run values: the statement's text stays the same from one night to the next (sql_cache).
        days_recomputed=ibis.null("int64") if outcome.days_recomputed is None
        else run_value("days_recomputed", outcome.days_recomputed, "int64"),
        **{name: run_value(name, value, "int64") for name, value in counts.items()})
    if exists:
        backend.insert(CHECK_RUNS.schema, CHECK_RUNS.name, row)
    else:
        backend.replace_table(CHECK_RUNS.schema, CHECK_RUNS.name, CHECK_RUNS.cast(row))
