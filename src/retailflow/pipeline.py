"""The whole loop in order: ingest, validate, then every analytics stage that is available."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from retailflow.analytics.inventory import run_inventory
from retailflow.analytics.loyalty import run_loyalty
from retailflow.analytics.promotions import run_promotions
from retailflow.analytics.segmentation import run_segments
from retailflow.backends import Backend
from retailflow.dates import DateRange
from retailflow.ingest import IngestResult, discover, ingest
from retailflow.model import Entity
from retailflow.notify.outbox import queue
from retailflow.quality.engine import RouteOutcome, route_all
from retailflow.quality.rules import Rule

T = TypeVar("T")


class StageListener:
    """Hears what a run is doing, for progress display; this base hears nothing (quiet runs, tests)."""

    def stage_started(self, name: str, files: Sequence[Path] = ()) -> None:
        """A stage begins; ingest names the files it will load."""

    def file_loaded(self, result: IngestResult) -> None:
        """Ingest finished one file."""

    def stage_finished(self, name: str, seconds: float) -> None:
        """A stage ended after `seconds`."""


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


def run_analytics(backend: Backend, *, days: DateRange | None = None, rebuild: bool = False,
                  listener: StageListener = StageListener()) -> dict[str, float]:
    """Every analytics stage in order (see ANALYTICS_STAGES); seconds per stage."""
    seconds: dict[str, float] = {}
    for name, stage in ANALYTICS_STAGES:
        listener.stage_started(name)
        started = time.perf_counter()
        stage(backend, days, rebuild)
        seconds[name] = time.perf_counter() - started
        listener.stage_finished(name, seconds[name])
    return seconds


def stage_timer(listener: StageListener, seconds: dict[str, float]) -> Callable[..., object]:
    """A function running one stage, telling `listener` about it and keeping its seconds in `seconds`."""
    def timed(name: str, stage: Callable[[], T], files: Sequence[Path] = ()) -> T:
        listener.stage_started(name, files)
        started = time.perf_counter()
        outcome = stage()
        seconds[name] = time.perf_counter() - started
        listener.stage_finished(name, seconds[name])
        return outcome

    return timed


def load_and_validate(backend: Backend, files: Sequence[tuple[Path, Entity]], rules: Sequence[Rule], *,
                      restate: bool = False, listener: StageListener = StageListener(),
                      timed: Callable[..., object] | None = None) -> tuple[list[IngestResult], RouteOutcome]:
    """The single pass: the files into raw, then every pending batch validated, as one transaction.

    Each file is parsed once, into raw; the checks read those rows where they were stored and write
    only the failing ones aside. A crash anywhere leaves the database as it was before the files.
    """
    timed = timed or stage_timer(listener, {})
    with backend.transaction():
        ingested = timed("ingest", lambda: ingest(backend, files, on_loaded=listener.file_loaded, restate=restate),
                         [path for path, _ in files])
        validated = timed("validate", lambda: route_all(backend, rules, "validate"))
    return ingested, validated


def run_pipeline(backend: Backend, paths: Sequence[Path], rules: Sequence[Rule],
                 listener: StageListener = StageListener(), *, restate: bool = False,
                 days: DateRange | None = None) -> PipelineResult:
    """Ingest `paths` (as restated days with `restate`; none is fine), validate, and run the analytics stages over
    the changed days (and `days`, a backfill); timings per stage."""
    seconds: dict[str, float] = {}
    timed = stage_timer(listener, seconds)
    files = discover(paths) if paths else []
    ingested, validated = load_and_validate(backend, files, rules, restate=restate, listener=listener,
                                            timed=timed)
    result = PipelineResult(ingested, validated, seconds=seconds)
    for name, stage in ANALYTICS_STAGES:
        result.stages[name] = timed(name, lambda: stage(backend, days, False))
    return result
