"""Shared fixtures: one test suite, parametrised over every database engine available here."""

from __future__ import annotations

import os
import shutil
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



def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Long tests (marked slow) first, handed out one at a time (`make test`: --maxschedchunk 1): a
    minute-long test started last kept one worker busy while the other sat idle, and xdist's default
    chunks gave every long test to the same worker."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


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


class SampleTemplates:
    """The sample ingested and validated once per test process and engine, then copied for each test.

    DuckDB copies the database file, PostgreSQL creates the test's database from a template
    database; MySQL has no cheap copy, so there every test loads the sample itself.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.postgres_template: str | None = None

    @staticmethod
    def _build(url: str) -> None:
        built = connect(url)
        try:
            ingest(built, discover([SAMPLE_DIR]))
            route_all(built, load_rules(), "validate")
        finally:
            built.close()

    def staged(self, url: str) -> Backend:
        """A connected backend at url (a fresh, empty database) holding the validated sample."""
        if url.startswith("duckdb"):
            template = self.folder / "sample.duckdb"
            if not template.exists():
                self._build(f"duckdb:///{template}")
            shutil.copyfile(template, url.split("///", 1)[1])
        elif url.startswith("postgres"):
            base, name = url.rsplit("/", 1)
            if self.postgres_template is None:
                self.postgres_template = f"rf_template_{uuid.uuid4().hex[:12]}"
                self._build(f"{base}/{self.postgres_template}")
            with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
                admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.postgres_template}"')
        else:
            self._build(url)
        return connect(url)

    def drop(self) -> None:
        if self.postgres_template is not None:
            with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{self.postgres_template}" WITH (FORCE)')


@pytest.fixture(scope="session")
def sample_templates(tmp_path_factory) -> Iterator[SampleTemplates]:
    templates = SampleTemplates(tmp_path_factory.mktemp("sample-template"))
    yield templates
    templates.drop()


@pytest.fixture
def staged_sample(db_url, sample_templates) -> Iterator[Backend]:
    """A backend on a fresh database with the sample dataset ingested and validated."""
    staged = sample_templates.staged(db_url)
    yield staged
    staged.close()
