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
suspected phantom run), analytics.returns (one row per store, product and day with a return: see
analytics.returns). The first four are computed from analytics.store_product_daily (net units,
revenue and sales per store, product and day sold) and its sum over stores, analytics.product_daily,
which a run keeps day by day: it recomputes the days its new batches cover (every day when products
or stores changed), never the staged history. Units and revenue are net of returns throughout: an
order cancelled the same day sells nothing.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from retailflow import catalog, incremental, marks
from retailflow.analytics import answers, phantom_state
from retailflow.analytics.phantom_state import PHANTOM_ORDER, phantom_inventory  # noqa: F401 (the stage's outputs)
from retailflow.analytics.returns import RETURNS, return_rates, returns_daily
from retailflow.analytics.sales import safe_ratio, sales_lines, store_product_days
from retailflow.backends import Backend
from retailflow.errors import UserError
from retailflow.tables import indexed_where_needed, staging_table


def top_products(product_days: ir.Table, products: ir.Table, *, top: int = 5) -> ir.Table:
    """One row per top-N product by units sold (`product_days` from product_daily): units, revenue, average price, rank."""
    totals = product_days.group_by(["product_id", "product_category"]).aggregate(
        units=product_days.units.sum(), revenue=product_days.revenue.sum())
    ranked = totals.mutate(rank=ibis.row_number().over(order_by=[totals.units.desc(), totals.revenue.desc(),
                                                                  totals.product_id]) + 1)
    named = ranked.join(products.select("product_id", "product_name"), "product_id")
    return named.filter(named["rank"] <= top).mutate(
        average_price=safe_ratio(named.revenue, named.units).round(2)).order_by("rank")


def _top_cells(lines, product_days, products, stores, inventory, top: int, chosen: ir.Table | None = None) -> ir.Table:
    """The top products' store-days; `chosen`: their product_id and rank, when already computed."""
    chosen = top_chosen(product_days, products, top) if chosen is None else chosen
    # The grid is built for the top products alone (the engine does not push the product filter
    # through the grid's outer joins); trading days are every day with a sale.
    cells = store_product_days(stores, products.semi_join(chosen, "product_id"), lines.semi_join(chosen, "product_id"),
                               inventory.semi_join(chosen, "product_id"),
                               days=product_days.select("sale_date").distinct())
    return cells.join(chosen, "product_id").filter(lambda t: t.has_snapshot)


def top_chosen(product_days: ir.Table, products: ir.Table, top: int) -> ir.Table:
    """The top products' product_id and rank."""
    return top_products(product_days, products, top=top).select("product_id", "rank")


def stockouts(lines, product_days, products, stores, inventory, *, top: int = 5,
              cells: ir.Table | None = None) -> ir.Table:
    """One row per top product × store with snapshots: days observed, days out of stock, % out of stock.

    `cells` are the top products' store-days (_top_cells), when already computed."""
    cells = _top_cells(lines, product_days, products, stores, inventory, top) if cells is None else cells
    grouped = cells.group_by(["rank", "product_id", "store_id"]).aggregate(
        days_observed=cells.count(), days_out_of_stock=(~cells.in_stock).ifelse(1, 0).sum())
    return grouped.mutate(
        out_of_stock_pct=(safe_ratio(grouped.days_out_of_stock, grouped.days_observed) * 100).round(2)
    ).order_by(["rank", "store_id"])


