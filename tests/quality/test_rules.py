"""Rules are data: loaded from YAML, validated at start-up with errors that name the file and rule."""

from __future__ import annotations

import pytest

from helpers import write_csv
from retailflow.errors import UserError
from retailflow.quality.rules import load_rules, model_rules


def test_defaults_cover_every_entity_and_the_five_required_rules():
    rules = {rule.id: rule for rule in load_rules()}
    for required in (
        "store_sales_line_items.product_id.not_null",
        "store_sales_line_items.line_item_amount.positive",
        "store_sales_header.store_id.exists",
        "store_sales_header.customer_id.exists",
        "store_sales_header.transaction_date.type",
        "store_sales_header.total_amount.sums_to_lines",
        "store_sales_line_items.quantity.positive",
        "store_sales_line_items.promotion_id.exists",
        "store_sales_header.primary_key.unique",
    ):
        assert rules[required].severity == "reject", required
    assert rules["store_sales_line_items.promotion.applicable"].severity == "warn"
    assert rules["customer_details.email.format"].severity == "warn"
    assert {rule.entity for rule in rules.values()} == {
        "stores", "products", "customer_details", "promotion_details", "loyalty_rules",
        "store_sales_header", "store_sales_line_items", "inventory_daily"}
    assert all(rule.description for rule in rules.values())


def test_a_user_file_overrides_severity_by_id_and_adds_rules(tmp_path):
    path = write_csv(tmp_path, "rules.yaml", """
rules:
  - id: store_sales_header.total_amount.sums_to_lines
    severity: warn
  - id: stores.store_name.required
    entity: stores
    kind: not_null
    column: store_name
    description: Stores have a name.
""")
    rules = {rule.id: rule for rule in load_rules(path)}
    overridden = rules["store_sales_header.total_amount.sums_to_lines"]
    assert overridden.severity == "warn" and overridden.kind == "sums_to"
    assert rules["stores.store_name.required"].kind == "not_null"
    assert len(rules) == len(load_rules()) + 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rules:\n  - id: x\n    entity: stores\n    kind: nonsense\n    column: store_id\n", "unknown kind 'nonsense'"),
        ("rules:\n  - id: x\n    entity: shops\n    kind: not_null\n    column: store_id\n", "unknown entity 'shops'"),
        ("rules:\n  - id: x\n    entity: stores\n    kind: not_null\n", "needs 'column'"),
        ("rules:\n  - id: x\n    entity: stores\n    kind: not_null\n    column: city\n", "not a column of stores"),
        ("rules:\n  - id: x\n    entity: stores\n    kind: matches_regex\n    column: store_id\n"
         "    params: {pattern: '([a-z'}\n", "not a valid regular expression"),
        ("rules:\n  - id: x\n    entity: stores\n    kind: not_null\n    column: store_id\n    severity: fatal\n",
         "severity"),
        ("rules:\n  - id: 'x; DROP TABLE'\n    entity: stores\n    kind: not_null\n    column: store_id\n",
         "use letters, digits"),
        ("rules:\n  - id: x\n    entity: [stores\n", r"rules.yaml:\d+: not valid YAML"),
        ("something: else\n", "expected a top-level 'rules:' list"),
    ],
)
def test_invalid_rule_files_are_rejected_at_start_up(tmp_path, text, message):
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    with pytest.raises(UserError, match=message) as raised:
        load_rules(path)
    assert str(path) in str(raised.value)


def test_model_rules_are_derived_from_the_model():
    ids = {rule.id for rule in model_rules()}
    assert "inventory_daily.primary_key.unique" in ids
    assert "store_sales_line_items.transaction_id.exists" in ids
    assert "promotion_details.discount_percentage.type" in ids
    assert "stores.store_name.not_null" not in ids  # nullable columns are not required
