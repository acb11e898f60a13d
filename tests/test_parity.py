"""Engine parity: the whole pipeline gives the same rows on every engine as on DuckDB.

Every table of every retailflow schema (raw, staging, quarantine, audit, analytics, loyalty,
notifications) is compared as a multiset of rows, order-insensitive, with money compared
exactly (decimals as text) and only the wall-clock columns of snapshots.VOLATILE_COLUMNS left
out. Two inputs: the shipped sample (hand-made, errors included) and a small generated
dataset with planted anomalies, promotions, stock-outs and lapsed customers.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import MYSQL_ADMIN, MYSQL_SKIP, SAMPLE_DIR, drop_mysql_database
from retailflow.backends import Backend, connect
from retailflow.generate import generate_dataset
from retailflow.generate.options import GeneratorOptions
from retailflow.notify import outbox
from retailflow.notify.senders import LogSender
from retailflow.pipeline import run_pipeline
from retailflow.quality.rules import load_rules
from snapshots import SCHEMAS, Snapshot, differences, snapshot

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("parity") / "data"
    generate_dataset(folder, GeneratorOptions(seed=11, stores=3, products=25, customers=120, days=10,
                                              anomaly_rate=0.03))
    return folder


def _state_after_pipeline(backend: Backend, data: Path) -> Snapshot:
    run_pipeline(backend, [data], load_rules())
    outbox.send(backend, LogSender())
    return snapshot(backend.fetch, [(schema, table) for schema in SCHEMAS for table in backend.tables(schema)])


def _on_duckdb(tmp_path: Path, data: Path) -> Snapshot:
    backend = connect(f"duckdb:///{tmp_path}/reference.duckdb")
    try:
        return _state_after_pipeline(backend, data)
    finally:
        backend.close()


@pytest.fixture
def mysql_url() -> Iterator[str]:
    if MYSQL_SKIP:
        pytest.skip(MYSQL_SKIP)
    name = f"rf_parity_{uuid.uuid4().hex[:10]}"
    try:
        yield f"{MYSQL_ADMIN.rstrip('/')}/{name}"
    finally:
        drop_mysql_database(name)


@pytest.mark.parametrize("dataset", ["sample", "generated"])
def test_mysql_matches_duckdb(dataset, mysql_url, generated, tmp_path):
    data = SAMPLE_DIR if dataset == "sample" else generated
    expected = _on_duckdb(tmp_path, data)
    backend = connect(mysql_url)
    try:
        actual = _state_after_pipeline(backend, data)
    finally:
        backend.close()
    assert expected.tables["staging.store_sales_line_items"][1], "the input should stage rows"
    assert expected.tables["quarantine.store_sales_header"][1], "the input should quarantine rows"
    problems = differences(expected, actual)
    assert not problems, "\n".join(problems)
