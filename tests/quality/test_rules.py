"""Rules are data: loaded from YAML, validated at start-up with errors that name the file and rule."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from helpers import write_csv
from retailflow.errors import UserError
from retailflow.quality.rules import load_rules, model_rules


def test_defaults_cover_every_entity_and_the_five_required_rules():
    rules = {rule.id: rule for rule in load_rules()}
    for required in (
        "store_sales_line_items.product_id.not_null",
        "store_sales_line_items.line_item_amount.sign",
        "store_sales_header.store_id.exists",
        "store_sales_header.customer_id.exists",
        "store_sales_header.transaction_date.type",
        "store_sales_header.total_amount.sums_to_lines",
        "store_sales_line_items.quantity.non_zero",
        "store_sales_header.total_amount.sign",
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


RULE = "rules:\n  - id: x\n    entity: stores\n"


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (RULE + "    kind: nonsense\n    column: store_id\n", 4, "unknown kind 'nonsense'"),
        ("rules:\n  - id: x\n    entity: shops\n    kind: not_null\n    column: store_id\n", 3,
         "unknown entity 'shops'"),
        (RULE + "    kind: not_null\n", 2, "needs 'column'"),
        ("rules:\n  - id: x\n    kind: not_null\n    column: store_id\n", 2, "entity: Field required"),
        (RULE + "    kind: not_null\n    colum: store_id\n", 5, "colum: Extra inputs are not permitted"),
        (RULE + "    kind: not_null\n    column: city\n", 5, "not a column of stores"),
        (RULE + "    kind: matches_regex\n    column: store_id\n    params: {pattern: '([a-z'}\n", 6,
         "not a valid regular expression"),
        (RULE + "    kind: not_null\n    column: store_id\n    severity: fatal\n", 6, "severity"),
        ("rules:\n  - id: 'x; DROP TABLE'\n    entity: stores\n    kind: not_null\n    column: store_id\n", 2,
         "use letters, digits"),
        (RULE + "    kind: exists_in\n    column: store_id\n    params: {references: [stores]}\n", 6,
         "needs params.references, an entity"),
        (RULE + "    kind: in_set\n    column: store_id\n    params: {values: [[ST01]]}\n", 6,
         "a non-empty list of texts or numbers"),
        (RULE + "    kind: valid_type\n    column: store_name\n", 5, "needs a typed column, store_name is text"),
        (RULE + "    kind: not_null\n    column: store_id\n  - id: x\n    entity: stores\n    kind: not_null\n"
         "    column: store_name\n", 6, "id 'x' is also used by the rule on line 2"),
        ("rules:\n  - id: x\n    entity: [stores\n", 4, r"not valid YAML \(.*flow sequence started on line 3\)"),
        ("rules:\n  - id: x\n\tentity: stores\n", 3, "not valid YAML"),
        *[("rules:\n  - id: x\n    entity: products\n    kind: in_range\n    column: unit_price\n"
           f"    params: {{min: {limit}}}\n", 6, "must be finite numbers") for limit in (".nan", ".inf", "true")],
        ("something: else\n", 1, "expected a top-level 'rules:' list"),
        ("rules:\n  - hello\n", 2, "not a mapping"),
    ],
)
def test_invalid_rule_files_are_rejected_at_start_up_naming_file_and_line(tmp_path, text, line, message):
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    with pytest.raises(UserError, match=message) as raised:
        load_rules(path)
    assert str(raised.value).startswith(f"{path}:{line}: ")
    assert "\n" not in str(raised.value)


def test_a_rules_file_that_is_not_utf8_names_the_line(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_bytes("rules:\n  - id: x\n    description: caf\u00e9\n".encode("latin-1"))
    with pytest.raises(UserError, match=rf"^{re.escape(str(path))}:3: not UTF-8 text"):
        load_rules(path)


def test_a_bad_rules_file_stops_the_command_with_one_line_and_exit_code_2(tmp_path):
    path = tmp_path / "my rules.yaml"
    path.write_text(RULE + "    kind: nonsense\n    column: store_id\n")
    result = subprocess.run([sys.executable, "-m", "retailflow", "--db", f"duckdb:///{tmp_path}/x.duckdb",
                             "--rules", str(path), "validate"], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "COLUMNS": "300"})
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"error: {path}:4: rule #1 (x): unknown kind 'nonsense'; one of compare, exists_in, free_line, in_range, "
        "in_set, matches_regex, non_negative, non_zero, not_null, one_of, positive, promotion_applicable, same_sign, "
        "sign_by_type, single_value, sums_to, unique, valid_type; fix the rules file"]


def test_model_rules_are_derived_from_the_model():
    ids = {rule.id for rule in model_rules()}
    assert "inventory_daily.primary_key.unique" in ids
    assert "store_sales_line_items.transaction_id.exists" in ids
    assert "promotion_details.discount_percentage.type" in ids
    assert "stores.store_name.not_null" not in ids  # nullable columns are not required


def test_every_shipped_rule_downgraded_to_warn_is_refused_at_load_or_runs_to_the_end(tmp_path, sample_dir):
    """A rules file that loads always runs: a warning staging could not honour is refused when loaded."""
    refused, accepted = [], []
    for rule in load_rules():
        if rule.severity == "warn":
            continue
        path = write_csv(tmp_path, f"{rule.id}.yaml", f"rules:\n  - id: {rule.id}\n    severity: warn\n")
        try:
            load_rules(path)
            accepted.append(rule.id)
        except UserError as error:
            assert re.match(rf"{re.escape(str(path))}:3: rule #1 \({re.escape(rule.id)}\): cannot be a warning", str(error))
            refused.append(rule.id)
    # What staging declares: required columns, primary keys and references.
    assert "store_sales_line_items.product_id.not_null" in refused
    assert "store_sales_header.primary_key.unique" in refused
    assert "store_sales_header.customer_id.exists" in refused
    assert "store_sales_header.total_amount.sums_to_lines" in accepted
    assert "store_sales_line_items.line_item_amount.sign" in accepted
    # Every accepted downgrade at once, on the sample with its planted errors: the whole loop runs.
    together = write_csv(tmp_path, "all.yaml", "rules:\n" + "".join(
        f"  - id: {rule_id}\n    severity: warn\n" for rule_id in accepted))
    env = {**os.environ, "RETAILFLOW_QUIET": "1"}
    run = subprocess.run([sys.executable, "-m", "retailflow", "--db", f"duckdb:///{tmp_path}/warn.duckdb", "--rules",
                          str(together), "run", str(sample_dir)], capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    refused_run = subprocess.run([sys.executable, "-m", "retailflow", "--rules", str(tmp_path / f"{refused[0]}.yaml"),
                                  "rules"], capture_output=True, text=True, env=env)
    assert refused_run.returncode == 2 and len(refused_run.stderr.strip().splitlines()) == 1
