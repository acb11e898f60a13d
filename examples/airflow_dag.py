"""The retailflow DAG for an Airflow 3 dags folder: copy this file there (or point a DAG bundle at it).

The database and the landing folder come from the environment of the Airflow workers: RETAILFLOW_DB
(default the DuckDB file ./retailflow.duckdb), RETAILFLOW_LANDING (default ./landing), RETAILFLOW_RULES
(rules with `max_failed_pct` stop a day at validation), RETAILFLOW_SOURCES (a source mapping for exports not in
our contract, docs/reference/sources.md) and RETAILFLOW_REPORT (the dashboard's path).
"""

import os

from retailflow.config import DEFAULT_DB
from retailflow.integrations.airflow import retailflow_dag

dag = retailflow_dag(os.environ.get("RETAILFLOW_DAG_ID", "retailflow"), os.environ.get("RETAILFLOW_DB", DEFAULT_DB),
                     os.environ.get("RETAILFLOW_LANDING", "landing"), rules=os.environ.get("RETAILFLOW_RULES") or None,
                     report=os.environ.get("RETAILFLOW_REPORT", "retailflow-report.html"),
                     sources=os.environ.get("RETAILFLOW_SOURCES") or None)
