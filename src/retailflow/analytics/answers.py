"""What a stage's stored tables answer a command with, read without building (or importing) Ibis.

A stage with nothing new to do (marks.current) answers its command from the tables it stored. The queries that
read them are Ibis expressions, compiled like every statement (`fetch`); each is also kept under its name in the
stage's `Answer` (the stage, its parameters and whatever else shapes the SQL, e.g. the promotions' top N), for
this engine and this code (sql_cache.named). The next command with nothing new finds the stage current and
every query kept (`stored`) and runs them through the driver: it never imports Ibis, whose import was most of
its time (lazy.py; the idle promotions command of benchmarks/ingest_validate.py). Anything else (a change, other
parameters, a query not kept yet, an unwritable cache) takes the stage's own path, which keeps them for next time.

This module imports nothing of Ibis's: a command calls it before deciding to import its stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from retailflow import marks
from retailflow.analytics import ASSORTMENT_WINDOW_DAYS
from retailflow.backends import sql_cache

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from retailflow.backends import Backend

Rows = list[dict[str, Any]]


@dataclass(frozen=True)
class Answer:
    """What a stage answers a command with: `parameters` (what its stored tables were made with: the digest in
    its mark), `shape` (what else the queries depend on) and the names of its `queries`."""

    stage: str
    parameters: dict[str, object]
    shape: dict[str, object]
    queries: tuple[str, ...]

    def name(self, query: str) -> str:
        """The name `query` is kept under: the stage, the query, the parameters and the shape."""
        return f"{self.stage}.{query} {sorted({**self.parameters, **self.shape}.items())!r}"


def promotions(top: int, min_baseline_days: int, window_days: int = ASSORTMENT_WINDOW_DAYS) -> Answer:
    """run_promotions's answer: the top N ranked promotions, then the unranked ones."""
    return Answer("promotions", {"min_baseline_days": min_baseline_days, "window_days": window_days},
                  {"top": top}, ("ranked",))


#: run_inventory's answer, by table (the inventory command lists them in this order).
INVENTORY_TABLES = ("top_products", "stockouts", "lost_by_product", "lost_total", "phantom_runs", "most_returned")


def inventory(top: int, phantom_threshold: float, phantom_min_days: int) -> Answer:
    """run_inventory's answer: its stored tables (INVENTORY_TABLES)."""
    return Answer("inventory", {"top": top, "phantom_threshold": phantom_threshold,
                                "phantom_min_days": phantom_min_days}, {}, INVENTORY_TABLES)


def fetch(backend: Backend, answer: Answer, query: str, expr: ir.Table) -> Rows:
    """The rows of `expr` (Backend.fetch_dicts), its compiled SQL kept as the answer's `query`."""
    from retailflow.backends.base import flag_positions

    sql, flags = backend.compile(expr), flag_positions(expr)
    if not backend.holds_secret(expr):
        sql_cache.keep_named(_key(backend), answer.name(query), {"sql": sql, "flags": flags})
    return backend.fetch_compiled_dicts(sql, flags)


def stored(backend: Backend, answer: Answer) -> dict[str, Rows] | None:
    """The rows of each of the answer's queries, by name, when its stage is current with its parameters and every
    query is kept; else None (the stage must run, or answer through Ibis)."""
    if not marks.current(backend, answer.stage, answer.parameters):
        return None
    entries = {query: kept(backend, answer, query) for query in answer.queries}
    if any(entry is None for entry in entries.values()):
        return None
    return {query: backend.fetch_compiled_dicts(entry["sql"], entry["flags"]) for query, entry in entries.items()}


def kept(backend: Backend, answer: Answer, query: str) -> dict | None:
    """The answer's `query` as kept for this database and code: its SQL ("sql") and the positions of its boolean
    columns ("flags"); None when it is not kept."""
    return sql_cache.named(_key(backend), answer.name(query))


def _key(backend: Backend) -> str:
    """What a kept query depends on besides its name and the code: the engine, and the database, whose name the
    compiled SQL may hold (MySQL keeps each schema as a database named after it: another database's query would
    read that database's tables)."""
    return f"{backend.compile_key} {backend.url}"
