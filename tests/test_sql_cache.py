"""Compiled SQL reused by expression fingerprint: equal only for equal expressions, the same in every process."""

from __future__ import annotations

import os
import subprocess
import sys

import ibis
import pytest

from retailflow.backends import connect, sql_cache

EXPRESSION = """
import ibis
import pytest
t = ibis.table({"a": "int64", "b": "string"}, name="t", database="staging")
f = t.filter(t.a > 3)
expr = f.group_by("b").aggregate(n=f.count(), top=f.a.max())
"""


def _expr(threshold: int = 3, name: str = "t"):
    t = ibis.table({"a": "int64", "b": "string"}, name=name, database="staging")
    f = t.filter(t.a > threshold)
    return f.group_by("b").aggregate(n=f.count(), top=f.a.max())


def test_the_fingerprint_is_the_same_in_another_process():
    code = EXPRESSION + "from retailflow.backends.sql_cache import fingerprint\nprint(fingerprint(expr))"
    # Another hash seed: Python's own hash() of strings differs between these processes.
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": "123"})
    assert other.stdout.strip() == sql_cache.fingerprint(_expr())


def test_a_different_literal_or_table_is_a_different_fingerprint():
    assert sql_cache.fingerprint(_expr(3)) == sql_cache.fingerprint(_expr(3))
    assert sql_cache.fingerprint(_expr(3)) != sql_cache.fingerprint(_expr(4))
    assert sql_cache.fingerprint(_expr(3)) != sql_cache.fingerprint(_expr(3, name="u"))


