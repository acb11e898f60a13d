"""The whole loop in order (stages.STAGES): ingest and validate in one pass, then every nightly stage."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from retailflow.backends import Backend
from retailflow.errors import Blocked
from retailflow.incremental import DateRange
from retailflow.ingest import IngestResult, discover
from retailflow.quality.engine import RouteOutcome
from retailflow.quality.rules import Rule
from retailflow.running import StageListener, load_and_validate, stage_timer
from retailflow.sources.mapping import SourceMap
from retailflow.stages import NIGHTLY, Recompute

#: What a run held back by the checks says after its findings.
BLOCKED_HINT = ("the analytics stages did not run: a blocking check failed (`retailflow checks` lists the findings; "
                "docs/explanation/checks.md says how to clear or tune them)")


@dataclass
class PipelineResult:
    """What one `retailflow run` did, with seconds per stage."""

    ingested: list[IngestResult]
    validated: RouteOutcome
    stages: dict[str, object] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    #: One line per blocking finding of a gate stage (checks); the stages after it did not run.
    blocked: list[str] = field(default_factory=list)


def has_sales(backend: Backend) -> bool:
    """Whether any sale is staged: before the first, a run loads masters and the analytics wait."""
    return bool(backend.scalar("SELECT count(*) FROM (SELECT 1 FROM staging.store_sales_header LIMIT 1) AS sales"))


def run_analytics(backend: Backend, *, days: DateRange | None = None, rebuild: bool = False,
                  listener: StageListener = StageListener(), rules: Path | None = None) -> dict[str, float]:
    """Every nightly stage after validation, in order (stages.NIGHTLY); seconds per stage. Raises Blocked, naming
    the findings, when the checks hold the later stages back."""
    seconds: dict[str, float] = {}
    _, blocked = _run_stages(backend, Recompute(days=days, rebuild=rebuild, rules=rules), stage_timer(listener, seconds))
    if blocked:
        raise Blocked(BLOCKED_HINT + "\n" + "\n".join(f"blocking: {line}" for line in blocked))
    return seconds


def _run_stages(backend: Backend, scope: Recompute, timed) -> tuple[dict[str, object], list[str]]:
    """Each nightly stage through `timed` (running.stage_timer), until a gate stage blocks; the stages' summaries
    by name and the blocking lines."""
    if not has_sales(backend):
        return {}, []
    summaries: dict[str, object] = {}
    for stage in NIGHTLY:
        summaries[stage.name] = timed(stage.name, lambda stage=stage: stage.run(backend, scope))
        blocked = [line for _, line in stage.blocking(summaries[stage.name])] if stage.blocking else []
        if blocked:
            return summaries, blocked
    return summaries, []


def run_pipeline(backend: Backend, paths: Sequence[Path], rules: Sequence[Rule],
                 listener: StageListener = StageListener(), *, restate: bool = False,
                 days: DateRange | None = None, sources: SourceMap = SourceMap(),
                 rules_path: Path | None = None) -> PipelineResult:
    """Ingest `paths` (read as `sources` says; as restated days with `restate`; none is fine), validate, check, and
    run the analytics stages over the changed days (and `days`, a backfill) unless a blocking finding holds them
    back; timings per stage. `rules_path` is the rules file `rules` came from (its checks sections)."""
    seconds: dict[str, float] = {}
    timed = stage_timer(listener, seconds)
    files = discover(paths, sources=sources) if paths else []
    ingested, validated = load_and_validate(backend, files, rules, restate=restate, listener=listener,
                                            seconds=seconds)
    summaries, blocked = _run_stages(backend, Recompute(days=days, rules=rules_path), timed)
    return PipelineResult(ingested, validated, summaries, seconds, blocked)
