"""Dagster definitions of retailflow for `dagster dev -f examples/dagster_definitions.py` (or a code location).

The database and the landing folder come from the environment: RETAILFLOW_DB (default the DuckDB file
./retailflow.duckdb) and RETAILFLOW_LANDING (default ./landing); RETAILFLOW_RULES adds rules, e.g. with
`max_failed_pct` thresholds that become blocking checks; RETAILFLOW_SOURCES is a source mapping for exports
not in our contract (docs/reference/sources.md).
"""

import os

from retailflow.config import DEFAULT_DB
from retailflow.integrations.dagster import retailflow_definitions

defs = retailflow_definitions(os.environ.get("RETAILFLOW_DB", DEFAULT_DB), os.environ.get("RETAILFLOW_LANDING", "landing"),
                              rules=os.environ.get("RETAILFLOW_RULES") or None,
                              sources=os.environ.get("RETAILFLOW_SOURCES") or None,
                              start_date=os.environ.get("RETAILFLOW_START_DATE", "2024-01-01"))
