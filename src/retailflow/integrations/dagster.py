"""retailflow as Dagster assets: one asset per stage, daily partitions by business date, rule checks, a sensor.

    from retailflow.integrations.dagster import retailflow_definitions
    defs = retailflow_definitions("duckdb:///shop.duckdb", landing="/data/landing")

A partition is a business day. `raw` loads that day's files from the landing folder (names holding the
date, e.g. store_sales_header_2024-12-13.csv) together with the undated master files (identical files are
skipped by checksum); `staging` validates them. Every reject rule with `max_failed_pct` is a blocking check
on `staging`: above the threshold the day's downstream assets do not run (its rows are quarantined either
way). Warn rules are non-blocking checks. The assets after `staging` are the stages of stages.STAGES, each
named for what it produces: the per-day ones recompute that day; purchases, segments, notify and report are
global. A sensor asks for a day's run when its files land. Needs `pip install 'retailflow[dagster]'`.
"""

import contextlib
import dataclasses
import datetime as dt
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import dagster as dg

from retailflow.backends import Backend, connect
from retailflow.incremental import DateRange
from retailflow.integrations.landing import failure_rate, landed_days, landed_files, threshold
from retailflow.quality.rules import Rule, load_rules
from retailflow.sources.mapping import SourceMap, load_sources
from retailflow.stages import STAGES, Recompute, Stage

GROUP = "retailflow"


def _check_name(rule: Rule) -> str:
    return "rule_" + re.sub(r"[^A-Za-z0-9_]", "_", rule.id)


def retailflow_definitions(db_url: str, landing: str | Path, rules: str | Path | None = None, *,
                           start_date: str = "2024-01-01", report: str | Path = "retailflow-report.html",
                           sender: str = "log", sources: str | Path | None = None) -> dg.Definitions:
    """Dagster definitions of the whole loop on `db_url`, fed by the files landing in `landing` (read as the source
    mapping `sources` says, if given)."""
    landing = Path(landing)
    rule_list = load_rules(Path(rules) if rules else None)
    mapping = load_sources(Path(sources)) if sources else SourceMap()
    daily = dg.DailyPartitionsDefinition(start_date=start_date)

    @contextlib.contextmanager
    def database() -> Iterator[Backend]:
        backend = connect(db_url)
        try:
            backend.lock_for_writing()
            yield backend
        finally:
            backend.close()

    @dg.asset(partitions_def=daily, group_name=GROUP, description="The day's files in the raw layer, as sent.")
    def raw(context) -> dg.MaterializeResult:
        from retailflow.ingest import discover, ingest

        files = landed_files(landing, context.partition_key, mapping)
        with database() as backend:
            results = ingest(backend, discover(files, sources=mapping)) if files else []
        return dg.MaterializeResult(metadata={
            "files": len(files), "loaded": sum(r.status == "loaded" for r in results),
            "skipped as identical": sum(r.status == "skipped" for r in results),
            "rows": sum(r.rows for r in results)})

    @dg.asset(partitions_def=daily, group_name=GROUP, deps=[raw],
              description="Validated rows in staging; the rest in quarantine with every reason.")
    def staging(context) -> dg.MaterializeResult:
        from retailflow.quality.engine import route_all

        with database() as backend:
            outcome = route_all(backend, rule_list, "validate")
        return dg.MaterializeResult(metadata={"rows checked": outcome.checked, "rows staged": outcome.staged,
                                              "rows quarantined": outcome.quarantined})

    checks = [_rule_check(rule, staging, daily, database) for rule in rule_list
              if rule.severity == "warn" or rule.max_failed_pct is not None]

    # Every stage after validation, from the registry: an asset named for what it produces, after the assets
    # of the stages it reads. The customer and run stages are global; they run with each day's partition.
    built: dict[str, dg.AssetsDefinition] = {"ingest": raw, "validate": staging}
    for stage in STAGES:
        if stage.run is not None:
            built[stage.name] = _stage_asset(stage, [built[name] for name in stage.after], daily, database,
                                             Recompute(sender=sender, report=Path(report),
                                                       rules=Path(rules) if rules else None))
    assets = list(built.values())
    checks += [_gate_check(stage, built[stage.name], daily, database) for stage in STAGES if stage.blocking]
    job = dg.define_asset_job("retailflow_daily", selection=dg.AssetSelection.assets(*assets))

    @dg.sensor(job=job, minimum_interval_seconds=30, description="A run for each day whose files landed.")
    def landing_sensor(context):
        for day in landed_days(landing, mapping):
            signature = ",".join(f"{path.name}:{path.stat().st_size}:{path.stat().st_mtime_ns}"
                                 for path in landed_files(landing, day, mapping))
            yield dg.RunRequest(run_key=f"{day}|{signature}", partition_key=day)

    return dg.Definitions(assets=assets, asset_checks=checks, jobs=[job], sensors=[landing_sensor])


