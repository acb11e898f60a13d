"""Restating a day: a re-sent fact file replaces what was staged for its entity and business dates.

Before a restating batch is validated, every row of an older batch that is staged or quarantined
for the same entity and business date leaves staging and quarantine, in the validation's
transaction. A daily export restates the day in its name (store_sales_header_2024-12-13.csv),
even when it is now empty, and its rows of other days are validated as any (a stray copy of an
earlier day's transaction stays a duplicate rather than replacing that whole day); a file whose
name carries no day restates the days of its rows. A superseded row stays in raw with its lineage
and counts as superseded for its batch (so `reconcile` still balances), and audit.batch_dates records, for the restating batch, how many
rows of each date it superseded. A transaction is restated whole: restating sales headers of a
day also supersedes the line items of that day's transactions, and a line-items file can only
be restated with its headers. The new rows are then validated as any batch: the duplicate rule
no longer sees the superseded ones.
"""

from __future__ import annotations

import datetime as dt
import re

import ibis
import ibis.expr.types as ir

from retailflow import catalog, incremental
from retailflow.backends import Backend
from retailflow.errors import UserError
from retailflow.model import ENTITIES, Entity, atomic_child, atomic_parent
from retailflow.quality.context import TRIMMED_PREFIX, TYPED_PREFIX, with_typed
from retailflow.quality.kinds import LINE_SPAN
from retailflow.tables import staging_table

#: Temporary tables of one restatement (dropped at the end of it).
DATES, STAGED, QUARANTINED, CHILD_STAGED, CHILD_QUARANTINED = (
    "rf_restated_dates", "rf_superseded", "rf_superseded_quarantine", "rf_superseded_child",
    "rf_superseded_child_quarantine")
BATCHES = catalog.table("audit.batches")


def restating_batches(backend: Backend) -> dict[str, list[int]]:
    """Batches loaded with --restate and not yet validated, by entity."""
    found: dict[str, list[int]] = {}
    for row in backend.fetch_dicts("SELECT batch_id, entity FROM audit.batches WHERE status = 'loaded' "
                                   "AND mode = 'restate' ORDER BY batch_id"):
        found.setdefault(row["entity"], []).append(int(row["batch_id"]))
    return found


def supersede(backend: Backend, restating: dict[str, list[int]], change_id: int) -> None:
    """Take the rows the restating batches replace out of staging and quarantine."""
    for name, batch_ids in restating.items():
        link = atomic_parent(ENTITIES[name])
        if link and link.references not in restating:
            raise UserError(
                f"{name} batch {batch_ids[0]} restates line items without their {link.references}: a transaction is "
                f"restated whole, so pass the day's {link.references} file with --restate as well")
    for name, batch_ids in restating.items():
        entity = ENTITIES[name]
        if entity.business_date:
            _supersede_dates(backend, entity, batch_ids, restating, change_id)
    backend.drop_temp_tables(DATES, STAGED, QUARANTINED, CHILD_STAGED, CHILD_QUARANTINED)


#: The day in a daily export's name: store_sales_header_2024-12-13.csv.
NAMED_DAY = re.compile(r"_(\d{4}-\d{2}-\d{2})\.[A-Za-z]+$")


def _named_days(backend: Backend, batch_ids: list[int]) -> dict[int, dt.date]:
    """The day each batch's file is named for, where its name carries one (a daily export)."""
    named = {}
    for row in backend.fetch_dicts(f"SELECT batch_id, source_file FROM audit.batches WHERE batch_id IN "
                                   f"({', '.join(map(str, batch_ids))})"):
        found = NAMED_DAY.search(str(row["source_file"]))
        if found:
            try:
                named[int(row["batch_id"])] = dt.date.fromisoformat(found.group(1))
            except ValueError:
                continue
    return named


def _position(table: ir.Table) -> ir.IntegerValue:
    """A quarantined row's identity in one number (batch and line)."""
    return table._batch_id * LINE_SPAN + table._source_line


