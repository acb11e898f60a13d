"""Honest summaries: an example key shown beside a reason is one row's key with that row's own reason."""

from __future__ import annotations

from helpers import load_and_validate, write_csv
from retailflow import audit
from retailflow.report.sections import data_quality


def two_wrong_stores_and_two_bad_emails(folder):
    """T1 names store ZZ9 and T2 store AA1 (neither exists); C1's e-mail is zed.example.com, C2's abe.example.com.

    Smallest key and smallest reason come from different rows: T1 < T2 but "store_id 'AA1' …" < "store_id 'ZZ9' …",
    C1 < C2 but "email 'abe…" < "email 'zed…". Two min()s would pair T1 with AA1 and C1 with abe.
    """
    write_csv(folder, "stores.csv", "store_id,store_name,store_city,store_region,opening_date\n"
              "ST1,One,Town,North,2020-01-01")
    write_csv(folder, "products.csv", "product_id,product_name,product_category,unit_price,current_stock_level\n"
              "P1,Lamp,Home,10.00,5")
    write_csv(folder, "customer_details.csv", "customer_id,first_name,email,loyalty_status,total_loyalty_points,"
              "last_purchase_date,segment_id\nC1,Al,zed.example.com,,0,,\nC2,Bo,abe.example.com,,0,,")
    write_csv(folder, "store_sales_header.csv", "transaction_id,customer_id,store_id,transaction_date,total_amount\n"
              "T1,C1,ZZ9,2024-12-02 10:00,10.00\nT2,C2,AA1,2024-12-02 11:00,10.00\nT3,C1,ST1,2024-12-02 12:00,10.00")
    write_csv(folder, "store_sales_line_items.csv", "line_item_id,transaction_id,product_id,promotion_id,quantity,"
              "line_item_amount\n1,T1,P1,,1,10.00\n2,T2,P1,,1,10.00\n3,T3,P1,,1,10.00")
    return folder


def test_the_quarantine_example_is_one_rows_key_and_reason(backend, tmp_path):
    load_and_validate(backend, two_wrong_stores_and_two_bad_emails(tmp_path / "data"))
    rule = "store_sales_header.store_id.exists"
    assert [row for row in audit.quarantine_summary(backend) if row["rule_id"] == rule] == [
        {"entity": "store_sales_header", "rule_id": rule, "rows": 2, "example_key": "T1",
         "example_reasons": "store_id 'ZZ9' not found in stores"}]


def test_the_report_warning_example_is_one_rows_key_and_reason(backend, tmp_path):
    load_and_validate(backend, two_wrong_stores_and_two_bad_emails(tmp_path / "data"))
    warnings = next(table for table in data_quality(backend).tables if table.title.startswith("Top warnings"))
    rows = [dict(zip(warnings.columns, row)) for row in warnings.rows]
    email = [row for row in rows if row["rule id"] == "customer_details.email.format"]
    # Both customers were warned (and staged); the example is C1 with C1's own address, masked to its first letter.
    assert [(row["rows"], row["example key"], row["example reasons"]) for row in email] == [
        ("2", "C1", "email 'z***' does not have the expected format")]
