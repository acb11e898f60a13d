"""Promotion effectiveness: promoted sales against a weekday-adjusted, stock-aware baseline.

Method (also in docs/explanation/analytics.md): sales are measured per in-stock store-product-day ("cell"), so
stock-outs are excluded from both sides. A store-day with inventory snapshots offers the whole
catalogue (a product is out of stock when its snapshot reads 0 or less); a store-day without any
snapshot offers the store's observed assortment, the products it sold within 14 days either side
(`window_days`), all in stock (analytics.sales).

A promotion covers cells on its days: a category promotion the cells of its category (ALL: of every
category), a product promotion those of the products it lists; either at the stores it lists (every store
when it lists none). A cell several promotions cover is credited to the one with the largest discount (one
without a percentage, a display or mailer placement, below any; ties: lowest id) — the one whose price
the lines carry — never to two, whichever their scope.

A promotion is measured at its scope: per category it covers, or per product it lists. The baseline rate
of a category (of a product) is its units (and revenue) per in-stock cell that no promotion covered, per
weekday (all such cells when that weekday has none). A promotion's expected units are the cells credited
to it × the baseline rate of each day's weekday; lift % = (promoted units / expected units − 1) × 100.

Outputs: analytics.promotion_effectiveness, one row per promotion × category it covers (× product it lists,
product_id set, for a product promotion); analytics.promotion_daily, one row per category × trading day ×
credited promotion (NULL: the cells no promotion covered), with the cells of each product a product promotion
lists counted apart (product_id set), so a category's day is the sum of its rows; and
analytics.promotion_discounts_daily, the discount given away per promotion × category (× product) × day.

Incremental: the two daily tables are kept day by day (a run recomputes the days its new batches
cover, all of them when products, stores or promotions changed, or when the tables were made by a release
with other columns) and promotion_effectiveness is computed from them, never from the staged sales. A sale
also counts in the assortments of the store-days without snapshots up to `window_days` away, so a run
recomputes the days within `window_days` of a changed day as well (where every store had snapshots, only the
changed day), reading the sales within `window_days` of those; a different `window_days` needs `rebuild`.
"""

from __future__ import annotations

import contextlib
import datetime as dt

import ibis
import ibis.expr.types as ir

from retailflow import catalog, incremental, marks
from retailflow.analytics import answers
from retailflow.analytics.sales import ASSORTMENT_WINDOW_DAYS, safe_ratio, sales_lines, shifted, store_product_days
from retailflow.backends import Backend
from retailflow.errors import UserError
from retailflow.id_lists import JOINED, holds, normalised
from retailflow.tables import Store, as_is, indexed_store, staging_table

CATEGORY, PRODUCT = "category", "product"
def _scoped(promotions: ir.Table) -> ir.Table:
    """`promotions` with their `scope` (category or product) and `priority`, the order in which they win a cell:
    the discount, a promotion without one (a display or mailer placement) below any."""
    return promotions.mutate(scope=ibis.ifelse(promotions.applicable_products.notnull(), PRODUCT, CATEGORY),
                             priority=promotions.discount_percentage.fill_null(-1))


def _listed(promotions: ir.Table, column: str, keys: ir.Table, key: str) -> ir.Table:
    """One row per promotion × `key` of `keys` (unique by it) that its list `column` names: promotion_id, `key`."""
    named = promotions.filter(promotions[column].notnull())
    named = named.select("promotion_id", _ids=normalised(named[column]))
    keys = keys.select(key)
    # A single id (a product placed at one store, as grocery exports have them) joins on equality; only a
    # list is matched by containment, which compares it with every key (not every engine splits text).
    single = named.filter(~named._ids.contains(JOINED))
    several = named.filter(named._ids.contains(JOINED))
    one = single.join(keys, single._ids == keys[key]).select(single.promotion_id, keys[key])
    many = several.join(keys, holds(several._ids, keys[key])).select(several.promotion_id, keys[key])
    return one.union(many)


def listed_products(promotions: ir.Table, products: ir.Table) -> ir.Table:
    """One row per product promotion × product it lists: promotion_id, product_id."""
    return _listed(promotions.filter(promotions.applicable_products.notnull()), "applicable_products", products,
                   "product_id")


