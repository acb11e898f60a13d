"""The former name of retailflow.incremental, kept while modules still import it from here.

Here None still stands for every day among the days a stage recomputes, as it did: days_to_recompute returns
None for incremental.EVERY_DAY, and set_mark, replace_days and on_days take None for it.
"""

from __future__ import annotations

import ibis.expr.types as ir

from retailflow import incremental
from retailflow.backends import Backend
from retailflow.incremental import (  # noqa: F401
    BATCH_DATES,
    EVERY_DAY,
    STAGE_MARKS,
    DateRange,
    Days,
    changed_since,
    dated,
    is_fact,
    latest_change,
    mark,
    masters_changed,
    next_change_id,
    record,
    record_master,
    up_to_date,
    window,
)


def _days(days: Days | None) -> Days:
    return EVERY_DAY if days is None else days


def days_to_recompute(backend: Backend, stage: str, days: DateRange | None = None, rebuild: bool = False,
                      masters: tuple[str, ...] = ()) -> ir.Table | DateRange | None:
    changed = incremental.days_to_recompute(backend, stage, days, rebuild, masters)
    return None if changed is EVERY_DAY else changed


def set_mark(backend: Backend, stage: str, change_id: int, days: DateRange | None = None,
             recomputed: ir.Table | DateRange | None = None) -> None:
    incremental.set_mark(backend, stage, change_id, days, _days(recomputed))


def replace_days(backend: Backend, schema: str, name: str, column: str, rows: ir.Table,
                 days: ir.Table | DateRange | None) -> None:
    incremental.replace_days(backend, schema, name, column, rows, _days(days))


def on_days(table: ir.Table, column: ir.Value, days: ir.Table | DateRange | None) -> ir.Table:
    return incremental.on_days(table, column, _days(days))
