"""Loyalty points, RFM segments: exact answers on hand-made data, truth on generated data."""

from __future__ import annotations

import csv
import datetime as dt

import pytest

from helpers import column, load_and_validate, write_csv
from retailflow.analytics.loyalty import explain, run_loyalty
from retailflow.analytics.segmentation import run_segments, segment_map
from retailflow.backends import connect
from retailflow.errors import UserError
from retailflow.generate import GeneratorOptions, generate_dataset
from retailflow.pipeline import run_pipeline
from retailflow.quality.rules import load_rules

# Hand-computed with the seed's four rules, `best` policy (base once + largest bonus):
# T001 Sun 70.00 -> 70 + 25 weekend; T002 Sun 40.00 -> 40 (below 50); T003 Mon 98.00 -> 98;
# T004 Tue 180.00 -> 180 + 50; T005 15; T006 90; T007 Fri 172.80 -> floor 172 + 50 (no weekend bonus);
# T008 Sat 32.00 -> 32 (below 50); T009 Sat 45.00 -> 45.
EXPECTED_POINTS = {"T001": 95, "T002": 40, "T003": 98, "T004": 230, "T005": 15, "T006": 90, "T007": 222,
                   "T008": 32, "T009": 45}
EXPECTED_BALANCES = {"C01": (1525, "Gold"), "C02": (862, "Silver"), "C03": (293, "Bronze"), "C04": (105, "Bronze"),
                     "C05": (490, "Bronze"), "C06": (82, "Bronze")}


def points_by_transaction(backend) -> dict[str, int]:
    return dict(backend.fetch("SELECT transaction_id, sum(points) FROM loyalty.points_ledger GROUP BY 1")[1])


def test_points_are_exact_and_idempotent(staged_sample):
    backend = staged_sample
    first = run_loyalty(backend)
    assert first["transactions"] == 9 and first["points"] == sum(EXPECTED_POINTS.values())
    assert points_by_transaction(backend) == EXPECTED_POINTS
    second = run_loyalty(backend)
    assert second["ledger_rows"] == 0 and points_by_transaction(backend) == EXPECTED_POINTS
    balances = {row["customer_id"]: (row["total_loyalty_points"], row["loyalty_status"]) for row in backend.fetch_dicts(
        "SELECT customer_id, total_loyalty_points, loyalty_status FROM staging.customer_details")}
    assert balances == EXPECTED_BALANCES
    # balance = opening + sum(ledger), for every customer
    mismatches = backend.scalar("""
        SELECT count(*) FROM loyalty.balances b JOIN loyalty.opening_balances o USING (customer_id)
        LEFT JOIN (SELECT customer_id, sum(points) AS earned FROM loyalty.points_ledger GROUP BY 1) l USING (customer_id)
        WHERE b.balance <> o.opening_points + coalesce(l.earned, 0)""")
    assert mismatches == 0
    assert backend.scalar("SELECT last_purchase_date FROM staging.customer_details WHERE customer_id = 'C01'") == \
        dt.date(2024, 12, 3)


def test_explain_says_why(staged_sample):
    run_loyalty(staged_sample)
    rules = {row["rule_id"]: row for row in explain(staged_sample, "T007")}
    assert rules["2"]["applies"] is False and rules["2"]["why"] == "Fri is not in Sat,Sun"
    assert rules["4"]["why"] == "total 172.80 is below 200.00"
    assert (rules["1"]["points"], rules["3"]["points"]) == (172, 50)
    with pytest.raises(UserError, match="not staged"):
        explain(staged_sample, "T013")