def lost_sales(lines, product_days, products, stores, inventory, *, top: int = 5,
               cells: ir.Table | None = None) -> ir.Table:
    """One row per top product × store: stock-out days, expected demand not sold (lost units) and its revenue."""
    cells = _top_cells(lines, product_days, products, stores, inventory, top) if cells is None else cells
    stocked = cells.filter(cells.in_stock)
    same_weekday = stocked.group_by(["product_id", "store_id", "weekday"]).aggregate(
        weekday_rate=stocked.units.mean())
    any_day = stocked.group_by(["product_id", "store_id"]).aggregate(
        day_rate=stocked.units.mean(), store_price=safe_ratio(stocked.revenue.sum(), stocked.units.sum()))
    product_price = product_days.group_by("product_id").aggregate(
        product_price=safe_ratio(product_days.revenue.sum(), product_days.units.sum()))
    # Every top product × store with snapshots gets a row; only its stock-out days add lost units.
    cells = cells.left_join(same_weekday, ["product_id", "store_id", "weekday"]).select(
        cells, same_weekday.weekday_rate)
    cells = cells.left_join(any_day, ["product_id", "store_id"]).select(cells, any_day.day_rate)
    expected = cells.weekday_rate.fill_null(cells.day_rate).fill_null(0)
    # A zero snapshot can still have sales (closing stock on the day it sold out, a mid-day
    # delivery after an empty opening): only the demand those sales did not meet was lost.
    # Net units: a day of returns sold nothing, it did not meet more than its demand.
    unmet = ibis.greatest(expected - ibis.greatest(cells.units, 0).cast("float64"), 0)
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
    """One row per store, product and day with a sale or a return (`lines` from sales_lines): net units and
    revenue, and sales (transactions that sold it). Every output of the stage reads sales in this shape."""
    # Revenue kept DECIMAL(18, 2), which a day's sum fits: a sum is DECIMAL(38, 2), 128-bit on DuckDB, which it
    # reads back several times slower (see backends.compiling.IntegerSums for the units).
    # A sale sold the product: a line taking units back is a return, not a sale (phantom stock's rate).
    return lines.group_by(["store_id", "product_id", "product_category", "sale_date"]).aggregate(
        units=lines.units.sum(), revenue=lines.revenue.sum().cast("decimal(18, 2)"),
        sales=(lines.units > 0).ifelse(lines.transaction_id, ibis.null("string")).nunique())


def product_daily(lines: ir.Table) -> ir.Table:
    """One row per product and day with a sale (`lines` from daily_sales): units and revenue over every store.

    The ranking, the products' prices and the trading days read this table, kept beside daily_sales: with
    50 stores it has a fiftieth of the rows (at 10M line items each of the three scanned every store's
    rows of every day, 2.8 s a night).
    """
    return lines.group_by(["product_id", "product_category", "sale_date"]).aggregate(
        units=lines.units.sum(), revenue=lines.revenue.sum().cast("decimal(18, 2)"))


STAGE = "inventory"
#: The masters the daily table is built from (a product's category): a change to one recomputes every day.
MASTERS = ("products", "stores")


def _lines(days: incremental.Days) -> ir.Table:
    """sales_lines of the staged sales of `days`."""
    headers = staging_table("store_sales_header")
    return sales_lines(staging_table("store_sales_line_items"),
                       incremental.on_days(headers, headers.transaction_date, days), staging_table("products"))


def inputs(days: incremental.Days = incremental.EVERY_DAY) -> dict[str, ir.Table]:
    """The stage's inputs over staging: daily_sales of `days`, products, stores, inventory."""
    products = staging_table("products")
    lines = daily_sales(_lines(days))
    return dict(lines=lines, product_days=product_daily(lines), products=products, stores=staging_table("stores"),
                inventory=staging_table("inventory_daily"))


def stored_inputs() -> dict[str, ir.Table]:
    """inputs() with the sales as the stage keeps them (analytics.store_product_daily and product_daily)."""
    return {**inputs(), "lines": catalog.table("analytics.store_product_daily"),
            "product_days": catalog.table("analytics.product_daily")}


