"""Returns: what came back, where and how often, beside the net sales every other figure shows.

A returned line has a negative quantity (see the data model). It counts on the day it came back, at the
store that took it back; every other figure is net of it on that day. analytics.returns holds one row per
store, product and day with a return: units and amount returned, and the units sold that day. Return rates
divide the units returned by the units sold (gross, before returns) over the same store, product and days:
sold units are the net units of analytics.store_product_daily plus the units returned.

The inventory stage keeps analytics.returns day by day, like store_product_daily.
"""

from __future__ import annotations

import ibis.expr.types as ir

from retailflow import catalog
from retailflow.analytics.sales import safe_ratio

RETURNS = catalog.table("analytics.returns")


def returns_daily(lines: ir.Table) -> ir.Table:
    """One row per store, product and day with a returned line (`lines` from sales_lines): units and amount
    returned (positive numbers), units sold that day."""
    returned = lines.units < 0
    days = lines.group_by(["store_id", "product_id", "product_category", "sale_date"]).aggregate(
        returned_units=returned.ifelse(-lines.units, 0).sum().cast("int64"),
        returned_amount=returned.ifelse(-lines.revenue, 0).sum().cast("decimal(18, 2)"),
        sold_units=returned.ifelse(0, lines.units).sum().cast("int64"))
    return days.filter(days.returned_units > 0)


def return_rates(returns: ir.Table, net_days: ir.Table, products: ir.Table, by: str, *, top: int | None = None
                 ) -> ir.Table:
    """One row per `by` (product_id, product_category or store_id): units sold and returned, amount returned,
    return rate (% of units sold); most returned units first. `net_days` holds net units per day with a `by`
    column: analytics.product_daily for products and categories (a fiftieth of the store-days at 50 stores),
    analytics.store_product_daily for stores."""
    returned = returns.group_by(by).aggregate(returned_units=returns.returned_units.sum(),
                                             returned_amount=returns.returned_amount.sum())
    net = net_days.group_by(by).aggregate(net_units=net_days.units.sum())
    rows = returned.join(net, by).select(returned, sold_units=net.net_units + returned.returned_units)
    rows = rows.mutate(return_rate_pct=(safe_ratio(rows.returned_units, rows.sold_units) * 100).round(2))
    if by == "product_id":
        rows = rows.join(products.select("product_id", "product_name", "product_category"), "product_id")
    rows = rows.order_by([rows.returned_units.desc(), rows[by]])
    return rows.limit(top) if top else rows
