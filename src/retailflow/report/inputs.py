"""What each analytics stage reads from staging, whether it ran, and how to say what is missing.

The one place that knows which input files a stage's outputs need: the report's sections and the
`inventory` and `promotions` commands read it, so each says the same thing. A stage whose input entity
has no staged rows still runs (no input file is required) but cannot compute the outputs that entity
feeds; instead of zeros those say which file they need ("no inventory_daily snapshots loaded:
stock-outs, lost sales and phantom stock need them").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from retailflow import marks
from retailflow.model import ENTITIES

if TYPE_CHECKING:
    from retailflow.backends import Backend

#: The status of an output computed from everything it needs.
OK = "ok"


@dataclass(frozen=True)
class Need:
    """One staged entity a stage reads: what its rows are called ("" for the entity's name alone), what it is
    for, and the outputs it feeds.

    `outputs` names the stage's outputs (as its command lists them) that cannot be computed without the
    entity; none means the stage falls back on an assumption, which `needed_for` states.
    """

    entity: str
    needed_for: str
    outputs: tuple[str, ...] = ()
    rows: str = ""

    @property
    def files(self) -> str:
        """The input file names the entity is recognised by (model.entity_for_file), e.g. "inventory*.csv"."""
        patterns = ENTITIES[self.entity].file_patterns or (f"{self.entity}*",)
        return " or ".join(f"{pattern}.csv" for pattern in patterns)


@dataclass(frozen=True)
class Missing:
    """A needed entity without staged rows, and the line that says so."""

    need: Need
    message: str

    @property
    def blocks(self) -> bool:
        """Whether some output could not be computed (else the stage fell back, as the message says)."""
        return bool(self.need.outputs)


@dataclass(frozen=True)
class StageInputs:
    """A stage's needs, and its name in audit.stage_marks when it keeps one (how the report knows it ran: the
    analytics module's STAGE, written out so that a command reading this needs no Ibis; tests/report checks them)."""

    needs: tuple[Need, ...]
    mark: str | None = None


#: A stage that reads nothing from staging and keeps no mark.
NOTHING = StageInputs(())
#: By stage (the report's section keys; the commands of the same name).
STAGES: dict[str, StageInputs] = {
    "overview": StageInputs((Need("stores", "store names, cities and regions need them"),)),
    "quality": NOTHING,
    "checks": StageInputs((), mark="checks"),
    "promotions": StageInputs((
        Need("promotion_details", "promotion lift needs them", outputs=("promotion_effectiveness",)),
        Need("inventory_daily", "without them a store's cells are the products it sold within 14 days of the day, "
             "all counted in stock, so stock-outs are not set aside from the baseline", rows="snapshots"),
    ), mark="promotions"),
    "loyalty": StageInputs((
        Need("loyalty_rules", "points are earned by them", outputs=("points_ledger",)),
        Need("customer_details", "points and balances need them", outputs=("points_ledger", "balances")),
    ), mark="loyalty"),
    "segments": StageInputs((
        Need("customer_details", "RFM segments and churn need them", outputs=("customer_rfm",)),
    )),
    "inventory": StageInputs((
        Need("inventory_daily", "stock-outs, lost sales and phantom stock need them",
             outputs=("stockouts", "lost_by_product", "lost_total", "phantom_runs"), rows="snapshots"),
    ), mark="inventory"),
}


def _staged(backend: Backend, entity: str) -> bool:
    """Whether a file delivered rows of `entity` that are staged: a master implied by the facts (stores the sales
    name, batch 0) has keys but none of what its file would tell."""
    return bool(backend.scalar(f"SELECT count(*) FROM (SELECT 1 FROM {backend.qualified('staging', entity)} "
                               "WHERE _batch_id <> 0 LIMIT 1) AS staged"))


def _loaded(backend: Backend, entity: str) -> bool:
    return bool(backend.scalar(f"SELECT count(*) FROM {backend.qualified('audit', 'batches')} "
                               f"WHERE entity = {backend.literal(entity)}"))


def missing_inputs(backend: Backend, stage: str) -> list[Missing]:
    """The entities `stage` needs that have no staged rows, each with the line that says which file it needs."""
    missing = []
    for need in STAGES.get(stage, NOTHING).needs:
        if _staged(backend, need.entity):
            continue
        # A file that came but lost every row to quarantine is another fix than a file that never came.
        state = ("staged (every row loaded was quarantined: see `retailflow quarantine`)"
                 if _loaded(backend, need.entity) else f"loaded (files {need.files})")
        named = f"{need.entity} {need.rows}" if need.rows else need.entity
        missing.append(Missing(need, f"no {named} {state}: {need.needed_for}"))
    return missing


def ran(backend: Backend, stage: str) -> bool | None:
    """Whether `stage` has run on this database: its mark in audit.stage_marks; None for a stage that keeps none."""
    mark = STAGES.get(stage, NOTHING).mark
    return None if mark is None else marks.mark(backend, mark) is not None


def output_statuses(missing: list[Missing], outputs: list[str]) -> dict[str, str]:
    """Per output: OK, or the lines of the missing inputs it cannot be computed without, joined by "; "."""
    return {output: "; ".join(item.message for item in missing if output in item.need.outputs) or OK
            for output in outputs}