def _first(covering: ir.Table, cell: list[str]) -> ir.Table:
    """Per `cell` of `covering` (one row per cell × covering promotion with its priority): the promotion that
    wins it, its priority and how many cover it."""
    window = ibis.window(group_by=[covering[name] for name in cell],
                         order_by=[covering.priority.desc(), covering.promotion_id])
    ranked = covering.mutate(_rank=ibis.row_number().over(window),
                             covering=covering.promotion_id.count().over(group_by=[covering[name] for name in cell]))
    return ranked.filter(ranked._rank == 0).select(*cell, "promotion_id", "priority", "covering")


def _in_category(table: ir.Table) -> ir.BooleanValue:
    """Whether the promotion's category (ALL: every one) is the row's product_category."""
    return (table.applicable_category.upper() == "ALL") | (table.applicable_category == table.product_category)


def _category_coverage(promotions: ir.Table, categories: ir.Table, days: ir.Table) -> ir.Table:
    """One row per category × day a category promotion running at every store covers (`promotions` from _scoped):
    the first-ranked one, its priority and how many cover it."""
    everywhere = promotions.filter((promotions.scope == CATEGORY) & promotions.applicable_stores.isnull())
    covering = categories.cross_join(days).cross_join(everywhere).filter(
        lambda t: (t.sale_date >= t.start_date) & (t.sale_date <= t.end_date) & _in_category(t))
    return _first(covering, ["product_category", "sale_date"])


def covered_cells(promotions: ir.Table, products: ir.Table, stores: ir.Table, days: ir.Table) -> ir.Table:
    """One row per store × product × day of `days` (sale_date) covered by a product promotion or a category
    promotion naming stores: the first-ranked of those (promotion_id), its priority and how many cover it."""
    promotions = _scoped(promotions)
    placed = promotions.filter((promotions.scope == PRODUCT) | promotions.applicable_stores.notnull())
    on_days = placed.cross_join(days).filter(lambda t: (t.sale_date >= t.start_date) & (t.sale_date <= t.end_date))
    of_category = placed.filter(placed.scope == CATEGORY).cross_join(products.select("product_id", "product_category"))
    items = listed_products(placed, products).union(of_category.filter(_in_category(of_category)).select(
        "promotion_id", "product_id"))
    everywhere = placed.filter(placed.applicable_stores.isnull()).select("promotion_id").cross_join(
        stores.select("store_id"))
    at_stores = _listed(placed, "applicable_stores", stores, "store_id").union(everywhere)
    covering = (on_days.select("promotion_id", "sale_date", "priority")
                .join(items, "promotion_id").join(at_stores, "promotion_id"))
    return _first(covering, ["store_id", "product_id", "sale_date"])


def _cell_credit(rows: ir.Table, covered: ir.Table) -> ir.Table:
    """`rows` (store_id, product_id, sale_date) with their cell's entry of covered_cells: _cell_id,
    _cell_priority, _cell_covering (NULL where none)."""
    by_cell = covered.select(_store=covered.store_id, _product=covered.product_id, _cell_day=covered.sale_date,
                             _cell_id=covered.promotion_id, _cell_priority=covered.priority,
                             _cell_covering=covered.covering)
    joined = rows.left_join(by_cell, [rows.store_id == by_cell._store, rows.product_id == by_cell._product,
                                      rows.sale_date == by_cell._cell_day])
    return joined.select(rows, "_cell_id", "_cell_priority", "_cell_covering")


def _credit(rows: ir.Table, promotions: ir.Table, products: ir.Table, days: ir.Table) -> ir.Table:
    """`rows` from _cell_credit (product_category and sale_date, one of `days`) with the promotion credited with
    their cells, `credited_promotion_id`, and `covering_count`: the first, in the same order, of the cell's own
    and its category-day's."""
    by_category = _category_coverage(_scoped(promotions), products.select("product_category").distinct(), days)
    by_category = by_category.select(_category=by_category.product_category, _category_day=by_category.sale_date,
                                     _category_id=by_category.promotion_id, _category_priority=by_category.priority,
                                     _category_covering=by_category.covering)
    joined = rows.left_join(by_category, [rows.product_category == by_category._category,
                                          rows.sale_date == by_category._category_day])
    cell_wins = joined._cell_id.notnull() & (
        joined._category_id.isnull() | (joined._cell_priority > joined._category_priority)
        | ((joined._cell_priority == joined._category_priority) & (joined._cell_id < joined._category_id)))
    kept = [name for name in rows.columns if name not in ("_cell_id", "_cell_priority", "_cell_covering")]
    return joined.select(*kept, credited_promotion_id=ibis.ifelse(cell_wins, joined._cell_id, joined._category_id),
                         covering_count=joined._category_covering.fill_null(0) + joined._cell_covering.fill_null(0))


