"""Promotion effectiveness: promoted sales against a weekday-adjusted, stock-aware baseline.

Method (also in the README): sales are measured per in-stock store-product-day ("cell"), so
stock-outs are excluded from both sides. A store-day with inventory snapshots offers the whole
catalogue (a product is out of stock when its snapshot reads 0 or less); a store-day without any
snapshot offers the store's observed assortment, the products it sold within 14 days either side
(`window_days`), all in stock (analytics.sales). For a category, the baseline rate is its units (and
revenue) per in-stock cell on days when no promotion touched the category, per weekday (all
non-promoted days when that weekday has none). A promotion's expected units on its days are
cells × baseline rate for each day's weekday; lift % = (promoted units / expected units − 1) × 100.
Overlaps: on a day several promotions cover a category, the day is credited to the one with
the largest discount (ties: lowest id) — the one whose price the lines carry — never to two.

Outputs: analytics.promotion_effectiveness, one row per promotion × category it covers;
analytics.promotion_daily, one row per category × trading day; analytics.promotion_discounts_daily,
the discount given away per promotion × category × day.

Incremental: the two daily tables are kept day by day (a run recomputes the days its new batches
cover, all of them when products, stores or promotions changed) and promotion_effectiveness is
computed from them, never from the staged sales. A sale also counts in the assortments of the
store-days without snapshots up to `window_days` away, so a run recomputes the days within
`window_days` of a changed day as well (where every store had snapshots, only the changed day),
reading the sales within `window_days` of those; a different `window_days` needs `rebuild`.
"""

from __future__ import annotations

import datetime as dt

import ibis
import ibis.expr.types as ir

from retailflow import dates
from retailflow.analytics.sales import ASSORTMENT_WINDOW_DAYS, safe_ratio, sales_lines, shifted, store_product_days
from retailflow.backends import Backend
from retailflow.errors import UserError
from retailflow.tables import staging_table


def _coverage(promotions: ir.Table, categories: ir.Table, days: ir.Table) -> ir.Table:
    """One row per category × day × covering promotion, with the one that applies ranked first."""
    covering = categories.cross_join(days).cross_join(promotions).filter(
        lambda t: (t.sale_date >= t.start_date) & (t.sale_date <= t.end_date)
        & ((t.applicable_category.upper() == "ALL") | (t.applicable_category == t.product_category)))
    window = ibis.window(group_by=[covering.product_category, covering.sale_date],
                         order_by=[covering.discount_percentage.desc(), covering.promotion_id])
    return covering.mutate(applies=ibis.row_number().over(window) == 0,
                           covering_count=covering.promotion_id.count().over(
                               group_by=[covering.product_category, covering.sale_date]))


def category_days(lines, products, promotions, stores, inventory, *, around: ir.Table | None = None,
                  window_days: int = ASSORTMENT_WINDOW_DAYS) -> ir.Table:
    """One row per category × trading day (`lines` from sales_lines): in-stock cells, units, revenue and the
    applying promotion; `around` (default `lines`) holds the sales within `window_days` of those days, which the
    observed assortments are read from."""
    cells = store_product_days(stores, products, lines, inventory, around=around, window_days=window_days)
    stocked = cells.filter(cells.in_stock)
    daily = stocked.group_by(["product_category", "sale_date", "weekday"]).aggregate(
        cells=stocked.count(), units=stocked.units.sum(), revenue=stocked.revenue.sum())
    coverage = _coverage(promotions, products.select("product_category").distinct(), lines.select("sale_date").distinct())
    applying = coverage.filter(coverage.applies).select("product_category", "sale_date", "promotion_id",
                                                        "covering_count")
    return daily.left_join(applying, ["product_category", "sale_date"]).select(
        daily, applying.promotion_id, covering_count=applying.covering_count.fill_null(0))


def discounts_daily(lines: ir.Table) -> ir.Table:
    """One row per day × promotion × category with promoted lines (`lines` from sales_lines): the discount given."""
    promoted = lines.filter(lines.promotion_id.notnull())
    return promoted.group_by(["sale_date", "promotion_id", "product_category"]).aggregate(
        discount_cost=(promoted.list_value - promoted.revenue).sum())