def _stage_asset(stage: Stage, deps: Sequence[dg.AssetsDefinition], daily: dg.PartitionsDefinition, database,
                 scope: Recompute) -> dg.AssetsDefinition:
    """The asset of one registry stage: it runs the stage for the partition's day; its summary is the metadata."""

    @dg.asset(name=stage.asset, partitions_def=daily, group_name=GROUP, deps=list(deps),
              description=stage.description)
    def asset(context) -> dg.MaterializeResult:
        day = dt.date.fromisoformat(context.partition_key)
        with database() as backend:
            result = stage.run(backend, dataclasses.replace(scope, days=DateRange(day, day)))
        return dg.MaterializeResult(metadata={key: _metadata(value) for key, value in stage.summary(result).items()})

    return asset


def _gate_check(stage: Stage, asset: dg.AssetsDefinition, daily: dg.PartitionsDefinition,
                database) -> dg.AssetChecksDefinition:
    """The blocking check of a gate stage (checks) for the partition's day: its blocking findings of that date stop
    the day's downstream assets, as a blocking rule does."""

    @dg.asset_check(asset=asset, name=f"{stage.name}_pass", blocking=True, partitions_def=daily,
                    description=f"No blocking finding of {stage.name} on the day. {stage.description}")
    def check(context) -> dg.AssetCheckResult:
        from retailflow.checks import list_findings

        day = dt.date.fromisoformat(context.partition_key)
        with database() as backend:
            found = list_findings(backend, severities=("warn", "block"), first=day, last=day)
        blocking = [finding.line for finding in found if finding.severity == "block"]
        return dg.AssetCheckResult(passed=not blocking, severity=dg.AssetCheckSeverity.ERROR, metadata={
            "blocking findings": dg.MetadataValue.json(blocking),
            "warnings": dg.MetadataValue.json([finding.line for finding in found if finding.severity == "warn"])})

    return check


def _metadata(value):
    """A metadata value Dagster shows: numbers and text as they are, the rest as JSON."""
    if isinstance(value, (bool, int, float, str)):
        return value
    return dg.MetadataValue.json(_plain(value))


def _rule_check(rule: Rule, staging: dg.AssetsDefinition, daily: dg.PartitionsDefinition,
                database) -> dg.AssetChecksDefinition:
    """A check of one rule on the day's rows: blocking for a reject rule with a threshold."""
    limit = threshold(rule)
    blocking = rule.severity == "reject"

    @dg.asset_check(asset=staging, name=_check_name(rule), blocking=blocking, partitions_def=daily,
                    description=f"{rule.id}: at most {limit:g}% of the day's rows fail. {rule.description}")
    def check(context) -> dg.AssetCheckResult:
        with database() as backend:
            failed, checked = failure_rate(backend, rule.id, context.partition_key)
        percent = 100.0 * failed / checked if checked else 0.0
        return dg.AssetCheckResult(
            passed=percent <= limit, severity=dg.AssetCheckSeverity.ERROR if blocking else dg.AssetCheckSeverity.WARN,
            metadata={"failed rows": failed, "checked rows": checked, "failed percent": round(percent, 3),
                      "threshold percent": limit})

    return check


def _plain(value):
    """JSON-safe metadata: decimals and dates as text."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)
