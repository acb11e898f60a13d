"""The dashboard file: every section present, stages not run say what to run, nothing unreadable or unmasked."""

from __future__ import annotations

import csv
import json
import re
import sys

import plotly.offline
import pytest
import typer.main
from report_text import LEAKED_MISSING, visible_text
from typer.testing import CliRunner

from retailflow.analytics.purchases import customer_days, purchases
from retailflow.analytics.segmentation import customer_rfm
from retailflow.backends import connect
from retailflow.cli import app
from retailflow.generate import GeneratorOptions, generate_dataset
from retailflow.pipeline import run_pipeline
from retailflow.quality.rules import load_rules
from retailflow.report import dashboard
from retailflow.report.registry import SECTIONS, SectionSpec, section
from retailflow.report.sections import STORE_LIMIT
from retailflow.tables import staging_table

FIGURES = re.compile(r'<script type="application/json" id="figure-[^"]+">(.*?)</script>', re.S)


def sample_emails(sample_dir) -> list[str]:
    with open(sample_dir / "customer_details.csv", newline="") as file:
        return [row["email"] for row in csv.DictReader(file) if row["email"]]


def test_every_section_is_built(full_run, tmp_path):
    info = dashboard.build_report(full_run, tmp_path / "report.html")
    html = info.path.read_text(encoding="utf-8")
    assert info.sections_missing == [] and info.sections_failed == {}
    assert [key for key in re.findall(r'<section id="([^"]+)" data-status="shown"', html)] == [
        spec.key for spec in SECTIONS] == ["overview", "quality", "checks", "promotions", "loyalty", "segments",
                                          "inventory"]
    figures = FIGURES.findall(html)
    assert len(figures) == info.charts >= 20
    for figure in figures:
        assert json.loads(figure)["data"], "a chart without data"
    text = visible_text(html)
    assert not LEAKED_MISSING.search(text), LEAKED_MISSING.search(text)
    assert not re.search(r'"(None|nan|NaN|NaT)"', "".join(figures))
    for heading in ("Revenue by day", "Failures by rule", "Top quarantine reasons", "Lift % by promotion",
                    "Points issued per day, by rule", "Customers by recency (R) × frequency (F) score",
                    "Out-of-stock % of days, store × product"):
        assert heading in text
    assert "Dataset sample_data (8 files)" in " ".join(text.split()) and full_run.display_url in text
    assert '<td class="number">43</td>' in html, "counts read as integers on every engine"
    # One self-contained file: nothing loaded from elsewhere, Plotly's JavaScript inlined exactly once.
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=", html), "loads something from elsewhere"
    assert html.count(plotly.offline.get_plotlyjs()[:80]) == 1


def test_emails_are_masked_everywhere(full_run, sample_dir, tmp_path):
    html = dashboard.build_report(full_run, tmp_path / "report.html").path.read_text(encoding="utf-8")
    for address in sample_emails(sample_dir):  # includes the malformed finn.example.com, quoted in a warning
        assert address not in html
    assert "a***@example.com" in html and "email 'f***'" in visible_text(html)


def test_stages_not_run_say_what_to_run(staged_sample, tmp_path):
    info = dashboard.build_report(staged_sample, tmp_path / "report.html")
    html = info.path.read_text(encoding="utf-8")
    assert info.sections_missing == ["checks", "promotions", "loyalty", "segments", "inventory"] and \
        not info.sections_failed
    for command in ("checks", "promotions", "loyalty", "segments", "inventory"):
        assert f"Not run yet — run <code>retailflow {command}</code>" in html
    assert 'id="overview" data-status="shown"' in html and 'id="quality" data-status="shown"' in html
    assert not LEAKED_MISSING.search(visible_text(html))


def test_an_empty_database_gives_a_report_of_panels(backend, tmp_path):
    info = dashboard.build_report(backend, tmp_path / "report.html")
    assert info.sections_missing == [spec.key for spec in SECTIONS] and info.charts == 0
    assert "Not run yet — run <code>retailflow run DIR</code>" in info.path.read_text(encoding="utf-8")