def promotion_effectiveness(days: ir.Table, discounts: ir.Table, products: ir.Table, promotions: ir.Table, *,
                            min_baseline_days: int = 5) -> ir.Table:
    """One row per promotion × covered category: promoted vs expected units and revenue, lift %, rank.

    `days` is category_days, `discounts` discounts_daily.
    """
    plain = days.filter(days.covering_count == 0)
    by_weekday = plain.group_by(["product_category", "weekday"]).aggregate(
        rate_units=plain.units.sum().cast("float64") / plain.cells.sum(),
        rate_revenue=plain.revenue.sum().cast("float64") / plain.cells.sum())
    overall = plain.group_by("product_category").aggregate(
        all_units=plain.units.sum().cast("float64") / plain.cells.sum(),
        all_revenue=plain.revenue.sum().cast("float64") / plain.cells.sum(),
        baseline_days=plain.sale_date.nunique(), baseline_units=plain.units.sum(),
        baseline_revenue=plain.revenue.sum())
    promoted = days.filter(days.promotion_id.notnull())
    promoted = promoted.left_join(by_weekday, ["product_category", "weekday"]).select(
        promoted, by_weekday.rate_units, by_weekday.rate_revenue)
    promoted = promoted.left_join(overall, "product_category").select(promoted, overall.all_units, overall.all_revenue)
    promoted = promoted.mutate(
        expected_units=promoted.cells * promoted.rate_units.fill_null(promoted.all_units),
        expected_revenue=promoted.cells * promoted.rate_revenue.fill_null(promoted.all_revenue))
    measured = promoted.group_by(["promotion_id", "product_category"]).aggregate(
        promoted_units=promoted.units.sum(), promoted_revenue=promoted.revenue.sum(),
        expected_units=promoted.expected_units.sum(), expected_revenue=promoted.expected_revenue.sum(),
        days_observed=promoted.sale_date.nunique(),
        overlap_days=(promoted.covering_count > 1).ifelse(1, 0).sum())
    discounts = discounts.group_by(["promotion_id", "product_category"]).aggregate(
        discount_cost=discounts.discount_cost.sum())

    categories = products.select("product_category").distinct()
    covered = promotions.cross_join(categories).filter(
        lambda t: (t.applicable_category.upper() == "ALL") | (t.applicable_category == t.product_category))
    rows = (covered.left_join(measured, ["promotion_id", "product_category"])
            .select(covered.promotion_id, covered.promotion_name, covered.product_category, covered.start_date,
                    covered.end_date, covered.discount_percentage, measured.promoted_units, measured.promoted_revenue,
                    measured.expected_units, measured.expected_revenue, measured.days_observed,
                    measured.overlap_days))
    rows = rows.left_join(overall, "product_category").select(
        rows, overall.baseline_days, overall.baseline_units, overall.baseline_revenue)
    rows = rows.left_join(discounts, ["promotion_id", "product_category"]).select(rows, discounts.discount_cost)
    rows = rows.mutate(
        promoted_units=rows.promoted_units.fill_null(0), promoted_revenue=rows.promoted_revenue.fill_null(0),
        days_observed=rows.days_observed.fill_null(0), overlap_days=rows.overlap_days.fill_null(0),
        baseline_days=rows.baseline_days.fill_null(0), discount_cost=rows.discount_cost.fill_null(0))
    rows = rows.mutate(
        lift_units_pct=((safe_ratio(rows.promoted_units, rows.expected_units) - 1) * 100).round(2),
        lift_revenue_pct=((safe_ratio(rows.promoted_revenue, rows.expected_revenue) - 1) * 100).round(2),
        incremental_units=(rows.promoted_units - rows.expected_units).round(2),
        incremental_revenue=(rows.promoted_revenue.cast("float64") - rows.expected_revenue).round(2),
        status=ibis.cases(
            (rows.days_observed == 0, "no sales in window"),
            (rows.baseline_days < min_baseline_days, "insufficient data"),
            (rows.expected_units.fill_null(0) == 0, "insufficient data"),
            else_="ok"),
        expected_units=rows.expected_units.round(2), expected_revenue=rows.expected_revenue.round(2))

    eligible = rows.filter(rows.status == "ok")
    totals = eligible.group_by("promotion_id").aggregate(
        promotion_lift_pct=((eligible.promoted_units.sum().cast("float64") / eligible.expected_units.sum() - 1)
                            * 100).round(2))
    totals = totals.mutate(rank=ibis.dense_rank().over(order_by=[totals.promotion_lift_pct.desc(),
                                                                  totals.promotion_id]) + 1)
    return rows.left_join(totals, "promotion_id").select(rows, totals.promotion_lift_pct, totals.rank).order_by(
        [ibis._.rank.asc(nulls_first=False), "promotion_id", "product_category"])


def promotion_daily(days: ir.Table) -> ir.Table:
    """One row per category × trading day (category_days): units and revenue per in-stock cell, the applying promotion."""
    return days.mutate(units_per_cell=safe_ratio(days.units, days.cells),
                       promoted=days.promotion_id.notnull()).order_by(["product_category", "sale_date"])


STAGE = "promotions"
#: The masters the daily tables are built from: a change to one recomputes every day.
MASTERS = ("products", "stores", "promotion_details")
#: The temporary table of the days a run recomputes.
RECOMPUTED_DAYS = "rf_promotion_days"


