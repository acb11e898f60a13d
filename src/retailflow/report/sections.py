"""The report's sections, in report order. Each aggregates in the engine and fetches only small results.

Every query here is grouped to a bounded size (days, stores capped at STORE_LIMIT, rules,
segments, the top products) so the report stays small however many line items there are.
"""

from __future__ import annotations

import datetime as dt
import math
import os

import ibis

from retailflow import audit
from retailflow.analytics import churn as churn_analysis
from retailflow.analytics import inventory as inventory_analysis
from retailflow.analytics.returns import return_rates
from retailflow.analytics.transactions import counted_transactions
from retailflow.backends import Backend
from retailflow.report import charts
from retailflow.report.charts import COUNT, DECIMAL, PERCENT
from retailflow.report.inputs import missing_inputs
from retailflow.report.registry import Section, section, table
from retailflow.report.stored import stored
from retailflow.report.values import MISSING, count, label, mask_email, money, number, percent, shown
from retailflow.tables import per_rule_id

#: Categories shown one bar or heatmap row each are capped (the rest stay in the engine).
STORE_LIMIT = 30
BATCH_LIMIT = 60
TREND_LIMIT = 500
PROMOTION_LIMIT = 40
DAILY_PROMOTION_LIMIT = 12
DAILY_WINDOW_DAYS = 14
PHANTOM_LIMIT = 10


def _pivot(rows: list[dict], index: str, column: str, value: str) -> tuple[list[dict], list[str]]:
    """Long aggregated rows to one row per `index` with a column per `column` value (for stacked bars)."""
    columns = sorted({label(row[column]) for row in rows})
    pivoted: dict[str, dict] = {}
    for row in rows:
        pivoted.setdefault(label(row[index]), {index: row[index]})[label(row[column])] = row[value]
    return list(pivoted.values()), columns


def _named(identifier: object, name: object) -> str:
    return f"{label(identifier)} · {label(name)}" if name else label(identifier)


def _capped(shown: int, total: int, what: str) -> str:
    """A note saying that only `shown` of `total` are drawn, or "" when all are."""
    return f"Showing {shown} of {total:,} {what}." if total > shown else ""


@section("overview", "Overview", needs=("staging.store_sales_header",), command="retailflow run DIR")
def overview(backend: Backend) -> Section:
    # Net of returns, voids left out; a transaction is a purchase (a net total above 0), as everywhere.
    headers = counted_transactions(stored("staging.store_sales_header"))
    purchase = (headers.total_amount > 0).ifelse(1, 0)
    totals = backend.fetch_dicts(headers.aggregate(
        revenue=headers.total_amount.sum(), transactions=purchase.sum(), returns=(headers.total_amount < 0).ifelse(
            1, 0).sum(), customers=(headers.total_amount > 0).ifelse(headers.customer_id, ibis.null("string")).nunique(),
        stores=headers.store_id.nunique(), first_day=headers.transaction_date.min().date(),
        last_day=headers.transaction_date.max().date()))[0]
    basket = (number(totals["revenue"]) or 0.0) / max(int(totals["transactions"] or 0), 1)
    by_day = backend.fetch_dicts(headers.group_by(day=headers.transaction_date.date()).aggregate(
        revenue=headers.total_amount.sum(), transactions=purchase.sum()).order_by("day"))
    stores = stored("staging.stores")
    per_store = headers.group_by("store_id").aggregate(revenue=headers.total_amount.sum(), transactions=purchase.sum())
    by_store = backend.fetch_dicts(per_store.left_join(stores, "store_id").select(
        per_store, stores.store_name, stores.store_city, stores.store_region)
        .order_by([ibis.desc("revenue"), "store_id"]).limit(STORE_LIMIT))
    for row in by_store:
        row["store"] = _named(row["store_id"], row["store_name"])
    lines, products = stored("staging.store_sales_line_items"), stored("staging.products")
    joined = lines.semi_join(headers, "transaction_id").join(products, "product_id")
    by_category = backend.fetch_dicts(joined.group_by("product_category").aggregate(
        revenue=joined.line_item_amount.sum(), units=joined.quantity.sum()).order_by(ibis.desc("revenue")).limit(25))
    return Section(
        kpis=[("Net revenue", money(totals["revenue"])), ("Purchases", count(totals["transactions"])),
              ("Returns", count(totals["returns"])),
              ("Buying customers", count(totals["customers"])), ("Average basket", money(basket)),
              ("Date range", f"{label(totals['first_day'])} to {label(totals['last_day'])}"),
              ("Stores", count(totals["stores"]))],
        charts=[charts.lines(by_day, "day", "revenue", "Revenue by day", value_title="revenue",
                             hover=["transactions"]),
                charts.bar(by_store, "store", {"revenue": "revenue"}, "Revenue by store", horizontal=True,
                           hover=["store_city", "store_region", "transactions"],
                           note=_capped(len(by_store), int(totals["stores"]),
                                        "stores: those with the highest revenue")),
                charts.bar(by_category, "product_category", {"revenue": "revenue"}, "Revenue by product category",
                           hover=["units"])],
        notes=["Staged (clean) transactions only, voids left out; revenue is the header total_amount, net of "
               "returns; a purchase is a transaction with a net total above 0."])


