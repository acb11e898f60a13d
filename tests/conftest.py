"""Shared fixtures: one test suite, parametrised over every database engine available here.

A test that takes `engine` (or `db_url`, `backend`, `staged_sample`, which are built on it) runs once per
engine: DuckDB, PostgreSQL and MySQL unless it names its own with `@pytest.mark.engines("duckdb", ...)`.
A known gap of an engine is `@pytest.mark.gap("mysql", reason="...")`: a strict xfail there, so that the
day it closes, the test says so. An engine this machine cannot run (a server down, no Java) is skipped.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

# CI runs a bounded number of fuzz examples; `pytest --hypothesis-profile=long` runs thousands.
settings.register_profile("default", max_examples=25)
settings.register_profile("long", max_examples=200)
settings.load_profile("default")

from engines import ENGINES, Engine, SuiteRun
from helpers import SAMPLE_DIR
from retailflow.backends import Backend, connect
from retailflow.generate import GeneratorOptions, generate_dataset
from retailflow.ingest import discover, ingest
from retailflow.quality.engine import route_all
from retailflow.quality.rules import load_rules

#: The engines of a test that names none: Spark only where a test asks, its start alone taking 20 to 40 s here.
DEFAULT_ENGINES = ("duckdb", "postgres", "mysql")
#: The generated shop of the parity and incremental tests: eight days (the nightly runs load four, then one a
#: night), three stores, anomalies planted, and at least three staged sales on the days the incremental tests
#: restate (150 customers; 120 left one). Small, as every engine's time goes into statements, not rows.
GENERATED_SHOP = GeneratorOptions(seed=11, stores=3, products=24, customers=150, days=8, anomaly_rate=0.03)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "engines(*names): the engines the test runs on (default: duckdb, postgres, "
                                       "mysql)")
    config.addinivalue_line("markers", "gap(*names, reason): a known gap on those engines, a strict xfail there")
    config.addinivalue_line("markers", "one_worker(group): run in the worker that runs the rest of `group` (tests "
                                       "sharing an expensive module-scoped fixture build it once)")
    # One id for the run, which pytest-xdist hands its workers: the databases built once are named after it.
    if not hasattr(config, "workerinput") and getattr(config.option, "testrunuid", None) is None:
        config.option.testrunuid = uuid.uuid4().hex


def _run_id(config: pytest.Config) -> str:
    return config.workerinput["testrunuid"] if hasattr(config, "workerinput") else config.option.testrunuid


def _parametrises_engine(metafunc: pytest.Metafunc) -> bool:
    """Whether the test names its engines by parametrising `engine` or `db_url` itself."""
    for marker in metafunc.definition.iter_markers("parametrize"):
        names = marker.args[0]
        names = names.split(",") if isinstance(names, str) else names
        if {name.strip() for name in names} & {"engine", "db_url"}:
            return True
    return False


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "engine" in metafunc.fixturenames and not _parametrises_engine(metafunc):
        named = metafunc.definition.get_closest_marker("engines")
        metafunc.parametrize("engine", named.args if named else DEFAULT_ENGINES, indirect=True)


def _engine_name(item: pytest.Item) -> str | None:
    params = getattr(item, "callspec", None) and item.callspec.params
    return (params.get("engine") or params.get("db_url")) if params else None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Known gaps become strict xfails on their engines. Long tests (marked slow) first, handed out as workers free
    up (`make test`: --dist loadgroup, each test a unit of its own but the Spark tests, one unit): a minute-long test
    started last kept one worker busy while the other sat idle."""
    for item in items:
        for gap in item.iter_markers("gap"):
            if _engine_name(item) in gap.args:
                item.add_marker(pytest.mark.xfail(strict=True, reason=gap.kwargs["reason"]))
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
    for item in items:
        if _engine_name(item) == "pyspark" or "local_spark" in getattr(item, "fixturenames", ()):
            _one_worker(item, "spark")
        elif marker := item.get_closest_marker("one_worker"):
            _one_worker(item, marker.args[0])


