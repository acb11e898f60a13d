"""Shared fixtures: one test suite, parametrised over every database engine available here."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from hypothesis import settings

# CI runs a bounded number of fuzz examples; `pytest --hypothesis-profile=long` runs thousands.
settings.register_profile("default", max_examples=25)
settings.register_profile("long", max_examples=200)
settings.load_profile("default")

from helpers import MYSQL_ADMIN, MYSQL_SKIP, POSTGRES_ADMIN, POSTGRES_SKIP, SAMPLE_DIR, drop_mysql_database
from retailflow.backends import Backend, connect
from retailflow.ingest import discover, ingest
from retailflow.quality.engine import route_all
from retailflow.quality.rules import load_rules



@pytest.fixture(scope="session", autouse=True)
def sql_cache_dir(tmp_path_factory) -> Iterator[Path]:
    """Compiled SQL cached for this test run only (shared by the workers and the commands they start)."""
    folder = tmp_path_factory.getbasetemp().parent / "sql-cache"
    previous = os.environ.get("RETAILFLOW_CACHE_DIR")
    os.environ["RETAILFLOW_CACHE_DIR"] = str(folder)
    yield folder
    if previous is None:
        os.environ.pop("RETAILFLOW_CACHE_DIR", None)
    else:
        os.environ["RETAILFLOW_CACHE_DIR"] = previous


@pytest.fixture
def sample_dir() -> Path:
    """The tiny hand-made dataset shipped in the package (see sample_data/README.md)."""
    return SAMPLE_DIR


@pytest.fixture(params=["duckdb", "postgres", "mysql"])
def db_url(request, tmp_path) -> Iterator[str]:
    """A fresh, empty database URL on each engine; server databases are dropped afterwards."""
    if request.param == "duckdb":
        yield f"duckdb:///{tmp_path}/test.duckdb"
        return
    if request.param == "mysql":
        if MYSQL_SKIP:
            pytest.skip(MYSQL_SKIP)
        name = f"rf_test_{uuid.uuid4().hex[:12]}"
        try:
            yield f"{MYSQL_ADMIN.rstrip('/')}/{name}"
        finally:
            drop_mysql_database(name)
        return
    if POSTGRES_SKIP:
        pytest.skip(POSTGRES_SKIP)
    name = f"rf_test_{uuid.uuid4().hex[:12]}"
    base = POSTGRES_ADMIN.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def backend(db_url) -> Iterator[Backend]:
    """A connected backend on a fresh database (schemas created)."""
    connected = connect(db_url)
    yield connected
    connected.close()


@pytest.fixture
def staged_sample(backend, sample_dir) -> Backend:
    """A backend with the sample dataset ingested and validated."""
    ingest(backend, discover([sample_dir]))
    route_all(backend, load_rules(), "validate")
    return backend
