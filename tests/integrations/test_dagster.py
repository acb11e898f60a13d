"""retailflow as Dagster assets, run with Dagster's own API: a day, a blocking check, a backfill, the sensor."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import SAMPLE_DIR
from retailflow.backends import connect
from retailflow.generate import GeneratorOptions, generate_dataset

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "dagster_definitions.py"
STAGES = {"raw", "staging", "checks", "purchases", "promotions", "inventory", "loyalty", "segments", "notify", "report"}
#: The sample's T015 (a total of -10.00) is one of its 18 sales: 5.6% fail, above this rule's 1%.
BLOCKING_RULES = """
rules:
  - id: store_sales_header.total_amount.positive
    entity: store_sales_header
    kind: positive
    column: total_amount
    description: A sale has a positive total.
    max_failed_pct: 1
"""


@pytest.fixture
def dg():
    """Dagster, imported by the tests that use it (each pytest-xdist worker paid 0.8 s for it while collecting)."""
    return pytest.importorskip("dagster", reason="Dagster is not installed: pip install -e '.[dagster]'")


def retailflow_definitions(*args, **kwargs):
    from retailflow.integrations.dagster import retailflow_definitions

    return retailflow_definitions(*args, **kwargs)


def _materialised(result) -> set[str]:
    return {event.asset_key.to_user_string() for event in result.get_asset_materialization_events()}


def _run(dg, defs, day: str):
    return dg.materialize([*defs.assets, *defs.asset_checks], partition_key=day, raise_on_error=False)


@pytest.mark.slow
def test_a_day_runs_every_stage_and_a_blocking_check_stops_the_next(tmp_path, dg):
    landing = tmp_path / "landing"
    shutil.copytree(SAMPLE_DIR, landing, ignore=shutil.ignore_patterns("*.md"))
    database = tmp_path / "shop.duckdb"
    defs = retailflow_definitions(f"duckdb:///{database}", landing, start_date="2024-12-01",
                                  report=tmp_path / "report.html")
    result = _run(dg, defs, "2024-12-01")
    assert result.success and _materialised(result) == STAGES
    staging = next(event for event in result.get_asset_materialization_events()
                   if event.asset_key.to_user_string() == "staging").materialization.metadata
    assert staging["rows quarantined"].value > 0 and staging["rows staged"].value > 0
    assert (tmp_path / "report.html").exists()

    rules = tmp_path / "rules.yaml"
    rules.write_text(BLOCKING_RULES)
    blocked_db = tmp_path / "blocked.duckdb"
    blocked = _run(dg, retailflow_definitions(f"duckdb:///{blocked_db}", landing, rules, start_date="2024-12-01",
                                          report=tmp_path / "blocked.html"), "2024-12-01")
    assert not blocked.success and _materialised(blocked) == {"raw", "staging"}
    [evaluation] = [check for check in blocked.get_asset_check_evaluations()
                    if check.asset_check_key.name == "rule_store_sales_header_total_amount_positive"]
    assert not evaluation.passed and evaluation.metadata["failed rows"].value == 1
    backend = connect(f"duckdb:///{blocked_db}")
    try:
        assert backend.scalar("SELECT count(*) FROM quarantine.store_sales_header WHERE transaction_id = 'T015'") == 1
        assert not backend.has_table("loyalty", "points_ledger")
    finally:
        backend.close()


@pytest.mark.slow
def test_a_backfill_of_two_days_and_the_sensor(tmp_path, dg):
    data = tmp_path / "data"
    generate_dataset(data, GeneratorOptions(seed=8, stores=2, products=15, customers=60, days=7))
    landing = tmp_path / "landing"
    landing.mkdir()
    for path in data.glob("*.csv"):
        if "2024-12-0" not in path.name or path.name.endswith(("01.csv", "02.csv")):
            shutil.copy(path, landing)
    defs = retailflow_definitions(f"duckdb:///{tmp_path}/shop.duckdb", landing, start_date="2024-12-01",
                                  report=tmp_path / "report.html")
    sensor = next(sensor for sensor in defs.sensors if sensor.name == "landing_sensor")
    requests = list(sensor(dg.build_sensor_context()))
    assert [request.partition_key for request in requests] == ["2024-12-01", "2024-12-02"]
    for request in requests:
        assert _run(dg, defs, request.partition_key).success
    backend = connect(f"duckdb:///{tmp_path}/shop.duckdb")
    try:
        days = backend.fetch("SELECT DISTINCT CAST(business_date AS VARCHAR) FROM audit.batch_dates ORDER BY 1")[1]
        assert days == [("2024-12-01",), ("2024-12-02",)]
        assert backend.scalar("SELECT count(DISTINCT CAST(transaction_date AS DATE)) FROM loyalty.points_ledger") == 2
    finally:
        backend.close()


def test_dagster_accepts_the_example_definitions(tmp_path, dg):
    dagster = Path(sys.executable).with_name("dagster")
    result = subprocess.run([str(dagster), "definitions", "validate", "-f", str(EXAMPLE)], capture_output=True,
                            text=True, timeout=300, cwd=tmp_path,
                            env={**os.environ, "RETAILFLOW_DB": f"duckdb:///{tmp_path}/shop.duckdb",
                                 "RETAILFLOW_LANDING": str(tmp_path), "DAGSTER_HOME": str(tmp_path)})
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
