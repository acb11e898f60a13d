"""On generated data with returns, anonymous sales and free lines, the outputs equal the planted ground truth."""

from __future__ import annotations

import csv
import json
from decimal import Decimal

import pytest

from retailflow.backends import connect
from retailflow.generate import GeneratorOptions, generate_dataset
from retailflow.pipeline import run_pipeline
from retailflow.quality.rules import load_rules


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["duckdb", "postgres"], indirect=True)
def test_net_figures_points_and_customers_equal_the_ground_truth(db_url, tmp_path):
    data = tmp_path / "data"
    generate_dataset(data, GeneratorOptions(seed=3, stores=4, products=30, customers=500, days=21,
                                            anomaly_rate=0.02, return_rate=0.08))
    truth = data / "_truth"
    manifest = json.loads((truth / "manifest.json").read_text())
    backend = connect(db_url)
    try:
        backend.create_schemas()
        run_pipeline(backend, [data], load_rules())
        # Net revenue and net units per product, returns and anonymous sales included, to the cent.
        assert backend.scalar("SELECT sum(line_item_amount) FROM staging.store_sales_line_items") == \
            Decimal(manifest["net_revenue"])
        expected = {row["product_id"]: (int(row["net_units"]), Decimal(row["net_revenue"]))
                    for row in csv.DictReader((truth / "sales.csv").open()) if int(row["sold_units"])}
        found = {row[0]: (int(row[1]), Decimal(row[2])) for row in backend.fetch(
            "SELECT product_id, sum(units), sum(revenue) FROM analytics.product_daily GROUP BY product_id")[1]}
        assert found == expected
        returned = backend.scalar("SELECT sum(returned_amount) FROM analytics.returns")
        assert returned == Decimal(manifest["returned_revenue"])
        # Customers: net spend per customer, High-Spenders only among net buyers, no anonymous sale anywhere.
        spend = {row["customer_id"]: Decimal(row["net_spend"]) for row in csv.DictReader((truth / "customers.csv").open())}
        rfm = {row[0]: (row[1], row[2]) for row in backend.fetch(
            "SELECT customer_id, monetary, is_high_spender FROM analytics.customer_rfm")[1]}
        assert {customer: value[0] for customer, value in rfm.items()} == spend
        assert all(monetary > 0 for monetary, high in rfm.values() if high)
        assert backend.scalar("SELECT count(*) FROM loyalty.points_ledger l JOIN staging.store_sales_header h "
                              "ON h.transaction_id = l.transaction_id WHERE h.customer_id IS NULL") == 0
        # A sale returned in full leaves its customer's points where they were before it.
        full = [(row["original_transaction_id"], row["transaction_id"])
                for row in csv.DictReader((truth / "returns.csv").open())
                if row["kind"].startswith("full") and row["customer_id"]]
        assert full
        pairs = " OR ".join(f"(o = '{sale}' AND r = '{back}')" for sale, back in full)
        net = backend.fetch(
            "SELECT o, r, (SELECT coalesce(sum(points), 0) FROM loyalty.points_ledger WHERE transaction_id IN (o, r)) "
            f"FROM (SELECT original_transaction_id AS o, transaction_id AS r FROM staging.store_sales_header) AS p "
            f"WHERE {pairs}")[1]
        assert len(net) == len(full) and all(points == 0 for _, _, points in net)
        earned = backend.scalar("SELECT count(*) FROM loyalty.points_ledger WHERE reason = 'returned'")
        assert earned > 0
    finally:
        backend.close()