def credited(rows: ir.Table, promotions: ir.Table, products: ir.Table, covered: ir.Table, days: ir.Table) -> ir.Table:
    """`rows` (store_id, product_id, product_category and sale_date, one of `days`) with the promotion credited
    with each row's cell, `credited_promotion_id` (NULL: none covers it), and `covering_count`, how many do;
    `covered` is covered_cells.

    The promotions covering whole categories at every store are ranked per category-day, the others per cell
    (covered_cells: one of every category promotion would hold every cell they cover); the cell takes the first
    of the two in the same order."""
    return _credit(_cell_credit(rows, covered), promotions, products, days)


def credited_days(lines, products, promotions, stores, inventory, covered, *, around: ir.Table | None = None,
                  window_days: int = ASSORTMENT_WINDOW_DAYS) -> ir.Table:
    """One row per category × trading day × credited promotion (`lines` from sales_lines, `covered` from
    covered_cells), the cells of each product a product promotion lists apart (product_id set): in-stock cells,
    units, revenue and the largest number of promotions covering one of them. `around` (default `lines`) holds
    the sales within `window_days` of those days, which the observed assortments are read from."""
    cells = store_product_days(stores, products, lines, inventory, around=around, window_days=window_days)
    stocked = _cell_credit(cells.filter(cells.in_stock), covered)
    named = listed_products(promotions, products).select(_named="product_id").distinct()
    stocked = stocked.left_join(named, stocked.product_id == named._named).select(stocked, named._named)
    # A category-day's cells share its category promotions: those are weighed per group of cells alike, which
    # are few, not per cell (DuckDB, misjudging their count, hashed the cells for that join: 0.9 of 2.9 s).
    alike = stocked.group_by(["product_category", "sale_date", "weekday", "_named", "_cell_id", "_cell_priority",
                              "_cell_covering"]).aggregate(cells=stocked.count(), units=stocked.units.sum(),
                                                           revenue=stocked.revenue.sum())
    alike = _credit(alike, promotions, products, lines.select("sale_date").distinct())
    daily = alike.group_by(["product_category", "sale_date", "weekday", "credited_promotion_id", "_named"]).aggregate(
        cells=alike.cells.sum(), units=alike.units.sum(), revenue=alike.revenue.sum(),
        covering_count=alike.covering_count.max())
    return daily.select("product_category", "sale_date", "weekday", "cells", "units", "revenue",
                        promotion_id=daily.credited_promotion_id, covering_count=daily.covering_count,
                        product_id=daily._named)


def discounts_daily(lines: ir.Table, promotions: ir.Table, products: ir.Table, covered: ir.Table) -> ir.Table:
    """One row per day × promotion × category (× product for a product promotion) with promoted lines (`lines`
    from sales_lines, `covered` from covered_cells): the discount given.

    A line is promoted by the promotion it names; a line naming none but giving its own discount (an export
    whose lines carry no promotion id, such as a grocery chain's) by the promotion credited with its cell.
    """
    naming = lines.filter(lines.promotion_id.notnull())
    by_cell = lines.filter(lines.promotion_id.isnull() & lines.own_discount)
    by_cell = credited(by_cell, promotions, products, covered, by_cell.select("sale_date").distinct())
    by_cell = by_cell.filter(by_cell.credited_promotion_id.notnull()).mutate(
        promotion_id=by_cell.credited_promotion_id)
    promoted = naming.union(by_cell.select(*naming.columns))
    scopes = _scoped(promotions).select("promotion_id", "scope")
    promoted = promoted.left_join(scopes, "promotion_id").select(promoted, scopes.scope)
    promoted = promoted.mutate(product_id=ibis.ifelse(promoted.scope == PRODUCT, promoted.product_id,
                                                      ibis.null("string")))
    daily = promoted.group_by(["sale_date", "promotion_id", "product_category", "product_id"]).aggregate(
        discount_cost=(promoted.list_value - promoted.revenue).sum())
    return daily.select("sale_date", "promotion_id", "product_category", "discount_cost", "product_id")


def _by_subject(table: ir.Table, scope: ir.StringValue) -> ir.Table:
    """`table` (rows with product_category and product_id) with the `subject` a promotion of `scope` is measured
    on: the product for a product promotion, else the category."""
    return table.mutate(scope=scope, subject=ibis.ifelse(scope == PRODUCT, table.product_id, table.product_category))