def test_compiled_sql_is_reused_from_disk_and_equals_a_fresh_compile(tmp_path, monkeypatch):
    monkeypatch.setenv("RETAILFLOW_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(sql_cache, "_memory", {})
    backend = connect(f"duckdb:///{tmp_path}/db.duckdb")
    try:
        calls = []
        fresh = backend.compile_uncached(_expr())

        def counting(expr):
            calls.append(expr)
            return backend.compile_uncached(expr)

        assert sql_cache.compiled(_expr(), backend.compile_key, counting) == fresh
        monkeypatch.setattr(sql_cache, "_memory", {})  # a new process: only the disk remembers
        assert sql_cache.compiled(_expr(), backend.compile_key, counting) == fresh
        assert len(calls) == 1 and len(list((tmp_path / "cache" / "sql").glob("*.sql"))) == 1
        # Another engine, or another version of the code, never reads that entry.
        assert sql_cache.compiled(_expr(), "OtherBackend other", counting) == fresh and len(calls) == 2
        monkeypatch.setattr(sql_cache, "code_version", lambda: "edited")
        sql_cache.compiled(_expr(), backend.compile_key, counting)
        assert len(calls) == 3
    finally:
        backend.close()


def test_an_unwritable_cache_folder_only_means_no_disk_cache(tmp_path, monkeypatch):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    monkeypatch.setenv("RETAILFLOW_CACHE_DIR", str(blocked))
    monkeypatch.setattr(sql_cache, "_memory", {})
    assert "SELECT" in sql_cache.compiled(_expr(), "k", lambda expr: ibis.to_sql(expr, dialect="duckdb"))


def test_old_entries_are_pruned(tmp_path, monkeypatch):
    monkeypatch.setenv("RETAILFLOW_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(sql_cache, "_memory", {})
    monkeypatch.setattr(sql_cache, "MAX_ENTRIES", 4)
    for threshold in range(6):
        sql_cache.compiled(_expr(threshold), "k", lambda expr: ibis.to_sql(expr, dialect="duckdb"))
    assert 2 <= len(list((tmp_path / "sql").glob("*.sql"))) <= 4


def test_a_run_value_in_an_insert_leaves_its_compiled_sql_unchanged(tmp_path, monkeypatch):
    """A night's change id is a run value of the inserted rows (incremental.record): the next night, with another
    id, compiles nothing again, and each row gets its own night's value."""
    from retailflow.backends.run_values import run_value

    monkeypatch.setenv("RETAILFLOW_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(sql_cache, "_memory", {})
    backend = connect(f"duckdb:///{tmp_path}/db.duckdb")
    try:
        backend.execute("CREATE TABLE counts (change_id BIGINT, b VARCHAR, n BIGINT)")
        backend.execute("CREATE TABLE staging.t (a BIGINT, b VARCHAR)")
        backend.execute("INSERT INTO staging.t VALUES (1, 'x'), (5, 'x'), (7, 'y')")
        calls = []
        compile_uncached = backend.compile_uncached
        monkeypatch.setattr(backend, "compile_uncached", lambda expr: calls.append(expr) or compile_uncached(expr))
        rows = ibis.table({"a": "int64", "b": "string"}, name="t", database="staging")
        counted = rows.group_by("b").aggregate(n=rows.count())
        for night in (41, 42):
            assert backend.insert("main", "counts", counted.mutate(change_id=run_value("change_id", night, "int64"))) == 2
        assert len(calls) == 1
        assert sorted(backend.fetch("SELECT change_id, b, n FROM counts")[1]) == [
            (41, "x", 2), (41, "y", 1), (42, "x", 2), (42, "y", 1)]
    finally:
        backend.close()


def test_run_values_compile_once_and_each_statement_gets_its_own(backend, monkeypatch, tmp_path):
    """A night's mark, day and run id are run values (backends/run_values.py): the statement over the changed days
    is compiled on the first night only, on every engine, and each night reads its own values. Hand-made changes:
    change 1 staged 2024-12-01 and 02, change 2 restated 02, change 3 staged 03 (inventory) and 04 (sales)."""
    import datetime as dt

    from retailflow import catalog
    from retailflow.backends.run_values import run_value
    from retailflow.incremental import changed_since

    day = dt.date(2024, 12, 1)
    backend.append_values(catalog.table("audit.batch_dates"), [
        (1, 1, "store_sales_header", day, 5, 0), (1, 1, "store_sales_header", day + dt.timedelta(1), 4, 0),
        (2, 2, "store_sales_header", day + dt.timedelta(1), 4, 4), (3, 3, "inventory_daily", day + dt.timedelta(2), 9, 0),
        (3, 4, "store_sales_header", day + dt.timedelta(3), 2, 0)])
    calls = []
    compile_uncached = backend.compile_uncached
    monkeypatch.setattr(backend, "compile_uncached", lambda expr: calls.append(expr) or compile_uncached(expr))
    monkeypatch.setenv("RETAILFLOW_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(sql_cache, "_memory", {})

    def changed(mark: int) -> list[dt.date]:
        days = changed_since(mark)
        return sorted(row["business_date"] for row in backend.fetch_dicts(days))

    assert changed(0) == [day + dt.timedelta(n) for n in range(4)]
    assert changed(1) == [day + dt.timedelta(n) for n in (1, 2, 3)]
    assert changed(3) == []
    assert len(calls) == 1

    dates = catalog.table("audit.batch_dates")

    def staged(entity: str, since: dt.date) -> int:
        rows = dates.filter((dates.entity == run_value("entity", entity, "string"))
                            & (dates.business_date >= run_value("since", since, "date")))
        return int(backend.fetch_dicts(rows.aggregate(n=rows.staged_rows.sum()))[0]["n"] or 0)

    assert staged("store_sales_header", day + dt.timedelta(1)) == 10
    assert staged("inventory_daily", day) == 9
    assert staged("it's", day) == 0  # a quote in a text value is written as a literal, not pasted
    assert len(calls) == 2
    with pytest.raises(ValueError, match="two values of run value 'mark'"):
        backend.compile(changed_since(1).union(changed_since(2)))


def test_the_code_version_reads_the_compilers_versions_without_importing_them():
    """From the installed metadata (importing Ibis is what an idle command avoids); from the module where a
    checkout has no metadata."""
    version = sql_cache._version("ibis-framework", "ibis")
    assert version == ibis.__version__
    assert sql_cache._version("no-such-distribution", "ibis") == ibis.__version__
    script = "import sys; from retailflow.backends import sql_cache; sql_cache.code_version(); print('ibis' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout == "False\n"
