"""The whole loop in order: ingest, validate, then every analytics stage that is available."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from retailflow.analytics.inventory import run_inventory
from retailflow.analytics.loyalty import run_loyalty
from retailflow.analytics.promotions import run_promotions
from retailflow.analytics.segmentation import run_segments
from retailflow.backends import Backend
from retailflow.ingest import IngestResult, discover, ingest
from retailflow.notify.outbox import queue
from retailflow.quality.engine import RouteOutcome, route_all
from retailflow.quality.rules import Rule


@dataclass
class PipelineResult:
    """What one `retailflow run` did, with seconds per stage."""

    ingested: list[IngestResult]
    validated: RouteOutcome
    stages: dict[str, object] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


#: Stages after validation, in order: name -> function(backend) returning a summary.
ANALYTICS_STAGES: list[tuple[str, Callable[[Backend], object]]] = [
    ("promotions", run_promotions),
    ("inventory", run_inventory),
    ("loyalty", run_loyalty),
    ("segments", run_segments),
    ("notify queue", queue),
]


def run_pipeline(backend: Backend, paths: Sequence[Path], rules: Sequence[Rule],
                 progress: Callable[[str], None] = lambda stage: None) -> PipelineResult:
    """Ingest `paths`, validate, and run the analytics stages; timings per stage."""
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    progress("ingest")
    ingested = ingest(backend, discover(paths))
    seconds["ingest"] = time.perf_counter() - started
    started = time.perf_counter()
    progress("validate")
    validated = route_all(backend, rules, "validate")
    seconds["validate"] = time.perf_counter() - started
    result = PipelineResult(ingested, validated, seconds=seconds)
    for name, stage in ANALYTICS_STAGES:
        started = time.perf_counter()
        progress(name)
        result.stages[name] = stage(backend)
        seconds[name] = time.perf_counter() - started
    return result
