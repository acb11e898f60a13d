"""Real Spark processes for the tests: a standalone cluster (a master, two one-core workers) and a Spark Connect
server, each started the first time a test of the process asks for it and killed when the process's tests end.

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

from engines import PySparkEngine

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
