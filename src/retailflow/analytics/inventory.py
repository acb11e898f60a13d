"""Inventory vs sales: top sellers, how often they were out of stock, and the sales lost meanwhile.

A store-product-day is out of stock when its snapshot reads 0. The snapshot may be opening stock
(a delivery can still arrive and sell that day) or closing stock (the day it sold out reads 0 yet
sold): either way the units sold that day are subtracted. Expected demand on a stock-out day is
learned only from the same store-product's in-stock days: the mean units sold on in-stock days of
the same weekday, or of all in-stock days when that weekday has none. A stock-out day lost
max(0, expected demand - units sold that day); lost units are summed over stock-out days and
valued at the product's average realised price at that store (the product's overall average
where the store never sold it).

Phantom inventory: a store-product that shows stock yet sells nothing for a run of days that its
own in-stock sales rate makes improbable (Poisson: P(k days without a sale) = exp(-sales a day × k)).

Outputs: analytics.top_products (one row per top product), analytics.stockouts and
analytics.lost_sales (one row per top product × store), analytics.phantom_inventory (one row per
suspected phantom run). All four are computed from analytics.store_product_daily (units, revenue
and sales per store, product and day sold), which a run keeps day by day: it recomputes the days
its new batches cover (every day when products or stores changed), never the staged history.
"""

from __future__ import annotations

import math

import ibis
import ibis.expr.types as ir

from retailflow import dates
from retailflow.analytics.sales import safe_ratio, sales_lines, store_product_days
from retailflow.backends import Backend
from retailflow.errors import UserError
from retailflow.tables import staging_table

#: Least likely phantom runs first.
PHANTOM_ORDER = ["probability", ibis.desc("expected_units"), "store_id", "product_id", "first_day"]


def top_products(lines: ir.Table, products: ir.Table, *, top: int = 5) -> ir.Table:
    """One row per top-N product by units sold (`lines` from sales_lines): units, revenue, average price, rank."""
    totals = lines.group_by(["product_id", "product_category"]).aggregate(
        units=lines.units.sum(), revenue=lines.revenue.sum())
    ranked = totals.mutate(rank=ibis.row_number().over(order_by=[totals.units.desc(), totals.revenue.desc(),
                                                                  totals.product_id]) + 1)
    named = ranked.join(products.select("product_id", "product_name"), "product_id")
    return named.filter(named["rank"] <= top).mutate(
        average_price=safe_ratio(named.revenue, named.units).round(2)).order_by("rank")


def _top_cells(lines, products, stores, inventory, top: int) -> ir.Table:
    chosen = top_products(lines, products, top=top).select("product_id", "rank")
    # The grid is built for the top products alone (the engine does not push the product filter
    # through the grid's outer joins); trading days still come from every line.
    cells = store_product_days(stores, products.semi_join(chosen, "product_id"), lines.semi_join(chosen, "product_id"),
                               inventory.semi_join(chosen, "product_id"), days=lines.select("sale_date").distinct())
    return cells.join(chosen, "product_id").filter(lambda t: t.has_snapshot)


def stockouts(lines, products, stores, inventory, *, top: int = 5) -> ir.Table:
    """One row per top product × store with snapshots: days observed, days out of stock, % out of stock."""
    cells = _top_cells(lines, products, stores, inventory, top)
    grouped = cells.group_by(["rank", "product_id", "store_id"]).aggregate(
        days_observed=cells.count(), days_out_of_stock=(~cells.in_stock).ifelse(1, 0).sum())
    return grouped.mutate(
        out_of_stock_pct=(safe_ratio(grouped.days_out_of_stock, grouped.days_observed) * 100).round(2)
    ).order_by(["rank", "store_id"])