@section("quality", "Data quality", needs=("audit.batches",), command="retailflow run DIR")
def data_quality(backend: Backend) -> Section:
    batches = stored("audit.batches")
    totals = backend.fetch_dicts(batches.aggregate(
        batches=batches.count(), ingested=batches.rows.sum(), staged=batches.staged_rows.sum(),
        quarantined=batches.quarantined_rows.sum(), superseded=batches.superseded_rows.sum(),
        warned=batches.warned_rows.sum()))[0]
    per_batch = batches.select(
        "batch_id", "entity", "source_file", "status", ingested=batches.rows.fill_null(0),
        staged=batches.staged_rows.fill_null(0), quarantined=batches.quarantined_rows.fill_null(0),
        superseded=batches.superseded_rows.fill_null(0), warned=batches.warned_rows.fill_null(0))
    recent = backend.fetch_dicts(per_batch.order_by(ibis.desc("batch_id")).limit(BATCH_LIMIT))[::-1]
    for row in recent:
        row["batch"] = f"#{row['batch_id']}"
        row["file"] = os.path.basename(row["source_file"])
    with_rejects = per_batch.group_by("entity").aggregate(rejected=per_batch.quarantined.sum())
    trend = per_batch.filter((per_batch.ingested > 0) & per_batch.entity.isin(
        with_rejects.filter(with_rejects.rejected > 0).entity))
    trend = backend.fetch_dicts(trend.select(
        "batch_id", "entity", quarantined_pct=trend.quarantined.cast("float64") * 100 / trend.ingested)
        .order_by(ibis.desc("batch_id")).limit(TREND_LIMIT))[::-1]
    by_entity = backend.fetch_dicts(per_batch.group_by("entity").aggregate(
        files=per_batch.count(), ingested=per_batch.ingested.sum(), staged=per_batch.staged.sum(),
        quarantined=per_batch.quarantined.sum(), superseded=per_batch.superseded.sum(), warned=per_batch.warned.sum())
        .order_by("entity"))
    for row in by_entity:
        row["quarantined_%"] = percent(100 * number(row["quarantined"]) / number(row["ingested"])
                                       if row["ingested"] else None)
    results = stored("audit.rule_results")
    failures = backend.fetch_dicts(results.group_by(["rule_id", "severity"]).aggregate(
        failed=results.failed.sum(), checked=results.checked.sum())
        .filter(lambda t: t.failed > 0).order_by([ibis.desc("failed"), "rule_id"]).limit(25))
    by_severity, severities = _pivot(failures, "rule_id", "severity", "failed")
    warnings = stored("audit.warnings")
    listed = per_rule_id(warnings, "rule_ids", warnings.entity)
    exploded = listed.select("entity", "rule_id", "_batch_id", "_source_line", key=listed.row_key,
                             reasons=listed.reasons)
    top_warnings = backend.fetch_dicts(audit.with_example(exploded, ["entity", "rule_id"], order_by=[
        exploded.key.asc(nulls_first=False), "_batch_id", "_source_line"])
        .order_by([ibis.desc("rows"), "rule_id"]).limit(10))
    balances = audit.reconcile(backend)
    unbalanced = [vars(balance) for balance in balances if not balance.balanced]
    reconcile_text = (f"all {len(balances):,} batches balance" if not unbalanced
                      else f"{len(unbalanced):,} of {len(balances):,} batches do not balance")
    return Section(
        kpis=[("Files ingested", count(totals["batches"])), ("Rows ingested", count(totals["ingested"])),
              ("Staged", count(totals["staged"])), ("Quarantined", count(totals["quarantined"])),
              ("Warned (kept)", count(totals["warned"])), ("Reconcile", reconcile_text)],
        charts=[charts.bar(recent, "batch", {"staged": "staged", "quarantined": "quarantined",
                                             "superseded": "superseded"},
                           "Rows per batch: staged, quarantined, superseded", stacked=True, value_format=COUNT,
                           colors={"staged": charts.BLUE, "quarantined": charts.RED, "superseded": charts.GREY},
                           hover=["entity", "file", "ingested", "status"],
                           note=_capped(len(recent), int(totals["batches"]), "batches: the latest")),
                charts.bar(by_severity, "rule_id", {severity: severity for severity in severities},
                           "Failures by rule", horizontal=True, stacked=True, value_format=COUNT,
                           colors={"reject": charts.RED, "warn": charts.AMBER}),
                charts.lines(trend, "batch_id", "quarantined_pct", "Quarantined % over batches, by entity",
                             series="entity", value_format=PERCENT, value_title="quarantined %", x_title="batch",
                             note="Entities that never had a row quarantined are left out.")],
        tables=[table("Rows by entity", by_entity, ["entity", "files", "ingested", "staged", "quarantined",
                                                     "superseded", "warned", "quarantined_%"]),
                table("Top quarantine reasons", audit.quarantine_summary(backend)[:12],
                      ["entity", "rule_id", "rows", "example_key", "example_reasons"],
                      note="Rejected rows are kept in the quarantine schema with every rule they failed."),
                table("Top warnings (rows kept in staging)", top_warnings,
                      ["entity", "rule_id", "rows", "example_key", "example_reasons"]),
                *([table("Batches that do not balance", unbalanced,
                         ["batch_id", "entity", "status", "raw_rows", "staged_rows", "superseded_rows",
                          "quarantined_rows"],
                         note="A validated batch balances when raw rows = staged + superseded + quarantined.")]
                  if unbalanced else [])])