def _supersede_dates(backend: Backend, entity: Entity, batch_ids: list[int], restating: dict[str, list[int]],
                     change_id: int) -> None:
    day = entity.business_date
    raw = backend.raw_table("raw", entity.name)
    text_columns = backend.table_columns("raw", entity.name)
    named = _named_days(backend, batch_ids)
    # A file without a day in its name restates the days of its rows.
    new = with_typed(backend, entity, raw.filter(raw._batch_id.isin([batch for batch in batch_ids
                                                                     if batch not in named]))
                     .select(*text_columns), [day])
    new = new.mutate(_day=new[TYPED_PREFIX + day].cast("date"))
    new = new.filter(new._day.notnull() & ~new._day.isin(sorted(set(named.values()))))
    restated = backend.create_temp_table(DATES, new.group_by(business_date=new._day)
                                         .aggregate(_restating=new._batch_id.min()))
    first_batch: dict[dt.date, int] = {}
    for batch, named_day in sorted(named.items()):
        first_batch.setdefault(named_day, batch)
    backend.append_values(restated, sorted(first_batch.items()))
    # The first key column: a header's transaction id; inventory's snapshot date, so that the staged
    # rows leave by their day, whatever their store and product.
    key = entity.primary_key[0]
    staged = staging_table(entity.name)
    staged = staged.join(restated, staged[day].cast("date") == restated.business_date)
    staged = backend.create_temp_table(STAGED, staged.select(_key=staged[key], _batch_id=staged._batch_id,
                                                              business_date=staged.business_date,
                                                              _restating=staged._restating))
    quarantine = backend.raw_table("quarantine", entity.name)
    held = with_typed(backend, entity, quarantine.select(*text_columns), [day, key])
    held = held.join(restated, held[TYPED_PREFIX + day].cast("date") == restated.business_date)
    held = backend.create_temp_table(QUARANTINED, held.select(
        _position=_position(held), _key=held[TRIMMED_PREFIX + key], _batch_id=held._batch_id,
        business_date=held.business_date, _restating=held._restating))
    parts = [(entity, staged, held)]
    child = atomic_child(entity)
    if child:
        child_entity, link = child
        # One row per superseded transaction, staged or quarantined (a quarantined duplicate may share its key).
        parent_days = staged.select("_key", "business_date", "_restating").union(
            held.select("_key", "business_date", "_restating"))
        parent_days = parent_days.group_by("_key").aggregate(business_date=parent_days.business_date.min(),
                                                             _restating=parent_days._restating.min())
        # The child's own restating batch is credited with the lines it replaces, where there is one.
        credited = ibis.literal(min(restating[child_entity.name]), "int64") if child_entity.name in restating else None
        lines = staging_table(child_entity.name)
        lines = lines.join(parent_days, lines[link.column] == parent_days._key)
        child_staged = backend.create_temp_table(CHILD_STAGED, lines.select(
            _key=lines[link.column], _batch_id=lines._batch_id, business_date=lines.business_date,
            _restating=credited if credited is not None else lines._restating))
        held_lines = backend.raw_table("quarantine", child_entity.name)
        held_lines = held_lines.mutate(_link=backend.trimmed(held_lines[link.column]))
        held_lines = held_lines.join(parent_days, held_lines._link == parent_days._key)
        child_held = backend.create_temp_table(CHILD_QUARANTINED, held_lines.select(
            _position=_position(held_lines), _batch_id=held_lines._batch_id, business_date=held_lines.business_date,
            _restating=credited if credited is not None else held_lines._restating))
        parts.append((child_entity, child_staged, child_held))
    for part_entity, part_staged, part_held in parts:
        for rows, counter in ((part_staged, "staged_rows"), (part_held, "quarantined_rows")):
            incremental.record(backend, part_entity, rows, change_id, superseded=True, batch=rows._restating)
            for row in backend.fetch_dicts(rows.group_by("_batch_id").aggregate(n=rows.count())):
                superseded = int(row["n"])
                backend.update_where(BATCHES, {"superseded_rows": BATCHES.superseded_rows.fill_null(0) + superseded,
                                               counter: BATCHES[counter] - superseded},
                                     {"batch_id": int(row["_batch_id"])})
    # The rows leave staging and quarantine last (the tables above were read from them), line items before
    # their headers (a declared foreign key refuses the other order).
    key_columns = {entity.name: key, **({child[0].name: child[1].column} if child else {})}
    for part_entity, part_staged, part_held in reversed(parts):
        backend.delete_matching(staging_table(part_entity.name), part_staged.select("_key"),
                                [key_columns[part_entity.name]])
        quarantined = backend.raw_table("quarantine", part_entity.name, ["_batch_id", "_source_line"])
        backend.delete_where(quarantined, _position(quarantined).isin(part_held._position))
