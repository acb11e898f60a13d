"""Each customer's purchases, kept day by day: what balances, RFM and churn read instead of every staged header.

analytics.customer_daily holds one row per customer and business day with a staged sale (transactions,
spend); it is replaced date by date like the other per-day tables. analytics.customer_purchases holds
one row per customer with a staged sale: frequency (transactions), monetary (spend), purchase days and
the first and last of them. A run recomputes the purchases of the customers a changed day touches (a
sale on it before or after the change: a restated day may remove a customer's only sale) from their
daily rows, so a night costs about its own customers, not the history (at 10M line items a distinct
count of every staged transaction per customer was most of the RFM stage).
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from retailflow import catalog, incremental, marks
from retailflow.analytics.transactions import counted_transactions
from retailflow.backends import Backend
from retailflow.tables import staging_table

STAGE = "purchases"
DAILY = catalog.table("analytics.customer_daily")
PURCHASES = catalog.table("analytics.customer_purchases")
TOUCHED = "rf_touched_customers"


def customer_days(headers: ir.Table) -> ir.Table:
    """One row per loyalty customer and day of `headers` (staged sales headers): purchases and net spend.

    `transactions` counts purchases (a net total above 0: a sale, or an exchange that cost the customer money);
    `spend` is net of returns, which count on their own day. Anonymous sales and voids are no customer's.
    """
    staged = counted_transactions(headers)
    staged = staged.filter(staged.customer_id.notnull())
    staged = staged.mutate(sale_date=staged.transaction_date.date())
    return staged.group_by(["customer_id", "sale_date"]).aggregate(
        transactions=(staged.total_amount > 0).ifelse(1, 0).sum().cast("int64"),
        spend=staged.total_amount.sum().cast("decimal(18, 2)"))


def purchases(daily: ir.Table) -> ir.Table:
    """One row per customer of `daily` (customer_days): purchases, net spend, purchase days, first and last of them.

    A day of returns only is no purchase day: frequency, recency and the churn model see purchases alone."""
    bought = daily.transactions > 0
    return daily.group_by("customer_id").aggregate(
        frequency=daily.transactions.sum(), monetary=daily.spend.sum().cast("decimal(18, 2)"),
        purchase_days=bought.ifelse(1, 0).sum().cast("int64"),
        first_day=bought.ifelse(daily.sale_date, ibis.null("date")).min(),
        last_day=bought.ifelse(daily.sale_date, ibis.null("date")).max())


def update(backend: Backend, days: incremental.DateRange | None = None, rebuild: bool = False) -> None:
    """Bring customer_daily and customer_purchases in line with the staged headers, in the caller's transaction:
    the changed days (`days` when given, every day on the first run or with `rebuild`)."""
    kept = backend.has_table("analytics", "customer_purchases")
    if kept and days is None and not rebuild and marks.up_to_date(backend, STAGE):
        return
    with incremental.window(backend, STAGE, days=days, rebuild=rebuild) as changed:
        if changed is incremental.EVERY_DAY or not kept:
            headers = staging_table("store_sales_header")
            backend.replace_table("analytics", "customer_daily", customer_days(headers))
            backend.replace_table("analytics", "customer_purchases", purchases(DAILY))
        else:
            _recompute(backend, changed)


def _recompute(backend: Backend, changed: incremental.Days) -> None:
    """Replace the changed days' customer_daily rows and the purchases of every customer they touch."""
    def on_changed_days() -> ir.Table:
        return incremental.on_days(DAILY, DAILY.sale_date, changed).select("customer_id")

    headers = staging_table("store_sales_header")
    # The customers of the changed days as they were (kept aside) and as they are now.
    before = backend.create_temp_table(TOUCHED, on_changed_days())
    incremental.replace_days(backend, "analytics", "customer_daily", "sale_date",
                             customer_days(incremental.on_days(headers, headers.transaction_date, changed)), changed)
    touched = before.union(on_changed_days(), distinct=True)
    backend.delete_matching(PURCHASES, touched)
    backend.insert("analytics", "customer_purchases", purchases(DAILY.semi_join(touched, "customer_id")))
    backend.drop_temp_tables(TOUCHED)