#: The grid's cell states, in order of precedence (a cell shows its worst), with their colours.
CHECK_STATES = (("delivered", charts.GREEN), ("pending (not due yet)", "#cbd5e1"),
                ("explained (holiday, promotion) or restated", "#93c5fd"), ("store opened or closed", charts.PURPLE),
                ("anomaly", charts.AMBER), ("late", "#f97316"), ("missing", charts.RED), ("blocking", "#7f1d1d"))
CHECK_DAYS = 42
ENTITY_WORDS = {"store_sales_header": "sales", "store_sales_line_items": "lines", "inventory_daily": "stock"}


def _check_cells(deliveries: ibis.Table, anomalies: ibis.Table) -> ibis.Table:
    """One row per store × day of the checks' tables (deliveries expected or made, anomalies): its worst state
    (an index of CHECK_STATES) and what each finding says."""
    entity = ibis.cases(*((deliveries.entity == name, word) for name, word in ENTITY_WORDS.items()),
                        else_=deliveries.entity)
    state = ibis.cases((deliveries.severity == "block", 7), (deliveries.finding == "missing", 6),
                       (deliveries.finding == "late", 5), (deliveries.finding.isin(["closed", "opened"]), 3),
                       (deliveries.finding == "restated", 2), (deliveries.status == "pending", 1), else_=0)
    said = ibis.cases((deliveries.finding.isin(["closed", "opened"]), "store " + deliveries.finding),
                      (deliveries.finding.notnull(), entity + " " + deliveries.finding),
                      (deliveries.status == "pending", entity + " not due yet"), else_=ibis.null("string"))
    shown = deliveries.filter((deliveries.status != "not_expected") | deliveries.finding.notnull())
    rows = shown.select("store_id", "business_date", state=state, said=said)
    odd = anomalies.select("store_id", "business_date",
                           state=ibis.cases((anomalies.severity == "block", 7), (anomalies.severity == "info", 2),
                                            else_=4),
                           said=anomalies.metric + " " + anomalies.direction + ibis.ifelse(
                               anomalies.explanation.notnull(), " (" + anomalies.explanation + ")", ""))
    both = rows.union(odd)
    return both.group_by(["store_id", "business_date"]).aggregate(state=both.state.max(),
                                                                   said=both.said.group_concat("; "))