def test_boundaries_rounding_and_stack_policy(backend, tmp_path):
    folder = tmp_path / "data"
    write_csv(folder, "stores.csv", "store_id,store_name,store_city,store_region,opening_date\nS1,A,B,C,")
    write_csv(folder, "products.csv", "product_id,product_name,product_category,unit_price,current_stock_level\n"
              "P1,Book,Books,1.00,1\nP2,Lamp,Home,1.00,1")
    write_csv(folder, "customer_details.csv", "customer_id,first_name,email,loyalty_status,total_loyalty_points,"
              "last_purchase_date,segment_id\nC1,Al,al@example.com,,0,,")
    write_csv(folder, "loyalty_rules.csv", "rule_id,rule_name,points_per_unit_spend,min_spend_threshold,bonus_points,"
              "valid_days,start_date,end_date,applicable_category\n1,Base,1.00,0.00,0,,,,\n2,Weekend,1.00,50.00,25,"
              "\"Sat,Sun\",,,\n3,High,1.00,100.00,50,,,,\n4,Super,1.00,200.00,100,,,,\n"
              "5,Book lovers,1.50,0.00,10,,2024-12-01,2024-12-31,Books")
    write_csv(folder, "store_sales_header.csv", "transaction_id,customer_id,store_id,transaction_date,total_amount\n"
              "A,C1,S1,2024-11-30 10:00,230.00\nB,C1,S1,2024-11-29 10:00,99.99\nC,C1,S1,2024-11-28 10:00,100.00\n"
              "D,C1,S1,2024-12-02 10:00,10.99")
    write_csv(folder, "store_sales_line_items.csv", "line_item_id,transaction_id,product_id,promotion_id,quantity,"
              "line_item_amount\n1,A,P2,,1,230.00\n2,B,P2,,1,99.99\n3,C,P2,,1,100.00\n4,D,P1,,1,10.99")
    load_and_validate(backend, folder)
    run_loyalty(backend, policy="stack")
    # A: Saturday 230.00 -> 230 + 25 + 50 + 100 (stack); B: 99.99 floors to 99, misses the 100 threshold;
    # C: exactly 100.00 reaches it; D: a Books line in December -> rate 1.5 (floor 16.485) + 10.
    assert points_by_transaction(backend) == {"A": 405, "B": 99, "C": 150, "D": 26}
    assert column(backend, "SELECT rule_id FROM loyalty.points_ledger WHERE transaction_id = 'D'") == ["5"]


def test_best_policy_takes_the_largest_bonus(backend, tmp_path, sample_dir):
    load_and_validate(backend, sample_dir)
    write_csv(tmp_path / "d2", "store_sales_header_2024-12-14.csv", "transaction_id,customer_id,store_id,"
              "transaction_date,total_amount\nT100,C02,ST01,2024-12-14 10:00,230.00")
    write_csv(tmp_path / "d2", "store_sales_line_items_2024-12-14.csv", "line_item_id,transaction_id,product_id,"
              "promotion_id,quantity,line_item_amount\n100,T100,P02,,1,230.00")
    load_and_validate(backend, tmp_path / "d2")
    run_loyalty(backend, policy="best")
    assert points_by_transaction(backend)["T100"] == 330  # 230 + the Super Spender bonus of 100


def test_segments_on_the_sample(staged_sample):
    run_loyalty(staged_sample)
    run_segments(staged_sample)
    rows = {row["customer_id"]: row for row in staged_sample.fetch_dicts("SELECT * FROM analytics.customer_rfm")}
    # Six buyers: the top 10% rounds up to one High-Spender, C01 with 250.00; nobody has 60 idle days.
    assert [c for c, row in rows.items() if row["is_high_spender"]] == ["C01"]
    assert not any(row["is_at_risk"] for row in rows.values())
    assert rows["C01"]["frequency"] == 2 and float(rows["C01"]["monetary"]) == 250.0
    assert rows["C03"]["recency_days"] == 0 and rows["C01"]["recency_days"] == 4
    assert dict(staged_sample.fetch("SELECT customer_id, segment_id FROM staging.customer_details "
                                    "WHERE segment_id IS NOT NULL")[1]) == {"C01": "HS"}
    # As of a date 60 days after C04's last purchase (2024-12-04), C04 is At-Risk (and has points).
    run_segments(staged_sample, as_of=dt.date(2025, 2, 2))
    at_risk = column(staged_sample, "SELECT customer_id FROM analytics.customer_rfm WHERE is_at_risk ORDER BY 1")
    assert "C04" in at_risk and "C03" not in at_risk
    assert staged_sample.scalar("SELECT segment_id FROM staging.customer_details WHERE customer_id = 'C01'") == "AR"


def test_the_segment_map_names_every_score():
    names = {row["segment"] for row in segment_map()}
    assert {"Champions", "Loyal Customers", "Potential Loyalists", "New", "Promising", "Need Attention",
            "About to Sleep", "At Risk", "Can't Lose Them", "Hibernating", "Lost"} == names


def test_at_risk_equals_the_lapsed_customers_with_points(tmp_path):
    data = tmp_path / "data"
    generate_dataset(data, GeneratorOptions(seed=9, stores=4, products=40, customers=1500, days=21, inventory=False))
    backend = connect(f"duckdb:///{tmp_path}/segments.duckdb")
    run_pipeline(backend, [data], load_rules())
    truth = {row["customer_id"] for row in csv.DictReader((data / "_truth" / "customers.csv").open())
             if row["lapsed_with_points"] == "true"}
    at_risk = set(column(backend, "SELECT customer_id FROM analytics.customer_rfm WHERE is_at_risk"))
    assert truth and at_risk == truth
    backend.close()
