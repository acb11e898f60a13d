"""The floor every benchmark compares with: DuckDB alone loading the same CSV files into typed tables."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import duckdb


def floor_seconds(files: list[Path]) -> float:
    """Seconds DuckDB takes to CREATE TABLE AS SELECT * FROM read_csv(file) for every file.

    Types are auto-detected as a user would get them; the planted bad values (an impossible
    date, say) would abort that load, so rows that do not fit the detected types are skipped.
    """
    with tempfile.TemporaryDirectory(prefix="retailflow-floor-") as folder:
        connection = duckdb.connect(str(Path(folder) / "floor.duckdb"))
        started = time.perf_counter()
        for index, path in enumerate(files):
            source = str(path).replace("'", "''")
            connection.execute(f"CREATE TABLE t{index} AS SELECT * FROM read_csv('{source}', ignore_errors = true)")
        seconds = time.perf_counter() - started
        connection.close()
        return seconds
