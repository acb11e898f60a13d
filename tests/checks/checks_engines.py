"""Databases for the checks' tests: one per engine the checks run on (DuckDB, PostgreSQL), made and dropped here."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from helpers import POSTGRES_ADMIN, POSTGRES_SKIP

ENGINES = ["duckdb", "postgres"]


@contextlib.contextmanager
def database(engine: str, folder: Path) -> Iterator[str]:
    """A fresh database URL on `engine`; a PostgreSQL database is dropped afterwards."""
    if engine == "duckdb":
        yield f"duckdb:///{folder}/checks.duckdb"
        return
    if POSTGRES_SKIP:
        pytest.skip(POSTGRES_SKIP)
    name = f"rf_test_{uuid.uuid4().hex[:12]}"
    try:
        yield f"{POSTGRES_ADMIN.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
