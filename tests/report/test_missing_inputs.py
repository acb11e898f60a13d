"""Stages that ran without an input file say which file they need, in the CLI and the report, instead of zeros."""

from __future__ import annotations

import csv
import json
import shutil

from report_text import visible_text
from typer.testing import CliRunner

from retailflow.backends import connect
from retailflow.cli import app
from retailflow.report.dashboard import build_report
from retailflow.report.inputs import STAGES, missing_inputs
from retailflow.report.registry import SECTIONS

NO_SNAPSHOTS = ("no inventory_daily snapshots loaded (files inventory*.csv): stock-outs, lost sales and phantom "
                "stock need them")
NO_PROMOTIONS = ("no promotion_details loaded (files promotion_details*.csv or promotions*.csv): promotion lift "
                 "needs them")


def sample_without(folder, sample_dir, *entities: str):
    """The shipped sample minus the files of `entities`; without promotions, the lines name none."""
    folder.mkdir()
    for path in sample_dir.glob("*.csv"):
        if path.stem not in entities:
            shutil.copy(path, folder / path.name)
    if "promotion_details" in entities:
        lines = folder / "store_sales_line_items.csv"
        with lines.open(newline="", encoding="utf-8-sig") as file:
            rows = list(csv.reader(file))
        with lines.open("w", newline="", encoding="utf-8") as file:
            csv.writer(file).writerows([rows[0]] + [[*row[:3], "", *row[4:]] for row in rows[1:]])
    return folder


def words(text: str) -> str:
    """The text with every run of whitespace one space (the Rich console's width is fixed at first import)."""
    return " ".join(text.split())


def test_without_inventory_snapshots(db_url, sample_dir, tmp_path):
    runner = CliRunner()
    run = runner.invoke(app, ["--db", db_url, "-q", "run", str(sample_without(tmp_path / "data", sample_dir,
                                                                              "inventory_daily"))])
    assert run.exit_code == 0, run.output
    table = runner.invoke(app, ["--db", db_url, "inventory"])
    assert table.exit_code == 0, table.output
    # The top products (sales alone) are there: P01 and P03 sold 4 units each. Nothing about stock is printed.
    assert "Top 5 products" in table.stdout and "Headphones" in table.stdout
    assert NO_SNAPSHOTS in words(table.stdout)
    for zero_line in ("lost to stock-outs", "0 units", "phantom stock:", "Out-of-stock days per store"):
        assert zero_line not in table.stdout, zero_line
    machine = runner.invoke(app, ["--db", db_url, "inventory", "--format", "json"])
    assert machine.exit_code == 0, machine.output
    rows = [{**row, "table": name} for name, listed in json.loads(machine.stdout).items() for row in listed]
    assert {row["table"]: row["status"] for row in rows} == {
        "top_products": "ok", "stockouts": NO_SNAPSHOTS, "lost_by_product": NO_SNAPSHOTS, "lost_total": NO_SNAPSHOTS,
        "phantom_runs": NO_SNAPSHOTS}
    assert [row["product_id"] for row in rows if row["table"] == "top_products"] == ["P01", "P03", "P04", "P05", "P06"]
    lost = [row for row in rows if row["table"] == "lost_total"]
    assert len(lost) == 1 and lost[0]["lost_units"] is None and lost[0]["lost_revenue"] is None
    # Promotions still measure lift on each store's observed assortment, counted in stock, and say so.
    promotions = runner.invoke(app, ["--db", db_url, "promotions"])
    assert promotions.exit_code == 0, promotions.output
    assert "no inventory_daily snapshots loaded (files inventory*.csv): without them a store's cells are the " \
           "products it sold within 14 days of the day, all counted in stock" in words(promotions.stdout)
    ranked = runner.invoke(app, ["--db", db_url, "promotions", "--format", "json"])
    assert ranked.exit_code == 0 and {row["promotion_id"] for row in json.loads(ranked.stdout)} >= {"PR01", "PR02"}
    report = runner.invoke(app, ["--db", db_url, "report", "--out", str(tmp_path / "report.html")])
    assert report.exit_code == 0, report.output
    assert "not run yet" not in report.stdout and f"inventory: {NO_SNAPSHOTS}" in words(report.stdout)
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert '<section id="inventory" data-status="shown"' in html and "Not run yet" not in html
    inventory = html[html.index('<section id="inventory"'):]
    text = words(visible_text(inventory[:inventory.index("</section>")]))
    assert f"Shown from what is there; missing input: {NO_SNAPSHOTS}" in text
    assert "Top products by units sold" in text and "Estimated lost" not in text and "Stock-out days" not in text


def test_without_promotions_or_loyalty_rules(db_url, sample_dir, tmp_path):
    runner = CliRunner()
    data = sample_without(tmp_path / "data", sample_dir, "promotion_details", "loyalty_rules")
    run = runner.invoke(app, ["--db", db_url, "-q", "run", str(data)])
    assert run.exit_code == 0, run.output
    table = runner.invoke(app, ["--db", db_url, "promotions"])
    assert table.exit_code == 0, table.output
    assert words(table.stdout) == NO_PROMOTIONS
    machine = runner.invoke(app, ["--db", db_url, "promotions", "--format", "json"])
    assert machine.exit_code == 0, machine.output
    only = json.loads(machine.stdout)
    assert len(only) == 1 and only[0]["status"] == NO_PROMOTIONS and only[0]["promotion_id"] is None
    backend = connect(db_url)
    try:
        info = build_report(backend, tmp_path / "report.html")
    finally:
        backend.close()
    assert info.sections_missing == [] and info.inputs_missing == {
        "promotions": [NO_PROMOTIONS],
        "loyalty": ["no loyalty_rules loaded (files loyalty_rules*.csv): points are earned by them"]}
    html = info.path.read_text(encoding="utf-8")
    assert '<section id="promotions" data-status="missing input"' in html
    assert "<code>retailflow promotions</code> ran, but has nothing to show without its input:" in html
    # Loyalty shows the opening balances it has, and no "0 points issued" it could not compute.
    loyalty = html[html.index('<section id="loyalty"'):]
    text = words(visible_text(loyalty[:loyalty.index("</section>")]))
    assert 'data-status="shown"' in loyalty[:60] and "Customers with points" in text
    assert "Points issued" not in text and "no loyalty_rules loaded" in text


def test_a_loaded_file_whose_rows_were_all_quarantined_is_named_as_such(staged_sample, tmp_path):
    staged_sample.execute("DELETE FROM staging.inventory_daily")
    assert [item.message for item in missing_inputs(staged_sample, "inventory")] == [
        "no inventory_daily snapshots staged (every row loaded was quarantined: see `retailflow quarantine`): "
        "stock-outs, lost sales and phantom stock need them"]


def test_every_section_says_what_it_needs():
    assert [spec.key for spec in SECTIONS] == list(STAGES)


def test_each_stage_mark_is_its_analytics_stage():
    """inputs.STAGES names the stage marks as text (no analytics import, so no Ibis, for the idle commands): they
    are the analytics modules' STAGE."""
    from retailflow.analytics import inventory, loyalty, promotions
    from retailflow.checks import run

    assert {name: stage.mark for name, stage in STAGES.items() if stage.mark} == {
        "checks": run.STAGE, "promotions": promotions.STAGE, "loyalty": loyalty.STAGE, "inventory": inventory.STAGE}
