"""Report sections: each reads aggregated rows through the backend and returns figures and tables.

A section names the table it needs and the command that creates it; when that table is
missing or empty the report shows "not run yet — run `retailflow …`" instead.
To add a section: write `def my_section(backend) -> Section` and append a SectionSpec to SECTIONS.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import ibis
import ibis.expr.types as ir
import plotly.graph_objects as go

from retailflow import audit
from retailflow.backends import Backend
from retailflow.report import charts


@dataclass
class Section:
    """What one report section shows."""

    kpis: list[tuple[str, str]] = field(default_factory=list)
    figures: list[go.Figure] = field(default_factory=list)
    tables: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SectionSpec:
    key: str
    title: str
    needs: tuple[str, str]
    command: str
    build: Callable[[Backend], Section]


def mask_email(value: object) -> str:
    """j***@example.com: the report is meant to be shared."""
    text = "" if value is None else str(value)
    match = re.match(r"^([^@]?)[^@]*(@.*)?$", text)
    return f"{match.group(1)}***{match.group(2) or ''}" if text else ""


def table(backend: Backend, schema: str, name: str) -> ir.Table:
    return backend.ibis.table(name, database=schema)


def _money(value) -> str:
    return f"{float(value or 0):,.2f}"


def _table(title: str, rows: list[dict], columns: list[str]) -> dict:
    def shown(value):
        if value is None:
            return "–"
        if isinstance(value, float):
            return f"{value:,.2f}"
        return str(value)
    return {"title": title, "columns": columns, "rows": [[shown(row.get(c)) for c in columns] for row in rows]}


def overview(backend: Backend) -> Section:
    headers = table(backend, "staging", "store_sales_header")
    totals = backend.fetch_dicts(headers.aggregate(
        revenue=headers.total_amount.sum(), transactions=headers.count(), customers=headers.customer_id.nunique(),
        stores=headers.store_id.nunique(), first=headers.transaction_date.min().date(),
        last=headers.transaction_date.max().date()))[0]
    basket = float(totals["revenue"] or 0) / max(int(totals["transactions"]), 1)
    by_day = backend.fetch_dicts(headers.group_by(day=headers.transaction_date.date()).aggregate(
        revenue=headers.total_amount.sum(), transactions=headers.count()).order_by("day"))
    by_store = backend.fetch_dicts(headers.group_by("store_id").aggregate(revenue=headers.total_amount.sum())
                                   .order_by(ibis.desc("revenue")).limit(40))
    return Section(
        kpis=[("Revenue", _money(totals["revenue"])), ("Transactions", f"{totals['transactions']:,}"),
              ("Customers", f"{totals['customers']:,}"), ("Average basket", _money(basket)),
              ("Stores", f"{totals['stores']:,}"), ("Dates", f"{totals['first']} to {totals['last']}")],
        figures=[charts.line(by_day, "day", "revenue", "Revenue by day"),
                 charts.bar(by_store, "store_id", ["revenue"], "Revenue by store (top 40)")])


def data_quality(backend: Backend) -> Section:
    batches = table(backend, "audit", "batches")
    per_batch = backend.fetch_dicts(batches.select(
        "batch_id", "entity", "rows", "status", staged=batches.staged_rows.fill_null(0),
        quarantined=batches.quarantined_rows.fill_null(0)).order_by("batch_id"))
    for row in per_batch:
        row["batch"] = f"#{row['batch_id']}"
        row["quarantined_pct"] = 100.0 * row["quarantined"] / row["rows"] if row["rows"] else 0.0
    results = table(backend, "audit", "rule_results")
    failures = backend.fetch_dicts(results.group_by("rule_id").aggregate(failed=results.failed.sum())
                                   .filter(lambda t: t.failed > 0).order_by(ibis.desc("failed")).limit(30))
    balances = audit.reconcile(backend)
    unbalanced = [balance for balance in balances if not balance.balanced]
    reasons = audit.quarantine_summary(backend)[:12]
    return Section(
        kpis=[("Rows ingested", f"{sum(int(r['rows'] or 0) for r in per_batch):,}"),
              ("Staged", f"{sum(int(r['staged']) for r in per_batch):,}"),
              ("Quarantined", f"{sum(int(r['quarantined']) for r in per_batch):,}"),
              ("Reconcile", "every batch balances" if not unbalanced else f"{len(unbalanced)} batches do NOT balance")],
        figures=[charts.bar(per_batch[-60:], "batch", ["staged", "quarantined"], "Rows per batch (last 60 batches)",
                            stacked=True),
                 charts.bar(failures, "rule_id", ["failed"], "Failures by rule", horizontal=True),
                 charts.line(per_batch[-60:], "batch", "quarantined_pct", "Quarantined % over batches")],
        tables=[_table("Top quarantine reasons", reasons, ["entity", "rule_id", "rows", "example_key",
                                                          "example_reasons"])])


def promotions(backend: Backend) -> Section:
    effect = table(backend, "analytics", "promotion_effectiveness")
    per_promotion = backend.fetch_dicts(effect.group_by(["promotion_id", "promotion_name"]).aggregate(
        promoted_units=effect.promoted_units.sum(), expected_units=effect.expected_units.sum(),
        lift_pct=effect.promotion_lift_pct.max(), rank=effect["rank"].min()).order_by("promotion_id"))
    top3 = {row["promotion_id"] for row in per_promotion if row["rank"] is not None and row["rank"] <= 3}
    by_category = backend.fetch_dicts(effect.filter(effect.status == "ok").select(
        label=effect.promotion_id + " " + effect.product_category, lift=effect.lift_units_pct).order_by("label"))
    daily = table(backend, "analytics", "promotion_daily")
    best = min((row for row in per_promotion if row["rank"] is not None), key=lambda row: row["rank"], default=None)
    figures = [charts.bar(per_promotion, "promotion_id", ["promoted_units", "expected_units"],
                          "Promoted vs baseline (expected) units per promotion"),
               charts.bar([{**row, "lift": row["lift_pct"]} for row in per_promotion], "promotion_id", ["lift"],
                          "Lift % by promotion (top 3 in red)", highlight=top3),
               charts.bar(by_category, "label", ["lift"], "Lift % by promotion × category", horizontal=True)]
    if best is not None:
        categories = [row["product_category"] for row in backend.fetch_dicts(
            effect.filter(effect.promotion_id == best["promotion_id"]).select("product_category").limit(1))]
        series = backend.fetch_dicts(daily.filter(daily.product_category == categories[0]).select(
            "sale_date", "units_per_cell", kind=ibis.ifelse(daily.promoted, "promoted day", "baseline day"))
            .order_by("sale_date"))
        figures.append(charts.bar(series, "sale_date", ["units_per_cell"],
                                  f"{categories[0]}: units per in-stock store-product-day ({best['promotion_id']} "
                                  "days highlighted)", highlight={r["sale_date"] for r in series
                                                                  if r["kind"] == "promoted day"}))
    return Section(figures=figures, tables=[_table("Ranking", sorted(
        per_promotion, key=lambda r: (r["rank"] is None, r["rank"] or 0)), ["rank", "promotion_id", "promotion_name",
                                                                          "promoted_units", "expected_units",
                                                                          "lift_pct"])])


def loyalty(backend: Backend) -> Section:
    ledger = table(backend, "loyalty", "points_ledger")
    by_day = backend.fetch_dicts(ledger.group_by(day=ledger.transaction_date.date(), rule=ledger.rule_id).aggregate(
        points=ledger.points.sum()).order_by(["day", "rule"]))
    balances = table(backend, "loyalty", "balances")
    bucket = (balances.balance / 500).floor().cast("int64") * 500
    histogram = backend.fetch_dicts(balances.group_by(bucket=bucket).aggregate(customers=balances.count())
                                    .order_by("bucket"))
    tiers = backend.fetch_dicts(balances.group_by("tier").aggregate(customers=balances.count()).order_by("tier"))
    figures = [charts.line(by_day, "day", "points", "Points issued per day, by rule", series="rule"),
               charts.bar([{**r, "balance": f"{r['bucket']}+"} for r in histogram], "balance", ["customers"],
                          "Balance distribution (customers per 500 points)"),
               charts.bar(tiers, "tier", ["customers"], "Customers per tier")]
    kpis = [("Points issued", f"{sum(int(r['points']) for r in by_day):,}")]
    if backend.has_table("notifications", "outbox"):
        outbox = table(backend, "notifications", "outbox")
        statuses = backend.fetch_dicts(outbox.group_by("status").aggregate(messages=outbox.count()).order_by("status"))
        figures.append(charts.bar(statuses, "status", ["messages"], "Notifications by status"))
        kpis += [(f"E-mails {row['status']}", f"{row['messages']:,}") for row in statuses]
    return Section(kpis=kpis, figures=figures)


def segments(backend: Backend) -> Section:
    rfm = table(backend, "analytics", "customer_rfm")
    sizes = backend.fetch_dicts(rfm.group_by("segment").aggregate(customers=rfm.count(), revenue=rfm.monetary.sum())
                                .order_by(ibis.desc("customers")))
    grid = backend.fetch_dicts(rfm.group_by(["r_score", "f_score"]).aggregate(customers=rfm.count()))
    flags = backend.fetch_dicts(rfm.aggregate(high=rfm.is_high_spender.sum(), at_risk=rfm.is_at_risk.sum()))[0]
    columns = ["customer_id", "first_name", "email", "monetary", "recency_days", "balance", "segment"]
    top_high = backend.fetch_dicts(rfm.filter(rfm.is_high_spender).order_by(ibis.desc("monetary")).limit(10))
    top_risk = backend.fetch_dicts(rfm.filter(rfm.is_at_risk).order_by(ibis.desc("balance")).limit(10))
    for row in top_high + top_risk:
        row["email"] = mask_email(row["email"])
    total_revenue = sum(float(row["revenue"] or 0) for row in sizes) or 1.0
    for row in sizes:
        row["revenue_share_pct"] = 100.0 * float(row["revenue"] or 0) / total_revenue
    return Section(
        kpis=[("High-Spenders", f"{int(flags['high'] or 0):,}"), ("At-Risk", f"{int(flags['at_risk'] or 0):,}")],
        figures=[charts.bar(sizes, "segment", ["customers"], "Customers per RFM segment"),
                 charts.bar(sizes, "segment", ["revenue_share_pct"], "Revenue share % per segment"),
                 charts.heatmap(grid, "f_score", "r_score", "customers", "Customers by recency (R) × frequency (F)")],
        tables=[_table("Top High-Spenders", top_high, columns), _table("Top At-Risk (by points)", top_risk, columns)])


def inventory(backend: Backend) -> Section:
    top = backend.fetch_dicts(table(backend, "analytics", "top_products").order_by("rank"))
    outs = table(backend, "analytics", "stockouts")
    heat = backend.fetch_dicts(outs.select("product_id", "store_id", "out_of_stock_pct"))
    lost = table(backend, "analytics", "lost_sales")
    by_product = backend.fetch_dicts(lost.group_by("product_id").aggregate(
        lost_units=lost.lost_units.sum(), lost_revenue=lost.lost_revenue.sum()).order_by("product_id"))
    by_store = backend.fetch_dicts(lost.group_by("store_id").aggregate(lost_revenue=lost.lost_revenue.sum())
                                   .order_by(ibis.desc("lost_revenue")).limit(40))
    return Section(
        kpis=[("Lost revenue (top products)", _money(sum(float(r["lost_revenue"] or 0) for r in by_product)))],
        figures=[charts.heatmap(heat, "product_id", "store_id", "out_of_stock_pct", "Out-of-stock % of days"),
                 charts.bar(by_product, "product_id", ["lost_units"], "Estimated lost units by product"),
                 charts.bar(by_store, "store_id", ["lost_revenue"], "Estimated lost revenue by store")],
        tables=[_table("Top products", top, ["rank", "product_id", "product_name", "product_category", "units",
                                             "revenue", "average_price"])])


SECTIONS = (
    SectionSpec("overview", "Overview", ("staging", "store_sales_header"), "retailflow run DIR", overview),
    SectionSpec("quality", "Data quality", ("audit", "batches"), "retailflow ingest DIR", data_quality),
    SectionSpec("promotions", "Promotions", ("analytics", "promotion_effectiveness"), "retailflow promotions",
                promotions),
    SectionSpec("loyalty", "Loyalty", ("loyalty", "points_ledger"), "retailflow loyalty", loyalty),
    SectionSpec("segments", "Segments", ("analytics", "customer_rfm"), "retailflow segments", segments),
    SectionSpec("inventory", "Inventory", ("analytics", "top_products"), "retailflow inventory", inventory),
)
