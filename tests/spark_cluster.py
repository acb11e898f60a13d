"""Spark for the tests: the test process's local Spark warehouse (local_spark), and real Spark processes: a
standalone cluster (a master, two one-core workers) and a Spark Connect server, each started the first time a test
of the process asks for it and killed when the process's tests end.

A process has one local Spark session at a time, tied to one warehouse (retailflow.backends.pyspark), and starting
one costs 8 to 35 s here (the first also starts the JVM): test_pyspark.py and test_spark_ingest.py share one
warehouse per process, each test emptying what it reads. A test needing another session (a warehouse of its own, the
cluster, Spark Connect) releases it first; the next test opens it again (an existing warehouse in the running JVM).

They are started by benchmarks/spark_processes.py (PySpark's own bin/spark-class, SPARK_HOME the pyspark package
folder, free ports on 127.0.0.1, small heaps, Spark tuned for tiny tables), which benchmarks/spark.py uses too;
their logs and work folders are in the test's temporary folder (pytest keeps the last three runs'). A test
module takes the fixtures with `pytest_plugins = ["spark_cluster"]`.

Measured at load 7-10 on 2 cores (pytest -n 2, both at once): starting the cluster took 12 s and the Connect
server 15 s; the sample's whole loop then took 318 s on the cluster and 300 s over Spark Connect.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from engines import PySparkEngine, SuiteRun
from retailflow.backends import connect
from retailflow.backends.pyspark import PySparkBackend

#: Where the process-starting code lives (beside the benchmark that uses it too).
PROCESSES_FILE = Path(__file__).resolve().parents[1] / "benchmarks" / "spark_processes.py"
#: A Spark Connect server of your own to use instead of starting one (sc://host:15002): a scratch server, as the
#: tests drop its retailflow schemas.
CONNECT_URL = os.environ.get("RETAILFLOW_TEST_SPARK_CONNECT")


def _load_processes():
    """benchmarks/spark_processes.py as a module, without putting the benchmarks folder on sys.path (its module
    names, floor or checks, are too general to share the tests' import path)."""
    name = "retailflow_spark_processes"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, PROCESSES_FILE)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


processes = _load_processes()


def _skip_without_spark() -> None:
    why_not = PySparkEngine.unavailable()
    if why_not:
        pytest.skip(why_not)


def _skip_without_connect_client() -> None:
    """Skip where PySpark's Spark Connect client libraries (grpcio-status and others) are not installed."""
    try:
        from pyspark.sql.connect.utils import check_dependencies

        check_dependencies("retailflow")
    except ImportError as error:
        pytest.skip(f"the Spark Connect client is not installed ({str(error).strip()[:120]}): "
                    "pip install -e '.[spark-connect]'")


class LocalSpark:
    """The process's local Spark warehouse: opened by the first test that asks (schemas created), kept open for the
    next ones; closed by `release` for a test that needs another Spark session, and opened again when asked."""

    def __init__(self, run: SuiteRun) -> None:
        self.engine = PySparkEngine(run)
        self.url = self.engine.url(self.engine.fresh())
        self._backend: PySparkBackend | None = None
        self._created = False

    def backend(self) -> PySparkBackend:
        """The warehouse's backend, its session started when none is open."""
        if self._backend is None:
            # Opened again, the warehouse has its schemas: connect's set-up check would only read audit.setup.
            self._backend = PySparkBackend(self.url) if self._created else connect(self.url)
            self._created = True
        return self._backend

    def release(self) -> None:
        """Stop the warehouse's session (another can start in this process); nothing when none is open."""
        backend, self._backend = self._backend, None
        if backend is not None:
            backend.close()

    def adopt(self, backend: PySparkBackend) -> None:
        """Take `backend`, opened on this warehouse by a test, as the warehouse's backend (its session kept)."""
        self.release()
        self._backend, self._created = backend, True

    def close(self) -> None:
        self.release()
        self.engine.close()


@pytest.fixture(scope="session")
def local_spark(suite_run) -> Iterator[LocalSpark]:
    """The process's local Spark warehouse (LocalSpark), shared by the Spark tests; its folder dropped at the end."""
    _skip_without_spark()
    shared = LocalSpark(suite_run)
    yield shared
    shared.close()


@pytest.fixture(scope="session")
def spark_cluster(tmp_path_factory) -> Iterator[processes.StandaloneCluster]:
    """A standalone master and two workers of one core each on 127.0.0.1, started once per test process.
    `spark_cluster.url(warehouse)` is retailflow's URL of a warehouse folder run on it."""
    _skip_without_spark()
    with processes.standalone_cluster(tmp_path_factory.mktemp("spark-cluster")) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def spark_connect_server(tmp_path_factory) -> Iterator[processes.ConnectServer]:
    """A Spark Connect server on 127.0.0.1 (local[2], its catalog in memory: a new one each start), started once
    per test process."""
    _skip_without_spark()
    with processes.connect_server(tmp_path_factory.mktemp("spark-connect")) as server:
        yield server


@pytest.fixture
def spark_connect_url(request) -> Iterator[str]:
    """The sc:// URL of a Spark Connect server: RETAILFLOW_TEST_SPARK_CONNECT's, or spark_connect_server's.

    A process that used Spark Connect cannot start a local Spark session (PySpark marks it for the rest of its
    life); the mark is taken away afterwards, so that the local Spark tests this process runs later still run.
    """
    _skip_without_connect_client()
    url = CONNECT_URL or request.getfixturevalue("spark_connect_server").url
    marked = {name: os.environ.get(name) for name in ("SPARK_CONNECT_MODE_ENABLED", "SPARK_REMOTE")}
    try:
        yield url
    finally:
        for name, value in marked.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
