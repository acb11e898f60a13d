"""Phantom inventory: runs of in-stock trading days without a sale, and the state that keeps them night by night.

The method (phantom_inventory) is in docs/explanation/analytics.md. The stage keeps every idle run of every
store-product (analytics.phantom_idle_runs) and each store-product's counted days, sales and units
(analytics.phantom_rates), so that a night adds its own days: an idle run still open at the
store's last old trading day continues into the first new one, every other new run is new, and
the rates are sums. Each such extension is logged (analytics.phantom_log and its three detail
tables: the runs it replaced, the runs it added, the rates it added) for the last LOG_NIGHTS
nights; a late or restated day among them is handled by undoing the extensions back to the night
before it and extending again. Anything older, a backfill or a master change rebuilds the state
from every snapshot.
"""

from __future__ import annotations

import datetime as dt
import math

import ibis
import ibis.expr.types as ir

from retailflow import catalog, incremental
from retailflow.backends import Backend
from retailflow.backends.run_values import run_value
from retailflow.errors import UserError
from retailflow.model import IBIS_TYPES

#: Least likely phantom runs first.
PHANTOM_ORDER = ["probability", ibis.desc("expected_units"), "store_id", "product_id", "first_day"]
#: Nights whose extension can be undone: a correction of one of them costs about its own days.
LOG_NIGHTS = 31
#: The type of the rates' counts (see day_rates).
COUNT_TYPE = IBIS_TYPES["count_sum"]


def trading_days(lines: ir.Table) -> ir.Table:
    """One row per store and day it sold anything: the day's number in the store's trading days, its last one."""
    days = lines.select("store_id", "sale_date").distinct()
    return days.mutate(day_number=ibis.row_number().over(group_by="store_id", order_by="sale_date"),
                       last_trading_day=days.sale_date.max().over(group_by="store_id"))


def counted_days(lines: ir.Table, inventory: ir.Table, days: ir.Table) -> ir.Table:
    """The days phantom runs are made of: store-product-days in stock on a trading day (`days` from
    trading_days), with the day's number, stock, sales and units."""
    sold = lines.group_by(["store_id", "product_id", "sale_date"]).aggregate(
        sales=lines.sales.sum(), units=lines.units.sum())
    stocked = inventory.filter(inventory.stock_on_hand > 0)
    stocked = stocked.select(store_id=stocked.store_id, product_id=stocked.product_id,
                             sale_date=stocked.snapshot_date, stock_on_hand=stocked.stock_on_hand)
    counted = stocked.join(days.select("store_id", "sale_date", "day_number"), ["store_id", "sale_date"])
    return counted.left_join(sold, ["store_id", "product_id", "sale_date"]).select(
        counted, sales=sold.sales.fill_null(0), units=sold.units.fill_null(0))


def idle_runs(days: ir.Table) -> ir.Table:
    """Every run of consecutive counted days (counted_days) without a sale, per store-product, of any length."""
    idle = days.filter(days.sales == 0)
    # Gaps and islands: along one store-product's idle days, the store's day number minus the idle
    # day's own number stays constant exactly while the idle days are consecutive trading days.
    idle = idle.mutate(run=idle.day_number - ibis.row_number().over(group_by=[idle.store_id, idle.product_id],
                                                                     order_by=idle.sale_date))
    return idle.group_by(["store_id", "product_id", "run"]).aggregate(
        first_day=idle.sale_date.min(), last_day=idle.sale_date.max(), first_number=idle.day_number.min(),
        last_number=idle.day_number.max(), days=idle.count(),
        min_stock_on_hand=idle.stock_on_hand.min(), max_stock_on_hand=idle.stock_on_hand.max()).drop("run")


def day_rates(days: ir.Table) -> ir.Table:
    """Per store-product, counted days (counted_days) and the sales and units on them: sums, so they add up."""
    # DECIMAL(38, 0): a sum of sums has the type of a sum on every engine (PostgreSQL's sum of BIGINT is NUMERIC,
    # DuckDB's HUGEINT), so rates kept night by night and rates rebuilt from every day are the same rows.
    whole = COUNT_TYPE
    return days.group_by(["store_id", "product_id"]).aggregate(
        counted_days=days.count().cast(whole), sales=days.sales.sum().cast(whole), units=days.units.sum().cast(whole))


