"""The stages of the loop, each declared once: what it reads and writes, what a run recomputes, how to run it.

`retailflow run` and `rebuild` (pipeline.py), the watch loop, Dagster's assets and Airflow's tasks
(integrations/) are built from STAGES, in its order; tests/test_stages.py checks the declared tables
against what a run writes. `ingest` and `validate` are the single pass (running.py): each caller feeds
them its own files (a folder, a landing day), so they have no `run` here.

Grain says what a run recomputes:
- `file`: each new file once (identical files are skipped by checksum);
- `batch`: each pending batch once;
- `day`: the business days changed since the stage last ran (audit.batch_dates against the stage's
  mark in audit.stage_marks, see incremental.py), plus the days asked for (`--from/--to`, a partition);
- `customer`: the customers of those days (purchases, balances), every customer's scores;
- `run`: everything, each time (the outbox of the latest points, the report).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from retailflow.backends import Backend
from retailflow.incremental import DateRange

Grain = Literal["file", "batch", "day", "customer", "run"]


@dataclass(frozen=True)
class Recompute:
    """What one stage run covers: the changed days plus `days` (a backfill or a partition), or every day with
    `rebuild`. `sender` and `report` serve the schedulers' notify (which sends) and report stages."""

    days: DateRange | None = None
    rebuild: bool = False
    sender: str | None = None
    report: Path | None = None
    #: The rules file, whose `expectations:` and `checks:` sections tune the checks stage.
    rules: Path | None = None


@dataclass(frozen=True)
class Stage:
    """One stage. `name` is its CLI command, Airflow task id and timing label; `asset` names what it produces,
    Dagster's asset; `after` the stages whose output it reads; `nightly` whether `retailflow run` runs it."""

    name: str
    asset: str
    description: str
    grain: Grain
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    after: tuple[str, ...] = ()
    nightly: bool = True
    run: Callable[[Backend, Recompute], object] | None = field(default=None, repr=False)
    summary: Callable[[object], dict[str, object]] = field(default=lambda result: {}, repr=False)
    #: A gate: from its result, each blocking finding's business date and line. Any holds back every later stage
    #: of `run` (their marks stay, so the run after the finding clears recomputes those days); a scheduler's
    #: partition or logical day is held back by the findings of its own date.
    blocking: Callable[[object], list[tuple[dt.date, str]]] | None = field(default=None, repr=False)


# Each stage's function imports its module when it runs: the CLI's start-up does not pay for the analytics.

def _checks(backend: Backend, scope: Recompute):
    from retailflow.checks import run_checks

    return run_checks(backend, rules_path=scope.rules, days=scope.days, rebuild=scope.rebuild)


def _blocking_findings(outcome) -> list[tuple[dt.date, str]]:
    return [(finding.business_date, finding.line) for finding in outcome.findings if finding.severity == "block"]


def _purchases(backend: Backend, scope: Recompute) -> None:
    from retailflow.analytics import purchases

    purchases.update(backend, scope.days, scope.rebuild)


def _promotions(backend: Backend, scope: Recompute) -> list[dict]:
    from retailflow.analytics.promotions import run_promotions

    return run_promotions(backend, days=scope.days, rebuild=scope.rebuild)


def _inventory(backend: Backend, scope: Recompute) -> dict[str, list[dict]]:
    from retailflow.analytics.inventory import run_inventory

    return run_inventory(backend, days=scope.days, rebuild=scope.rebuild)


def _loyalty(backend: Backend, scope: Recompute) -> dict:
    from retailflow.analytics.loyalty import run_loyalty

    return run_loyalty(backend, days=scope.days, rebuild=scope.rebuild)


def _segments(backend: Backend, scope: Recompute) -> list[dict]:
    from retailflow.analytics.segmentation import run_segments

    return run_segments(backend, refit=scope.rebuild)


def _notify(backend: Backend, scope: Recompute) -> dict:
    """Queue the e-mails of the latest points; the schedulers also send them (`retailflow run` only queues:
    `retailflow notify` sends, with the sender and templates a person chose)."""
    from retailflow.notify import outbox

    queued = dict(outbox.queue(backend))
    if scope.sender is not None:
        from retailflow.notify.senders import make_sender

        queued.update(outbox.send(backend, make_sender(scope.sender)))
    return queued


def _report(backend: Backend, scope: Recompute) -> dict:
    from retailflow.report.dashboard import build_report

    built = build_report(backend, scope.report or Path("retailflow-report.html"))
    return {"path": str(built.path), "charts": built.charts}


def _top_promotion(ranked: object) -> dict[str, object]:
    top = ranked[0] if isinstance(ranked, list) and ranked else {}
    return {"promotions": len(ranked) if isinstance(ranked, list) else 0,
            "top promotion": str(top.get("promotion_id", "")), "top lift": top}


