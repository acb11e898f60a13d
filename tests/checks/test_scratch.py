"""A checks run that fails part way leaves none of its temporary tables in the session: MariaDB (and Spark) keep a
temporary table past a rollback, and a scheduler's worker keeps its session from one run to the next."""

from __future__ import annotations

import pytest

from helpers import table_exists
from retailflow.checks import run
from retailflow.checks.anomalies import KEPT


# MariaDB alone: DuckDB and PostgreSQL drop a temporary table with the rollback that made it (suite time).
@pytest.mark.engines("mysql")
def test_a_failed_checks_run_drops_its_temporary_tables(staged_sample, monkeypatch):
    made: list[str] = []

    def fail(*args, **kwargs):
        # By now the anomalies' pieces are kept: note which exist, then fail as a lost connection would.
        made.extend(name for name in (run.PARAMS, run.BEFORE, *KEPT) if table_exists(staged_sample, name))
        raise RuntimeError("the judged deliveries failed")

    monkeypatch.setattr(run, "expected_deliveries", fail)
    with pytest.raises(RuntimeError, match="judged deliveries failed"):
        run.run_checks(staged_sample)
    assert run.PARAMS in made and KEPT[0] in made, made
    assert [name for name in made if table_exists(staged_sample, name)] == []
    # The next run starts clean and completes.
    monkeypatch.undo()
    assert run.run_checks(staged_sample).seconds > 0
