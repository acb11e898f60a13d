"""Running stages: what a progress display hears, timing, and the single pass (load and validate together).

Kept apart from the stage registry (stages.py) and pipeline.py so that a command that only loads and validates
does not import the analytics.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from retailflow.backends import Backend
from retailflow.ingest import IngestResult, ingest
from retailflow.model import Entity
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
                      seconds: dict[str, float] | None = None) -> tuple[list[IngestResult], RouteOutcome]:
    """The single pass: the files into raw, then every pending batch validated, as one transaction.

    Each file is parsed once, into raw; the checks read those rows where they were stored and write
    only the failing ones aside. A crash anywhere leaves the database as it was before the files.
    `listener` hears each stage, whose seconds go to `seconds`.
    """
    timed = stage_timer(listener, {} if seconds is None else seconds)
    with backend.transaction():
        ingested = timed("ingest", lambda: ingest(backend, files, on_loaded=listener.file_loaded, restate=restate),
                         [path for path, _ in files])
        validated = timed("validate", lambda: route_all(backend, rules, "validate"))
    return ingested, validated