def flag_phantom(runs: ir.Table, rates: ir.Table, days: ir.Table, *, threshold: float = 0.001,
                 min_days: int = 3) -> ir.Table:
    """The suspected phantom runs among idle_runs, with the store-products' day_rates and trading_days."""
    if not 0 < threshold < 1:
        raise UserError(f"--phantom-threshold must be a probability between 0 and 1 (e.g. 0.001), not {threshold}")
    if min_days < 1:
        raise UserError(f"--phantom-min-days must be at least 1 day, not {min_days}")
    rates = rates.mutate(daily_sales=rates.sales.cast("float64") / rates.counted_days,
                         daily_units=rates.units.cast("float64") / rates.counted_days)
    last = days.group_by("store_id").aggregate(last_trading_day=days.sale_date.max())
    runs = runs.join(rates, ["store_id", "product_id"]).filter(lambda t: t.daily_sales > 0)
    runs = runs.join(last, "store_id")
    runs = runs.mutate(expected_sales=runs.daily_sales * runs.days, ongoing=runs.last_day == runs.last_trading_day)
    flagged = runs.filter(runs.days >= min_days, runs.expected_sales > -math.log(threshold))
    return flagged.select(
        "store_id", "product_id", "first_day", "last_day", "days", "min_stock_on_hand", "max_stock_on_hand",
        "ongoing", daily_sales=flagged.daily_sales.round(4), daily_units=flagged.daily_units.round(4),
        expected_units=(flagged.daily_units * flagged.days).round(2),
        # exp() of a large negative number is an underflow error on PostgreSQL, so its argument is capped.
        probability=(-ibis.least(flagged.expected_sales, 700)).exp(),
    ).order_by(PHANTOM_ORDER)


def phantom_inventory(lines: ir.Table, inventory: ir.Table, *,
                      threshold: float = 0.001, min_days: int = 3) -> ir.Table:
    """One row per suspected phantom-inventory run: in stock, no sales, for improbably many trading days.

    A day counts for a store-product when the store traded (sold anything) and the snapshot shows stock
    above 0; a day without a snapshot, out of stock or with a sale ends a run, a day the store did not
    trade is skipped. The rate is the mean number of sales (transactions with the product) per counted
    day: sales, not units, are the Poisson events, and one sale of 6 units is as likely as one of 1.
    `lines` is daily_sales. run_inventory keeps the runs and rates and extends them night by night.
    """
    days = trading_days(lines)
    counted = counted_days(lines, inventory, days)
    return flag_phantom(idle_runs(counted), day_rates(counted), days, threshold=threshold, min_days=min_days)


KEY = ["store_id", "product_id", "first_number"]
STATE_TABLES = ("phantom_idle_runs", "phantom_rates", "phantom_log", "phantom_log_removed", "phantom_log_added",
                "phantom_log_rates")
RUNS, RATES, LOG, LOG_REMOVED, LOG_ADDED, LOG_RATES = (catalog.table(f"analytics.{name}") for name in STATE_TABLES)
LOG_TABLE = catalog.stored("analytics.phantom_log")
#: The extension log's tables, each with the append_id of the extension that wrote a row.
LOGS = (LOG, LOG_REMOVED, LOG_ADDED, LOG_RATES)
SCRATCH = ("rf_counted_days", "rf_phantom_rates", "rf_phantom_islands", "rf_phantom_merged")


def stored_phantom(lines: ir.Table, *, threshold: float = 0.001, min_days: int = 3) -> ir.Table:
    """The phantom runs from the stored state (`lines`: analytics.store_product_daily)."""
    return flag_phantom(RUNS, RATES, trading_days(lines), threshold=threshold, min_days=min_days)


def rebuild(backend: Backend, lines: ir.Table, inventory: ir.Table) -> None:
    """The state from every day; the log starts again (nothing before this can be undone)."""
    counted = backend.create_temp_table("rf_counted_days", counted_days(lines, inventory, trading_days(lines)))
    backend.replace_table("analytics", "phantom_idle_runs", idle_runs(counted))
    backend.replace_table("analytics", "phantom_rates", day_rates(counted))
    for name, empty in empty_logs().items():
        backend.replace_table("analytics", name, empty)
    # Created from its declaration, then filled: the rebuild's horizon_before is NULL, whose type CREATE TABLE … AS
    # cannot tell from the value on every engine (MySQL made it BINARY(0): the next night's date was "too long").
    backend.create_table(LOG_TABLE)
    backend.insert("analytics", "phantom_log", log_entry(lines, 0, None))
    _drop_scratch(backend)


def empty_logs() -> dict[str, ir.Table]:
    """The extension log's detail tables as a rebuild starts them: empty, with the append_id of each row."""
    stamp = {"append_id": ibis.literal(0, "int64")}
    return {name: empty.limit(0).mutate(**stamp) for name, empty in (
        ("phantom_log_removed", RUNS), ("phantom_log_added", RUNS.select(*KEY)), ("phantom_log_rates", RATES))}


def log_entry(lines: ir.Table, append_id: int, horizon_before: dt.date | None) -> ir.Table:
    """phantom_log's row of extension `append_id` (0: a rebuild, whose state had no days before it: None)."""
    horizon = lines.aggregate(horizon_after=lines.sale_date.max())
    before = ibis.null("date") if horizon_before is None else run_value("horizon", horizon_before, "date")
    return horizon.select(append_id=run_value("append", append_id, "int64"), horizon_before=before,
                          horizon_after=horizon.horizon_after)


def _drop_scratch(backend: Backend) -> None:
    backend.drop_temp_tables(*SCRATCH)


def _replace_rates(backend: Backend, rows: ir.Table) -> None:
    """phantom_rates := the sums of `rows` (the stored rates and changes to them) per store-product."""
    summed = rows.group_by(["store_id", "product_id"]).aggregate(
        counted_days=rows.counted_days.sum(), sales=rows.sales.sum(), units=rows.units.sum())
    rates = backend.create_temp_table("rf_phantom_rates", summed.filter(summed.counted_days != 0))
    backend.replace_table("analytics", "phantom_rates", rates)


