"""`retailflow promotions` and `retailflow inventory`: analytics over staged sales."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from retailflow.commands import FROM_OPTION, TO_OPTION, date_range, open_backend
from retailflow.output import FORMAT_OPTION, Format, console, errors, render, render_listings

if TYPE_CHECKING:
    from retailflow.report.inputs import Missing

PROMOTION_COLUMNS = ["rank", "promotion_id", "product_category", "product_id", "status", "days_observed", "promoted_units",
                     "expected_units", "lift_units_pct", "lift_revenue_pct", "incremental_revenue", "discount_cost",
                     "overlap_days", "promotion_lift_pct"]
TOP_COLUMNS = ["rank", "product_id", "product_name", "product_category", "units", "revenue", "average_price"]
STOCKOUT_COLUMNS = ["rank", "product_id", "store_id", "days_observed", "days_out_of_stock", "out_of_stock_pct"]
LOST_COLUMNS = ["rank", "product_id", "stockout_days", "lost_units", "lost_revenue"]
PHANTOM_COLUMNS = ["store_id", "product_id", "first_day", "last_day", "days", "min_stock_on_hand", "max_stock_on_hand",
                   "daily_sales", "daily_units", "expected_units", "probability", "ongoing"]
PHANTOM_ROWS_SHOWN = 10
RETURN_COLUMNS = ["product_id", "product_name", "product_category", "sold_units", "returned_units", "returned_amount",
                  "return_rate_pct"]
#: The columns of each table `retailflow inventory` lists, by its name in run_inventory's result.
TABLE_COLUMNS = {"top_products": TOP_COLUMNS, "most_returned": RETURN_COLUMNS, "stockouts": STOCKOUT_COLUMNS,
                 "lost_by_product": LOST_COLUMNS, "lost_total": ["lost_units", "lost_revenue"],
                 "phantom_runs": PHANTOM_COLUMNS}


def promotions_command(
    ctx: typer.Context,
    top: int = typer.Option(3, help="How many promotions to rank."),
    min_baseline_days: int = typer.Option(5, "--min-baseline-days",
                                          help="Non-promoted days a category needs before its lift is ranked."),
    first: str = FROM_OPTION,
    last: str = TO_OPTION,
    output_format: Format = FORMAT_OPTION,
) -> None:
    """Promotion lift against a weekday-adjusted, stock-aware baseline; the top N by % sales increase.

    Without promotions loaded there is no lift to measure: a line says which file is missing, and
    --format json/csv gives one row holding only that status (a measured row's status is its own).
    """
    from retailflow.analytics import answers
    from retailflow.report.inputs import OK, missing_inputs, output_statuses

    backend = open_backend(ctx, writes=True)
    days = date_range(first, last)
    # With nothing new, what the stage stored answers, without importing Ibis (answers.py).
    kept = answers.stored(backend, answers.promotions(top, min_baseline_days)) if days is None else None
    if kept is not None:
        rows = kept["ranked"]
    else:
        from retailflow.analytics.promotions import run_promotions

        rows = run_promotions(backend, top=top, min_baseline_days=min_baseline_days, days=days)
    missing = missing_inputs(backend, "promotions")
    status = output_statuses(missing, ["promotion_effectiveness"])["promotion_effectiveness"]
    if status != OK and output_format is not Format.table:
        rows = [{"status": status}]
    if status == OK or output_format is not Format.table:
        render(rows, output_format, title=f"Promotion effectiveness (top {top}, then unranked)",
               columns=PROMOTION_COLUMNS)
    say_missing(missing, output_format)


def inventory_command(
    ctx: typer.Context,
    top: int = typer.Option(5, help="How many best-selling products to analyse."),
    phantom_threshold: float = typer.Option(
        0.001, "--phantom-threshold",
        help="Flag a run of in-stock days without a sale when its probability exp(-sales a day × days) is below this."),
    phantom_min_days: int = typer.Option(3, "--phantom-min-days",
                                         help="Shortest run of in-stock days without a sale to flag as phantom."),
    first: str = FROM_OPTION,
    last: str = TO_OPTION,
    output_format: Format = FORMAT_OPTION,
) -> None:
    """Top sellers (net of returns), their % of out-of-stock days per store, the estimated sales lost meanwhile,
    phantom stock and the most returned products.

    Without inventory snapshots loaded, stock-outs, lost sales and phantom stock cannot be computed:
    a line says which file is missing instead of zeros. With --format json/csv every row has a status, "ok" or
    that line, and an output that could not be computed has one row holding only its table and status.
    """
    from retailflow.analytics import answers
    from retailflow.report.inputs import OK, missing_inputs, output_statuses

    backend = open_backend(ctx, writes=True)
    days = date_range(first, last)
    # With nothing new, what the stage stored answers, without importing Ibis (answers.py).
    result = answers.stored(backend, answers.inventory(top, phantom_threshold, phantom_min_days)) if days is None \
        else None
    if result is None:
        from retailflow.analytics.inventory import run_inventory

        result = run_inventory(backend, top=top, phantom_threshold=phantom_threshold,
                               phantom_min_days=phantom_min_days, days=days)
    missing = missing_inputs(backend, "inventory")
    statuses = output_statuses(missing, list(result))
    if output_format is not Format.table:
        # Each table with its status: "ok", or the line saying which input is missing (then one row of nulls).
        render_listings({name: (["status", *TABLE_COLUMNS.get(name, _columns_of(result[name]))],
                                [{"status": status, **row} for row in (result[name] if status == OK else [{}])])
                         for name, status in statuses.items()}, output_format)
        say_missing(missing, output_format)
        return
    render(result["top_products"], output_format, title=f"Top {top} products", columns=TOP_COLUMNS)
    if result["most_returned"]:
        render(result["most_returned"], output_format, title="Most returned products (units returned, % of units sold)",
               columns=RETURN_COLUMNS)
    say_missing(missing, output_format)
    if statuses["stockouts"] == OK:
        render(result["stockouts"], output_format, title="Out-of-stock days per store", columns=STOCKOUT_COLUMNS)
        render(result["lost_by_product"], output_format, title="Estimated lost sales", columns=LOST_COLUMNS)
        total = result["lost_total"][0]
        console.print(f"overall: {total['lost_units'] or 0} units, {total['lost_revenue'] or 0} revenue lost to "
                      "stock-outs")
    if statuses["phantom_runs"] == OK:
        _show_phantom(result["phantom_runs"], output_format, phantom_threshold, phantom_min_days)


def _columns_of(rows: list[dict]) -> list[str]:
    """The columns of a table this command has no list for: those of its rows."""
    return list(dict.fromkeys(name for row in rows for name in row))


def say_missing(missing: list[Missing], output_format: Format) -> None:
    """One line per missing input: on stdout for people, on stderr beside machine output (stdout stays data)."""
    for item in missing:
        (console if output_format is Format.table else errors).print(
            item.message, style="yellow", highlight=False, soft_wrap=True, markup=False)


def _show_phantom(phantom: list[dict], output_format: Format, phantom_threshold: float,
                  phantom_min_days: int) -> None:
    """The phantom-stock line and the least likely runs."""
    console.print(f"phantom stock: {len(phantom)} run(s) of ≥ {phantom_min_days} in-stock days without a sale, "
                  f"p < {phantom_threshold}")
    if phantom:
        shown = [_phantom_display(row) for row in phantom[:PHANTOM_ROWS_SHOWN]]
        render(shown, output_format, columns=list(shown[0]),
               title=f"Least likely {len(shown)} of {len(phantom)}; rate = sales a day in stock, "
                     "p = exp(-rate × days)")


def _phantom_display(row: dict) -> dict:
    """A phantom run narrowed to fit a terminal: one stock column, a short probability."""
    low, high = row["min_stock_on_hand"], row["max_stock_on_hand"]
    return {"store": row["store_id"], "product": row["product_id"], "from": row["first_day"], "to": row["last_day"],
            "days": row["days"], "stock": low if low == high else f"{low}-{high}",
            "rate": round(row["daily_sales"], 2), "p": f"{row['probability']:.1e}"}