def promotion_effectiveness(days: ir.Table, discounts: ir.Table, products: ir.Table, promotions: ir.Table, *,
                            min_baseline_days: int = 5) -> ir.Table:
    """One row per promotion × covered category, or × listed product for a product promotion: promoted vs
    expected units and revenue, lift %, rank.

    `days` is credited_days, `discounts` discounts_daily.
    """
    scoped = _scoped(promotions)
    plain = days.filter(days.covering_count == 0)
    # A cell no promotion covered is a baseline cell of its category, and of its product when a promotion lists it.
    plain = _by_subject(plain, ibis.literal(CATEGORY)).union(
        _by_subject(plain.filter(plain.product_id.notnull()), ibis.literal(PRODUCT)))
    by_weekday = plain.group_by(["scope", "subject", "weekday"]).aggregate(
        rate_units=plain.units.sum().cast("float64") / plain.cells.sum(),
        rate_revenue=plain.revenue.sum().cast("float64") / plain.cells.sum())
    overall = plain.group_by(["scope", "subject"]).aggregate(
        all_units=plain.units.sum().cast("float64") / plain.cells.sum(),
        all_revenue=plain.revenue.sum().cast("float64") / plain.cells.sum(),
        baseline_days=plain.sale_date.nunique(), baseline_units=plain.units.sum(),
        baseline_revenue=plain.revenue.sum())
    promoted = days.filter(days.promotion_id.notnull())
    promoted = promoted.join(scoped.select("promotion_id", _scope="scope"), "promotion_id")
    promoted = _by_subject(promoted, promoted._scope)
    promoted = promoted.left_join(by_weekday, ["scope", "subject", "weekday"]).select(
        promoted, by_weekday.rate_units, by_weekday.rate_revenue)
    promoted = promoted.left_join(overall, ["scope", "subject"]).select(promoted, overall.all_units,
                                                                        overall.all_revenue)
    promoted = promoted.mutate(
        expected_units=promoted.cells * promoted.rate_units.fill_null(promoted.all_units),
        expected_revenue=promoted.cells * promoted.rate_revenue.fill_null(promoted.all_revenue))
    measured = promoted.group_by(["promotion_id", "subject"]).aggregate(
        promoted_units=promoted.units.sum(), promoted_revenue=promoted.revenue.sum(),
        expected_units=promoted.expected_units.sum(), expected_revenue=promoted.expected_revenue.sum(),
        days_observed=promoted.sale_date.nunique(),
        overlap_days=(promoted.covering_count > 1).ifelse(promoted.sale_date, ibis.null("date")).nunique())
    discounts = discounts.mutate(subject=discounts.product_id.fill_null(discounts.product_category))
    discounts = discounts.group_by(["promotion_id", "subject"]).aggregate(discount_cost=discounts.discount_cost.sum())

    categories = products.select("product_category").distinct()
    by_category = scoped.filter(scoped.scope == CATEGORY).cross_join(categories)
    by_category = by_category.filter(_in_category(by_category))
    by_product = scoped.join(listed_products(scoped, products), "promotion_id").join(
        products.select("product_id", "product_category"), "product_id")
    columns = ["promotion_id", "promotion_name", "product_category", "product_id", "start_date", "end_date",
               "discount_percentage", "scope"]
    subjects = by_category.mutate(product_id=ibis.null("string")).select(*columns).union(by_product.select(*columns))
    subjects = _by_subject(subjects, subjects.scope)
    rows = (subjects.left_join(measured, ["promotion_id", "subject"])
            .select(subjects.promotion_id, subjects.promotion_name, subjects.product_category, subjects.product_id,
                    subjects.start_date, subjects.end_date, subjects.discount_percentage, subjects.scope,
                    subjects.subject, measured.promoted_units, measured.promoted_revenue, measured.expected_units,
                    measured.expected_revenue, measured.days_observed, measured.overlap_days))
    rows = rows.left_join(overall, ["scope", "subject"]).select(
        rows, overall.baseline_days, overall.baseline_units, overall.baseline_revenue)
    rows = rows.left_join(discounts, ["promotion_id", "subject"]).select(rows, discounts.discount_cost)
    rows = rows.drop("scope", "subject")
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

    # A promotion's lift over its eligible rows, beside each of its rows (a window: a total joined back read the
    # rows twice, and Spark computed them twice); NULL without any.
    eligible = rows.status == "ok"
    per_promotion = ibis.window(group_by=rows.promotion_id)
    rows = rows.mutate(promotion_lift_pct=((
        eligible.ifelse(rows.promoted_units, ibis.null("int64")).sum().over(per_promotion).cast("float64")
        / eligible.ifelse(rows.expected_units, ibis.null("float64")).sum().over(per_promotion).nullif(0) - 1)
        * 100).round(2))
    # Ranked among the promotions with a lift (expected units that round to 0.00 give none, and no division by
    # zero on PostgreSQL): those sort first whichever end an engine puts NULLs at.
    unranked = rows.promotion_lift_pct.isnull()
    rank = ibis.dense_rank().over(order_by=[unranked, rows.promotion_lift_pct.desc(), rows.promotion_id]) + 1
    rows = rows.mutate(rank=unranked.ifelse(ibis.null("int64"), rank))
    return rows.order_by([rows.rank.asc(nulls_first=False), "promotion_id", "product_category", "product_id"])