def within(days: ir.Table | dates.DateRange | None, window_days: int) -> ir.Table | dates.DateRange | None:
    """The dates at most `window_days` from one of `days` (a DateRange, or a table of business_date; None: every
    date)."""
    if days is None:
        return None
    if isinstance(days, dates.DateRange):
        reach = dt.timedelta(days=window_days)
        return dates.DateRange(days.first and days.first - reach, days.last and days.last + reach)
    return ibis.union(*(days.select(business_date=shifted(days.business_date, offset))
                        for offset in range(-window_days, window_days + 1)), distinct=True)


def affected_days(changed: ir.Table | dates.DateRange | None, *,
                  window_days: int = ASSORTMENT_WINDOW_DAYS) -> ir.Table | dates.DateRange | None:
    """The dates whose cells a change of `changed` reaches: those, and the dates within `window_days` on which a
    store had no snapshot (its observed assortment reads the sales around it); all of a backfill's window."""
    if not isinstance(changed, ir.Table):
        return within(changed, window_days)
    around, stores, inventory = within(changed, window_days), staging_table("stores"), staging_table("inventory_daily")
    counted = inventory.semi_join(around, inventory.snapshot_date == around.business_date).select(
        "store_id", business_date=inventory.snapshot_date).distinct()
    uncounted = stores.select("store_id").cross_join(around).anti_join(counted, ["store_id", "business_date"])
    return changed.select("business_date").union(uncounted.select("business_date"), distinct=True)


def inputs(days: ir.Table | dates.DateRange | None = None, *,
           window_days: int = ASSORTMENT_WINDOW_DAYS) -> dict[str, ir.Table]:
    """The stage's inputs over staging, the sales and snapshots of `days` only (every day for None; the
    assortments read the sales within `window_days` as well): category_days, sales_lines, products, promotions."""
    products, promotions = staging_table("products"), staging_table("promotion_details")
    headers, inventory = staging_table("store_sales_header"), staging_table("inventory_daily")
    line_items = staging_table("store_sales_line_items")
    lines = sales_lines(line_items, dates.on_days(headers, headers.transaction_date, days), products)
    around = None if days is None else sales_lines(
        line_items, dates.on_days(headers, headers.transaction_date, within(days, window_days)), products)
    category = category_days(lines, products, promotions, staging_table("stores"),
                             dates.on_days(inventory, inventory.snapshot_date, days), around=around,
                             window_days=window_days)
    return dict(days=category, lines=lines, products=products, promotions=promotions)


def stored_inputs() -> dict[str, ir.Table]:
    """promotion_effectiveness's inputs as the stage stores them: the two daily tables, products, promotions."""
    days = ibis.table(promotion_daily(inputs()["days"]).schema(), name="promotion_daily", database="analytics")
    discounts = ibis.table(discounts_daily(inputs()["lines"]).schema(), name="promotion_discounts_daily",
                           database="analytics")
    return dict(days=days, discounts=discounts, products=staging_table("products"),
                promotions=staging_table("promotion_details"))


def run_promotions(backend: Backend, *, top: int = 3, min_baseline_days: int = 5,
                   days: dates.DateRange | None = None, rebuild: bool = False,
                   window_days: int = ASSORTMENT_WINDOW_DAYS) -> list[dict]:
    """Bring the daily tables up to date for the changed days (`days`; every day on the first run, with `rebuild`
    or after a master change) and those their sales reach (module docstring), re-derive promotion_effectiveness;
    return the top N ranked rows plus unranked ones."""
    if not backend.scalar("SELECT count(*) FROM staging.store_sales_line_items"):
        raise UserError("no staged sales yet: run `retailflow run DIR` (or ingest + validate) first")
    with backend.transaction():
        latest = dates.latest_change(backend)
        changed = dates.days_to_recompute(backend, STAGE, days, rebuild, MASTERS)
        recomputed = affected_days(changed, window_days=window_days)
        if isinstance(recomputed, ir.Table):
            # Read by every statement below, and widened again for the sales around them: computed once.
            recomputed = backend.create_temp_table(RECOMPUTED_DAYS, recomputed)
        tables = inputs(recomputed, window_days=window_days)
        dates.replace_days(backend, "analytics", "promotion_daily", "sale_date", promotion_daily(tables["days"]),
                           recomputed)
        dates.replace_days(backend, "analytics", "promotion_discounts_daily", "sale_date",
                           discounts_daily(tables["lines"]), recomputed)
        backend.execute(f"DROP TABLE IF EXISTS {RECOMPUTED_DAYS}")
        stored = stored_inputs()
        backend.replace_table("analytics", "promotion_effectiveness", promotion_effectiveness(
            **stored, min_baseline_days=min_baseline_days))
        dates.set_mark(backend, STAGE, latest, days, changed)
    table = ibis.table(promotion_effectiveness(**stored).schema(), name="promotion_effectiveness",
                       database="analytics")
    return backend.fetch_dicts(table.filter((table["rank"] <= top) | table["rank"].isnull())
                               .order_by([table["rank"].asc(nulls_first=False), "promotion_id", "product_category"]))