STAGES: tuple[Stage, ...] = (
    Stage("ingest", "raw", "The files in the raw layer, as sent: every cell as text, with lineage.", "file",
          reads=(), writes=("raw.*", "audit.batches")),
    Stage("validate", "staging", "Validated rows in staging; the rest in quarantine with every reason.", "batch",
          reads=("raw.*",), writes=("staging.*", "quarantine.*", "audit.rule_results", "audit.warnings",
                                    "audit.batch_dates", "audit.master_changes"),
          after=("ingest",)),
    Stage("checks", "checks", "Completeness, freshness and volume per store and day: expected deliveries that are "
          "missing, late or restated, and days unlike the store's usual weekday.", "day",
          reads=("staging.store_sales_header", "staging.store_sales_line_items", "staging.inventory_daily",
                 "staging.stores", "quarantine.*", "audit.batches"),
          writes=("analytics.store_day_deliveries", "analytics.store_day_metrics", "audit.expected_deliveries",
                  "audit.anomalies", "audit.check_runs"),
          after=("validate",), run=_checks, blocking=_blocking_findings,
          summary=lambda outcome: {"open findings": len(outcome.findings), "new findings": len(outcome.new),
                                   "blocked days": len(outcome.blocked_dates)}),
    Stage("purchases", "purchases", "Each customer's purchases, day by day and in total (what balances, RFM and "
          "churn read).", "customer",
          reads=("staging.store_sales_header",), writes=("analytics.customer_daily", "analytics.customer_purchases"),
          after=("checks",), run=_purchases),
    Stage("promotions", "promotions", "Promotion lift for the changed days and the ranking over every day.", "day",
          reads=("staging.store_sales_header", "staging.store_sales_line_items", "staging.promotion_details",
                 "staging.products", "staging.inventory"),
          writes=("analytics.promotion_daily", "analytics.promotion_discounts_daily",
                  "analytics.promotion_effectiveness"),
          after=("checks",), run=_promotions, summary=_top_promotion),
    Stage("inventory", "inventory", "Out-of-stock days, lost sales and phantom stock for the changed days.", "day",
          reads=("staging.store_sales_header", "staging.store_sales_line_items", "staging.products",
                 "staging.inventory"),
          writes=("analytics.product_daily", "analytics.store_product_daily", "analytics.returns",
                  "analytics.top_products", "analytics.stockouts", "analytics.lost_sales",
                  "analytics.phantom_inventory", "analytics.phantom_idle_runs", "analytics.phantom_rates",
                  "analytics.phantom_log", "analytics.phantom_log_*"),
          after=("checks",), run=_inventory,
          summary=lambda result: {name: len(rows) for name, rows in result.items()}),
    Stage("loyalty", "loyalty", "Points of the changed days' sales in the append-only ledger; balances.", "day",
          reads=("staging.store_sales_header", "staging.store_sales_line_items", "staging.customers",
                 "staging.loyalty_rules", "analytics.customer_purchases"),
          writes=("loyalty.points_ledger", "loyalty.opening_balances", "loyalty.runs", "loyalty.balances"),
          after=("purchases",), run=_loyalty,
          summary=lambda result: {key: value for key, value in result.items()
                                  if isinstance(value, (int, float, str))}),
    Stage("segments", "segments", "RFM segments and churn probability per customer.", "customer",
          reads=("analytics.customer_purchases", "analytics.customer_daily", "loyalty.balances"),
          writes=("analytics.customer_rfm", "analytics.customer_churn", "analytics.churn_model"),
          after=("loyalty",), run=_segments, summary=lambda counts: {"segments": counts}),
    Stage("notify", "notify", "The loyalty e-mails of the latest points: queued in the outbox (the schedulers "
          "also send them).", "run",
          reads=("loyalty.runs", "loyalty.points_ledger", "loyalty.balances", "analytics.customer_rfm"),
          writes=("notifications.outbox",), after=("loyalty", "segments"), run=_notify,
          summary=lambda result: {key: int(value) for key, value in result.items() if isinstance(value, int)}),
    Stage("report", "report", "The offline HTML dashboard.", "run",
          reads=("analytics.*", "loyalty.*", "audit.*", "quarantine.*"), writes=(),
          after=("promotions", "inventory", "segments", "notify"), nightly=False, run=_report,
          summary=lambda result: result),
)

#: Tables written outside one stage's declaration: shared bookkeeping, and commands that are not stages.
OTHER_WRITERS: dict[str, str] = {
    "audit.stage_marks": "every day and customer stage: its own row, the last change it has processed",
    "audit.setup": "every connection (Backend.set_up): which code last set the database up",
    "audit.erasures": "`retailflow forget` (privacy/forget.py); the table exists from the first run",
    "audit.erasure_rows": "`retailflow forget` (privacy/forget.py); the table exists from the first run",
}

BY_NAME: dict[str, Stage] = {stage.name: stage for stage in STAGES}
#: The stages after validation that `retailflow run` and `rebuild` bring up to date, in order.
NIGHTLY: tuple[Stage, ...] = tuple(stage for stage in STAGES if stage.run is not None and stage.nightly)
