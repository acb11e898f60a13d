"""retailflow as an Airflow DAG: one task per stage of stages.STAGES, the run's logical date as the business date.

    from retailflow.integrations.airflow import retailflow_dag
    dag = retailflow_dag("retailflow", "postgresql://etl@db/shop", landing="/data/landing")

`ingest` loads the logical day's files from the landing folder (names holding the date) with the undated
masters; `validate` stages them and then fails the run without a retry when a reject rule with
`max_failed_pct` is over its threshold for the day (bad data does not get better by retrying; its rows
are quarantined either way). The analytics tasks recompute the day and are retried (`retries`): they
fail for reasons that pass, such as a busy database. Needs Airflow 3 (`pip install 'retailflow[airflow]'`).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from retailflow.backends import connect
from retailflow.incremental import DateRange
from retailflow.integrations.landing import blocked_by, landed_files
from retailflow.quality.rules import load_rules


def _day(context: dict) -> dt.date:
    return context["logical_date"].date()


def ingest_day(db_url: str, landing: str, day: dt.date, sources: str | None = None) -> dict:
    """Load the day's files (read as the source mapping `sources` says, if given); rows loaded per file."""
    from retailflow.ingest import discover, ingest
    from retailflow.sources.mapping import SourceMap, load_sources

    mapping = load_sources(Path(sources)) if sources else SourceMap()
    files = landed_files(Path(landing), day.isoformat(), mapping)
    backend = connect(db_url)
    try:
        backend.lock_for_writing()
        results = ingest(backend, discover(files, sources=mapping)) if files else []
    finally:
        backend.close()
    return {result.path.name: result.rows for result in results}


def validate_day(db_url: str, rules: str | None, day: dt.date) -> dict:
    """Validate pending batches; raise ValueError naming the rules over their threshold for the day."""
    from retailflow.quality.engine import route_all

    rule_list = load_rules(Path(rules) if rules else None)
    backend = connect(db_url)
    try:
        backend.lock_for_writing()
        outcome = route_all(backend, rule_list, "validate")
        blocked = blocked_by(backend, rule_list, day.isoformat())
    finally:
        backend.close()
    if blocked:
        raise ValueError(f"{day}: " + "; ".join(blocked))
    return {"staged": outcome.staged, "quarantined": outcome.quarantined}


def run_stage(db_url: str, stage: str, day: dt.date, report: str = "retailflow-report.html",
              sender: str = "log", rules: str | None = None) -> str:
    """One stage of stages.STAGES after validation, for the day (the customer and run stages are global; notify
    also sends); a one-line summary. A gate stage (checks) raises ValueError naming the day's blocking findings."""
    from retailflow.stages import BY_NAME, Recompute

    chosen = BY_NAME[stage]
    backend = connect(db_url)
    try:
        backend.lock_for_writing()
        result = chosen.run(backend, Recompute(days=DateRange(day, day), sender=sender, report=Path(report),
                                               rules=Path(rules) if rules else None))
    finally:
        backend.close()
    blocked = [line for found, line in (chosen.blocking(result) if chosen.blocking else []) if found == day]
    if blocked:
        raise ValueError(f"{day}: " + "; ".join(blocked))
    return _summary(result)


def _summary(value: object) -> str:
    """A stage's summary in one line (Airflow keeps it as the task's return value)."""
    if value is None:
        return "up to date"
    if isinstance(value, list):
        return f"{len(value)} rows"
    if isinstance(value, dict):
        return ", ".join(f"{key} {len(item) if isinstance(item, list) else item}" for key, item in value.items())
    return str(value)


def retailflow_dag(dag_id: str, db_url: str, landing: str | Path, *, schedule: str | None = "@daily",
                   start_date: dt.datetime | None = None, rules: str | Path | None = None,
                   report: str | Path = "retailflow-report.html", sender: str = "log", retries: int = 2,
                   retry_delay: dt.timedelta = dt.timedelta(minutes=5), sources: str | Path | None = None):
    """An Airflow DAG of the whole loop, a run per business day (the logical date)."""
    from airflow.sdk import dag, task
    from airflow.sdk.exceptions import AirflowFailException

    from retailflow.stages import STAGES

    start = start_date or dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    landing, rules_path = str(landing), str(rules) if rules else None
    sources_path = str(sources) if sources else None

    @dag(dag_id=dag_id, schedule=schedule, start_date=start, catchup=False, max_active_runs=1,
         tags=["retailflow"], doc_md=__doc__)
    def loop():
        @task(retries=0)
        def ingest(**context) -> dict:
            return ingest_day(db_url, landing, _day(context), sources_path)

        @task(retries=0)
        def validate(loaded: dict, **context) -> dict:
            try:
                return validate_day(db_url, rules_path, _day(context))
            except ValueError as error:
                raise AirflowFailException(str(error)) from None

        def analytics(stage):
            # A gate (checks) fails the run without a retry, as validate does: its findings do not pass by waiting.
            @task(task_id=stage.name, retries=0 if stage.blocking else retries, retry_delay=retry_delay)
            def run(_upstream, **context) -> str:
                try:
                    return run_stage(db_url, stage.name, _day(context), str(report), sender, rules_path)
                except ValueError as error:
                    raise AirflowFailException(str(error)) from None
            return run

        # One after another: retailflow admits one writer per database (DuckDB's file lock, the server
        # engines' writer lock), so parallel stages would only wait for each other or be refused.
        upstream = validate(ingest())
        for stage in STAGES:
            if stage.run is not None:
                upstream = analytics(stage)(upstream)

    return loop()
