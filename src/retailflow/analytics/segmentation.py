"""RFM segmentation with the point balance, and the two required segments.

Per customer: recency (days from their last purchase — the later of their last staged
transaction and customer_details.last_purchase_date — to the as-of date, by default the latest
transaction day), frequency (distinct transactions), monetary (total spend) and point balance.
R, F and M scores are quintiles 1–5 (ties broken by customer id, so runs are deterministic);
the segment name comes from rfm_segments.csv by R and FM = round((F + M) / 2), first match.
High-Spenders: the top 10% of buying customers by monetary (ties: customer id). At-Risk: no
purchase for 60+ days and a positive balance. segment_id written back: AR when at risk (it
takes precedence: a high spender slipping away needs the retention message), else HS, else NULL.

Beside the At-Risk rule, run_segments fits the churn model (retailflow.analytics.churn): a churn
probability per customer in analytics.customer_churn, its mean per segment in the returned rows.

Output: analytics.customer_rfm, one row per customer.
"""

from __future__ import annotations

import csv
import datetime as dt
from importlib import resources

import ibis
import ibis.expr.types as ir

from retailflow import catalog
from retailflow.analytics.churn import CHURN, run_churn
from retailflow.analytics.purchases import PURCHASES
from retailflow.analytics.purchases import update as update_purchases
from retailflow.backends import Backend
from retailflow.errors import UserError
from retailflow.tables import staging_table

RFM = catalog.table("analytics.customer_rfm")


def segment_map() -> list[dict]:
    """The RFM segment map (data file), validated: every R × FM score pair is named."""
    text = resources.files("retailflow.analytics").joinpath("rfm_segments.csv").read_text(encoding="utf-8")
    rows = [{**row, **{key: int(row[key]) for key in ("r_min", "r_max", "fm_min", "fm_max")}}
            for row in csv.DictReader(text.splitlines())]
    for r in range(1, 6):
        for fm in range(1, 6):
            if not any(row["r_min"] <= r <= row["r_max"] and row["fm_min"] <= fm <= row["fm_max"] for row in rows):
                raise UserError(f"rfm_segments.csv names no segment for R={r}, FM={fm}")
    return rows


def customer_rfm(headers: ir.Table, purchases: ir.Table, customers: ir.Table, balances: ir.Table, *,
                 as_of: dt.date | None = None,
                 at_risk_days: int = 60, high_spender_share: float = 0.10) -> ir.Table:
    """One row per customer: R/F/M values and scores, balance, segment, High-Spender and At-Risk flags.

    `purchases` are the customers' purchases (analytics.customer_purchases); `headers` give the latest day."""
    bought = purchases.select("customer_id", "frequency", "monetary", last_transaction=purchases.last_day)
    reference = ibis.literal(as_of) if as_of else headers.transaction_date.max().date().as_scalar()
    rows = customers.select("customer_id", "first_name", "email", "last_purchase_date").left_join(
        bought, "customer_id").select(
        "customer_id", "first_name", "email", "last_purchase_date", bought.frequency, bought.monetary,
        bought.last_transaction)
    rows = rows.left_join(balances.select("customer_id", "balance"), "customer_id").select(rows, balances.balance)
    last = ibis.cases((rows.last_transaction.isnull(), rows.last_purchase_date),
                      (rows.last_purchase_date.isnull(), rows.last_transaction),
                      (rows.last_transaction > rows.last_purchase_date, rows.last_transaction),
                      else_=rows.last_purchase_date)
    rows = rows.mutate(last_purchase=last, frequency=rows.frequency.fill_null(0),
                       monetary=rows.monetary.fill_null(0).cast("decimal(18, 2)"), balance=rows.balance.fill_null(0))
    rows = rows.mutate(recency_days=(reference.cast("date") - rows.last_purchase.cast("date")).cast("int64"))
    rows = rows.mutate(
        r_score=ibis.ntile(5).over(order_by=[rows.recency_days.desc(nulls_first=True), rows.customer_id]) + 1,
        f_score=ibis.ntile(5).over(order_by=[rows.frequency, rows.customer_id]) + 1,
        m_score=ibis.ntile(5).over(order_by=[rows.monetary, rows.customer_id]) + 1,
        spend_rank=ibis.row_number().over(order_by=[rows.monetary.desc(), rows.customer_id]),
        buyers=(rows.monetary > 0).ifelse(1, 0).sum().over(),
    )
    fm = ((rows.f_score + rows.m_score) / 2.0).round().cast("int64")
    segments = segment_map()
    segment = ibis.cases(*[((rows.r_score >= s["r_min"]) & (rows.r_score <= s["r_max"]) & (fm >= s["fm_min"])
                            & (fm <= s["fm_max"]), s["segment"]) for s in segments], else_="Unclassified")
    high = (rows.monetary > 0) & (rows.spend_rank < (rows.buyers * high_spender_share).ceil())
    at_risk = rows.recency_days.fill_null(10**6) >= at_risk_days
    at_risk = at_risk & (rows.balance > 0)
    return rows.select(
        "customer_id", "first_name", "email", "last_purchase", "recency_days", "frequency", "monetary", "balance",
        "r_score", "f_score", "m_score", segment=segment, is_high_spender=high, is_at_risk=at_risk,
        segment_id=ibis.cases((at_risk, "AR"), (high, "HS"), else_=ibis.null("string")),
    )


def run_segments(backend: Backend, *, as_of: dt.date | None = None, at_risk_days: int = 60,
                 high_spender_share: float = 0.10, refit: bool = False) -> list[dict]:
    """Materialise analytics.customer_rfm and the churn tables, write segment_id back, return segment counts.

    The churn model is refitted when `refit`, or by default once its fit is a week of data old (churn.run_churn).
    """
    headers = staging_table("store_sales_header")
    if not backend.scalar("SELECT count(*) FROM staging.store_sales_header"):
        raise UserError("no staged sales yet: run `retailflow run DIR` (or ingest + validate) first")
    if backend.has_table("loyalty", "balances"):
        balances = catalog.table("loyalty.balances")
    else:
        customers = staging_table("customer_details")
        balances = customers.select("customer_id", balance=customers.total_loyalty_points)
    expr = customer_rfm(headers, PURCHASES, staging_table("customer_details"), balances, as_of=as_of,
                        at_risk_days=at_risk_days, high_spender_share=high_spender_share)
    with backend.transaction():
        update_purchases(backend)
        backend.replace_table("analytics", "customer_rfm", expr)
        backend.update_from(staging_table("customer_details"), RFM, [("customer_id", "customer_id")],
                            lambda _, rfm: {"segment_id": rfm.segment_id})
        run_churn(backend, as_of=as_of, refit=refit)
    table = RFM.left_join(CHURN, "customer_id")
    # Mean churn probability over the segment and over its At-Risk customers, to set the rule beside the model.
    at_risk_churn = table.is_at_risk.ifelse(table.churn_probability, ibis.null("float64"))
    counts = table.group_by("segment").aggregate(customers=table.count(), revenue=table.monetary.sum(),
                                                 high_spenders=table.is_high_spender.sum(),
                                                 at_risk=table.is_at_risk.sum(),
                                                 at_risk_churn_probability=at_risk_churn.mean().cast("decimal(4, 3)"),
                                                 churn_probability=table.churn_probability.mean().cast("decimal(4, 3)"))
    return backend.fetch_dicts(counts.order_by([ibis.desc("customers"), "segment"]))
