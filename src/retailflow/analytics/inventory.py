"""Inventory vs sales: top sellers, how often they were out of stock, and the sales lost meanwhile.

A store-product-day is out of stock when its snapshot (stock on hand at opening) is 0.
Expected demand on such a day is learned only from the same store-product's in-stock days: the
mean units sold on in-stock days of the same weekday, or of all in-stock days when that weekday
has none. Lost units are summed over stock-out days and valued at the product's average
realised price at that store (the product's overall average where the store never sold it).

Outputs: analytics.top_products (one row per top product), analytics.stockouts and
analytics.lost_sales (one row per top product × store).
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from retailflow.analytics.sales import safe_ratio, sales_lines, store_product_days
from retailflow.backends import Backend
from retailflow.errors import UserError
from retailflow.tables import staging_table


def top_products(line_items: ir.Table, headers: ir.Table, products: ir.Table, *, top: int = 5) -> ir.Table:
    """One row per top-N product by units sold: units, revenue, average realised price and rank."""
    lines = sales_lines(line_items, headers, products)
    totals = lines.group_by(["product_id", "product_category"]).aggregate(
        units=lines.units.sum(), revenue=lines.revenue.sum())
    ranked = totals.mutate(rank=ibis.row_number().over(order_by=[totals.units.desc(), totals.revenue.desc(),
                                                                  totals.product_id]) + 1)
    named = ranked.join(products.select("product_id", "product_name"), "product_id")
    return named.filter(named["rank"] <= top).mutate(
        average_price=safe_ratio(named.revenue, named.units).round(2)).order_by("rank")


def _top_cells(line_items, headers, products, stores, inventory, top: int) -> ir.Table:
    lines = sales_lines(line_items, headers, products)
    cells = store_product_days(stores, products, lines, inventory)
    chosen = top_products(line_items, headers, products, top=top).select("product_id", "rank")
    return cells.join(chosen, "product_id").filter(lambda t: t.has_snapshot)


def stockouts(line_items, headers, products, stores, inventory, *, top: int = 5) -> ir.Table:
    """One row per top product × store with snapshots: days observed, days out of stock, % out of stock."""
    cells = _top_cells(line_items, headers, products, stores, inventory, top)
    grouped = cells.group_by(["rank", "product_id", "store_id"]).aggregate(
        days_observed=cells.count(), days_out_of_stock=(~cells.in_stock).ifelse(1, 0).sum())
    return grouped.mutate(
        out_of_stock_pct=(safe_ratio(grouped.days_out_of_stock, grouped.days_observed) * 100).round(2)
    ).order_by(["rank", "store_id"])


def lost_sales(line_items, headers, products, stores, inventory, *, top: int = 5) -> ir.Table:
    """One row per top product × store: stock-out days, expected (lost) units and revenue."""
    cells = _top_cells(line_items, headers, products, stores, inventory, top)
    stocked = cells.filter(cells.in_stock)
    same_weekday = stocked.group_by(["product_id", "store_id", "weekday"]).aggregate(
        weekday_rate=stocked.units.mean())
    any_day = stocked.group_by(["product_id", "store_id"]).aggregate(
        day_rate=stocked.units.mean(), store_price=safe_ratio(stocked.revenue.sum(), stocked.units.sum()))
    lines = sales_lines(line_items, headers, products)
    product_price = lines.group_by("product_id").aggregate(product_price=safe_ratio(lines.revenue.sum(),
                                                                                    lines.units.sum()))
    # Every top product × store with snapshots gets a row; only its stock-out days add lost units.
    cells = cells.left_join(same_weekday, ["product_id", "store_id", "weekday"]).select(
        cells, same_weekday.weekday_rate)
    out = ~cells.in_stock
    per_store = cells.group_by(["rank", "product_id", "store_id"]).aggregate(
        stockout_days=out.ifelse(1, 0).sum(),
        weekday_units=out.ifelse(cells.weekday_rate, ibis.null("float64")).sum(),
        days_without_weekday=(out & cells.weekday_rate.isnull()).ifelse(1, 0).sum())
    per_store = per_store.left_join(any_day, ["product_id", "store_id"]).select(
        per_store, any_day.day_rate, any_day.store_price)
    per_store = per_store.left_join(product_price, "product_id").select(per_store, product_price.product_price)
    lost_units = (per_store.weekday_units.fill_null(0)
                  + per_store.days_without_weekday * per_store.day_rate.fill_null(0))
    price = per_store.store_price.fill_null(per_store.product_price)
    return per_store.mutate(
        lost_units=lost_units.round(2),
        lost_revenue=(lost_units * price).round(2),
        method=ibis.cases((per_store.stockout_days == 0, "never out of stock"),
                          (per_store.day_rate.isnull(), "no in-stock days to learn from"),
                          else_="mean of in-stock days (same weekday where available)"),
    ).drop("weekday_units", "days_without_weekday").order_by(["rank", "store_id"])


def _inputs() -> dict[str, ir.Table]:
    return dict(line_items=staging_table("store_sales_line_items"), headers=staging_table("store_sales_header"),
                products=staging_table("products"), stores=staging_table("stores"),
                inventory=staging_table("inventory_daily"))


def run_inventory(backend: Backend, *, top: int = 5) -> dict[str, list[dict]]:
    """Materialise top products, stock-outs and lost sales; return them with per-product and overall totals."""
    if not backend.scalar("SELECT count(*) FROM staging.store_sales_line_items"):
        raise UserError("no staged sales yet: run `retailflow run DIR` (or ingest + validate) first")
    inputs = _inputs()
    sales_inputs = {key: inputs[key] for key in ("line_items", "headers", "products")}
    with backend.transaction():
        backend.replace_table("analytics", "top_products", top_products(**sales_inputs, top=top))
        backend.replace_table("analytics", "stockouts", stockouts(**inputs, top=top))
        backend.replace_table("analytics", "lost_sales", lost_sales(**inputs, top=top))
    lost = ibis.table(lost_sales(**inputs, top=top).schema(), name="lost_sales", database="analytics")
    by_product = lost.group_by(["rank", "product_id"]).aggregate(
        stockout_days=lost.stockout_days.sum(), lost_units=lost.lost_units.sum().round(2),
        lost_revenue=lost.lost_revenue.sum().round(2)).order_by("rank")
    outs = ibis.table(stockouts(**inputs, top=top).schema(), name="stockouts", database="analytics")
    top_table = ibis.table(top_products(**sales_inputs, top=top).schema(), name="top_products", database="analytics")
    return {
        "top_products": backend.fetch_dicts(top_table.order_by("rank")),
        "stockouts": backend.fetch_dicts(outs.order_by(["rank", "store_id"])),
        "lost_by_product": backend.fetch_dicts(by_product),
        "lost_total": backend.fetch_dicts(lost.aggregate(lost_units=lost.lost_units.sum().round(2),
                                                         lost_revenue=lost.lost_revenue.sum().round(2))),
    }
