"""The checks against the generator's planted incidents (`--incidents`): every incident found, nothing else
flagged, on six weeks of six stores (DuckDB; PostgreSQL runs the same statements in test_shop.py).

At this size (about 160 lines a store-day) seeds 1 to 8 gave recall 1.0 each and precision 1.0 on seven: on the
eighth, one store short of stock on ordinary days sold 80 % more the day after the one-day promotion (the stock
it had built up for it): a real change of volume, though not a planted one. benchmarks/checks.py measures the
same on 90 days of 50 stores.
"""

from __future__ import annotations

import csv

from retailflow.backends import connect
from retailflow.checks import run_checks
from retailflow.checks.settings import ChecksSettings, read_holidays
from retailflow.generate import GeneratorOptions, generate_dataset
from retailflow.generate.incidents import evaluate
from retailflow.ingest import discover, ingest
from retailflow.quality.engine import route_all
from retailflow.quality.rules import load_rules

OPTIONS = GeneratorOptions(seed=3, stores=6, days=42, line_items=40_000, incidents=True)


def _found(outcome) -> list[tuple[str, str, str]]:
    return [(finding.check, finding.store_id, finding.business_date.isoformat()) for finding in outcome.findings]


def test_every_incident_is_found_and_nothing_else(tmp_path):
    """Loaded and checked, then the late files loaded a night later and checked again."""
    data = tmp_path / "data"
    generate_dataset(data, OPTIONS)
    backend = connect(f"duckdb:///{tmp_path}/checks.duckdb")
    try:
        settings = ChecksSettings(holidays=read_holidays(data / "_holidays.csv"))
        ingest(backend, discover([data]))
        route_all(backend, load_rules(), "validate")
        first = run_checks(backend, settings=settings)
        ingest(backend, discover([data / "_late"]))
        route_all(backend, load_rules(), "validate")
        final = run_checks(backend, settings=settings)
    finally:
        backend.close()
    with open(data / "_truth" / "incidents.csv", newline="") as handle:
        truth = list(csv.DictReader(handle))
    scores = evaluate(_found(final), truth)
    assert scores["recall"] == 1.0, scores["missed"]
    assert scores["precision"] >= 0.95, scores["false"]
    late = next(row for row in truth if row["kind"] == "late_file")
    key = (late["store_id"], late["business_date"])
    assert {check for check, *where in _found(first) if tuple(where) == key} == {"missing"}
    assert {check for check, *where in _found(final) if tuple(where) == key} == {"late"}
