"""Engine parity: the whole pipeline gives the same rows on every engine as on DuckDB.

Every table of every retailflow schema (raw, staging, quarantine, audit, analytics, loyalty,
notifications) is compared as a multiset of rows, order-insensitive, with money compared
exactly (decimals as text) and only the wall-clock columns of snapshots.VOLATILE_COLUMNS left
out. Two inputs: the shipped sample (hand-made, errors included) and the small generated shop of
conftest, with planted anomalies, promotions, stock-outs and lapsed customers. Each engine's run is
the one other tests start from too (helpers.after_one_run), then the e-mails are sent.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engines import Engine
from helpers import SAMPLE_DIR, after_one_run
from retailflow.backends import Backend
from retailflow.notify import outbox
from retailflow.notify.senders import LogSender
from retailflow.pipeline import run_pipeline
from retailflow.quality.rules import load_rules
from snapshots import SCHEMAS, Snapshot, differences, snapshot

pytestmark = pytest.mark.slow


def _state_after_pipeline(backend: Backend, data: Path) -> Snapshot:
    run_pipeline(backend, [data], load_rules())
    return _state_after_sending(backend)


def _state_after_sending(backend: Backend) -> Snapshot:
    """Every table once the loyalty e-mails are sent (simulated)."""
    outbox.send(backend, LogSender())
    return snapshot(backend.fetch, [(schema, table) for schema in SCHEMAS for table in backend.tables(schema)])


def _on_duckdb(reference: Engine, data: Path) -> Snapshot:
    return _state_after_sending(after_one_run(reference, data))


# Spark's whole loop, minutes long, is in test_pyspark.py.
@pytest.mark.engines("mysql")
@pytest.mark.parametrize("dataset", ["sample", "generated"])
def test_matches_duckdb(dataset, engine, reference, request):
    data = SAMPLE_DIR if dataset == "sample" else request.getfixturevalue("generated_shop")
    expected = _on_duckdb(reference, data)
    actual = _state_after_sending(after_one_run(engine, data))
    assert expected.tables["staging.store_sales_line_items"][1], "the input should stage rows"
    assert expected.tables["quarantine.store_sales_header"][1], "the input should quarantine rows"
    problems = differences(expected, actual)
    assert not problems, "\n".join(problems)
