"""Every engine's backend takes the same arguments as the Backend method it overrides.

The PySpark parity run that would call them all is outside `make test` (suite time): a parameter added
to Backend.create_temp_table and not to PySpark's override broke the whole loop on Spark unnoticed.
"""

from __future__ import annotations

import inspect

import pytest

from retailflow.backends.base import Backend
from retailflow.backends.duckdb import DuckDBBackend
from retailflow.backends.mysql import MySQLBackend
from retailflow.backends.postgres import PostgresBackend
from retailflow.backends.pyspark import PySparkBackend


@pytest.mark.parametrize("engine", [DuckDBBackend, PostgresBackend, MySQLBackend, PySparkBackend],
                         ids=lambda engine: engine.__name__)
def test_overrides_take_the_base_arguments(engine):
    mismatched = []
    for name, method in vars(engine).items():
        base = getattr(Backend, name, None)
        if not callable(method) or not callable(base) or name.startswith("__"):
            continue
        if list(inspect.signature(method).parameters) != list(inspect.signature(base).parameters):
            mismatched.append(f"{name}{inspect.signature(method)} vs {inspect.signature(base)}")
    assert not mismatched, mismatched
