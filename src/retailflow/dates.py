"""Business dates: the days fact rows belong to, recorded per batch, and the changes each incremental stage has seen.

A sales row's business date is its transaction's day (a line item takes its header's), an
inventory row's its snapshot day. Every validate, replay or restate run that stages or
supersedes fact rows appends, per batch and date, how many rows it staged and superseded to
audit.batch_dates under one change id (increasing). An incremental stage keeps in
audit.stage_marks the last change id it has processed, and recomputes only the dates of the
changes after it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import ibis
import ibis.expr.types as ir

from retailflow.backends import Backend
from retailflow.errors import UserError
from retailflow.model import ENTITIES, Entity, atomic_parent
from retailflow.tables import staging_table

BATCH_DATES = ibis.table({"change_id": "int64", "batch_id": "int64", "entity": "string", "business_date": "date",
                          "staged_rows": "int64", "superseded_rows": "int64"}, name="batch_dates", database="audit")
STAGE_MARKS = ibis.table({"stage": "string", "change_id": "int64"}, name="stage_marks", database="audit")


def dated(entity: Entity, rows: ir.Table, parents: ir.Table | None = None) -> ir.Table:
    """`rows` (typed, as in staging) with their business_date; a line item's comes from its header in `parents`
    (default: staged headers). Rows whose date is unknown (a line of no header) are left out."""
    if entity.business_date:
        return rows.mutate(business_date=rows[entity.business_date].cast("date"))
    link = atomic_parent(entity)
    if link is None:
        raise ValueError(f"{entity.name} has no business date")
    parent = ENTITIES[link.references]
    parents = staging_table(parent.name) if parents is None else parents
    # Staged parents are unique by key (the rules see to it): a plain join, which hashes the few rows
    # and scans the parents, rather than a distinct over every staged header each night.
    days = parents.select(_parent_key=parents[parent.primary_key[0]],
                          business_date=parents[parent.business_date].cast("date"))
    joined = rows.join(days, rows[link.column] == days._parent_key)
    return joined.select(*rows.columns, "business_date")


def next_change_id(backend: Backend) -> int:
    return latest_change(backend) + 1


def record(backend: Backend, entity: Entity, rows: ir.Table, change_id: int, *, superseded: bool = False,
           batch: ir.IntegerValue | None = None) -> None:
    """Append to audit.batch_dates the rows of `rows` (with business_date) per batch and date, as staged or
    superseded by change `change_id`; `batch` names the batch to credit (default: each row's own)."""
    rows = rows.mutate(_credited=rows._batch_id if batch is None else batch)
    counts = rows.group_by(["_credited", "business_date"]).aggregate(_n=rows.count())
    none = ibis.literal(0, "int64")
    backend.insert("audit", "batch_dates", counts.select(
        batch_id=counts._credited, entity=ibis.literal(entity.name),
        business_date=counts.business_date, staged_rows=none if superseded else counts._n,
        superseded_rows=counts._n if superseded else none), constants={"change_id": change_id})


def record_master(backend: Backend, entity: Entity, change_id: int, rows: int) -> None:
    """Note in audit.master_changes that change `change_id` staged `rows` rows of master `entity`."""
    backend.execute(f"INSERT INTO audit.master_changes VALUES ({change_id}, {backend.literal(entity.name)}, {rows})")


def masters_changed(backend: Backend, last: int, masters: tuple[str, ...]) -> bool:
    """Whether one of `masters` was staged by a change after `last`."""
    names = ", ".join(backend.literal(name) for name in masters)
    return bool(backend.scalar(f"SELECT count(*) FROM audit.master_changes WHERE change_id > {last} "
                               f"AND entity IN ({names})"))


def is_fact(entity: Entity) -> bool:
    """Whether rows of `entity` have a business date (their own or their parent's)."""
    return bool(entity.business_date or atomic_parent(entity))


def mark(backend: Backend, stage: str) -> int | None:
    """The last change id `stage` has processed; None when it has never run (or was asked to rebuild)."""
    rows = backend.fetch_dicts(STAGE_MARKS.filter(STAGE_MARKS.stage == stage).select("change_id"))
    return int(rows[0]["change_id"]) if rows else None


def latest_change(backend: Backend) -> int:
    return int(backend.scalar("SELECT coalesce(max(change_id), 0) FROM (SELECT change_id FROM audit.batch_dates "
                              "UNION ALL SELECT change_id FROM audit.master_changes) AS changes"))


def set_mark(backend: Backend, stage: str, change_id: int, days: DateRange | None = None,
             recomputed: ir.Table | DateRange | None = None) -> None:
    """Record, inside the stage's transaction, that `stage` has processed every change up to `change_id`: after a
    run over the changed days or every day, not after a backfill of `days` (the changes outside them stay due)."""
    if days is not None and recomputed is not None:
        return
    backend.execute(f"DELETE FROM audit.stage_marks WHERE stage = {backend.literal(stage)}")
    backend.execute(f"INSERT INTO audit.stage_marks VALUES ({backend.literal(stage)}, {change_id})")


def changed_since(change_id: int) -> ir.Table:
    """One row per business date changed after `change_id`."""
    changes = BATCH_DATES.filter(BATCH_DATES.change_id > change_id)
    return changes.select("business_date").distinct()


@dataclass(frozen=True)
class DateRange:
    """Business dates from `first` to `last`, both included; an open end when None (a backfill's --from/--to)."""

    first: dt.date | None = None
    last: dt.date | None = None

    def __post_init__(self) -> None:
        if self.first and self.last and self.first > self.last:
            raise UserError(f"--from {self.first} is after --to {self.last}; give the earlier date first")


def days_to_recompute(backend: Backend, stage: str, days: DateRange | None = None, rebuild: bool = False,
                      masters: tuple[str, ...] = ()) -> ir.Table | DateRange | None:
    """The dates `stage` recomputes: every date (None) on its first run, with `rebuild` or when one of the `masters`
    its per-day tables are built from changed; else `days` when given (a backfill), or the dates of the changes it
    has not processed yet."""
    last = None if rebuild else mark(backend, stage)
    if last is None or (masters and masters_changed(backend, last, masters)):
        return None
    return days if days is not None else changed_since(last)


def replace_days(backend: Backend, schema: str, name: str, column: str, rows: ir.Table,
                 days: ir.Table | DateRange | None) -> None:
    """Make schema.name's rows of `days` (by its date `column`) those of `rows`, which holds those days alone;
    every row when `days` is None (the table is re-created)."""
    if days is None or not backend.has_table(schema, name):
        backend.replace_table(schema, name, rows)
        return
    target, quoted = backend.qualified(schema, name), backend.quote(column)
    if isinstance(days, DateRange):
        bounds = [f"{quoted} {operator} CAST({backend.literal(day.isoformat())} AS DATE)"
                  for operator, day in ((">=", days.first), ("<=", days.last)) if day]
        backend.execute(f"DELETE FROM {target}" + (f" WHERE {' AND '.join(bounds)}" if bounds else ""))
    else:
        backend.execute(f"DELETE FROM {target} WHERE {quoted} IN ({backend.compile(days)})")
    backend.insert(schema, name, rows)


def on_days(table: ir.Table, column: ir.Value, days: ir.Table | DateRange | None) -> ir.Table:
    """The rows of `table` whose `column` (a date or timestamp) falls on one of `days` (every row for None)."""
    if days is None:
        return table
    day = column.cast("date")
    if isinstance(days, DateRange):
        if days.first:
            table = table.filter(day >= days.first)
        if days.last:
            table = table.filter(day <= days.last)
        return table
    return table.semi_join(days, day == days.business_date)
