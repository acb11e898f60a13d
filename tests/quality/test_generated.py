"""On generated data, validation quarantines exactly the labelled problems and nothing else."""

from __future__ import annotations

import csv

from helpers import column, load_and_validate
from retailflow import audit
from retailflow.generate import GeneratorOptions, generate_dataset


def test_quarantine_equals_the_planted_anomalies(backend, tmp_path):
    data = tmp_path / "data"
    generate_dataset(data, GeneratorOptions(seed=5, stores=5, products=40, customers=800, days=14,
                                            anomaly_rate=0.05, inventory=False))
    load_and_validate(backend, data)
    labels = list(csv.DictReader((data / "_truth" / "anomalies.csv").open()))
    planted = {row["transaction_id"] for row in labels if row["transaction_id"]}
    quarantined = set(column(backend, "SELECT transaction_id FROM quarantine.store_sales_header UNION "
                                      "SELECT transaction_id FROM quarantine.store_sales_line_items"))
    assert planted and quarantined == planted  # precision = recall = 1.0 by transaction
    bad_emails = {row["key"] for row in labels if row["kind"] == "bad_email"}
    warned = set(column(backend, "SELECT row_key FROM audit.warnings WHERE entity = 'customer_details'"))
    assert warned == bad_emails
    # Duplicates are rejected alone: the original transaction stays staged.
    duplicates = {row["key"] for row in labels if row["kind"] == "duplicate_transaction"}
    staged = set(column(backend, "SELECT transaction_id FROM staging.store_sales_header"))
    assert duplicates and duplicates <= staged
    assert all(balance.balanced for balance in audit.reconcile(backend))