def _one_worker(item: pytest.Item, group: str) -> None:
    """Run `item` in the worker that runs the rest of `group` (`make test`: --dist loadgroup), which reads the group
    from the test id's `@` suffix. The Spark tests share one JVM that way: each worker starting its own cost 20-30 s
    of two cores. xdist 3.8 writes the suffix to the attribute older pytest read the id from; pytest 9.2 reads it
    from `_id`, hence the suffix here (and no xdist_group marks)."""
    from _pytest.nodeid import coerce_node_id

    item._id = coerce_node_id(f"{item.nodeid}@{group}")


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Every process drops the databases it put off dropping (Engine.discard); the run's last one (pytest-xdist's
    controller) drops those built once for all (Engine.prepared)."""
    for engine_class in ENGINES.values():
        engine_class.drop_discarded()
        if not hasattr(session.config, "workerinput"):
            engine_class.drop_templates(_run_id(session.config))


@pytest.fixture(scope="session")
def suite_run(request, tmp_path_factory) -> SuiteRun:
    """The folder and id the processes of this run share (a pytest-xdist worker's temp folder is inside it)."""
    base = tmp_path_factory.getbasetemp()
    return SuiteRun(folder=(base.parent if hasattr(request.config, "workerinput") else base) / "shared",
                    run_id=_run_id(request.config))


@pytest.fixture(scope="session", autouse=True)
def sql_cache_dir(suite_run) -> Iterator[Path]:
    """Compiled SQL cached for this test run only (shared by the workers and the commands they start)."""
    folder = suite_run.folder / "sql-cache"
    previous = os.environ.get("RETAILFLOW_CACHE_DIR")
    os.environ["RETAILFLOW_CACHE_DIR"] = str(folder)
    yield folder
    if previous is None:
        os.environ.pop("RETAILFLOW_CACHE_DIR", None)
    else:
        os.environ["RETAILFLOW_CACHE_DIR"] = previous


@pytest.fixture
def engine(request, suite_run) -> Iterator[Engine]:
    """The engine the test runs on (see pytest_generate_tests); the databases it made are dropped afterwards."""
    # A test that parametrises db_url itself names the engine there.
    name = request.param if hasattr(request, "param") else request.node.callspec.params["db_url"]
    why_not = ENGINES[name].unavailable()
    if why_not:
        pytest.skip(why_not)
    engine = ENGINES[name](suite_run)
    yield engine
    engine.close()


@pytest.fixture
def database(engine) -> str:
    """The name of a fresh, empty database on the test's engine (retailflow creates it on first connect)."""
    return engine.fresh()


@pytest.fixture
def db_url(engine, database) -> str:
    """The URL of `database`."""
    return engine.url(database)


@pytest.fixture
def backend(db_url) -> Iterator[Backend]:
    """A connected backend on a fresh database (schemas created)."""
    connected = connect(db_url)
    yield connected
    connected.close()


@pytest.fixture
def sample_dir() -> Path:
    """The tiny hand-made dataset shipped in the package (see sample_data/README.md)."""
    return SAMPLE_DIR


def _ingest_and_validate_sample(backend: Backend) -> None:
    ingest(backend, discover([SAMPLE_DIR]))
    route_all(backend, load_rules(), "validate")


@pytest.fixture
def staged_sample(engine, database, db_url) -> Backend:
    """A backend on the database at db_url holding the sample dataset ingested and validated (a copy of one
    built once)."""
    engine.copy(engine.prepared("sample", _ingest_and_validate_sample), database)
    return engine.connect(database)


@pytest.fixture(scope="session")
def generated_shop(suite_run) -> Path:
    """The small generated shop (GENERATED_SHOP), written once per run: the same files, at the same path, for
    every process (the prepared databases built from it record that path)."""
    def generate() -> str:
        folder = suite_run.folder / "generated-shop"
        generate_dataset(folder, GENERATED_SHOP)
        return str(folder)

    return Path(suite_run.once("generatedshop", generate))


@pytest.fixture
def reference(suite_run) -> Iterator[Engine]:
    """DuckDB, the engine the others are compared with, beside the test's own; its databases dropped afterwards."""
    engine = ENGINES["duckdb"](suite_run)
    yield engine
    engine.close()
