"""The incremental run: business dates, changes, and the window of days each incremental stage recomputes.

A sales row's business date is its transaction's day (a line item takes its header's), an inventory row's its
snapshot day. Every validate, replay or restate run that stages or supersedes fact rows is a change: it appends,
per batch and date, how many rows it staged and superseded to audit.batch_dates under one change id
(increasing), and per master the rows it staged to audit.master_changes. An incremental stage keeps in
audit.stage_marks the last change id it has processed, and recomputes only what the changes after it touch:

    with incremental.window(backend, STAGE, days=days, rebuild=rebuild, masters=MASTERS) as changed:
        replace_days(backend, "analytics", "…_daily", "sale_date", rows_of(changed), changed)

`changed` is one of three kinds of `Days`: EVERY_DAY (the stage's first run, a rebuild, or a change to one of
the masters its per-day tables are built from), a DateRange (a backfill's --from/--to), or an Ibis table of
`business_date`s (the dates of the changes the stage has not processed). The window is one transaction, and
it records the stage's mark when the work inside it succeeds.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Union

import ibis
import ibis.expr.types as ir

from retailflow import catalog
from retailflow.backends import Backend
from retailflow.backends.run_values import run_value
from retailflow.errors import UserError
from retailflow.marks import digest, latest_change, mark
from retailflow.model import ENTITIES, Entity, atomic_parent
from retailflow.tables import staging_table

BATCH_DATES = catalog.table("audit.batch_dates")
STAGE_MARKS = catalog.table("audit.stage_marks")
MASTER_CHANGES = catalog.table("audit.master_changes")


@dataclass(frozen=True)
class DateRange:
    """Business dates from `first` to `last`, both included; an open end when None (a backfill's --from/--to)."""

    first: dt.date | None = None
    last: dt.date | None = None

    def __post_init__(self) -> None:
        if self.first and self.last and self.first > self.last:
            raise UserError(f"--from {self.first} is after --to {self.last}; give the earlier date first")


class EveryDay:
    """Every business date: a stage's first run, a rebuild, or a change to a master its per-day tables are built
    from."""

    def __repr__(self) -> str:
        return "EVERY_DAY"


EVERY_DAY = EveryDay()
#: Days a stage recomputes: EVERY_DAY, a DateRange (a backfill), or a table of changed `business_date`s.
Days = Union[ir.Table, DateRange, EveryDay]


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


def is_fact(entity: Entity) -> bool:
    """Whether rows of `entity` have a business date (their own or their parent's)."""
    return bool(entity.business_date or atomic_parent(entity))


# -- changes ------------------------------------------------------------------------------

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
        superseded_rows=counts._n if superseded else none, change_id=run_value("change_id", change_id, "int64")))


def record_masters(backend: Backend, change_id: int, staged: Mapping[str, int]) -> None:
    """Note in audit.master_changes that change `change_id` staged rows of masters: `staged` rows per entity name."""
    if staged:
        backend.append_values(MASTER_CHANGES, [(change_id, name, rows) for name, rows in staged.items()])


def masters_changed(backend: Backend, last: int, masters: tuple[str, ...]) -> bool:
    """Whether one of `masters` was staged by a change after `last`."""
    names = ", ".join(backend.literal(name) for name in masters)
    return bool(backend.scalar(f"SELECT count(*) FROM audit.master_changes WHERE change_id > {last} "
                               f"AND entity IN ({names})"))


def changed_since(change_id: int) -> ir.Table:
    """One row per business date changed after `change_id` (a run value: the statements over the changed days
    compile to the same SQL every night)."""
    changes = BATCH_DATES.filter(BATCH_DATES.change_id > run_value("mark", change_id, "int64"))
    return changes.select("business_date").distinct()


# -- stage marks ----------------------------------------------------------------------------

def set_mark(backend: Backend, stage: str, change_id: int, days: DateRange | None, recomputed: Days,
             parameters: str | None = None) -> None:
    """Record, inside the stage's transaction, that `stage` has processed every change up to `change_id` with the
    `parameters` digest: after a run over the changed days or every day. A backfill of `days` leaves the changes
    outside them due (the change id stays) and forgets the digest: its days were made with its own parameters."""
    if days is not None and recomputed is not EVERY_DAY:
        previous = mark(backend, stage)
        if previous is None:
            return
        change_id, parameters = previous, None
    backend.delete_where(STAGE_MARKS, {"stage": stage})
    backend.append_values(STAGE_MARKS, [(stage, change_id, parameters)])


def days_to_recompute(backend: Backend, stage: str, days: DateRange | None = None, rebuild: bool = False,
                      masters: tuple[str, ...] = ()) -> Days:
    """The dates `stage` recomputes: EVERY_DAY on its first run, with `rebuild` or when one of the `masters` its
    per-day tables are built from changed; else the backfill's `days` when given (None: none given), or the dates
    of the changes it has not processed yet."""
    last = None if rebuild else mark(backend, stage)
    if last is None or (masters and masters_changed(backend, last, masters)):
        return EVERY_DAY
    return days if days is not None else changed_since(last)


@contextlib.contextmanager
def window(backend: Backend, stage: str, *, days: DateRange | None = None, rebuild: bool = False,
           masters: tuple[str, ...] = (), parameters: dict[str, object] | None = None) -> Iterator[Days]:
    """The days `stage` recomputes (days_to_recompute), in one transaction that marks the changes up to now as
    processed once the stage's work inside it succeeds (set_mark): a failure leaves them due. A stage that gives
    its `parameters` records their digest, so that a later run with nothing new can be answered from what it
    stored (marks.current)."""
    with backend.transaction():
        latest = latest_change(backend)
        changed = days_to_recompute(backend, stage, days, rebuild, masters)
        yield changed
        set_mark(backend, stage, latest, days, changed, None if parameters is None else digest(stage, parameters))


# -- per-day tables ---------------------------------------------------------------------------

def replace_days(backend: Backend, schema: str, name: str, column: str, rows: ir.Table, days: Days) -> None:
    """Make schema.name's rows of `days` (by its date `column`) those of `rows`, which holds those days alone; for
    EVERY_DAY the table is re-created from `rows`."""
    if days is EVERY_DAY or not backend.has_table(schema, name):
        backend.replace_table(schema, name, rows)
        return
    # The table has the rows' columns: its Ibis table for the statement's condition.
    stored = ibis.table(rows.schema(), name=name, database=schema)
    if isinstance(days, DateRange):
        bounds = []
        if days.first:
            bounds.append(stored[column] >= days.first)
        if days.last:
            bounds.append(stored[column] <= days.last)
        backend.delete_where(stored, ibis.and_(*bounds) if bounds else None)
    else:
        backend.delete_matching(stored, days, [column])
    backend.insert(schema, name, rows)


def on_days(table: ir.Table, column: ir.Value, days: Days) -> ir.Table:
    """The rows of `table` whose `column` (a date or timestamp) falls on one of `days`."""
    if days is EVERY_DAY:
        return table
    day = column.cast("date")
    if isinstance(days, DateRange):
        if days.first:
            table = table.filter(day >= days.first)
        if days.last:
            table = table.filter(day <= days.last)
        return table
    return table.semi_join(days, day == days.business_date)
