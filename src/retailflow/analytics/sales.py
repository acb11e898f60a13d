"""Shared building blocks over staged sales: clean lines with their day, store and category, and the cells
sales are measured on.

A cell is a store-product-day the store offered the product. A store-day with inventory snapshots
offered the whole catalogue: each product is a cell, in stock unless its snapshot reads 0 or less (a
product without a snapshot that day counts as in stock: nothing says otherwise). A store-day without
any snapshot offered its observed assortment: the products the store sold within `window_days`
(ASSORTMENT_WINDOW_DAYS unless told) either side of the day, all in stock. So cells cost what the
snapshots and the sales do, never stores × catalogue × days: a year of 75,000 lines over 293 stores
and 20,764 products without snapshots would otherwise be 2.2 billion cells.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from retailflow.analytics import ASSORTMENT_WINDOW_DAYS
from retailflow.analytics.transactions import counted_transactions


def sales_lines(line_items: ir.Table, headers: ir.Table, products: ir.Table) -> ir.Table:
    """One row per staged line of a counted transaction (not a void): store, day, weekday (0 = Monday), product,
    category, units and revenue (negative for a returned line), list value, and whether the line gave its own
    discount.

    The list value is the amount plus the line's own discount_amount where the export gives one (the price the
    retailer itself says it took off), else the list price × units, else the line's own amount (an export without
    prices or discounts): its discount is then unknown and counted as none, never invented.
    """
    joined = line_items.join(counted_transactions(headers), "transaction_id").join(products, "product_id")
    revenue = joined.line_item_amount.cast("decimal(18, 2)")
    return joined.select(
        transaction_id=joined.transaction_id, store_id=joined.store_id, product_id=joined.product_id,
        product_category=joined.product_category, promotion_id=joined.promotion_id,
        sale_date=joined.transaction_date.date(), weekday=joined.transaction_date.day_of_week.index(),
        units=joined.quantity, revenue=revenue,
        list_value=(revenue + joined.discount_amount).cast("decimal(18, 2)").fill_null(
            (joined.unit_price * joined.quantity).cast("decimal(18, 2)")).fill_null(revenue),
        own_discount=joined.discount_amount.notnull(),
    )


def shifted(day: ir.DateValue, days: int | ir.IntegerValue) -> ir.DateValue:
    """`day` moved by `days` days (a number or an integer column; negative: back), typed DATE on every engine
    (DuckDB's date + interval is a timestamp, which a cast to date alone would not change: Ibis types the sum as a
    date already)."""
    interval = ibis.interval(days=days) if isinstance(days, int) else days.as_interval("D")
    return (day + interval).cast("timestamp").date()


def observed_assortment(lines: ir.Table, store_days: ir.Table, *,
                        window_days: int = ASSORTMENT_WINDOW_DAYS) -> ir.Table:
    """One row per store-day of `store_days` (store_id, sale_date) and product the store sold (`lines`) within
    `window_days` either side of it: store_id, product_id, sale_date."""
    sold = lines.semi_join(store_days.select("store_id").distinct(), "store_id")
    sold = sold.select("store_id", "product_id", "sale_date").distinct()
    previous = sold.sale_date.lag().over(group_by=[sold.store_id, sold.product_id], order_by=sold.sale_date)
    # Each sale day reaches the days its store-product's previous sale day did not, so every day is reached
    # once: no distinct over up to (2 × window_days + 1) rows per sale day.
    earliest = shifted(sold.sale_date, -window_days)
    spans = sold.select("store_id", "product_id", last=shifted(sold.sale_date, window_days), first=ibis.greatest(
        earliest, shifted(previous, window_days + 1).fill_null(earliest)))
    reached = spans.join(store_days, [spans.store_id == store_days.store_id, store_days.sale_date >= spans.first,
                                      store_days.sale_date <= spans.last])
    return reached.select(spans.store_id, spans.product_id, store_days.sale_date)


def store_product_days(stores: ir.Table, products: ir.Table, lines: ir.Table, inventory: ir.Table,
                       days: ir.Table | None = None, *, around: ir.Table | None = None,
                       window_days: int = ASSORTMENT_WINDOW_DAYS) -> ir.Table:
    """One row per cell (module docstring) on a trading day: units and revenue sold, whether the product had a
    snapshot that day and was in stock.

    Trading days are the days of `lines` unless `days` (one sale_date column) says otherwise. The observed
    assortments read `around` (default `lines`): the sales within `window_days` of the trading days.
    """
    days = lines.select("sale_date").distinct() if days is None else days
    store_ids = stores.select("store_id")
    snapshots = inventory.select(store_id=inventory.store_id, product_id=inventory.product_id,
                                 sale_date=inventory.snapshot_date, stock_on_hand=inventory.stock_on_hand)
    counted = (snapshots.select("store_id", "sale_date").distinct().semi_join(days, "sale_date")
               .semi_join(store_ids, "store_id"))
    catalogue = products.select("product_id", "product_category")
    whole_catalogue = counted.cross_join(catalogue)
    uncounted = store_ids.cross_join(days).anti_join(counted, ["store_id", "sale_date"])
    assortment = observed_assortment(lines if around is None else around, uncounted, window_days=window_days)
    assortment = assortment.join(catalogue, "product_id")
    offered = whole_catalogue.select("store_id", "product_id", "product_category", "sale_date").union(
        assortment.select("store_id", "product_id", "product_category", "sale_date"))
    sold = lines.group_by(["store_id", "product_id", "sale_date"]).aggregate(
        units=lines.units.sum(), revenue=lines.revenue.sum())
    cells = offered.left_join(sold, ["store_id", "product_id", "sale_date"]).select(
        offered.store_id, offered.product_id, offered.product_category, offered.sale_date,
        units=sold.units.fill_null(0), revenue=sold.revenue.fill_null(0))
    cells = cells.left_join(snapshots, ["store_id", "product_id", "sale_date"]).select(
        cells, has_snapshot=snapshots.stock_on_hand.notnull(),
        in_stock=(snapshots.stock_on_hand > 0).fill_null(True))
    return cells.mutate(weekday=cells.sale_date.day_of_week.index())


def safe_ratio(numerator: ir.NumericValue, denominator: ir.NumericValue) -> ir.NumericValue:
    """numerator / denominator as a float, NULL when the denominator is zero or missing."""
    return ibis.ifelse(denominator.fill_null(0) == 0, ibis.null("float64"),
                       numerator.cast("float64") / denominator.cast("float64"))