@section("checks", "Deliveries and volume", needs=("audit.expected_deliveries",), command="retailflow checks")
def deliveries_and_volume(backend: Backend) -> Section | None:
    """The checks' section: a store × day grid of what arrived and what looked wrong, the open findings."""
    from retailflow.catalog import ANOMALIES, CHECK_RUNS, EXPECTED_DELIVERIES
    from retailflow.checks import list_findings

    deliveries, anomalies = EXPECTED_DELIVERIES.table(), ANOMALIES.table()
    last_day = backend.fetch_dicts(deliveries.aggregate(last=deliveries.business_date.max()))[0]["last"]
    if last_day is None:
        return None
    first_day = last_day - dt.timedelta(days=CHECK_DAYS - 1)
    cells = _check_cells(deliveries.filter(deliveries.business_date >= first_day),
                         anomalies.filter(anomalies.business_date >= first_day))
    # The stores with the most findings first, then by id: a capped grid shows the ones to look at.
    per_store = cells.group_by("store_id").aggregate(findings=(cells.state >= 3).sum(), days=cells.count())
    stores_total = int(backend.fetch_dicts(per_store.aggregate(n=per_store.count()))[0]["n"])
    chosen = per_store.order_by([ibis.desc("findings"), "store_id"]).limit(STORE_LIMIT).select("store_id",
                                                                                                 "findings")
    grid = backend.fetch_dicts(cells.join(chosen, "store_id").order_by([ibis.desc("findings"), "store_id",
                                                                          "business_date"]))
    for row in grid:
        row["said"] = f"{CHECK_STATES[row['state']][0]}" + (f": {row['said']}" if row["said"] else "")
    shown_stores = len({row["store_id"] for row in grid})
    findings = list_findings(backend)
    by_check: dict[str, int] = {}
    for finding in findings:
        by_check[finding.check] = by_check.get(finding.check, 0) + 1
    runs = CHECK_RUNS.table()
    last_run = backend.fetch_dicts(runs.order_by(ibis.desc("run_id")).limit(1))
    blocked = sorted({finding.business_date for finding in findings if finding.severity == "block"})
    latest = sorted(findings, key=lambda finding: (finding.business_date, finding.store_id), reverse=True)[:25]
    return Section(
        kpis=[("Open findings", count(len(findings))), ("Missing", count(by_check.get("missing", 0))),
              ("Late", count(by_check.get("late", 0))), ("Anomalies", count(by_check.get("anomaly", 0))),
              ("Stores opened or closed", count(by_check.get("opened", 0) + by_check.get("closed", 0))),
              ("Blocked days", count(len(blocked))),
              ("Last checked", shown(last_run[0]["ran_at"]) if last_run else MISSING)],
        charts=[charts.status_grid(grid, "business_date", "store_id", "state", "said",
                                   f"Store × day, the last {CHECK_DAYS} days: what arrived and what looked wrong",
                                   states=CHECK_STATES, x_title="day", y_title="store",
                                   note=_capped(shown_stores, stores_total, "stores: those with the most findings"))],
        tables=[table("Latest open findings", [finding.as_dict() for finding in latest],
                      ["business_date", "store_id", "check", "subject", "severity", "message"],
                      note="docs/explanation/checks.md: what each check means and how to tune or silence it.")]
        if latest else [],
        notes=[] if findings else ["Every expected delivery arrived and no store-day was anomalous."])


@section("promotions", "Promotions", needs=("analytics.promotion_effectiveness", "analytics.promotion_daily"),
         command="retailflow promotions")
def promotions(backend: Backend) -> Section:
    effect = stored("analytics.promotion_effectiveness")
    measured = (effect.status == "ok").ifelse(1, 0)
    per_promotion = effect.group_by(["promotion_id", "promotion_name", "start_date", "end_date",
                                     "discount_percentage"]).aggregate(
        promoted_units=effect.promoted_units.sum(), expected_units=(measured * effect.expected_units).sum(),
        promoted_revenue=effect.promoted_revenue.sum(), lift_pct=effect.promotion_lift_pct.max(),
        rank=effect["rank"].min(), categories_measured=measured.sum(), status=effect.status.min())
    ranked = backend.fetch_dicts(per_promotion.order_by([ibis.asc("rank", nulls_first=False), "promotion_id"])
                                 .limit(PROMOTION_LIMIT))
    for row in ranked:
        row["promotion"] = _named(row["promotion_id"], row["promotion_name"])
        row["status"] = "ok" if row["categories_measured"] else row["status"]
        row["window"] = f"{label(row['start_date'])} to {label(row['end_date'])}"
    top = {row["promotion"] for row in ranked if row["rank"] is not None and row["rank"] <= 3}
    cells = backend.fetch_dicts(effect.filter(effect.status == "ok").select(
        "promotion_id", "product_category", "product_id", "promoted_units", "expected_units", "lift_units_pct", "rank")
        .order_by([ibis.asc("rank", nulls_first=False), "promotion_id", "product_category", "product_id"])
        .limit(PROMOTION_LIMIT))
    for row in cells:
        star = "★ " if row["rank"] is not None and row["rank"] <= 3 else ""
        row["cell"] = f"{star}{row['promotion_id']} · {label(row['product_id'] or row['product_category'])}"
    ok = effect.filter(effect.status == "ok")
    by_category = backend.fetch_dicts(ok.group_by("product_category").aggregate(
        promoted_units=ok.promoted_units.sum(), expected_units=ok.expected_units.sum()).order_by("product_category"))
    for row in by_category:
        expected = number(row["expected_units"])
        row["lift_pct"] = (number(row["promoted_units"]) / expected - 1) * 100 if expected else None
    result = Section(
        kpis=[("Promotions", count(len(ranked))), ("Measured", count(sum(1 for r in ranked if r["status"] == "ok"))),
              ("Best lift", percent(ranked[0]["lift_pct"]) if ranked else percent(None))],
        charts=[charts.bar([row for row in ranked if row["rank"] is not None], "promotion", {"lift_pct": "lift %"},
                           "Lift % by promotion (top 3 in red)", value_format=PERCENT, highlight=top,
                           hover=["window", "discount_percentage", "promoted_units", "expected_units"]),
                charts.bar(cells, "cell", {"expected_units": "baseline (expected) units",
                                           "promoted_units": "promoted units"},
                           "Baseline vs promoted units by promotion × category or product (★ = top 3)",
                           value_format=DECIMAL,
                           colors={"expected_units": charts.GREY, "promoted_units": charts.BLUE},
                           hover=["lift_units_pct"]),
                charts.bar(by_category, "product_category", {"lift_pct": "lift %"}, "Lift % by category",
                           value_format=PERCENT, hover=["promoted_units", "expected_units"])],
        tables=[table("Ranking by % sales increase", ranked,
                      ["rank", "promotion_id", "promotion_name", "window", "discount_percentage", "promoted_units",
                       "expected_units", "lift_pct", "status"],
                      note="Expected units: in-stock store-product-days × the weekday baseline rate of the category "
                           "(of the product, for a promotion of products).")])
    daily = _promotion_days(backend, [row["promotion_id"] for row in ranked[:DAILY_PROMOTION_LIMIT]])
    if daily:
        result.charts.append(charts.bars_by_choice(
            daily, "promotion", "sale_date", "units_per_cell", "applied",
            "Daily units per in-stock store-product-day around a promotion", names=("promoted day", "other day"),
            value_title="units per store-product-day",
            note=f"Pick a promotion from the menu; {DAILY_WINDOW_DAYS} days either side of its window, "
                 "over the categories (or products) it covers."))
    return result