def test_an_empty_stage_table_counts_as_not_run(staged_sample, tmp_path):
    customers = staging_table("customer_details")
    balances = customers.select("customer_id", balance=customers.total_loyalty_points)
    headers = staging_table("store_sales_header")
    staged_sample.replace_table("analytics", "customer_rfm", customer_rfm(
        headers, purchases(customer_days(headers)), customers, balances).limit(0))
    assert "segments" in dashboard.build_report(staged_sample, tmp_path / "report.html").sections_missing


def test_broken_and_empty_sections_cost_only_themselves(staged_sample, tmp_path, monkeypatch):
    def broken(backend):
        raise RuntimeError("column lift_pct does not exist")

    needs = ("staging.store_sales_header",)
    monkeypatch.setattr(dashboard, "SECTIONS", [
        *SECTIONS[:2], SectionSpec("broken", "Broken", needs, "retailflow run DIR", broken),
        SectionSpec("quiet", "Quiet", needs, "retailflow run DIR", lambda backend: None)])
    info = dashboard.build_report(staged_sample, tmp_path / "report.html")
    assert info.sections_failed == {"broken": "RuntimeError: column lift_pct does not exist"}
    html = info.path.read_text(encoding="utf-8")
    assert 'id="broken" data-status="failed"' in html and "This section could not be built" in html
    assert 'id="quiet" data-status="empty"' in html and 'id="overview" data-status="shown"' in html


def test_every_section_names_a_real_command():
    commands = typer.main.get_command(app).commands
    for spec in SECTIONS:
        program, command, *_ = spec.command.split()
        assert program == "retailflow" and command in commands, spec.command


def test_a_section_must_name_known_tables():
    with pytest.raises(ValueError, match="analytics.nothing"):
        section("nothing", "Nothing", needs=("analytics.nothing",), command="retailflow run DIR")
    with pytest.raises(ValueError, match="duplicate"):
        section("overview", "Overview again", needs=(), command="retailflow run DIR")


def test_png_export_is_skipped_cleanly_without_kaleido(staged_sample, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "kaleido", None)  # import kaleido now raises ImportError
    info = dashboard.build_report(staged_sample, tmp_path / "report.html", png_dir=tmp_path / "png")
    assert info.png_note.startswith("PNG export skipped: kaleido is not installed")
    assert info.path.exists() and not (tmp_path / "png").exists()


def test_report_command(staged_sample, tmp_path):
    result = CliRunner().invoke(app, ["--db", staged_sample.url, "report", "--out", str(tmp_path), "--title",
                                      "Weekly review"])
    assert result.exit_code == 0, result.output
    assert f"report: {tmp_path / 'report.html'}" in result.output
    assert "not run yet: checks, promotions, loyalty, segments, inventory" in result.output
    assert "<title>Weekly review</title>" in (tmp_path / "report.html").read_text(encoding="utf-8")


def test_size_stays_bounded_however_many_rows(tmp_path):
    """More stores, days and files than any chart draws: the caps hold and the page stays small."""
    generate_dataset(tmp_path / "data", GeneratorOptions(seed=3, stores=40, products=60, customers=600, days=45))
    backend = connect(f"duckdb:///{tmp_path}/generated.duckdb")
    run_pipeline(backend, [tmp_path / "data"], load_rules())
    info = dashboard.build_report(backend, tmp_path / "report.html")
    html = info.path.read_text(encoding="utf-8")
    assert not info.sections_missing and not info.sections_failed
    payload = len(html.encode()) - len(plotly.offline.get_plotlyjs().encode())
    assert payload < 400_000, f"{payload:,} bytes besides Plotly's JavaScript"
    assert f"Showing {STORE_LIMIT} of 40 stores" in html and "Showing 60 of " in html
    backend.close()