def extend(backend: Backend, lines: ir.Table, inventory: ir.Table, horizon, append_id: int) -> None:
    """Add the days after `horizon` (none of them in the state yet) to the runs and rates, and log it."""
    days = trading_days(lines)
    after = run_value("horizon", horizon, "date")
    new = backend.create_temp_table("rf_counted_days", counted_days(
        lines.filter(lines.sale_date > after), inventory.filter(inventory.snapshot_date > after),
        days.filter(days.sale_date > after)))
    added = day_rates(new)
    # The append id as a run value: the same SQL text every night (run_values).
    stamp = {"append_id": run_value("append", append_id, "int64")}
    backend.insert("analytics", "phantom_log_rates", added.mutate(**stamp))
    _replace_rates(backend, RATES.union(added))
    islands = backend.create_temp_table("rf_phantom_islands", idle_runs(new))
    old = days.filter(days.sale_date <= after)
    old_last = old.group_by("store_id").aggregate(old_last=old.day_number.max())
    still_open = RUNS.join(old_last, [RUNS.store_id == old_last.store_id, RUNS.last_number == old_last.old_last])
    still_open = still_open.select(*RUNS.columns, "old_last")
    continuing = islands.join(still_open, [islands.store_id == still_open.store_id,
                                           islands.product_id == still_open.product_id,
                                           islands.first_number == still_open.old_last + 1])
    merged = backend.create_temp_table("rf_phantom_merged", continuing.select(
        store_id=islands.store_id, product_id=islands.product_id, first_day=still_open.first_day,
        last_day=islands.last_day, first_number=still_open.first_number, last_number=islands.last_number,
        days=still_open.days + islands.days,
        min_stock_on_hand=ibis.least(still_open.min_stock_on_hand, islands.min_stock_on_hand),
        max_stock_on_hand=ibis.greatest(still_open.max_stock_on_hand, islands.max_stock_on_hand)))
    fresh = islands.anti_join(merged, ["store_id", "product_id", "last_number"]).select(*RUNS.columns)
    backend.insert("analytics", "phantom_log_removed", RUNS.semi_join(merged, KEY).mutate(**stamp))
    # Two statements: MySQL cannot read one temporary table twice in a statement.
    backend.insert("analytics", "phantom_log_added", merged.select(*KEY, **stamp))
    backend.insert("analytics", "phantom_log_added", fresh.select(*KEY, **stamp))
    backend.delete_matching(RUNS, merged.select(*KEY))
    backend.insert("analytics", "phantom_idle_runs", merged)
    backend.insert("analytics", "phantom_idle_runs", fresh)
    backend.insert("analytics", "phantom_log", log_entry(lines, append_id, horizon))
    for table in LOGS:
        backend.delete_where(table, (table.append_id <= run_value("oldest", append_id - LOG_NIGHTS, "int64"))
                             & (table.append_id > 0))
    _drop_scratch(backend)


def undo(backend: Backend, append_id: int) -> None:
    """Take the extension `append_id` (the latest one) back out of the state."""
    backend.delete_matching(RUNS, LOG_ADDED.filter(LOG_ADDED.append_id == append_id).select(*KEY))
    backend.insert("analytics", "phantom_idle_runs", LOG_REMOVED.filter(LOG_REMOVED.append_id == append_id)
                   .select(*RUNS.columns))
    taken = LOG_RATES.filter(LOG_RATES.append_id == append_id)
    _replace_rates(backend, RATES.union(taken.select(
        "store_id", "product_id", counted_days=-taken.counted_days, sales=-taken.sales, units=-taken.units)))
    for table in LOGS:
        backend.delete_where(table, {"append_id": append_id})
    _drop_scratch(backend)


def update(backend: Backend, lines: ir.Table, inventory: ir.Table, changed: incremental.Days) -> None:
    """Bring the state in line with `lines` (store_product_daily, already updated) and `inventory` after the
    `changed` days."""
    if not isinstance(changed, ir.Table) or not all(
            backend.has_table("analytics", name) for name in STATE_TABLES):
        rebuild(backend, lines, inventory)
        return
    first = backend.fetch_dicts(changed.aggregate(first=changed.business_date.min()))[0]["first"]
    if first is None:
        return
    log = backend.fetch_dicts(LOG.order_by("append_id"))
    horizon = log[-1]["horizon_after"] if log else None
    if horizon is None:
        rebuild(backend, lines, inventory)
        return
    if first > horizon:
        extend(backend, lines, inventory, horizon, log[-1]["append_id"] + 1)
        return
    # A late or restated day: undo the nights back to one that ended before it, then extend again.
    before = [row for row in log if row["horizon_before"] is not None and row["horizon_before"] < first]
    if not before:
        rebuild(backend, lines, inventory)
        return
    restart = before[-1]
    for row in reversed([row for row in log if row["append_id"] >= restart["append_id"]]):
        undo(backend, row["append_id"])
    extend(backend, lines, inventory, restart["horizon_before"], log[-1]["append_id"] + 1)
