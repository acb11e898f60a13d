"""A validation that fails part way leaves none of its temporary tables in the session (MariaDB and Spark keep a
temporary table past a rollback, and a scheduler's worker keeps its session from one run to the next), and the
next run routes every row."""

from __future__ import annotations

import pytest

from helpers import table_exists
from retailflow.ingest import discover, ingest
from retailflow.quality import engine
from retailflow.quality.rules import load_rules


# MariaDB alone: DuckDB and PostgreSQL drop a temporary table with the rollback that made it (suite time).
@pytest.mark.engines("mysql")
def test_a_failed_validation_drops_its_temporary_tables(backend, sample_dir, monkeypatch):
    ingest(backend, discover([sample_dir]))
    made: list[str] = []
    verdicts = engine._atomic_verdicts

    def fail(*args, **kwargs):
        # By now every entity is typed and checked: note which tables exist, then fail as a lost connection would.
        made.extend(name for name in engine.SCRATCH_TABLES if table_exists(backend, name))
        raise RuntimeError("the transactions' verdicts failed")

    monkeypatch.setattr(engine, "_atomic_verdicts", fail)
    with pytest.raises(RuntimeError, match="verdicts failed"):
        engine.route_all(backend, load_rules())
    assert {"rf_typed_store_sales_line_items", "rf_findings_store_sales_header", engine.PENDING_BATCHES} <= set(made)
    assert [name for name in made if table_exists(backend, name)] == []
    # The failed run staged nothing (its row changes rolled back): the next one routes all 18 headers.
    monkeypatch.setattr(engine, "_atomic_verdicts", verdicts)
    outcome = engine.route_all(backend, load_rules())
    headers = next(entity for entity in outcome.entities if entity.entity == "store_sales_header")
    assert headers.checked == 18 and headers.staged + headers.quarantined == 18
