"""retailflow as an Airflow 3 DAG: `airflow dags test` runs a logical day through every stage, and a rule over its
threshold fails validation without a retry."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import SAMPLE_DIR
from retailflow.backends import connect

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "airflow_dag.py"
AIRFLOW = Path(sys.executable).with_name("airflow")
STAGES = ["ingest", "validate", "checks", "purchases", "promotions", "inventory", "loyalty", "segments", "notify", "report"]


@pytest.fixture
def dags():
    """retailflow.integrations.airflow, imported by the tests that use it: importing Airflow takes about 2 s, which
    every pytest-xdist worker paid while collecting when this module imported it."""
    pytest.importorskip("airflow", reason="Airflow is not installed: pip install -e '.[airflow]'")
    from retailflow.integrations import airflow

    return airflow


def _airflow(home: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([str(AIRFLOW), *args], capture_output=True, text=True, timeout=600,
                            env={**os.environ, **env, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                                 "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags")})
    assert result.returncode == 0, f"airflow {' '.join(args)}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.mark.slow
def test_airflow_runs_a_logical_day_through_every_stage(tmp_path, dags):
    home, landing = tmp_path / "airflow", tmp_path / "landing"
    (home / "dags").mkdir(parents=True)
    shutil.copy(EXAMPLE, home / "dags" / EXAMPLE.name)
    shutil.copytree(SAMPLE_DIR, landing, ignore=shutil.ignore_patterns("*.md"))
    database = tmp_path / "shop.duckdb"
    env = {"RETAILFLOW_DB": f"duckdb:///{database}", "RETAILFLOW_LANDING": str(landing),
           "RETAILFLOW_REPORT": str(tmp_path / "report.html"), "RETAILFLOW_DAG_ID": "retailflow_test"}
    _airflow(home, env, "db", "migrate")
    # Airflow 3.1+ runs a DAG only once it is serialized in its database, `dags test` included.
    _airflow(home, env, "dags", "reserialize")
    run = _airflow(home, env, "dags", "test", "retailflow_test", "2024-12-01")
    assert "state=success" in run.stdout + run.stderr
    backend = connect(f"duckdb:///{database}")
    try:
        assert backend.scalar("SELECT count(*) FROM staging.store_sales_header") > 0
        assert backend.scalar("SELECT count(*) FROM loyalty.points_ledger") > 0
    finally:
        backend.close()
    assert (tmp_path / "report.html").exists()


def test_the_dag_has_a_task_per_stage_and_retries_only_the_analytics(tmp_path, dags):
    dag = dags.retailflow_dag("retailflow_shape", f"duckdb:///{tmp_path}/x.duckdb", tmp_path, retries=3)
    assert [task.task_id for task in sorted(dag.tasks, key=lambda task: STAGES.index(task.task_id))] == STAGES
    assert {task.task_id: task.retries for task in dag.tasks} == {stage: 0 if stage in ("ingest", "validate", "checks") else 3
                                                                for stage in STAGES}
    for upstream, downstream in zip(STAGES, STAGES[1:]):
        assert dag.get_task(downstream).upstream_task_ids == {upstream}


def test_a_rule_over_its_threshold_fails_the_validation(tmp_path, dags):
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - id: store_sales_header.total_amount.positive\n    entity: store_sales_header\n"
                     "    kind: positive\n    column: total_amount\n    max_failed_pct: 1\n")
    url = f"duckdb:///{tmp_path}/shop.duckdb"
    day = dt.date(2024, 12, 1)
    assert dags.ingest_day(url, str(SAMPLE_DIR), day)
    with pytest.raises(ValueError, match=r"store_sales_header.total_amount.positive: 1 of 18 rows failed"):
        dags.validate_day(url, str(rules), day)
