"""The whole loop in order: ingest, validate, then every analytics stage that is available."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from retailflow.analytics.inventory import run_inventory
from retailflow.analytics.loyalty import run_loyalty
from retailflow.analytics.promotions import run_promotions
from retailflow.analytics.segmentation import run_segments
from retailflow.backends import Backend
from retailflow.dates import DateRange
from retailflow.ingest import IngestResult, discover
from retailflow.notify.outbox import queue
from retailflow.quality.engine import RouteOutcome
from retailflow.quality.rules import Rule
from retailflow.sources.mapping import SourceMap
from retailflow.stages import StageListener, load_and_validate, stage_timer

@dataclass
class PipelineResult:
    """What one `retailflow run` did, with seconds per stage."""

    ingested: list[IngestResult]
    validated: RouteOutcome
    stages: dict[str, object] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


#: Stages after validation, in order: name -> function(backend, days, rebuild) returning a summary. The per-day
#: stages recompute `days` (None: the days changed since their last run) or, with rebuild, every day; the
#: per-customer ones are global and refit the churn model on a rebuild.
ANALYTICS_STAGES: list[tuple[str, Callable[[Backend, DateRange | None, bool], object]]] = [
    ("promotions", lambda backend, days, rebuild: run_promotions(backend, days=days, rebuild=rebuild)),
    ("inventory", lambda backend, days, rebuild: run_inventory(backend, days=days, rebuild=rebuild)),
    ("loyalty", lambda backend, days, rebuild: run_loyalty(backend, days=days, rebuild=rebuild)),
    ("segments", lambda backend, days, rebuild: run_segments(backend, refit=rebuild)),
    ("notify queue", lambda backend, days, rebuild: queue(backend)),
]


def has_sales(backend: Backend) -> bool:
    """Whether any sale is staged: before the first, a run loads masters and the analytics wait."""
    return bool(backend.scalar("SELECT count(*) FROM (SELECT 1 FROM staging.store_sales_header LIMIT 1) AS sales"))


def run_analytics(backend: Backend, *, days: DateRange | None = None, rebuild: bool = False,
                  listener: StageListener = StageListener()) -> dict[str, float]:
    """Every analytics stage in order (see ANALYTICS_STAGES); seconds per stage."""
    seconds: dict[str, float] = {}
    _run_stages(backend, days, rebuild, stage_timer(listener, seconds))
    return seconds


def _run_stages(backend: Backend, days: DateRange | None, rebuild: bool, timed) -> dict[str, object]:
    """Each analytics stage through `timed` (stages.stage_timer); the stages' summaries by name."""
    if not has_sales(backend):
        return {}
    return {name: timed(name, lambda: stage(backend, days, rebuild)) for name, stage in ANALYTICS_STAGES}


def run_pipeline(backend: Backend, paths: Sequence[Path], rules: Sequence[Rule],
                 listener: StageListener = StageListener(), *, restate: bool = False,
                 days: DateRange | None = None, sources: SourceMap = SourceMap()) -> PipelineResult:
    """Ingest `paths` (read as `sources` says; as restated days with `restate`; none is fine), validate, and run the analytics stages over
    the changed days (and `days`, a backfill); timings per stage."""
    seconds: dict[str, float] = {}
    timed = stage_timer(listener, seconds)
    files = discover(paths, sources=sources) if paths else []
    ingested, validated = load_and_validate(backend, files, rules, restate=restate, listener=listener,
                                            seconds=seconds)
    return PipelineResult(ingested, validated, _run_stages(backend, days, False, timed), seconds)
