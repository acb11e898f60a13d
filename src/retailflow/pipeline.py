"""The whole loop in order (stages.STAGES): ingest and validate in one pass, then every nightly stage."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from retailflow.backends import Backend
from retailflow.incremental import DateRange
from retailflow.ingest import IngestResult, discover
from retailflow.quality.engine import RouteOutcome
from retailflow.quality.rules import Rule
from retailflow.sources.mapping import SourceMap
from retailflow.running import StageListener, load_and_validate, stage_timer
from retailflow.stages import NIGHTLY, Recompute


@dataclass
class PipelineResult:
    """What one `retailflow run` did, with seconds per stage."""

    ingested: list[IngestResult]
    validated: RouteOutcome
    stages: dict[str, object] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def has_sales(backend: Backend) -> bool:
    """Whether any sale is staged: before the first, a run loads masters and the analytics wait."""
    return bool(backend.scalar("SELECT count(*) FROM (SELECT 1 FROM staging.store_sales_header LIMIT 1) AS sales"))


def run_analytics(backend: Backend, *, days: DateRange | None = None, rebuild: bool = False,
                  listener: StageListener = StageListener()) -> dict[str, float]:
    """Every nightly stage after validation, in order (stages.NIGHTLY); seconds per stage."""
    seconds: dict[str, float] = {}
    _run_stages(backend, days, rebuild, stage_timer(listener, seconds))
    return seconds


def _run_stages(backend: Backend, days: DateRange | None, rebuild: bool, timed) -> dict[str, object]:
    """Each nightly stage through `timed` (running.stage_timer); the stages' summaries by name."""
    if not has_sales(backend):
        return {}
    scope = Recompute(days=days, rebuild=rebuild)
    return {stage.name: timed(stage.name, lambda: stage.run(backend, scope)) for stage in NIGHTLY}


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
