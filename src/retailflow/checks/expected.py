"""Expected deliveries: which store × entity × business date should exist, and what became of each.

Decided from what has been delivered (analytics.store_day_deliveries) and the `expectations:` section:

- A store is expected from its start: its first day with sales, or its `opening_date` in the stores file when
  that is earlier (then its first days are missing rather than before it opened), never before the first day of
  the data. A store starting after the first day of the data is a new store: finding `opened` on its first day.
- A store is closed while it has no sales for `closed_after_days` (7) days in a row, to the end of the data or
  until it sells again (finding `closed` on the first day without sales; `opened` on the day it sells again),
  and after its end date when `expectations.store_end_dates` gives one. A closed store is not expected.
- A store is not expected on a weekday it trades on less than half the time (closed on Sundays, say), judged
  over its open days once it has had that weekday three times; nor on a day the holiday calendar marks closed.
- An entity is expected of a store from the first day the store delivered it (or from the store's start for
  the entities `expectations.entities` lists) up to the last day anyone delivered it; with a cut-off, up to the
  last day whose files are due.
- A day's files are due by the cut-off time the next day (midnight without one). Expected and not delivered:
  `missing` once due, `pending` before. Delivered: `late` when a checks run had reported it missing, or, with a
  cut-off, when it first arrived after it was due while checks were already running (the history loaded
  before the first checks run is never late); `restated` when its staged rows came with --restate.

Expected deliveries are recomputed whole each run from the per-day table (stores × entities × days, small);
what a run reported (missing, first arrival) is carried over from the previous state of the table.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from retailflow.analytics.sales import shifted
from retailflow.catalog import EXPECTED_DELIVERIES
from retailflow.checks.anomalies import Keep, computed, holiday_days
from retailflow.checks.settings import SALES_ENTITY, ChecksSettings

#: A store-weekday is judged once the store has been open on it this many times.
WEEKDAY_MIN_DAYS = 3
KEYS = ["store_id", "entity", "business_date"]
#: The temporary tables `expected_deliveries` keeps through its `keep`: the stores with their bounds, the closures.
KEPT_EXPECTED = ("rf_checks_stores", "rf_checks_closures")


def expected_deliveries(deliveries: ir.Table, stores: ir.Table, previous: ir.Table, params: ir.Table,
                        settings: ChecksSettings, keep: Keep = computed) -> ir.Table:
    """One row per store × entity × day expected or delivered, and per store closure (EXPECTED_DELIVERIES).

    `deliveries` is analytics.store_day_deliveries, `stores` staging.stores, `previous` the table's last state
    (empty on the first run), `params` one row: now (timestamp), first_check_at (the first checks run, NULL
    before it) and last_due (the last business date due, NULL without a cut-off). `keep(name, table)` may
    materialise the stores' bounds and their closures (KEPT_EXPECTED), each read several times.
    """
    closed_after = settings.closed_after_days
    sales = deliveries.filter(deliveries.entity == SALES_ENTITY).select("store_id", "business_date")
    entity_ends = deliveries.group_by("entity").aggregate(_entity_end=deliveries.business_date.max())
    entity_ends = entity_ends.cross_join(params.select("last_due")).select(
        "entity", _entity_end=ibis.greatest(ibis._._entity_end, ibis._.last_due.fill_null(ibis._._entity_end)))
    # Sales decide whether a store trades: a stock file sent ahead (or behind) of them does not close a store.
    bounds = sales.aggregate(data_first=sales.business_date.min(), _sales_end=sales.business_date.max()).cross_join(
        params.select("last_due"))
    bounds = bounds.select("data_first", data_end=ibis.greatest(bounds._sales_end,
                                                                bounds.last_due.fill_null(bounds._sales_end)))
    last_day = entity_ends.aggregate(last_day=entity_ends._entity_end.max())
    # The calendar: every day within `closed_after` days after a day with a delivery (a longer gap without any
    # delivery closes every store), up to the last day expected.
    # One read of the delivered days, crossed with the offsets (a union of one-row selects: every engine has
    # them, arrays not): Spark computed each shifted copy of the days as its own scan and aggregate.
    delivered_days = deliveries.select("business_date").distinct().union(
        params.filter(params.last_due.notnull()).select(business_date=params.last_due))
    offsets = ibis.union(*(params.select(_offset=ibis.literal(offset, "int64")) for offset in range(closed_after)),
                         distinct=False)
    calendar = delivered_days.cross_join(offsets).cross_join(last_day)
    calendar = calendar.select(day=shifted(calendar.business_date, calendar._offset), last_day=calendar.last_day)
    calendar = calendar.filter(calendar.day <= calendar.last_day).select("day").distinct()

    per_store = sales.group_by("store_id").aggregate(first_sale=sales.business_date.min(),
                                                     last_sale=sales.business_date.max())
    known = stores.select("store_id", "opening_date").left_join(per_store, "store_id").select(
        stores.store_id, stores.opening_date, per_store.first_sale, per_store.last_sale)
    listed = known.first_sale.notnull()
    if settings.stores is not None:
        listed = known.store_id.isin(list(settings.stores))
    known = known.filter(listed).cross_join(bounds)
    # The earlier of the first sale and the opening date (either may be unknown), never before the data's first day.
    opened, first_sale = known.opening_date.cast("date"), known.first_sale
    earliest = ibis.least(first_sale.fill_null(opened), opened.fill_null(first_sale)).fill_null(known.data_first)
    known = keep(KEPT_EXPECTED[0], known.mutate(start=ibis.greatest(known.data_first, earliest)))

    gaps = sales.mutate(next_sale=sales.business_date.lead().over(
        ibis.window(group_by=sales.store_id, order_by=sales.business_date)))
    interior = gaps.filter(gaps.next_sale.notnull()
                           & (gaps.next_sale.delta(gaps.business_date, unit="day") > closed_after))
    closures = interior.select("store_id", closed_from=shifted(interior.business_date, 1),
                               reopened_on=interior.next_sale)
    trailing = known.filter(known.last_sale.notnull()
                            & (known.data_end.delta(known.last_sale, unit="day") >= closed_after))
    closures = closures.union(trailing.select("store_id", closed_from=shifted(trailing.last_sale, 1),
                                              reopened_on=ibis.null("date")))
    if settings.store_end_dates:
        ends = known.filter(known.store_id.isin(list(settings.store_end_dates)))
        closures = closures.union(ends.select("store_id", closed_from=shifted(ibis.cases(
            *((ends.store_id == store, day) for store, day in settings.store_end_dates.items())), 1),
            reopened_on=ibis.null("date")))
    closures = keep(KEPT_EXPECTED[1], closures)

    store_days = known.select("store_id", "start").cross_join(calendar).filter(lambda t: t.day >= t.start)
    open_days = store_days.anti_join(closures, [
        store_days.store_id == closures.store_id, store_days.day >= closures.closed_from,
        closures.reopened_on.isnull() | (store_days.day < closures.reopened_on)]).select("store_id", "day")
    open_days = open_days.mutate(weekday=open_days.day.day_of_week.index())
    sold = sales.select(_store=sales.store_id, _day=sales.business_date, _sold=ibis.literal(1))
    marked = open_days.left_join(sold, [open_days.store_id == sold._store, open_days.day == sold._day]).select(
        "store_id", "day", "weekday", sold=ibis._._sold.fill_null(0))
    # Each open day with its store-weekday's counts beside it (windows, not an aggregate joined back: the open
    # days are then computed once, where a join back read them, and the calendar under them, twice).
    store_weekday = ibis.window(group_by=[marked.store_id, marked.weekday])
    marked = marked.mutate(_days=marked.count().over(store_weekday), _sold=marked.sold.sum().over(store_weekday),
                           _store_sold=marked.sold.sum().over(group_by=marked.store_id))
    trading_days = marked.filter((marked._days < WEEKDAY_MIN_DAYS) | (marked._sold * 2 >= marked._days)
                                 | (marked._store_sold == 0)).select("store_id", business_date=marked.day)
    trading_days = trading_days.filter(~holiday_days(trading_days, settings.holidays, closed_only=True))

    if settings.entities is None:
        entities = deliveries.group_by(["store_id", "entity"]).aggregate(_entity_start=deliveries.business_date.min())
    else:
        entities = ibis.union(*(known.select("store_id", entity=ibis.literal(name), _entity_start=known.start)
                                for name in settings.entities))
    entities = entities.left_join(entity_ends, "entity").select(
        entities.store_id, entities.entity, entities._entity_start, entity_ends._entity_end)
    expected = trading_days.join(entities, "store_id")
    expected = expected.filter((expected.business_date >= expected._entity_start)
                               & (expected.business_date <= expected._entity_end.fill_null(expected.business_date)))
    expected = expected.select(*KEYS, _expected=ibis.literal(True))

    firsts = known.filter(known.start > known.data_first).select("store_id", business_date=known.start)
    events = ibis.union(
        closures.select("store_id", business_date=closures.closed_from, event=ibis.literal("closed")),
        firsts.mutate(event=ibis.literal("opened")),
        closures.filter(closures.reopened_on.notnull()).select(
            "store_id", business_date=closures.reopened_on, event=ibis.literal("opened")))
    events = events.group_by(["store_id", "business_date"]).aggregate(event=events.event.min()).mutate(
        entity=ibis.literal(SALES_ENTITY))
    return _judged(expected, deliveries, events, previous, params, settings)


def _judged(expected: ir.Table, deliveries: ir.Table, events: ir.Table, previous: ir.Table, params: ir.Table,
            settings: ChecksSettings) -> ir.Table:
    """Every key expected, delivered or with a store event, with its status, finding and severity."""
    # Each of the three is unique on KEYS: stacked and grouped, every column comes from the one source that has
    # it. (A union of their keys joined back to each read `expected` and `events` twice; on Spark, whose plans
    # inline every reference, that doubled the statement.)
    delivery_columns = ["staged_rows", "quarantined_rows", "restated_rows", "first_loaded_at"]
    undelivered = {name: ibis.null(deliveries[name].type()) for name in delivery_columns}
    stacked = ibis.union(
        expected.select(*KEYS, _expected=ibis.literal(1, "int64"), **undelivered, event=ibis.null("string")),
        deliveries.select(*KEYS, _expected=ibis.null("int64"), **{name: deliveries[name] for name in delivery_columns},
                          event=ibis.null("string")),
        events.select(*KEYS, _expected=ibis.null("int64"), **undelivered, event=events.event),
        distinct=False)
    keys = stacked.group_by(KEYS).aggregate(_expected=stacked._expected.max() == 1,
                                            **{name: stacked[name].max() for name in delivery_columns},
                                            event=stacked.event.max())
    before = previous.select(*KEYS, _reported=previous.reported_missing_at, _first_seen=previous.first_loaded_at)
    rows = (keys.left_join(before, KEYS).select(*KEYS, "_expected", *delivery_columns, "event", "_reported", "_first_seen")
            .cross_join(params))
    cutoff = settings.cutoff_minutes
    due_at = rows.business_date.cast("timestamp") + ibis.interval(minutes=24 * 60 + (cutoff or 0))
    staged, parked = rows.staged_rows.fill_null(0), rows.quarantined_rows.fill_null(0)
    delivered = (staged + parked) > 0
    expected = rows._expected.fill_null(False)
    first_seen = ibis.least(rows._first_seen.fill_null(rows.first_loaded_at),
                            rows.first_loaded_at.fill_null(rows._first_seen))
    late = rows._reported.notnull()
    if cutoff is not None:
        late |= ((first_seen > due_at) & rows.first_check_at.notnull() & (rows.first_check_at < first_seen)).fill_null(
            False)
    status = ibis.cases((delivered & late, "late"), (delivered, "delivered"),
                        (expected & (rows.now >= due_at), "missing"), (expected, "pending"), else_="not_expected")
    severities = {check: severity for check, severity in settings.deliveries.items() if severity != "off"}
    restated = delivered & (rows.restated_rows.fill_null(0) > 0)
    finding = ibis.cases(*((condition, check) for check, condition in (
        ("late", status == "late"), ("missing", status == "missing"), ("closed", rows.event == "closed"),
        ("opened", rows.event == "opened"), ("restated", restated)) if check in severities), else_=ibis.null("string"))
    severity = ibis.cases(*((finding == check, level) for check, level in severities.items()),
                          else_=ibis.null("string")) if severities else ibis.null("string")
    judged = rows.mutate(expected=expected, staged_rows=staged, quarantined_rows=parked, first_loaded_at=first_seen,
                         due_at=due_at, status=status, finding=finding, severity=severity,
                         reported_missing_at=ibis.ifelse(status == "missing", rows._reported.fill_null(rows.now),
                                                         rows._reported))
    return EXPECTED_DELIVERIES.cast(judged)
