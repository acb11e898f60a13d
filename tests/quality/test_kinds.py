"""Every rule kind, with a row that passes and a row that fails, on every engine."""

from __future__ import annotations

import pytest

from helpers import load_and_validate, write_csv
from retailflow.ingest import discover, ingest
from retailflow.model import ENTITIES
from retailflow.quality.engine import check, typed_candidates
from retailflow.quality.rules import Rule

PRODUCTS_HEADER = "product_id,product_name,product_category,unit_price,current_stock_level"

# kind -> (rule fields, CSV rows for products: the first passes, the second fails, expected reason fragment)
CASES = {
    "not_null": ({"column": "product_category"}, ["P1,A,Food,1.00,1", "P2,B, ,1.00,1"], "product_category is missing"),
    "valid_type": ({"column": "unit_price"}, ["P1,A,Food,1.5,1", "P2,B,Food,1.234,1"], "'1.234' is not an amount"),
    "positive": ({"column": "unit_price"}, ["P1,A,Food,0.01,1", "P2,B,Food,0.00,1"], "must be positive, got '0.00'"),
    "non_negative": ({"column": "current_stock_level"}, ["P1,A,Food,1,0", "P2,B,Food,1,-3"], "got '-3'"),
    "in_range": ({"column": "unit_price", "params": {"min": 1, "max": 10}}, ["P1,A,Food,10.00,1", "P2,B,Food,10.01,1"],
                 "outside 1..10"),
    "in_set": ({"column": "product_category", "params": {"values": ["Food", "Toys"]}},
               ["P1,A,Toys,1,1", "P2,B,toys,1,1"], "'toys' is not one of Food, Toys"),
    "matches_regex": ({"column": "product_id", "params": {"pattern": "^P[0-9]+$"}},
                      ["P1,A,Food,1,1", "X2,B,Food,1,1"], "'X2' does not have the expected format"),
    "single_value": ({"column": "product_name"}, ["P1,A,Food,1,1", 'P2,"A|B",Food,1,1'], "holds several values"),
    "compare": ({"column": "current_stock_level", "params": {"op": ">=", "other": "unit_price"}},
                ["P1,A,Food,2,2", "P2,B,Food,3,2"], "must be >= unit_price '3'"),
    "unique": ({"params": {"columns": ["product_id"]}}, ["P1,A,Food,1,1", "P1,B,Food,1,1"],
               "duplicate product_id 'P1': first seen at line 2"),
    "non_zero": ({"column": "current_stock_level"}, ["P1,A,Food,1,-1", "P2,B,Food,1,0"], "must not be 0, got '0'"),
    "same_sign": ({"column": "current_stock_level", "params": {"other": "unit_price"}},
                  ["P1,A,Food,0.00,-2", "P2,B,Food,1.00,-2"], "have opposite signs"),
    "one_of": ({"params": {"columns": ["unit_price", "current_stock_level"]}}, ["P1,A,Food,,1", "P2,B,Food,1,1"],
               "give one of unit_price, current_stock_level, not several: unit_price '1', current_stock_level '1'"),
    "sign_by_type": ({"column": "current_stock_level",
                      "params": {"by": "product_category", "non_negative": ["food"], "non_positive": ["Refund"]}},
                     ["P1,A,Refund,1,-1", "P2,B,FOOD,1,-1"], "'-1' has the wrong sign for a FOOD (product_category)"),
}


def _flags(backend, tmp_path, rows, rule):
    path = write_csv(tmp_path, "products.csv", "\n".join([PRODUCTS_HEADER, *rows]))
    ingest(backend, discover([path]))
    typed = typed_candidates(backend, ENTITIES["products"], backend.raw_table("raw", "products"))
    checked = check(backend, ENTITIES["products"], typed, [rule], {}).order_by("_source_line")
    return [(row["_fail0"], row["_why"]) for row in backend.fetch_dicts(checked.select("_fail0", "_why"))]


@pytest.mark.parametrize("kind", sorted(CASES))
def test_kind_passes_and_fails(backend, tmp_path, kind):
    fields, rows, reason = CASES[kind]
    rule = Rule(id=f"test.{kind}", entity="products", kind=kind, **fields)
    (first_failed, first_reason), (second_failed, second_reason) = _flags(backend, tmp_path, rows, rule)
    assert (first_failed, first_reason) == (False, None)
    assert second_failed is True
    assert reason in second_reason


def test_exists_sums_and_promotion_rules_on_the_sample(staged_sample):
    reasons = dict(staged_sample.fetch("SELECT transaction_id, _reasons FROM quarantine.store_sales_header "
                                       "WHERE transaction_id IN ('T010', 'T012')")[1])
    assert reasons["T010"] == "customer_id 'C99' not found in customer_details"
    assert reasons["T012"] == "total_amount '12.00' does not equal the sum of its line_item_amount 10.00 (1 lines)"
    warning = staged_sample.fetch_dicts("SELECT row_key, rule_ids, reasons FROM audit.warnings "
                                        "WHERE entity = 'store_sales_line_items'")
    assert warning == [{"row_key": "12", "rule_ids": "store_sales_line_items.promotion.applicable",
                        "reasons": "promotion 'PR01' (Electronics, 2024-12-02 to 2024-12-04) does not apply to "
                                   "product 'P01' (Electronics) on 2024-12-07"}]


def test_sums_to_tolerance_is_one_cent(backend, tmp_path):
    folder = tmp_path / "data"
    write_csv(folder, "stores.csv", "store_id,store_name,store_city,store_region,opening_date\nS1,A,B,C,")
    write_csv(folder, "customer_details.csv", "customer_id,first_name,email,loyalty_status,total_loyalty_points,"
              "last_purchase_date,segment_id\nC1,Al,al@example.com,Gold,0,,")
    write_csv(folder, "products.csv", PRODUCTS_HEADER + "\nP1,A,Food,1.00,1")
    write_csv(folder, "store_sales_header.csv", "transaction_id,customer_id,store_id,transaction_date,total_amount\n"
              "T1,C1,S1,2024-12-01 10:00,10.01\nT2,C1,S1,2024-12-01,10.02")
    write_csv(folder, "store_sales_line_items.csv", "line_item_id,transaction_id,product_id,promotion_id,quantity,"
              "line_item_amount\n1,T1,P1,,1,10.00\n2,T2,P1,,1,10.00")
    load_and_validate(backend, folder)
    assert [row[0] for row in backend.fetch("SELECT transaction_id FROM staging.store_sales_header")[1]] == ["T1"]
    # A date-only transaction_date is a valid timestamp; T2 failed only on the total.
    assert backend.scalar("SELECT _rule_ids FROM quarantine.store_sales_header") == \
        "store_sales_header.total_amount.sums_to_lines"


def test_every_kind_is_covered():
    from retailflow.quality.kinds import KINDS

    # free_line reads a product's price from a line: tests/test_real_retail.py (the free line of T08).
    covered = set(CASES) | {"exists_in", "sums_to", "promotion_applicable", "free_line"}
    assert covered == set(KINDS)