def run_inventory(backend: Backend, *, top: int = 5, phantom_threshold: float = 0.001, phantom_min_days: int = 3,
                  days: incremental.DateRange | None = None, rebuild: bool = False) -> dict[str, list[dict]]:
    """Bring store_product_daily up to date for the changed days (`days`; every day on the first run, with `rebuild`
    or after a master change), materialise top products, stock-outs, lost sales and phantom runs; return them. With
    nothing new since the last run with the same parameters (marks.current), the stored tables are the answer."""
    if not backend.scalar("SELECT count(*) FROM staging.store_sales_line_items"):
        raise UserError("no staged sales yet: run `retailflow run DIR` (or ingest + validate) first")
    answer = answers.inventory(top, phantom_threshold, phantom_min_days)
    if days is None and not rebuild and marks.current(backend, STAGE, answer.parameters):
        return _stored_results(backend, answer)
    with incremental.window(backend, STAGE, days=days, rebuild=rebuild, masters=MASTERS,
                            parameters=answer.parameters) as changed:
        incremental.replace_days(backend, "analytics", "store_product_daily", "sale_date", inputs(changed)["lines"],
                                 changed)
        tables = stored_inputs()
        # From the stored store-days of the changed days (all of them where the table is new: an older database).
        products_changed = changed if backend.has_table("analytics", "product_daily") else incremental.EVERY_DAY
        stored_lines = incremental.on_days(tables["lines"], tables["lines"].sale_date, products_changed)
        incremental.replace_days(backend, "analytics", "product_daily", "sale_date", product_daily(stored_lines),
                                 products_changed)
        returns_changed = changed if backend.has_table("analytics", "returns") else incremental.EVERY_DAY
        incremental.replace_days(backend, "analytics", "returns", "sale_date", returns_daily(_lines(returns_changed)),
                                 returns_changed)
        phantom_state.update(backend, tables["lines"], tables["inventory"], changed)
        phantom = phantom_state.stored_phantom(tables["lines"], threshold=phantom_threshold,
                                               min_days=phantom_min_days)
        backend.replace_table("analytics", "top_products", top_products(tables["product_days"], tables["products"],
                                                                        top=top))
        # The top products' store-days feed both tables: computed once. MariaDB ran each semi-join on the ranking
        # as a subquery per inventory row, scanning the ranking every time (19 s at 200k line items): there the
        # chosen products are an indexed table.
        chosen = top_chosen(tables["product_days"], tables["products"], top)
        with indexed_where_needed(backend, "rf_top_chosen", chosen, ("product_id",)) as chosen:
            cells = backend.create_temp_table("rf_top_cells", _top_cells(**tables, top=top, chosen=chosen))
        backend.replace_table("analytics", "stockouts", stockouts(**tables, top=top, cells=cells))
        backend.replace_table("analytics", "lost_sales", lost_sales(**tables, top=top, cells=cells))
        backend.drop_temp_tables("rf_top_cells")
        backend.replace_table("analytics", "phantom_inventory", phantom)
    return _stored_results(backend, answer)


def _stored_results(backend: Backend, answer: answers.Answer) -> dict[str, list[dict]]:
    """The stage's stored tables, as run_inventory returns them (each query kept: answers.py)."""
    top = answer.parameters["top"]
    tables = {"product_days": catalog.table("analytics.product_daily"), "products": staging_table("products")}
    lost, outs = catalog.table("analytics.lost_sales"), catalog.table("analytics.stockouts")
    by_product = lost.group_by(["rank", "product_id"]).aggregate(
        stockout_days=lost.stockout_days.sum(), lost_units=lost.lost_units.sum().round(2),
        lost_revenue=lost.lost_revenue.sum().round(2)).order_by("rank")
    top_table, stored_phantom = catalog.table("analytics.top_products"), catalog.table("analytics.phantom_inventory")
    queries = {
        "top_products": top_table.order_by("rank"),
        "stockouts": outs.order_by(["rank", "store_id"]),
        "lost_by_product": by_product,
        "lost_total": lost.aggregate(lost_units=lost.lost_units.sum().round(2),
                                     lost_revenue=lost.lost_revenue.sum().round(2)),
        "phantom_runs": stored_phantom.order_by(PHANTOM_ORDER),
        "most_returned": return_rates(RETURNS, tables["product_days"], tables["products"], "product_id", top=top),
    }
    return {name: answers.fetch(backend, answer, name, queries[name]) for name in answer.queries}
