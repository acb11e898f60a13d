"""`retailflow promotions` and `retailflow inventory`: analytics over staged sales."""

from __future__ import annotations

import typer

from retailflow.analytics.inventory import run_inventory
from retailflow.analytics.promotions import run_promotions
from retailflow.commands import open_backend
from retailflow.output import Format, console, render

PROMOTION_COLUMNS = ["rank", "promotion_id", "product_category", "status", "days_observed", "promoted_units",
                     "expected_units", "lift_units_pct", "lift_revenue_pct", "incremental_revenue", "discount_cost",
                     "overlap_days", "promotion_lift_pct"]


def promotions_command(
    ctx: typer.Context,
    top: int = typer.Option(3, help="How many promotions to rank."),
    min_baseline_days: int = typer.Option(5, "--min-baseline-days",
                                          help="Non-promoted days a category needs before its lift is ranked."),
    output_format: Format = typer.Option(Format.table, "--format", help="Output format: table, json or csv."),
) -> None:
    """Promotion lift against a weekday-adjusted, stock-aware baseline; the top N by % sales increase."""
    rows = run_promotions(open_backend(ctx, writes=True), top=top, min_baseline_days=min_baseline_days)
    render(rows, output_format, title=f"Promotion effectiveness (top {top}, then unranked)",
           columns=PROMOTION_COLUMNS)


def inventory_command(
    ctx: typer.Context,
    top: int = typer.Option(5, help="How many best-selling products to analyse."),
    output_format: Format = typer.Option(Format.table, "--format", help="Output format: table, json or csv."),
) -> None:
    """Top sellers, their % of out-of-stock days per store and the estimated sales lost meanwhile."""
    result = run_inventory(open_backend(ctx, writes=True), top=top)
    if output_format is not Format.table:
        render([{**row, "table": name} for name, rows in result.items() for row in rows], output_format)
        return
    render(result["top_products"], output_format, title=f"Top {top} products",
           columns=["rank", "product_id", "product_name", "product_category", "units", "revenue", "average_price"])
    render(result["stockouts"], output_format, title="Out-of-stock days per store",
           columns=["rank", "product_id", "store_id", "days_observed", "days_out_of_stock", "out_of_stock_pct"])
    render(result["lost_by_product"], output_format, title="Estimated lost sales",
           columns=["rank", "product_id", "stockout_days", "lost_units", "lost_revenue"])
    total = result["lost_total"][0]
    console.print(f"overall: {total['lost_units']} units, {total['lost_revenue']} revenue lost to stock-outs")
