"""On generated data with returns, the pipeline's loyalty balances equal the generator's points truth exactly."""

from __future__ import annotations

import csv

import pyarrow as pa
import pytest

import retailflow.generate.masters
from retailflow.backends import connect
from retailflow.generate import GeneratorOptions, generate_dataset
from retailflow.pipeline import run_pipeline
from retailflow.quality.rules import load_rules

#: Rules that use every condition the pipeline knows, on top of the shipped ones: rates with decimals, a
#: category rule inside a period, a rule that ends mid-window, and a threshold-0 bonus, which stays
#: after a full return (the sale is judged at 0.00 and the rule still applies there).
RICH_RULES = pa.table({
    "rule_id": ["1", "2", "3", "4", "5"],
    "rule_name": ["Standard", "Weekend Bonus", "Gadget Fortnight", "Welcome", "December High Value"],
    "points_per_unit_spend": ["1.25", "1.00", "2.0075", "0.50", "1.50"],
    "min_spend_threshold": ["0.00", "50.00", "20.00", "0.00", "100.00"],
    "bonus_points": ["0", "25", "10", "5", "50"],
    "valid_days": [None, "Sat,Sun", None, None, None],
    "start_date": [None, None, "2024-12-04", None, None],
    "end_date": [None, None, "2024-12-17", None, "2024-12-12"],
    "applicable_category": [None, None, "Electronics", None, None],
})


@pytest.mark.slow
# Each rule set on one engine (suite time): the fuller rules on DuckDB, the shipped ones on PostgreSQL.
@pytest.mark.parametrize("db_url, rules", [("duckdb", "rich"), ("postgres", "shipped")], indirect=["db_url"])
def test_balances_earned_points_equal_the_points_truth(db_url, rules, tmp_path, monkeypatch):
    if rules == "rich":
        monkeypatch.setattr(retailflow.generate.masters, "_loyalty_rules", lambda: RICH_RULES)
    data = tmp_path / "data"
    generate_dataset(data, GeneratorOptions(seed=3, stores=4, products=30, customers=500, days=21,
                                            anomaly_rate=0.02, return_rate=0.08))
    with (data / "_truth" / "points.csv").open() as file:
        truth = {row["customer_id"]: int(row["earned_points"]) for row in csv.DictReader(file)}
    backend = connect(db_url)
    try:
        backend.create_schemas()
        run_pipeline(backend, [data], load_rules())
        found = dict(backend.fetch("SELECT customer_id, earned_points FROM loyalty.balances")[1])
        clawed_back = backend.scalar("SELECT count(*) FROM loyalty.points_ledger WHERE reason = 'returned'")
    finally:
        backend.close()
    assert clawed_back > 0
    assert set(found) <= set(truth)
    differences = {customer: (found.get(customer, 0), points) for customer, points in truth.items()
                   if found.get(customer, 0) != points}
    assert differences == {}
    assert sum(points > 0 for points in truth.values()) > 50