def _promotion_days(backend: Backend, promotion_ids: list[str]) -> list[dict]:
    """Per promotion and day around its window: units per in-stock cell over its categories (its products, for a
    promotion of products), promoted or not."""
    if not promotion_ids:
        return []
    effect, daily = stored("analytics.promotion_effectiveness"), stored("analytics.promotion_daily")
    windows = effect.filter(effect.promotion_id.isin(promotion_ids)).select(
        "promotion_id", "promotion_name", "product_category", "product_id", "start_date", "end_date")
    days = daily.select("product_category", "product_id", "sale_date", "units", "cells", applying=daily.promotion_id)
    # A category's day is the sum of its rows; a listed product's, the rows holding its cells.
    by_category = windows.filter(windows.product_id.isnull()).join(days, "product_category")
    by_product = windows.filter(windows.product_id.notnull()).join(days, "product_id")
    columns = ["promotion_id", "promotion_name", "start_date", "end_date", "sale_date", "units", "cells", "applying"]
    joined = by_category.select(*columns).union(by_product.select(*columns))
    margin = ibis.interval(days=DAILY_WINDOW_DAYS)
    joined = joined.filter((joined.sale_date >= joined.start_date - margin)
                           & (joined.sale_date <= joined.end_date + margin))
    rows = backend.fetch_dicts(joined.group_by(["promotion_id", "promotion_name", "sale_date"]).aggregate(
        units=joined.units.sum(), cells=joined.cells.sum(),
        applied=(joined.applying == joined.promotion_id).ifelse(1, 0).max()).order_by(["promotion_id", "sale_date"]))
    order = {promotion_id: position for position, promotion_id in enumerate(promotion_ids)}
    for row in rows:
        row["promotion"] = _named(row["promotion_id"], row["promotion_name"])
        row["units_per_cell"] = number(row["units"]) / number(row["cells"]) if row["cells"] else None
        row["applied"] = bool(row["applied"])
    return sorted(rows, key=lambda row: (order[row["promotion_id"]], row["sale_date"]))


def _bucket_width(largest: float, buckets: int = 25) -> int:
    """A round bucket width (1, 2, 5 × 10^k) giving at most about `buckets` buckets up to `largest`."""
    raw = max(largest / buckets, 1.0)
    magnitude = 10 ** math.floor(math.log10(raw))
    return int(next(step * magnitude for step in (1, 2, 5, 10) if step * magnitude >= raw))


