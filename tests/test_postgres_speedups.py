"""PostgreSQL fast paths give the same answers as the slow ones they replace."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import ibis
import psycopg
import pytest

from helpers import POSTGRES_ADMIN, POSTGRES_SKIP
from retailflow.backends import connect
from retailflow.backends.postgres import PostgresBackend
from retailflow.errors import UserError
from retailflow.ingest import discover, ingest
from retailflow.model import ENTITIES
from retailflow.quality.engine import route_all
from retailflow.quality.rules import load_rules
from retailflow.tables import staging_table

pytestmark = pytest.mark.skipif(bool(POSTGRES_SKIP), reason=POSTGRES_SKIP or "")

#: Shaped values around every edge of the calendar and the clock PostgreSQL's input functions have.
EDGE_VALUES = [
    f"{year}-{month}-{day}"
    for year in ("0000", "0001", "1900", "2000", "2023", "2024", "2100", "9999")
    for month in ("00", "01", "02", "04", "12", "13", "99")
    for day in ("00", "01", "28", "29", "30", "31", "32")
] + [
    f"{day}{separator}{clock}"
    for day in ("2024-12-31", "2023-02-29", "2024-02-29")
    for separator in (" ", "T")
    for clock in ("00:00", "23:59", "24:00", "24:01", "23:60", "99:00", "12:00:00", "12:00:59", "12:00:60",
                  "12:00:61", "23:59:60", "23:59:60.5", "23:59:59.999999", "24:00:00", "24:00:00.000000",
                  "24:00:00.000001", "24:00:60", "12:00:00.5")
]


@pytest.fixture
def new_postgres() -> Iterator[Callable[[], PostgresBackend]]:
    """Opens fresh PostgreSQL databases; all are dropped afterwards."""
    opened: list[tuple[PostgresBackend, str]] = []

    def open_database() -> PostgresBackend:
        name = f"rf_test_{uuid.uuid4().hex[:12]}"
        opened.append((connect(f"{POSTGRES_ADMIN.rsplit('/', 1)[0]}/{name}"), name))
        return opened[-1][0]

    yield open_database
    for backend, name in opened:
        backend.close()
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def postgres(new_postgres) -> PostgresBackend:
    """A fresh PostgreSQL database."""
    return new_postgres()


def test_safe_casts_agree_with_postgres_casts(postgres):
    for sql_type in ("date", "timestamp"):
        postgres.execute(
            f"CREATE FUNCTION pg_temp.reference_{sql_type}(value text) RETURNS {sql_type} LANGUAGE plpgsql AS "
            f"$$ BEGIN RETURN value::{sql_type}; EXCEPTION WHEN others THEN RETURN NULL; END $$")
    values = ", ".join(postgres.literal(value) for value in EDGE_VALUES)
    names, rows = postgres.fetch(
        "SELECT value, audit.rf_try_date(value), pg_temp.reference_date(value), "
        "audit.rf_try_timestamp(value), pg_temp.reference_timestamp(value) "
        f"FROM unnest(ARRAY[{values}]) AS value")
    date_only = [row for row in rows if len(row[0]) == 10]
    assert [row for row in date_only if row[1] != row[2]] == []
    assert [row for row in rows if row[3] != row[4]] == []
    assert sum(row[4] is not None for row in rows) > 100  # the grid holds valid values too


def test_safe_casts_are_parallel_safe(postgres):
    volatility = dict(postgres.fetch("SELECT proname, proparallel FROM pg_proc WHERE proname LIKE 'rf_try_%'")[1])
    assert volatility == {"rf_try_date": "s", "rf_try_timestamp": "s"}


def test_bulk_load_counts_rows_and_analyses_each_table_once(postgres, sample_dir):
    analysed = []
    postgres.refresh_statistics = analysed.append
    results = ingest(postgres, discover([sample_dir]))
    raw_counts = {result.entity: 0 for result in results}
    for result in results:
        raw_counts[result.entity] += result.rows
    for entity, rows in raw_counts.items():
        assert postgres.scalar(f"SELECT count(*) FROM raw.{entity}") == rows
    assert sorted(analysed) == sorted(f'"raw"."{entity}"' for entity in raw_counts)


def test_staged_rows_match_the_row_by_row_path(new_postgres, sample_dir):
    staged = {}
    for set_based in (True, False):
        backend = new_postgres()
        if not set_based:
            backend._may_skip_triggers = False  # as for a role that may not turn triggers off
        ingest(backend, discover([sample_dir]))
        route_all(backend, load_rules(), "validate")
        assert backend._may_skip_triggers is set_based
        staged[set_based] = [backend.fetch(f"SELECT * FROM staging.{table} ORDER BY 1")[1]
                             for table in ("store_sales_header", "store_sales_line_items")]
        assert backend.scalar("SHOW session_replication_role") == "origin"
    assert staged[True] == staged[False]
    assert all(staged[True])


def test_a_missing_reference_raises_the_foreign_key_error(postgres, sample_dir):
    ingest(postgres, discover([sample_dir]))
    route_all(postgres, load_rules(), "validate")
    lines = staging_table("store_sales_line_items")
    orphan = lines.limit(1).mutate(line_item_id=ibis.literal("orphan-1"), transaction_id=ibis.literal("NOPE"))
    before = postgres.scalar("SELECT count(*) FROM staging.store_sales_line_items")
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        with postgres.transaction():
            postgres.insert("staging", "store_sales_line_items", orphan)
    assert postgres.scalar("SELECT count(*) FROM staging.store_sales_line_items") == before
    assert postgres.scalar("SHOW session_replication_role") == "origin"


def test_a_clean_insert_returns_its_row_count(postgres, sample_dir):
    ingest(postgres, discover([sample_dir]))
    route_all(postgres, load_rules(), "validate")
    lines = staging_table("store_sales_line_items")
    copies = lines.limit(2).mutate(line_item_id=lines.line_item_id + "-copy")
    with postgres.transaction():
        assert postgres.insert("staging", "store_sales_line_items", copies) == 2
    assert postgres.scalar("SELECT count(*) FROM staging.store_sales_line_items WHERE line_item_id LIKE '%-copy'") == 2


def test_a_user_trigger_keeps_the_row_by_row_path(postgres, sample_dir):
    ingest(postgres, discover([sample_dir]))
    route_all(postgres, load_rules(), "validate")
    postgres.execute("CREATE TABLE public.fired (line_item_id text)")
    postgres.execute("CREATE FUNCTION public.note() RETURNS trigger LANGUAGE plpgsql AS "
                     "$$ BEGIN INSERT INTO public.fired VALUES (NEW.line_item_id); RETURN NEW; END $$")
    postgres.execute("CREATE TRIGGER note AFTER INSERT ON staging.store_sales_line_items "
                     "FOR EACH ROW EXECUTE FUNCTION public.note()")
    lines = staging_table("store_sales_line_items")
    with postgres.transaction():
        postgres.insert("staging", "store_sales_line_items", lines.limit(1).mutate(line_item_id=ibis.literal("x-1")))
    assert postgres.scalar("SELECT line_item_id FROM public.fired") == "x-1"


@ibis.udf.scalar.builtin(name="counted", database="audit")
def _counted(value: int) -> int: ...


def test_computed_once_evaluates_a_derived_column_once_per_row(postgres):
    """Without the fence the planner inlines the subquery and evaluates the column at each of its uses."""
    postgres.execute("CREATE SEQUENCE audit.calls")
    # Declared IMMUTABLE, as a cast or a regular expression is: nothing stops the planner from inlining it.
    postgres.execute("CREATE FUNCTION audit.counted(value bigint) RETURNS bigint LANGUAGE plpgsql IMMUTABLE AS "
                     "$$ BEGIN PERFORM nextval('audit.calls'); RETURN value; END $$")
    postgres.execute("CREATE TABLE audit.numbers AS SELECT generate_series(1, 10)::bigint AS n")

    def calls_for(derive: Callable[[ibis.Table], ibis.Table]) -> int:
        postgres.execute("SELECT setval('audit.calls', 1, false)")
        numbers = ibis.table({"n": "int64"}, name="numbers", database="audit")
        derived = derive(numbers.mutate(c=_counted(numbers.n)))
        used = derived.select(a=derived.c + 1, b=derived.c * 2, d=derived.c - 3)
        assert len(postgres.fetch_dicts(used)) == 10
        return int(postgres.scalar("SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM audit.calls"))

    assert calls_for(lambda table: table) == 30
    assert calls_for(postgres.computed_once) == 10


def test_work_mem_comes_from_the_environment(new_postgres, monkeypatch):
    """RETAILFLOW_POSTGRES_WORK_MEM sets work_mem; a value PostgreSQL refuses is a one-line error."""
    monkeypatch.setenv("RETAILFLOW_POSTGRES_WORK_MEM", "96MB")
    assert new_postgres().scalar("SHOW work_mem") == "96MB"
    monkeypatch.setenv("RETAILFLOW_POSTGRES_WORK_MEM", "plenty")
    name = f"rf_test_{uuid.uuid4().hex[:12]}"
    try:
        with pytest.raises(UserError, match="RETAILFLOW_POSTGRES_WORK_MEM='plenty' is not a valid work_mem"):
            connect(f"{POSTGRES_ADMIN.rsplit('/', 1)[0]}/{name}")
    finally:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_trimming_only_the_edges_agrees_with_trim(postgres):
    """The fast path trims a cell only when its first or last character is at or below the space: the same
    result as TRIM of Ibis's white space on every cell, NULL for nothing left, other characters kept."""
    cells = ["", " ", "a", " a", "a ", "\ta\n", "\r\n", "a b", "\x0bx\x0c", "\x01a", "a\x01", "\u00a0a", "é ", " ü", None]
    postgres.execute("CREATE TEMPORARY TABLE rf_test_cells (position int, cell text)")
    values = ", ".join(f"({index}, {'NULL' if cell is None else postgres.literal(cell)})" for index, cell in enumerate(cells))
    postgres.execute(f"INSERT INTO rf_test_cells VALUES {values}")
    table = ibis.table({"position": "int32", "cell": "string"}, name="rf_test_cells")
    rows = postgres.fetch_dicts(table.select("position", fast=postgres.trimmed(table.cell),
                                             plain=table.cell.strip().nullif("")).order_by("position"))
    assert [(row["fast"], row["plain"]) for row in rows if row["fast"] != row["plain"]] == []
    assert [row["fast"] for row in rows][:5] == [None, None, "a", "a", "a"]