def promotion_daily(days: ir.Table) -> ir.Table:
    """One row per category × trading day × credited promotion, a listed product's cells apart (credited_days):
    units and revenue per in-stock cell, the credited promotion."""
    return days.mutate(units_per_cell=safe_ratio(days.units, days.cells),
                       promoted=days.promotion_id.notnull()).order_by(["product_category", "sale_date", "product_id",
                                                                        "promotion_id"])


STAGE = "promotions"
#: The masters the daily tables are built from: a change to one recomputes every day.
MASTERS = ("products", "stores", "promotion_details")
#: The temporary tables of the days a run recomputes and of the cells promotions cover on them.
RECOMPUTED_DAYS, COVERED_CELLS = "rf_promotion_days", "rf_promotion_cells"
#: The temporary tables of the sales lines of those days and of the days around them, where the engine keeps them.
SALES, SALES_AROUND = "rf_promotion_sales", "rf_promotion_sales_around"


def within(days: incremental.Days, window_days: int) -> incremental.Days:
    """The dates at most `window_days` from one of `days`."""
    if days is incremental.EVERY_DAY:
        return days
    if isinstance(days, incremental.DateRange):
        reach = dt.timedelta(days=window_days)
        return incremental.DateRange(days.first and days.first - reach, days.last and days.last + reach)
    return ibis.union(*(days.select(business_date=shifted(days.business_date, offset))
                        for offset in range(-window_days, window_days + 1)), distinct=True)


def affected_days(changed: incremental.Days, *, window_days: int = ASSORTMENT_WINDOW_DAYS) -> incremental.Days:
    """The dates whose cells a change of `changed` reaches: those, and the dates within `window_days` on which a
    store had no snapshot (its observed assortment reads the sales around it); all of a backfill's window."""
    if not isinstance(changed, ir.Table):
        return within(changed, window_days)
    around, stores, inventory = within(changed, window_days), staging_table("stores"), staging_table("inventory_daily")
    counted = inventory.semi_join(around, inventory.snapshot_date == around.business_date).select(
        "store_id", business_date=inventory.snapshot_date).distinct()
    uncounted = stores.select("store_id").cross_join(around).anti_join(counted, ["store_id", "business_date"])
    return changed.select("business_date").union(uncounted.select("business_date"), distinct=True)


def _sales(days: incremental.Days) -> ir.Table:
    """sales_lines of the staged sales of `days`."""
    headers = staging_table("store_sales_header")
    return sales_lines(staging_table("store_sales_line_items"),
                       incremental.on_days(headers, headers.transaction_date, days), staging_table("products"))


def _covered(days: incremental.Days) -> ir.Table:
    """covered_cells over staging, on the trading days of `days`."""
    return covered_cells(staging_table("promotion_details"), staging_table("products"), staging_table("stores"),
                         _sales(days).select("sale_date").distinct())


def inputs(days: incremental.Days = incremental.EVERY_DAY, *, window_days: int = ASSORTMENT_WINDOW_DAYS,
           covered: ir.Table | None = None, store: Store = as_is) -> dict[str, ir.Table]:
    """The stage's inputs over staging, the sales and snapshots of `days` only (the assortments read the sales
    within `window_days` as well): credited_days, discounts_daily, sales_lines, products, promotions; `covered`
    holds covered_cells when the caller made them. `store` (tables.indexed_store) keeps the sales lines where the
    engine needs them kept: MariaDB joined headers, line items and products again at each of the eight readings
    of the promotion_daily statement (12.8 s at 200k line items)."""
    cell = ("store_id", "product_id", "sale_date")
    products, promotions = staging_table("products"), staging_table("promotion_details")
    stores, inventory = staging_table("stores"), staging_table("inventory_daily")
    lines = store(SALES, _sales(days), cell)
    around = None if days is incremental.EVERY_DAY else store(SALES_AROUND, _sales(within(days, window_days)), cell)
    covered = _covered(days) if covered is None else covered
    inventory = incremental.on_days(inventory, inventory.snapshot_date, days)
    return dict(days=credited_days(lines, products, promotions, stores, inventory, covered, around=around,
                                   window_days=window_days),
                discounts=discounts_daily(lines, promotions, products, covered), lines=lines, products=products,
                promotions=promotions)