@section("loyalty", "Loyalty", needs=("loyalty.balances",), command="retailflow loyalty")
def loyalty(backend: Backend) -> Section:
    # Only the columns read: a ledger from before a release's new column still reports (it gains it at the next run).
    ledger = stored("loyalty.points_ledger").select("rule_id", "transaction_id", "transaction_date", "points")
    balances = stored("loyalty.balances")
    rules = stored("staging.loyalty_rules")
    named = ledger.left_join(rules.select("rule_id", "rule_name"), "rule_id")
    rule = named.rule_id + " · " + named.rule_name.fill_null("")
    per_day = backend.fetch_dicts(named.group_by(day=named.transaction_date.date(), rule=rule).aggregate(
        points=named.points.sum()).order_by(["day", "rule"]))
    by_day, rule_names = _pivot(per_day, "day", "rule", "points")
    issued = backend.fetch_dicts(ledger.aggregate(points=ledger.points.sum(),
                                                  transactions=ledger.transaction_id.nunique()))[0]
    summary = backend.fetch_dicts(balances.aggregate(
        with_points=(balances.balance > 0).ifelse(1, 0).sum(), average=balances.balance.mean(),
        largest=balances.balance.max()))[0]
    width = _bucket_width(number(summary["largest"]) or 0.0)
    bucket = (balances.balance / width).floor().cast("int64") * width
    histogram = backend.fetch_dicts(balances.group_by(bucket=bucket).aggregate(customers=balances.count())
                                    .order_by("bucket"))
    customers_in = {row["bucket"]: row["customers"] for row in histogram}
    lowest = min(customers_in, default=0)
    histogram = [{"balance": f"{start:,}–{start + width - 1:,}" if width > 1 else f"{start:,}",
                  "customers": customers_in.get(start, 0)}
                 for start in range(lowest, max(customers_in, default=0) + 1, width)]
    tiers = backend.fetch_dicts(balances.group_by("tier").aggregate(
        customers=balances.count(), lowest_balance=balances.balance.min()).order_by("lowest_balance"))
    # Without loyalty rules nothing was credited: the balances are the opening ones, and no "0 points issued".
    credited = not any("points_ledger" in item.need.outputs for item in missing_inputs(backend, "loyalty"))
    result = Section(
        kpis=[*([("Points issued", count(issued["points"])), ("Transactions credited", count(issued["transactions"]))]
                if credited else []),
              ("Customers with points", count(summary["with_points"])),
              ("Average balance", count(round(number(summary["average"]) or 0)))],
        charts=[*([charts.bar(by_day, "day", {name: name for name in rule_names}, "Points issued per day, by rule",
                              stacked=True, value_format=COUNT, value_title="points", dates=True)] if by_day else []),
                charts.bar(histogram, "balance", {"customers": "customers"}, "Balance distribution",
                           value_format=COUNT, category_title="points balance"),
                charts.bar(tiers, "tier", {"customers": "customers"}, "Customers per tier", value_format=COUNT,
                           hover=["lowest_balance"])])
    statuses = []
    if backend.has_table("notifications", "outbox"):
        outbox = stored("notifications.outbox")
        statuses = backend.fetch_dicts(outbox.group_by("status").aggregate(messages=outbox.count()).order_by("status"))
    if statuses:
        result.kpis += [(f"E-mails {row['status']}", count(row["messages"])) for row in statuses]
        result.charts.append(charts.bar(statuses, "status", {"messages": "messages"}, "Notifications by status",
                                        value_format=COUNT))
    else:
        result.notes.append("No notifications yet: run `retailflow notify` to send the points e-mails.")
    return result


