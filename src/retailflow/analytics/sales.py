"""Shared building blocks over staged sales: clean lines with their day, store and category."""

from __future__ import annotations

import ibis
import ibis.expr.types as ir


def sales_lines(line_items: ir.Table, headers: ir.Table, products: ir.Table) -> ir.Table:
    """One row per staged line: store, day, weekday (0 = Monday), product, category, units, revenue, list value."""
    joined = line_items.join(headers, "transaction_id").join(products, "product_id")
    return joined.select(
        transaction_id=joined.transaction_id, store_id=joined.store_id, product_id=joined.product_id,
        product_category=joined.product_category, promotion_id=joined.promotion_id,
        sale_date=joined.transaction_date.date(), weekday=joined.transaction_date.day_of_week.index(),
        units=joined.quantity, revenue=joined.line_item_amount.cast("decimal(18, 2)"),
        list_value=(joined.unit_price * joined.quantity).cast("decimal(18, 2)"),
    )


def store_product_days(stores: ir.Table, products: ir.Table, lines: ir.Table, inventory: ir.Table,
                       days: ir.Table | None = None) -> ir.Table:
    """One row per store, product and trading day: units and revenue sold, and whether it was in stock.

    Trading days are the days of `lines` unless `days` (one sale_date column) says otherwise.
    A store-product-day without an inventory snapshot counts as in stock (nothing says otherwise).
    """
    days = lines.select("sale_date").distinct() if days is None else days
    grid = (stores.select("store_id").cross_join(products.select("product_id", "product_category"))
            .cross_join(days))
    sold = lines.group_by(["store_id", "product_id", "sale_date"]).aggregate(
        units=lines.units.sum(), revenue=lines.revenue.sum())
    snapshots = inventory.select(store_id=inventory.store_id, product_id=inventory.product_id,
                                 sale_date=inventory.snapshot_date, stock_on_hand=inventory.stock_on_hand)
    cells = grid.left_join(sold, ["store_id", "product_id", "sale_date"]).select(
        grid.store_id, grid.product_id, grid.product_category, grid.sale_date,
        units=sold.units.fill_null(0), revenue=sold.revenue.fill_null(0))
    cells = cells.left_join(snapshots, ["store_id", "product_id", "sale_date"]).select(
        cells, has_snapshot=snapshots.stock_on_hand.notnull(),
        in_stock=(snapshots.stock_on_hand > 0).fill_null(True))
    return cells.mutate(weekday=cells.sale_date.day_of_week.index())


def safe_ratio(numerator: ir.NumericValue, denominator: ir.NumericValue) -> ir.NumericValue:
    """numerator / denominator as a float, NULL when the denominator is zero or missing."""
    return ibis.ifelse(denominator.fill_null(0) == 0, ibis.null("float64"),
                       numerator.cast("float64") / denominator.cast("float64"))