#: The per-day tables the stage keeps: the input of promotion_effectiveness each is, and how inputs() make it.
DAILY_TABLES = {"promotion_daily": ("days", lambda tables: promotion_daily(tables["days"])),
                "promotion_discounts_daily": ("discounts", lambda tables: tables["discounts"])}


def stored_inputs() -> dict[str, ir.Table]:
    """promotion_effectiveness's inputs as the stage stores them: the two daily tables, products, promotions."""
    return {**{key: catalog.table(f"analytics.{name}") for name, (key, _) in DAILY_TABLES.items()},
            "products": staging_table("products"), "promotions": staging_table("promotion_details")}


def _made_before(backend: Backend, stored: dict[str, ir.Table]) -> bool:
    """Whether a per-day table has other columns than `stored` (stored_inputs) says, as an earlier release made
    it (before product promotions): then every day is recomputed once."""
    for name, (key, _) in DAILY_TABLES.items():
        columns = backend.table_columns("analytics", name)
        if columns and columns != list(stored[key].schema().names):
            return True
    return False


def run_promotions(backend: Backend, *, top: int = 3, min_baseline_days: int = 5,
                   days: incremental.DateRange | None = None, rebuild: bool = False,
                   window_days: int = ASSORTMENT_WINDOW_DAYS) -> list[dict]:
    """Bring the daily tables up to date for the changed days (`days`; every day on the first run, with `rebuild`,
    after a master change or when an earlier release made them) and those their sales reach (module docstring),
    re-derive promotion_effectiveness; return the top N ranked rows plus unranked ones. With nothing new since the
    last run with the same parameters (marks.current), the stored table is the answer."""
    if not backend.scalar("SELECT count(*) FROM staging.store_sales_line_items"):
        raise UserError("no staged sales yet: run `retailflow run DIR` (or ingest + validate) first")
    answer = answers.promotions(top, min_baseline_days, window_days)
    stored = stored_inputs()
    rebuild = rebuild or _made_before(backend, stored)
    if days is None and not rebuild and marks.current(backend, STAGE, answer.parameters):
        return _ranked(backend, answer)
    with incremental.window(backend, STAGE, days=days, rebuild=rebuild, masters=MASTERS,
                            parameters=answer.parameters) as changed:
        recomputed = affected_days(changed, window_days=window_days)
        if isinstance(recomputed, ir.Table):
            # Read by every statement below, and widened again for the sales around them: computed once.
            recomputed = backend.create_temp_table(RECOMPUTED_DAYS, recomputed)
        # Materialised, so that the planner knows how few they are: DuckDB estimated the cells of every store ×
        # product × day and joined the in-stock cells into a hash table of theirs instead (1.3 of 2.9 s).
        covered = backend.create_temp_table(COVERED_CELLS, _covered(recomputed),
                                            indexed=[("store_id", "product_id", "sale_date")])
        with contextlib.ExitStack() as scratch:
            tables = inputs(recomputed, window_days=window_days, covered=covered, store=indexed_store(backend, scratch))
            for name, (_, write) in DAILY_TABLES.items():
                incremental.replace_days(backend, "analytics", name, "sale_date", write(tables), recomputed)
        backend.drop_temp_tables(RECOMPUTED_DAYS, COVERED_CELLS)
        backend.replace_table("analytics", "promotion_effectiveness",
                              promotion_effectiveness(**stored, min_baseline_days=min_baseline_days))
    return _ranked(backend, answer)


def _ranked(backend: Backend, answer: answers.Answer) -> list[dict]:
    """The stored promotion_effectiveness: the top N ranked rows, then the unranked ones (kept: answers.py)."""
    table = catalog.table("analytics.promotion_effectiveness")
    return answers.fetch(backend, answer, "ranked", table.filter((table["rank"] <= answer.shape["top"])
                                                                 | table["rank"].isnull())
                         .order_by([table["rank"].asc(nulls_first=False), "promotion_id", "product_category",
                                    "product_id"]))
