"""The tables the checks store: declared in the catalog of stored tables (retailflow.catalog) with every other
table retailflow writes; named here for the checks' modules."""

from __future__ import annotations

from retailflow.catalog import (
                                ANOMALIES,
                                CHECK_RUNS,
                                EXPECTED_DELIVERIES,
                                STORE_DAY_DELIVERIES,
                                STORE_DAY_METRICS,
                                StoredTable,
)

#: Every table the checks store, by qualified name.
TABLES: dict[str, StoredTable] = {table.qualified_name: table for table in (
    STORE_DAY_DELIVERIES, STORE_DAY_METRICS, EXPECTED_DELIVERIES, ANOMALIES, CHECK_RUNS)}