def test_clean_rows_are_an_anti_join_the_planner_can_estimate(postgres):
    """NOT EXISTS, not a LEFT JOIN filtered on IS NULL (estimated at 0.5 % of the rows: nested loops followed)."""
    from retailflow.tables import matching

    postgres.execute("CREATE TABLE audit.rf_rows AS SELECT g AS id FROM generate_series(1, 20000) AS g")
    postgres.execute("CREATE TABLE audit.rf_bad AS SELECT g AS id FROM generate_series(1, 100) AS g")
    postgres.execute("ANALYZE audit.rf_rows")
    postgres.execute("ANALYZE audit.rf_bad")
    rows = ibis.table({"id": "int64"}, name="rf_rows", database="audit")
    bad = ibis.table({"id": "int64"}, name="rf_bad", database="audit")
    sql = postgres.compile(matching(postgres, rows, bad, [("id", "id")], keep=False))
    assert "NOT EXISTS" in sql.upper()
    plan = "\n".join(row[0] for row in postgres.fetch(f"EXPLAIN {sql}")[1])
    estimate = int(plan.split("rows=", 1)[1].split()[0])
    assert "Anti Join" in plan and estimate > 10000, plan


def test_raw_tables_have_a_batch_index_kept_summarised(postgres, sample_dir):
    """Every raw table has a BRIN index on _batch_id (a night reads its batches without scanning the history);
    a load summarises the block ranges it added, as no VACUUM may come to do it."""
    indexes = dict(postgres.fetch("SELECT tablename, indexdef FROM pg_indexes WHERE schemaname = 'raw'")[1])
    assert sorted(indexes) == sorted(ENTITIES)
    assert all("USING brin (_batch_id)" in definition for definition in indexes.values())
    loaded = {result.entity for result in ingest(postgres, discover([sample_dir]))}
    for entity in loaded:
        assert postgres.scalar(f"SELECT brin_summarize_new_values('raw.{entity}_batch_range'::regclass)") == 0
