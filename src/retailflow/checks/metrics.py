"""Per store and day: what was delivered (per entity) and what the day looked like (its metrics).

Both are kept day by day: a run recomputes the days its changes touched (audit.batch_dates, and the days of
rows quarantined since the last run) and replaces those days' rows. Every figure follows the rest of
retailflow: a void does not count, a return counts on its own day at the store that took it back (negative
revenue, its units as returned units), an anonymous sale counts like any.

A quarantined row counts for its store and day when its store is staged and its date reads as YYYY-MM-DD
(with or without a time): a row quarantined for an unknown store or an unreadable date belongs to no
store-day. A quarantined line takes its quarantined transaction's store and day.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from retailflow.analytics.sales import safe_ratio
from retailflow.analytics.transactions import counted
from retailflow.catalog import STORE_DAY_DELIVERIES, STORE_DAY_METRICS

HEADER, LINES, INVENTORY = "store_sales_header", "store_sales_line_items", "inventory_daily"

#: The columns of a quarantined row the checks read (typed by the run: see run.quarantined).
QUARANTINED_HEADERS = ibis.schema({"transaction_id": "string", "store_id": "string", "business_date": "date",
                                   "_batch_id": "int64"})
QUARANTINED_LINES = ibis.schema({"transaction_id": "string", "_batch_id": "int64"})
QUARANTINED_SNAPSHOTS = ibis.schema({"store_id": "string", "business_date": "date", "_batch_id": "int64"})


def dated_headers(headers: ir.Table) -> ir.Table:
    """Staged headers with their business_date."""
    return headers.mutate(business_date=headers.transaction_date.date())


def dated_lines(headers: ir.Table, line_items: ir.Table) -> ir.Table:
    """The staged lines of `headers` (dated_headers) with their transaction's store, business_date and whether the
    transaction counts (not a void): what both per-day tables read, so the lines are scanned once."""
    days = headers.select(_transaction=headers.transaction_id, store_id=headers.store_id,
                          business_date=headers.business_date, counted=counted(headers.transaction_type))
    joined = line_items.join(days, line_items.transaction_id == days._transaction)
    return joined.select("store_id", "business_date", "counted", "_batch_id", "product_id", "quantity",
                         "line_item_amount", promoted=joined.promotion_id.notnull()
                         | (joined.discount_amount.fill_null(0) != 0))


def store_day_deliveries(headers: ir.Table, lines: ir.Table, inventory: ir.Table,
                         quarantined_headers: ir.Table, quarantined_lines: ir.Table,
                         quarantined_snapshots: ir.Table, batches: ir.Table) -> ir.Table:
    """One row per store × entity × day with rows staged or quarantined (STORE_DAY_DELIVERIES).

    `headers` are staged headers with business_date (dated_headers) of the days computed, `lines` their lines
    (dated_lines); `inventory` staged snapshots of those days; the quarantined tables as QUARANTINED_*;
    `batches` audit.batches.
    """
    zero = ibis.literal(0, "int64")

    def part(rows: ir.Table, entity: str, staged: bool) -> ir.Table:
        grouped = rows.group_by(["store_id", "business_date", "_batch_id"]).aggregate(_rows=rows.count())
        return grouped.select("store_id", "business_date", "_batch_id", entity=ibis.literal(entity),
                              staged_rows=grouped._rows if staged else zero,
                              quarantined_rows=zero if staged else grouped._rows)

    lines = lines.select("store_id", "business_date", "_batch_id")
    parked = quarantined_headers.select(_transaction=quarantined_headers.transaction_id,
                                        store_id=quarantined_headers.store_id,
                                        business_date=quarantined_headers.business_date)
    parked_lines = quarantined_lines.join(parked, quarantined_lines.transaction_id == parked._transaction).select(
        "store_id", "business_date", "_batch_id")
    snapshots = inventory.select("store_id", "_batch_id", business_date=inventory.snapshot_date)
    parts = ibis.union(part(headers, HEADER, True), part(lines, LINES, True), part(snapshots, INVENTORY, True),
                       part(quarantined_headers, HEADER, False), part(parked_lines, LINES, False),
                       part(quarantined_snapshots, INVENTORY, False))
    loads = batches.select(_batch=batches.batch_id, loaded_at=batches.loaded_at,
                           restated=(batches["mode"] == "restate").fill_null(False))
    joined = parts.left_join(loads, parts._batch_id == loads._batch)
    rows = joined.group_by(["store_id", "entity", "business_date"]).aggregate(
        staged_rows=joined.staged_rows.sum(), quarantined_rows=joined.quarantined_rows.sum(),
        restated_rows=joined.restated.ifelse(joined.staged_rows, 0).sum(),
        first_loaded_at=joined.loaded_at.min(), last_loaded_at=joined.loaded_at.max())
    return STORE_DAY_DELIVERIES.cast(rows)


def store_day_metrics(headers: ir.Table, lines: ir.Table, quarantined_headers: ir.Table) -> ir.Table:
    """One row per store × day with a sales header staged or quarantined (STORE_DAY_METRICS): `headers` staged
    with business_date (dated_headers) of the days computed, `lines` their lines (dated_lines),
    `quarantined_headers` as QUARANTINED_HEADERS."""
    zero = ibis.literal(0, "int64")
    keys = ["store_id", "business_date"]
    counting = headers.filter(counted(headers.transaction_type))
    transactions = counting.group_by(keys).aggregate(
        transactions=counting.count(), anonymous_transactions=counting.customer_id.isnull().sum().cast("int64"))
    lines = lines.filter(lines.counted)
    returned = lines.quantity < 0
    promoted = lines.promoted
    by_lines = lines.group_by(keys).aggregate(
        line_count=lines.count(), revenue=lines.line_item_amount.sum().cast("decimal(18, 2)"),
        distinct_products=lines.product_id.nunique(),
        sold_units=returned.ifelse(0, lines.quantity).sum().cast("int64"),
        returned_units=returned.ifelse(-lines.quantity, 0).sum().cast("int64"),
        promoted_lines=promoted.ifelse(1, 0).sum().cast("int64"))
    staged = headers.group_by(keys).aggregate(staged_headers=headers.count())
    parked = quarantined_headers.group_by(keys).aggregate(quarantined_headers=quarantined_headers.count())
    measures = ("transactions", "anonymous_transactions", "line_count", "revenue", "distinct_products", "sold_units",
                "returned_units", "promoted_lines", "staged_headers", "quarantined_headers")

    def padded(table: ir.Table) -> ir.Table:
        """`table` with every measure, 0 where it has none: the parts stack into one union."""
        return table.select(*keys, **{name: table[name] if name in table.columns else
                                      (ibis.literal(0, "decimal(18, 2)") if name == "revenue" else zero)
                                      for name in measures})

    stacked = ibis.union(*(padded(table) for table in (transactions, by_lines, staged, parked)))
    # Each measure comes from one part: the sum over the parts is its value (a count of distinct products too).
    days = stacked.group_by(keys).aggregate(**{name: stacked[name].sum() for name in measures})
    return STORE_DAY_METRICS.cast(days.mutate(
        weekday=days.business_date.day_of_week.index(),
        anonymous_share=safe_ratio(days.anonymous_transactions, days.transactions),
        return_rate=safe_ratio(days.returned_units, days.sold_units),
        quarantine_rate=safe_ratio(days.quarantined_headers, days.staged_headers + days.quarantined_headers)))
