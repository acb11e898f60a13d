"""A database made by an earlier release opens with this one: new model columns added, relaxed ones nullable."""

from __future__ import annotations

import pytest

from retailflow.backends import connect


@pytest.mark.parametrize("db_url", ["duckdb", "postgres"], indirect=True)
def test_an_older_database_gains_the_new_columns_and_loses_not_null(db_url):
    backend = connect(db_url)
    try:
        backend.create_schemas()
        # As the release before real retail semantics made them: no transaction_type, customer_id required.
        for schema in ("raw", "quarantine", "staging"):
            backend.execute(f"ALTER TABLE {schema}.store_sales_header DROP COLUMN transaction_type")
        backend.execute("ALTER TABLE staging.store_sales_header ALTER COLUMN customer_id SET NOT NULL")
        backend.execute("ALTER TABLE staging.products ALTER COLUMN product_category SET NOT NULL")
        assert ("store_sales_header", "customer_id") in backend.not_null_columns("staging")
        backend.create_schemas()
        for schema in ("raw", "quarantine", "staging"):
            assert "transaction_type" in backend.table_columns(schema, "store_sales_header")
        required = backend.not_null_columns("staging")
        assert ("store_sales_header", "customer_id") not in required
        assert ("products", "product_category") not in required
        assert ("store_sales_header", "transaction_id") in required
    finally:
        backend.close()


def test_the_report_reads_a_ledger_from_before_its_new_column(tmp_path, sample_dir):
    from typer.testing import CliRunner

    from retailflow.cli import app

    db = f"duckdb:///{tmp_path}/old.duckdb"
    runner = CliRunner()
    assert runner.invoke(app, ["--db", db, "-q", "run", str(sample_dir)]).exit_code == 0
    backend = connect(db)
    backend.execute("ALTER TABLE loyalty.points_ledger DROP COLUMN original_transaction_id")
    backend.close()
    report = runner.invoke(app, ["--db", db, "report", "--out", str(tmp_path / "report.html")])
    assert report.exit_code == 0, report.output
    assert "could not be built" not in report.output
