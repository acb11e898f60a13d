"""A command whose stage has nothing new to do answers from the queries its stage kept (analytics/answers.py), as a
user runs it (`python -m retailflow`, a process each): the same JSON as the stage's own path, without importing
Ibis; a change since, other options or no cache take the stage's path again.

The shop is test_product_promotions' hand-written export (guests, no line ids, lines giving their own discount),
in two nights; its promotions are worked out by hand there (assert_measured): over both nights PR_P is ranked
first with a 125 % unit lift, PR_C second with 100 %, PR_L third (50 %).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from test_product_promotions import DAYS, write_shop

from helpers import load_and_validate
from retailflow.analytics import answers
from retailflow.analytics.inventory import STAGE as INVENTORY_STAGE
from retailflow.analytics.promotions import STAGE as PROMOTIONS_STAGE
from retailflow.backends import connect


def command(db_url: str, *args: str, env: dict[str, str] | None = None) -> tuple[object, bool]:
    """`retailflow --db URL ARGS --format json` in its own process: its JSON, and whether it imported Ibis."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "retailflow", "--db", db_url, "--quiet", *args,
                             "--format", "json"], capture_output=True, text=True, env={**os.environ, **(env or {})})
    assert result.returncode == 0, result.stderr[-2000:]
    modules = [line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")]
    return json.loads(result.stdout), any(module.split(".")[0] == "ibis" for module in modules)


def in_process(db_url: str, step) -> None:
    """step(backend) on a connection of this process, closed after (DuckDB lets one process open the file)."""
    backend = connect(db_url)
    try:
        step(backend)
    finally:
        backend.close()


def ranked(rows) -> list[tuple]:
    return [(row["rank"], row["promotion_id"], row["product_id"], row["lift_units_pct"], row["days_observed"])
            for row in rows]


def test_the_answers_name_the_stages_marks():
    assert answers.promotions(3, 5).stage == PROMOTIONS_STAGE
    assert answers.inventory(5, 0.001, 3).stage == INVENTORY_STAGE


@pytest.mark.engines("duckdb")
def test_nothing_new_is_answered_by_the_kept_queries(db_url, tmp_path):
    write_shop(tmp_path / "night1", DAYS[:9])
    write_shop(tmp_path / "night2", DAYS[9:], masters=False)
    in_process(db_url, lambda backend: load_and_validate(backend, tmp_path / "night1"))
    first, imported = command(db_url, "promotions")
    assert imported, "the stage ran"
    assert command(db_url, "promotions") == (first, False), "answered through the driver alone"

    # The stored table is what answers: a cell changed by hand shows through.
    in_process(db_url, lambda backend: backend.execute("UPDATE analytics.promotion_effectiveness SET days_observed = -1"))
    poked, _ = command(db_url, "promotions")
    assert {row["days_observed"] for row in poked} == {-1}

    # A new night is a change: the stage runs again, and measures both nights as worked out by hand.
    in_process(db_url, lambda backend: load_and_validate(backend, tmp_path / "night2"))
    measured, imported = command(db_url, "promotions")
    assert imported
    assert ranked(measured) == [(1, "PR_P", "P1", 125.0, 3), (2, "PR_C", None, 100.0, 1), (3, "PR_L", "P3", 0.0, 2),
                                (3, "PR_L", "P2", 100.0, 2)]
    assert command(db_url, "promotions") == (measured, False)
    # Another top N is another query: the stage's path once (nothing recomputed: its mark is current), then kept.
    top_one, imported = command(db_url, "promotions", "--top", "1")
    assert imported and ranked(top_one) == ranked(measured)[:1]
    assert command(db_url, "promotions", "--top", "1") == (top_one, False)
    assert_inventory_answered(db_url)


# PostgreSQL; MariaDB's driver answers alone in test_each_database_keeps_its_own_answers (suite time).
@pytest.mark.engines("postgres")
def test_servers_answer_from_the_kept_queries_too(db_url, tmp_path):
    """The same on PostgreSQL, over both nights at once: its driver alone answers as well."""
    write_shop(tmp_path / "data")
    in_process(db_url, lambda backend: load_and_validate(backend, tmp_path / "data"))
    measured, imported = command(db_url, "promotions")
    assert imported and ranked(measured)[:2] == [(1, "PR_P", "P1", 125.0, 3), (2, "PR_C", None, 100.0, 1)]
    assert command(db_url, "promotions") == (measured, False)
    assert_inventory_answered(db_url)


def assert_inventory_answered(db_url: str) -> None:
    """The inventory command's six tables, the same from the stage's path and from the kept queries. Units over the
    two weeks: P1 1 a cell on 28 cells, 2 on its three unpromoted Mondays (Dec 2 both stores, Dec 9 ST2), 4 + 3 + 2
    at ST1 on Dec 9-11 and 2 at ST2 on Dec 11: 21 + 6 + 9 + 2 = 38; P2 1 on its 22 unpromoted cells, 2 on the 6
    promoted: 22 + 12 = 34; P3 1 a cell: 28."""
    listing, imported = command(db_url, "inventory")
    assert imported
    assert [(row["product_id"], float(row["units"])) for row in listing["top_products"]] == [
        ("P1", 38.0), ("P2", 34.0), ("P3", 28.0)]
    assert command(db_url, "inventory") == (listing, False)


@pytest.mark.engines("duckdb")
def test_without_a_cache_the_stage_answers(db_url, tmp_path):
    """An unwritable cache folder keeps nothing: every command takes the stage's path, with the same answer."""
    write_shop(tmp_path / "data")
    in_process(db_url, lambda backend: load_and_validate(backend, tmp_path / "data"))
    url = db_url
    nowhere = {"RETAILFLOW_CACHE_DIR": str(tmp_path / "file" / "cache")}
    (tmp_path / "file").write_text("not a folder")
    first, imported = command(url, "promotions", env=nowhere)
    assert imported and ranked(first)[0] == (1, "PR_P", "P1", 125.0, 3)
    assert command(url, "promotions", env=nowhere) == (first, True)


@pytest.mark.engines("mysql")
def test_a_kept_query_says_which_columns_are_flags(backend, tmp_path):
    """MySQL returns a boolean as 0/1: a kept query keeps the positions of its boolean columns (phantom runs'
    `ongoing`), as fetch_dicts reads them from the expression."""
    from retailflow.analytics.inventory import run_inventory

    write_shop(tmp_path / "data")
    load_and_validate(backend, tmp_path / "data")
    run_inventory(backend)
    answer = answers.inventory(5, 0.001, 3)
    kept = answers.kept(backend, answer, "phantom_runs")
    columns = backend.fetch(kept["sql"])[0]
    assert kept["flags"] == [columns.index("ongoing")]


@pytest.mark.engines("postgres", "mysql")
def test_compiling_after_plain_sql_writes_ibis_dialects(db_url):
    """Ibis changes sqlglot's MySQL and PostgreSQL generators when imported, and sqlglot builds a generator once: a
    process that quoted and translated SQL before compiling anything (a command reading stored tables first) must
    still compile with Ibis's changes (MariaDB has no REGEXP_LIKE: a regex match is RLIKE; PostgreSQL's pow)."""
    script = f"""
import sys
from retailflow.backends import connect
backend = connect({db_url!r})
backend.fetch("SELECT 1 AS " + backend.quote("one"))
assert "ibis" not in sys.modules
import ibis
table = ibis.table({{"a": "string", "b": "float64"}}, name="t")
print(backend.compile_uncached(table.filter(table.a.re_search("x")).select(p=table.b.pow(2))))
backend.close()
"""
    in_process(db_url, lambda backend: None)  # the schemas made (by Ibis's statements) beforehand
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert ("RLIKE" if db_url.startswith("mysql") else "POW(") in result.stdout.upper(), result.stdout


@pytest.mark.engines("mysql")
def test_each_database_keeps_its_own_answers(engine, db_url, tmp_path):
    """MySQL writes the database's name into compiled SQL (each retailflow schema is a database named after it): the
    queries kept for one database must not answer for another on the same server."""
    other = engine.url(engine.fresh())
    write_shop(tmp_path / "both", DAYS)
    write_shop(tmp_path / "first", DAYS[:9])
    in_process(db_url, lambda backend: load_and_validate(backend, tmp_path / "both"))
    in_process(other, lambda backend: load_and_validate(backend, tmp_path / "first"))
    mine, _ = command(db_url, "promotions")
    theirs, _ = command(other, "promotions")
    assert ranked(mine) != ranked(theirs)
    assert command(db_url, "promotions") == (mine, False)
    assert command(other, "promotions") == (theirs, False)
