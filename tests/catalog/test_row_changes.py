"""The row changes stages make through Backend (delete_where, delete_matching, update_where, update_from,
append_values), on every engine: the same rows changed, the same counts."""

from __future__ import annotations

import datetime as dt

import pytest

from retailflow import catalog
from retailflow.backends import NOW

MARKS = catalog.table("audit.stage_marks")


def _marks(backend) -> list[tuple]:
    return sorted(tuple(row) for row in backend.fetch("SELECT stage, change_id FROM audit.stage_marks")[1])


def test_rows_change_alike_on_every_engine(backend):
    assert backend.append_values(MARKS, [("a", 1), ("b", 2), ("c", 3), ("it's", 4)], columns=["stage", "change_id"]) == 4
    assert backend.update_where(MARKS, {"change_id": 20}, {"stage": "b"}) == 1
    assert backend.update_where(MARKS, {"change_id": MARKS.change_id * 10}, MARKS.stage.isin(["c", "it's"])) == 2
    source = backend.create_temp_table("rf_test_source", MARKS.filter(MARKS.stage == "a").select(
        "stage", renumbered=MARKS.change_id + 100))
    assert backend.update_from(MARKS, source, [("stage", "stage")], lambda _, new: {"change_id": new.renumbered},
                               where=MARKS.change_id < 50) == 1
    assert _marks(backend) == [("a", 101), ("b", 20), ("c", 30), ("it's", 40)]
    assert backend.delete_matching(MARKS, source.select("stage")) == 1
    backend.drop_temp_tables("rf_test_source", "rf_never_made")
    assert backend.delete_where(MARKS, MARKS.change_id > 25) == 2
    assert backend.delete_where(MARKS, {"stage": ["b", "z"], "change_id": 20}) == 1
    assert _marks(backend) == []


def test_plain_values_are_written_as_their_types(backend):
    batches = catalog.table("audit.batches")
    backend.append_values(batches, [(7, "stores", "stores.csv", "0f", "loaded", NOW, None, 0.25)],
                          columns=["batch_id", "entity", "source_file", "sha256", "status", "loaded_at",
                                   "superseded_rows", "load_seconds"])
    assert backend.update_where(batches, {"superseded_rows": batches.superseded_rows.fill_null(0) + 2},
                                {"batch_id": 7, "superseded_rows": None}) == 1
    backend.append_values(catalog.table("audit.batch_dates"), [(1, 7, "stores", dt.date(2024, 2, 29), 3, 0)])
    _, rows = backend.fetch("SELECT b.superseded_rows, b.loaded_at IS NOT NULL, b.load_seconds, d.business_date "
                            "FROM audit.batches b JOIN audit.batch_dates d ON d.batch_id = b.batch_id")
    assert [tuple(row) for row in rows] == [(2, True, 0.25, dt.date(2024, 2, 29))]


@pytest.mark.engines("duckdb")
def test_sql_holding_a_secret_stays_out_of_the_compiled_sql_cache(backend, sql_cache_dir):
    erasures = catalog.table("audit.erasures")
    marker = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
    backend.delete_where(erasures, erasures.pseudonym == backend.engine_scalar(
        erasures.reason, f"concat({{value}}, '{marker}')", secret=True))
    assert not any(marker in path.read_text() for path in sql_cache_dir.rglob("*.sql"))