@section("segments", "Segments", needs=("analytics.customer_rfm",), command="retailflow segments")
def segments(backend: Backend) -> Section:
    rfm = stored("analytics.customer_rfm")
    sizes = backend.fetch_dicts(rfm.group_by("segment").aggregate(
        customers=rfm.count(), revenue=rfm.monetary.sum(), average_recency_days=rfm.recency_days.mean())
        .order_by([ibis.desc("customers"), "segment"]))
    total_revenue = sum(number(row["revenue"]) or 0.0 for row in sizes)
    for row in sizes:
        row["revenue_share_pct"] = 100 * (number(row["revenue"]) or 0.0) / total_revenue if total_revenue else None
        row["revenue_share"] = percent(row["revenue_share_pct"])
    cells = {(row["r_score"], row["f_score"]): row["customers"] for row in backend.fetch_dicts(
        rfm.group_by(["r_score", "f_score"]).aggregate(customers=rfm.count()))}
    grid = [{"F": f"F{f}", "R": f"R{r}", "customers": cells.get((r, f), 0)} for r in range(5, 0, -1)
            for f in range(1, 6)]
    flags = backend.fetch_dicts(rfm.aggregate(
        customers=rfm.count(), high=rfm.is_high_spender.ifelse(1, 0).sum(), at_risk=rfm.is_at_risk.ifelse(1, 0).sum(),
        high_revenue=rfm.is_high_spender.ifelse(rfm.monetary, 0).sum()))[0]
    columns = ["customer_id", "first_name", "email", "monetary", "frequency", "recency_days", "balance", "segment"]
    churn_kpis = []
    fit = churn_analysis.stored_fit(backend)
    if fit is not None and not fit.estimated:
        # A fit that cannot be trusted scores nobody: the reason, not a column of blanks.
        churn_kpis = [("Churn model", "not estimable")]
    # The churn model's table exists once `retailflow segments` has run with it; older databases lack it.
    elif backend.has_table("analytics", "customer_churn"):
        churn = stored("analytics.customer_churn")
        rfm = rfm.left_join(churn.select("customer_id", "churn_probability"), "customer_id")
        columns.append("churn_probability")
        means = backend.fetch_dicts(rfm.aggregate(
            at_risk=rfm.is_at_risk.ifelse(rfm.churn_probability, ibis.null("float64")).mean(),
            others=(~rfm.is_at_risk).ifelse(rfm.churn_probability, ibis.null("float64")).mean()))[0]
        churn_kpis = [("Churn probability, At-Risk (model)", percent(_as_percent(means["at_risk"]))),
                      ("Churn probability, others (model)", percent(_as_percent(means["others"])))]
    top_high = backend.fetch_dicts(rfm.filter(rfm.is_high_spender).select(columns)
                                   .order_by([ibis.desc("monetary"), "customer_id"]).limit(10))
    top_risk = backend.fetch_dicts(rfm.filter(rfm.is_at_risk).select(columns)
                                   .order_by([ibis.desc("balance"), "customer_id"]).limit(10))
    for row in top_high + top_risk:
        row["email"] = mask_email(row["email"])
    high_share = 100 * (number(flags["high_revenue"]) or 0.0) / total_revenue if total_revenue else None
    return Section(
        kpis=[("Customers", count(flags["customers"])), ("Segments", count(len(sizes))),
              ("High-Spenders", count(flags["high"])), ("High-Spenders' revenue share", percent(high_share)),
              ("At-Risk", count(flags["at_risk"])), *churn_kpis],
        charts=[charts.treemap(sizes, "segment", "customers", "Customers per RFM segment",
                               hover=["revenue_share", "average_recency_days"]),
                charts.bar(sizes, "segment", {"revenue_share_pct": "revenue share %"}, "Revenue share by segment",
                           value_format=PERCENT, hover=["customers"]),
                charts.heatmap(grid, "F", "R", "customers", "Customers by recency (R) × frequency (F) score",
                               value_format=COUNT, value_title="customers", x_title="frequency score",
                               y_title="recency score")],
        notes=[fit.describe()] if fit is not None else [],
        tables=[table("Top High-Spenders", top_high, columns),
                table("Top At-Risk customers (by points balance)", top_risk, columns,
                      note="At-Risk: no purchase for 60+ days and a positive points balance." + (
                          " Churn probability: 1 − P(alive) from the MBG/NBD model fitted on the purchase history."
                          if "churn_probability" in columns else ""))])


def _as_percent(share: object) -> float | None:
    value = number(share)
    return None if value is None else 100 * value


@section("inventory", "Inventory", needs=("analytics.top_products",), command="retailflow inventory")
def inventory(backend: Backend) -> Section:
    top = backend.fetch_dicts(stored("analytics.top_products").order_by("rank"))
    names = {row["product_id"]: _named(row["product_id"], row["product_name"]) for row in top}
    # Outputs whose input is missing are left out, not shown as zeros: the section names the missing file.
    blocked = {output for item in missing_inputs(backend, "inventory") for output in item.need.outputs}
    result = Section(kpis=[("Top products", count(len(top)))], tables=[table(
        "Top products by units sold", top, ["rank", "product_id", "product_name", "product_category", "units",
                                            "revenue", "average_price"])])
    if "stockouts" not in blocked:
        _stock_outs(backend, names, result)
    if "phantom_runs" not in blocked:
        phantom_kpis, phantom_tables = _phantom_inventory(backend)
        result.kpis += phantom_kpis
        result.tables += phantom_tables
    if backend.has_table("analytics", "returns"):
        _returns(backend, result)
    return result


def _returns(backend: Backend, result: Section) -> None:
    """Add return rates by category, product and store to the inventory section `result` (nothing without returns)."""
    returned, products = stored("analytics.returns"), stored("staging.products")
    product_days, store_days = stored("analytics.product_daily"), stored("analytics.store_product_daily")
    by_category = backend.fetch_dicts(return_rates(returned, product_days, products, "product_category"))
    if not by_category:
        return
    by_product = backend.fetch_dicts(return_rates(returned, product_days, products, "product_id", top=10))
    by_store = backend.fetch_dicts(return_rates(returned, store_days, products, "store_id", top=STORE_LIMIT))
    units = sum(int(row["returned_units"]) for row in by_category)
    sold = sum(int(row["sold_units"]) for row in by_category)
    result.kpis += [("Units returned", count(units)),
                    ("Return rate", f"{100 * units / sold:.1f} %" if sold else "–")]
    result.charts.append(charts.bar(by_category, "product_category", {"return_rate_pct": "return rate %"},
                                    "Return rate by category (% of units sold)", value_format=PERCENT))
    columns = ["sold_units", "returned_units", "returned_amount", "return_rate_pct"]
    result.tables += [table("Most returned products", by_product, ["product_id", "product_name", *columns]),
                      table("Return rate by store", by_store, ["store_id", *columns])]


