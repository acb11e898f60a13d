"""`retailflow grant analyst ROLE`: the role reads the analyst views, with the owner's totals, and nothing personal."""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

import psycopg
import pytest

from helpers import POSTGRES_ADMIN, _mysql_connection
from retailflow.errors import UserError
from retailflow.pipeline import run_pipeline
from retailflow.privacy.analyst import grant_analyst
from retailflow.quality.rules import load_rules


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_the_analyst_role_sees_the_numbers_and_no_personal_data(backend, db_url, sample_dir):
    run_pipeline(backend, [sample_dir], load_rules())
    role = f"rf_analyst_{uuid.uuid4().hex[:10]}"
    try:
        views = grant_analyst(backend, role)
        assert grant_analyst(backend, role) == views, "re-running is safe"
        assert {"customer_details", "store_sales_header", "customer_rfm", "points_ledger"} <= set(views)
        assert not {"outbox", "warnings", "batches"} & set(views)
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
            admin.execute(f'ALTER ROLE "{role}" LOGIN')
        with psycopg.connect(f"postgresql://{role}@{urlsplit(db_url).netloc.split('@')[-1]}{urlsplit(db_url).path}",
                             autocommit=True) as analyst:
            assert analyst.execute("SELECT email FROM analyst.customer_details WHERE customer_id = 'C01'"
                                   ).fetchall() == [("a***@example.com",)]
            for personal in ("SELECT first_name FROM analyst.customer_details",
                             "SELECT first_name FROM analyst.customer_rfm"):
                with pytest.raises(psycopg.errors.UndefinedColumn):
                    analyst.execute(personal)
            for table in ("staging.customer_details", "raw.customer_details", "quarantine.store_sales_header",
                          "audit.warnings", "notifications.outbox", "analytics.customer_rfm"):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    analyst.execute(f"SELECT count(*) FROM {table}")
            for view in views:
                schema = next(s for s in ("staging", "analytics", "loyalty") if view in backend.tables(s))
                numbers = [name for name, kind in backend.fetch(
                    "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = "
                    f"'{schema}' AND table_name = '{view}'")[1]
                    if kind in ("bigint", "integer", "numeric", "double precision")]
                totals = ", ".join(["count(*)"] + [f'sum("{name}")' for name in numbers])
                assert analyst.execute(f'SELECT {totals} FROM analyst."{view}"').fetchall() == backend.fetch(
                    f'SELECT {totals} FROM {schema}."{view}"')[1], view
    finally:
        with psycopg.connect(db_url, autocommit=True) as owner:
            owner.execute(f'DROP OWNED BY "{role}"')
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP ROLE IF EXISTS "{role}"')


@pytest.mark.parametrize("db_url", ["duckdb"], indirect=True)
def test_duckdb_has_no_roles_to_grant_to(backend):
    with pytest.raises(UserError, match="no roles"):
        grant_analyst(backend, "analyst")


@pytest.mark.parametrize("db_url", ["mysql"], indirect=True)
def test_on_mysql_the_role_reads_the_analyst_database_alone(backend, db_url, sample_dir):
    import MySQLdb

    run_pipeline(backend, [sample_dir], load_rules())
    role, user = (f"rf_{kind}_{uuid.uuid4().hex[:10]}" for kind in ("analyst", "user"))
    database = urlsplit(db_url).path.lstrip("/")
    admin = _mysql_connection()
    try:
        grant_analyst(backend, role)
        grant_analyst(backend, role)
        cursor = admin.cursor()
        for statement in (f"CREATE USER '{user}'@'%'", f"GRANT `{role}` TO '{user}'@'%'",
                          f"SET DEFAULT ROLE `{role}` FOR '{user}'@'%'"):
            cursor.execute(statement)
        parts = urlsplit(db_url)
        analyst = MySQLdb.connect(host=parts.hostname, port=parts.port or 3306, user=user, password="")
        try:
            reader = analyst.cursor()
            reader.execute(f"SELECT email FROM `{database}_analyst`.customer_details WHERE customer_id = 'C01'")
            assert reader.fetchall() == (("a***@example.com",),)
            reader.execute(f"SELECT sum(points) FROM `{database}_analyst`.points_ledger")
            assert reader.fetchall()[0][0] == backend.scalar("SELECT sum(points) FROM loyalty.points_ledger")
            for denied in (f"SELECT first_name FROM `{database}_analyst`.customer_details",
                           f"SELECT count(*) FROM `{database}_staging`.customer_details",
                           f"SELECT count(*) FROM `{database}_notifications`.outbox"):
                with pytest.raises(MySQLdb.OperationalError):
                    reader.execute(denied)
        finally:
            analyst.close()
    finally:
        cursor = admin.cursor()
        cursor.execute(f"DROP USER IF EXISTS '{user}'@'%'")
        cursor.execute(f"DROP ROLE IF EXISTS `{role}`")
        admin.close()