def lost_sales(lines, products, stores, inventory, *, top: int = 5) -> ir.Table:
    """One row per top product × store: stock-out days, expected demand not sold (lost units) and its revenue."""
    cells = _top_cells(lines, products, stores, inventory, top)
    stocked = cells.filter(cells.in_stock)
    same_weekday = stocked.group_by(["product_id", "store_id", "weekday"]).aggregate(
        weekday_rate=stocked.units.mean())
    any_day = stocked.group_by(["product_id", "store_id"]).aggregate(
        day_rate=stocked.units.mean(), store_price=safe_ratio(stocked.revenue.sum(), stocked.units.sum()))
    product_price = lines.group_by("product_id").aggregate(product_price=safe_ratio(lines.revenue.sum(),
                                                                                    lines.units.sum()))
    # Every top product × store with snapshots gets a row; only its stock-out days add lost units.
    cells = cells.left_join(same_weekday, ["product_id", "store_id", "weekday"]).select(
        cells, same_weekday.weekday_rate)
    cells = cells.left_join(any_day, ["product_id", "store_id"]).select(cells, any_day.day_rate)
    expected = cells.weekday_rate.fill_null(cells.day_rate).fill_null(0)
    # A zero snapshot can still have sales (closing stock on the day it sold out, a mid-day
    # delivery after an empty opening): only the demand those sales did not meet was lost.
    unmet = ibis.greatest(expected - cells.units.cast("float64"), 0)
    out = ~cells.in_stock
    per_store = cells.group_by(["rank", "product_id", "store_id"]).aggregate(
        stockout_days=out.ifelse(1, 0).sum(), unmet_units=out.ifelse(unmet, 0).sum())
    per_store = per_store.left_join(any_day, ["product_id", "store_id"]).select(
        per_store, any_day.day_rate, any_day.store_price)
    per_store = per_store.left_join(product_price, "product_id").select(per_store, product_price.product_price)
    price = per_store.store_price.fill_null(per_store.product_price)
    return per_store.mutate(
        lost_units=per_store.unmet_units.round(2),
        lost_revenue=(per_store.unmet_units * price).round(2),
        method=ibis.cases((per_store.stockout_days == 0, "never out of stock"),
                          (per_store.day_rate.isnull(), "no in-stock days to learn from"),
                          else_="mean of in-stock days (same weekday where available) less that day's sales"),
    ).drop("unmet_units").order_by(["rank", "store_id"])


def daily_sales(lines: ir.Table) -> ir.Table:
    """One row per store, product and day with a sale (`lines` from sales_lines): units, revenue and sales
    (transactions). Every output of the stage reads sales in this shape (see inputs)."""
    return lines.group_by(["store_id", "product_id", "product_category", "sale_date"]).aggregate(
        units=lines.units.sum(), revenue=lines.revenue.sum(), sales=lines.transaction_id.nunique())


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
    return days.group_by(["store_id", "product_id"]).aggregate(
        counted_days=days.count(), sales=days.sales.sum(), units=days.units.sum())


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


RUNS = ibis.table({"store_id": "string", "product_id": "string", "first_day": "date", "last_day": "date",
                   "first_number": "int64", "last_number": "int64", "days": "int64", "min_stock_on_hand": "int64",
                   "max_stock_on_hand": "int64"}, name="phantom_idle_runs", database="analytics")
RATES = ibis.table({"store_id": "string", "product_id": "string", "counted_days": "int64", "sales": "int64",
                    "units": "int64"}, name="phantom_rates", database="analytics")


def _rebuild_phantom_state(backend: Backend, lines: ir.Table, inventory: ir.Table) -> None:
    """analytics.phantom_idle_runs and phantom_rates from every day."""
    counted = backend.create_temp_table("rf_counted_days", counted_days(lines, inventory, trading_days(lines)))
    backend.replace_table("analytics", "phantom_idle_runs", idle_runs(counted))
    backend.replace_table("analytics", "phantom_rates", day_rates(counted))
    backend.execute("DROP TABLE IF EXISTS rf_counted_days")


def _extend_phantom_state(backend: Backend, lines: ir.Table, inventory: ir.Table, horizon) -> None:
    """Add the days after `horizon` (every one of them new) to the stored runs and rates.

    A store-product's run still open at its store's last old trading day continues with an idle
    run starting on the store's first new trading day; every other new run is new.
    """
    days = trading_days(lines)
    new = backend.create_temp_table("rf_counted_days", counted_days(
        lines.filter(lines.sale_date > horizon), inventory.filter(inventory.snapshot_date > horizon),
        days.filter(days.sale_date > horizon)))
    added = day_rates(new)
    rates = RATES.union(added).group_by(["store_id", "product_id"]).aggregate(
        counted_days=ibis._.counted_days.sum(), sales=ibis._.sales.sum(), units=ibis._.units.sum())
    rates = backend.create_temp_table("rf_phantom_rates", rates)
    backend.replace_table("analytics", "phantom_rates", rates)
    islands = backend.create_temp_table("rf_phantom_islands", idle_runs(new))
    old = days.filter(days.sale_date <= horizon)
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
    backend.execute("DELETE FROM analytics.phantom_idle_runs WHERE (store_id, product_id, first_number) IN "
                    "(SELECT store_id, product_id, first_number FROM rf_phantom_merged)")
    backend.insert("analytics", "phantom_idle_runs", merged)
    backend.insert("analytics", "phantom_idle_runs", islands.anti_join(
        merged, ["store_id", "product_id", "last_number"]).select(*RUNS.columns))
    for name in ("rf_counted_days", "rf_phantom_rates", "rf_phantom_islands", "rf_phantom_merged"):
        backend.execute(f"DROP TABLE IF EXISTS {name}")