def _stock_outs(backend: Backend, names: dict[str, str], result: Section) -> None:
    """Add the top products' stock-out days and estimated lost sales to the inventory section `result`."""
    outs = stored("analytics.stockouts")
    store_count = int(backend.fetch_dicts(outs.aggregate(stores=outs.store_id.nunique()))[0]["stores"] or 0)
    if not store_count:
        result.notes.append("No inventory snapshot covers the top products: no stock-out days or lost sales.")
        return
    worst = outs.group_by("store_id").aggregate(worst=outs.out_of_stock_pct.max(), average=outs.out_of_stock_pct.mean())
    worst = worst.order_by([ibis.desc("worst"), ibis.desc("average"), "store_id"]).limit(STORE_LIMIT)
    heat = backend.fetch_dicts(outs.join(worst, "store_id").select(outs.rank, outs.product_id, outs.store_id,
                                                                    outs.out_of_stock_pct)
                               .order_by(["store_id", "rank"]))
    for row in heat:
        row["product"] = names.get(row["product_id"], label(row["product_id"]))
    lost = stored("analytics.lost_sales")
    by_product = backend.fetch_dicts(lost.group_by(["rank", "product_id"]).aggregate(
        stockout_days=lost.stockout_days.sum(), lost_units=lost.lost_units.sum(),
        lost_revenue=lost.lost_revenue.sum()).order_by("rank"))
    for row in by_product:
        row["product"] = names.get(row["product_id"], label(row["product_id"]))
    per_store = lost.group_by("store_id").aggregate(total=lost.lost_revenue.sum())
    per_store = per_store.order_by([ibis.desc("total"), "store_id"]).limit(STORE_LIMIT)
    store_product = backend.fetch_dicts(lost.join(per_store, "store_id").select(
        lost.store_id, lost.product_id, lost.lost_revenue, per_store.total).order_by([ibis.desc("total"), "store_id"]))
    for row in store_product:
        row["product"] = names.get(row["product_id"], label(row["product_id"]))
    by_store, products = _pivot(store_product, "store_id", "product", "lost_revenue")
    totals = {key: sum(number(row[key]) or 0.0 for row in by_product) for key in ("lost_units", "lost_revenue",
                                                                                   "stockout_days")}
    result.kpis += [("Stock-out days (top products)", count(totals["stockout_days"])),
                    ("Estimated lost units", count(round(totals["lost_units"]))),
                    ("Estimated lost revenue", money(totals["lost_revenue"]))]
    result.charts += [
        charts.heatmap(heat, "product", "store_id", "out_of_stock_pct", "Out-of-stock % of days, store × product",
                       value_title="% of days", x_title="product", y_title="store", colorscale="Reds",
                       note=_capped(len({row["store_id"] for row in heat}), store_count,
                                    "stores: those most often out of stock")),
        charts.bar(by_product, "product", {"lost_revenue": "lost revenue"}, "Estimated lost revenue by product",
                   hover=["lost_units", "stockout_days"]),
        charts.bar(by_store, "store_id", {product: product for product in products},
                   "Estimated lost revenue by store and product", stacked=True,
                   note=_capped(len(by_store), store_count, "stores: those with the largest losses"))]
    result.tables.append(table(
        "Lost sales by product", by_product, ["rank", "product", "stockout_days", "lost_units", "lost_revenue"],
        note="Lost units: on each stock-out day, the mean units of the same store-product's in-stock days (same "
             "weekday where available) less that day's sales, never below 0, valued at its average realised price."))


def _phantom_inventory(backend: Backend) -> tuple[list[tuple[str, str]], list]:
    """The suspected phantom-stock KPI and its least likely runs; nothing for a database from before the check."""
    if not backend.has_table("analytics", "phantom_inventory"):
        return [], []
    phantom = stored("analytics.phantom_inventory")
    runs = int(backend.fetch_dicts(phantom.aggregate(runs=phantom.count()))[0]["runs"] or 0)
    least_likely = backend.fetch_dicts(phantom.order_by(inventory_analysis.PHANTOM_ORDER).limit(PHANTOM_LIMIT))
    for row in least_likely:
        row["probability"] = f"{row['probability']:.1e}"  # far below 0.01: two decimals would show 0.00
    columns = ["store_id", "product_id", "first_day", "last_day", "days", "min_stock_on_hand", "daily_sales",
               "expected_units", "probability", "ongoing"]
    return [("Suspected phantom-stock runs", count(runs))], [table(
        "Suspected phantom stock (least likely runs first)", least_likely, columns,
        note=_capped(len(least_likely), runs, "runs") + " In stock at the snapshot yet no sale for improbably "
             "many trading days: P = exp(−sales a day × days). Shelves worth counting.")]