STAGE = "inventory"
#: The masters the daily table is built from (a product's category): a change to one recomputes every day.
MASTERS = ("products", "stores")


def inputs(days: ir.Table | dates.DateRange | None = None) -> dict[str, ir.Table]:
    """The stage's inputs over staging: daily_sales of `days` (every day for None), products, stores, inventory."""
    products, headers = staging_table("products"), staging_table("store_sales_header")
    lines = sales_lines(staging_table("store_sales_line_items"),
                        dates.on_days(headers, headers.transaction_date, days), products)
    return dict(lines=daily_sales(lines), products=products, stores=staging_table("stores"),
                inventory=staging_table("inventory_daily"))


def stored_inputs() -> dict[str, ir.Table]:
    """inputs() with the sales as the stage keeps them (analytics.store_product_daily)."""
    tables = inputs()
    return {**tables, "lines": ibis.table(tables["lines"].schema(), name="store_product_daily", database="analytics")}


def _appending_after(backend: Backend, changed: ir.Table | dates.DateRange | None):
    """The last day of the stored phantom state when every changed day comes after it (a night appending new days);
    None when the state must be rebuilt (a late or restated day, a backfill, the first run)."""
    if changed is None or isinstance(changed, dates.DateRange) or not all(
            backend.has_table("analytics", name) for name in ("store_product_daily", "phantom_idle_runs",
                                                              "phantom_rates")):
        return None
    horizon = backend.scalar("SELECT max(sale_date) FROM analytics.store_product_daily")
    first_changed = backend.fetch_dicts(changed.aggregate(first=changed.business_date.min()))[0]["first"]
    if horizon is None or first_changed is None:
        return None if horizon is None else horizon
    return horizon if first_changed > horizon else None


def run_inventory(backend: Backend, *, top: int = 5, phantom_threshold: float = 0.001, phantom_min_days: int = 3,
                  days: dates.DateRange | None = None, rebuild: bool = False) -> dict[str, list[dict]]:
    """Bring store_product_daily up to date for the changed days (`days`; every day on the first run, with `rebuild`
    or after a master change), materialise top products, stock-outs, lost sales and phantom runs; return them."""
    if not backend.scalar("SELECT count(*) FROM staging.store_sales_line_items"):
        raise UserError("no staged sales yet: run `retailflow run DIR` (or ingest + validate) first")
    with backend.transaction():
        latest = dates.latest_change(backend)
        changed = dates.days_to_recompute(backend, STAGE, days, rebuild, MASTERS)
        horizon = _appending_after(backend, changed)
        dates.replace_days(backend, "analytics", "store_product_daily", "sale_date", inputs(changed)["lines"],
                           changed)
        tables = stored_inputs()
        if horizon is None:
            _rebuild_phantom_state(backend, tables["lines"], tables["inventory"])
        else:
            _extend_phantom_state(backend, tables["lines"], tables["inventory"], horizon)
        phantom = flag_phantom(RUNS, RATES, trading_days(tables["lines"]), threshold=phantom_threshold,
                               min_days=phantom_min_days)
        backend.replace_table("analytics", "top_products", top_products(tables["lines"], tables["products"], top=top))
        backend.replace_table("analytics", "stockouts", stockouts(**tables, top=top))
        backend.replace_table("analytics", "lost_sales", lost_sales(**tables, top=top))
        backend.replace_table("analytics", "phantom_inventory", phantom)
        if days is None or changed is None:  # a backfill leaves the changes it did not cover pending
            dates.set_mark(backend, STAGE, latest)
    lost = ibis.table(lost_sales(**tables, top=top).schema(), name="lost_sales", database="analytics")
    by_product = lost.group_by(["rank", "product_id"]).aggregate(
        stockout_days=lost.stockout_days.sum(), lost_units=lost.lost_units.sum().round(2),
        lost_revenue=lost.lost_revenue.sum().round(2)).order_by("rank")
    outs = ibis.table(stockouts(**tables, top=top).schema(), name="stockouts", database="analytics")
    top_table = ibis.table(top_products(tables["lines"], tables["products"], top=top).schema(),
                           name="top_products", database="analytics")
    stored_phantom = ibis.table(phantom.schema(), name="phantom_inventory", database="analytics")
    return {
        "top_products": backend.fetch_dicts(top_table.order_by("rank")),
        "stockouts": backend.fetch_dicts(outs.order_by(["rank", "store_id"])),
        "lost_by_product": backend.fetch_dicts(by_product),
        "lost_total": backend.fetch_dicts(lost.aggregate(lost_units=lost.lost_units.sum().round(2),
                                                         lost_revenue=lost.lost_revenue.sum().round(2))),
        "phantom_runs": backend.fetch_dicts(stored_phantom.order_by(PHANTOM_ORDER)),
    }
