"""Rule kinds: each turns a rule into "this row fails" and a readable reason, as Ibis expressions.

Kinds that need other tables (references, duplicates, sums) first add the columns they need
in `prepare`, with a LEFT JOIN of their own or by asking for a reference that every rule naming
the same table shares, so every kind runs on all engines (PySpark refuses subqueries inside
expressions) and all rules of a table are evaluated in one pass.
"""

from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass
from typing import Any, Callable

import ibis
import ibis.expr.types as ir

from retailflow.id_lists import names
from retailflow.model import ENTITIES, TYPE_WORDS
from retailflow.quality.context import CheckContext
from retailflow.quality.rule import Rule
from retailflow.tables import matching

MAX_SHOWN = 80


def shown(value: ir.Value) -> ir.StringValue:
    """A value as it appears in a reason: quoted, shortened, NULL spelled out."""
    text = value.cast("string")
    return ibis.ifelse(text.isnull(), ibis.literal("NULL"), "'" + text.substr(0, MAX_SHOWN) + "'")


def sentence(*parts: str | ir.Value) -> ir.StringValue:
    """Concatenate literal text and values into one reason."""
    result: ir.StringValue = ibis.literal("")
    for part in parts:
        result = result + (ibis.literal(part) if isinstance(part, str) else part)
    return result


@dataclass(frozen=True)
class Kind:
    """A rule kind: parameter check, optional preparation, failure and reason expressions."""

    fails: Callable[[CheckContext, Rule], ir.BooleanValue]
    reason: Callable[[CheckContext, Rule], ir.StringValue]
    needs_column: bool = True
    check_params: Callable[[Rule], str | None] = lambda rule: None
    prepare: Callable[[CheckContext, Rule], object] | None = None
    #: A failure of this kind rejects the row but does not reject its transaction's other rows.
    cascades: bool = True

    def check(self, rule: Rule) -> str | None:
        if self.needs_column:
            if not rule.column:
                return "needs 'column'"
            if rule.column not in ENTITIES[rule.entity].column_names:
                return f"column {rule.column!r} is not a column of {rule.entity}"
        return self.check_params(rule)


def _typed_numeric(rule: Rule) -> str | None:
    column = ENTITIES[rule.entity].column(rule.column or "")
    return None if column.type in ("int", "money", "rate", "percent") else f"{rule.kind} needs a numeric column, {column.name} is {column.type}"


def _in_range_params(rule: Rule) -> str | None:
    problem = _typed_numeric(rule)
    if problem:
        return problem
    if "min" not in rule.params and "max" not in rule.params:
        return "in_range needs params.min and/or params.max"
    if any(not isinstance(rule.params.get(key, 0), (int, float)) or isinstance(rule.params.get(key, 0), bool)
           or not math.isfinite(rule.params.get(key, 0)) for key in ("min", "max")):
        return "params.min and params.max must be finite numbers"
    return None


def _in_range_fails(ctx: CheckContext, rule: Rule) -> ir.BooleanValue:
    value = ctx.typed(rule.column)
    outside = ibis.literal(False)
    if "min" in rule.params:
        outside = outside | (value < rule.params["min"])
    if "max" in rule.params:
        outside = outside | (value > rule.params["max"])
    return value.notnull() & outside


def _regex_params(rule: Rule) -> str | None:
    pattern = rule.params.get("pattern")
    if not isinstance(pattern, str):
        return "matches_regex needs params.pattern (a string)"
    try:
        re.compile(pattern)
    except re.error as error:
        return f"params.pattern is not a valid regular expression ({error})"
    return None


def _in_set_params(rule: Rule) -> str | None:
    values = rule.params.get("values")
    # Cells are compared as text, so each value must be one (a number is taken as written).
    if not isinstance(values, list) or not values or not all(isinstance(value, (str, int, float)) and
                                                             not isinstance(value, bool) for value in values):
        return "in_set needs params.values, a non-empty list of texts or numbers"
    return None


COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {
    ">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt, "==": operator.eq, "!=": operator.ne,
}


def _compare_params(rule: Rule) -> str | None:
    other = rule.params.get("other")
    if not isinstance(other, str) or other not in ENTITIES[rule.entity].column_names:
        return f"compare needs params.other, a column of {rule.entity}"
    if not isinstance(rule.params.get("op"), str) or rule.params["op"] not in COMPARISONS:
        return f"compare needs params.op, one of {' '.join(COMPARISONS)}"
    return None


def _compare_fails(ctx: CheckContext, rule: Rule) -> ir.BooleanValue:
    left, right = ctx.typed(rule.column), ctx.typed(rule.params["other"])
    return left.notnull() & right.notnull() & ~COMPARISONS[rule.params["op"]](left, right)


def _exists_params(rule: Rule) -> str | None:
    references = rule.params.get("references")
    if isinstance(references, str) and references in ENTITIES:
        return None
    return "exists_in needs params.references, an entity"


def _referenced(ctx: CheckContext, rule: Rule) -> str:
    reference = ENTITIES[rule.params["references"]]
    return ctx.reference(reference.name, reference.primary_key[0], rule.column)


def _exists_fails(ctx: CheckContext, rule: Rule) -> ir.BooleanValue:
    return ctx.typed(rule.column).notnull() & ctx.table[_referenced(ctx, rule)].isnull()


def _unique_params(rule: Rule) -> str | None:
    columns = rule.params.get("columns")
    entity = ENTITIES[rule.entity]
    if not isinstance(columns, list) or not columns or any(column not in entity.column_names for column in columns):
        return f"unique needs params.columns, a list of columns of {rule.entity}"
    return None


#: Source lines per batch in a row's position (batch × span + line): orders rows by batch, then line.
LINE_SPAN = 1 << 32


def _unique_prepare(ctx: CheckContext, rule: Rule) -> None:
    columns = rule.params["columns"]
    entity = ENTITIES[rule.entity]
    prefix = ctx.flag_name(rule)
    # Masters are snapshots: a later file may re-send a key (an update), a repeat inside one file may not.
    group = [ctx.typed_name(column) for column in columns] + (["_batch_id"] if entity.master else [])
    ctx.add_column(f"{prefix}_pos", ctx.table._batch_id * LINE_SPAN + ctx.table._source_line)
    # The first occurrence of each key by an aggregate and a hash join: window functions here
    # sorted every row once per function (two thirds of the inventory check on 9M rows). Only
    # repeated keys are joined back: a lookup of every key was a hash table as big as the batch
    # (probing 1M line items against it took 2.4 s on PostgreSQL), and the rest have no repeat.
    firsts = ctx.table.filter(ibis.and_(*[ctx.table[name].notnull() for name in group]))
    firsts = firsts.group_by(group).aggregate(_first_pos=firsts[f"{prefix}_pos"].min(), _occurrences=firsts.count())
    firsts = firsts.filter(firsts._occurrences > 1)
    ctx.add_flag(rule, firsts, [(name, name) for name in group], extra={"_first_pos": "first_pos"}, name=f"{prefix}_seen")
    staged = ctx.staging(rule.entity)
    day = entity.business_date
    if day in columns:
        # A key holding the business date (inventory's) can only repeat a staged row of the same days:
        # the days' bounds let the engine skip the rest of the history instead of hashing it.
        candidate_days = ctx.candidates.select(_day=ctx.candidates[ctx.typed_name(day)]).distinct()
        staged = matching(ctx.backend, staged, candidate_days, [(day, "_day")])
    keys = staged.select(*[staged[column].name(f"_key{index}") for index, column in enumerate(columns)],
                         _staged_batch=staged._batch_id)
    on = [(ctx.typed_name(column), f"_key{index}") for index, column in enumerate(columns)]
    if entity.master:
        on.append(("_batch_id", "_staged_batch"))
    ctx.add_flag(rule, keys, on)


def _is_repeat(ctx: CheckContext, rule: Rule) -> ir.BooleanValue:
    prefix = ctx.flag_name(rule)
    return (ctx.table[f"{prefix}_pos"] > ctx.table[f"{prefix}_seen_first_pos"]).fill_null(False)


def _unique_fails(ctx: CheckContext, rule: Rule) -> ir.BooleanValue:
    present = ibis.and_(*[ctx.typed(column).notnull() for column in rule.params["columns"]])
    return present & (_is_repeat(ctx, rule) | ctx.flag(rule).notnull())


def _unique_reason(ctx: CheckContext, rule: Rule) -> ir.StringValue:
    columns = rule.params["columns"]
    key = sentence(*[part for index, column in enumerate(columns)
                     for part in ([", "] if index else []) + [f"{column} ", shown(ctx.text(column))]])
    first_line = (ctx.table[f"{ctx.flag_name(rule)}_seen_first_pos"] % LINE_SPAN).cast("string")
    return ibis.ifelse(
        _is_repeat(ctx, rule),
        sentence("duplicate ", key, ": first seen at line ", first_line),
        # Facts never repeat: a re-sent key is a duplicate unless the day is restated.
        sentence(key, " is already staged" + ("" if ENTITIES[rule.entity].master else
                                              " (to replace a corrected day, re-send its files with --restate)")),
    )


def _sums_params(rule: Rule) -> str | None:
    child = rule.params.get("child")
    if child not in ENTITIES:
        return "sums_to needs params.child, an entity"
    for key in ("key", "child_column"):
        if rule.params.get(key) not in ENTITIES[child].column_names:
            return f"sums_to needs params.{key}, a column of {child}"
    return _typed_numeric(rule)


def _sums_prepare(ctx: CheckContext, rule: Rule) -> None:
    child, key, amount = rule.params["child"], rule.params["key"], rule.params["child_column"]
    rows = ctx.typed_rows(child, [key, amount], wanted=ENTITIES[rule.entity].primary_key[0])
    sums = rows.group_by(_key=rows[key]).aggregate(_sum=rows[amount].sum(), _lines=rows[key].count())
    parent_key = ENTITIES[rule.entity].primary_key[0]
    ctx.add_flag(rule, sums, [(ctx.typed_name(parent_key), "_key")], extra={"_sum": "sum", "_lines": "lines"})


def _sums_fails(ctx: CheckContext, rule: Rule) -> ir.BooleanValue:
    total = ctx.typed(rule.column)
    line_sum = ctx.table[f"{ctx.flag_name(rule)}_sum"].fill_null(0)
    tolerance = float(rule.params.get("tolerance", 0.01))
    return total.notnull() & ((total - line_sum).abs() > tolerance)


def _sums_reason(ctx: CheckContext, rule: Rule) -> ir.StringValue:
    line_sum = ctx.table[f"{ctx.flag_name(rule)}_sum"].fill_null(0).cast("decimal(18, 2)").cast("string")
    lines = ctx.table[f"{ctx.flag_name(rule)}_lines"].fill_null(0).cast("string")
    return sentence(f"{rule.column} ", shown(ctx.text(rule.column)), f" does not equal the sum of its "
                    f"{rule.params['child_column']} ", line_sum, " (", lines, " lines)")


def _promotion_prepare(ctx: CheckContext, rule: Rule | None = None) -> tuple[str, str, str]:
    """Ask for the transaction's date and store, the promotion's window, category, products and stores, and the
    product's category."""
    return (ctx.reference("store_sales_header", "transaction_id", "transaction_id", ["transaction_date", "store_id"]),
            ctx.reference("promotion_details", "promotion_id", "promotion_id", ["start_date", "end_date",
                          "applicable_category", "applicable_products", "applicable_stores"]),
            ctx.reference("products", "product_id", "product_id", ["product_category"]))


def _promotion_facts(ctx: CheckContext) -> dict[str, ir.Value]:
    """The day, store, window, categories, products and stores the promotion rule compares, once the references
    are joined."""
    header, promotion, product = _promotion_prepare(ctx)
    return {"day": ctx.table[f"{header}_transaction_date"].date(), "store": ctx.table[f"{header}_store_id"],
            "start": ctx.table[f"{promotion}_start_date"], "end": ctx.table[f"{promotion}_end_date"],
            "applies_to": ctx.table[f"{promotion}_applicable_category"],
            "products": ctx.table[f"{promotion}_applicable_products"],
            "stores": ctx.table[f"{promotion}_applicable_stores"],
            "category": ctx.table[f"{product}_product_category"]}


def _promotion_fails(ctx: CheckContext, rule: Rule) -> ir.BooleanValue:
    found = _promotion_facts(ctx)
    outside = (found["day"] < found["start"]) | (found["day"] > found["end"])
    wrong_category = (found["applies_to"].upper() != "ALL") & (found["applies_to"] != found["category"])
    wrong_product = found["products"].notnull() & ~names(found["products"], ctx.typed("product_id"))
    wrong_store = found["stores"].notnull() & ~names(found["stores"], found["store"].fill_null(""))
    return (ctx.typed("promotion_id").notnull() & found["start"].notnull() & found["day"].notnull()
            & (outside | wrong_category.fill_null(False) | wrong_product | wrong_store))


def _promotion_reason(ctx: CheckContext, rule: Rule) -> ir.StringValue:
    found = _promotion_facts(ctx)
    stores = ibis.ifelse(found["stores"].isnull(), "", sentence(" at ", found["stores"]))
    return sentence(
        "promotion ", shown(ctx.text("promotion_id")), " (",
        found["applies_to"].fill_null(sentence("products ", found["products"].fill_null("?"))), stores,
        ", ", found["start"].cast("string"), " to ", found["end"].cast("string"),
        ") does not apply to product ", shown(ctx.text("product_id")), " (",
        found["category"].fill_null("unknown category"), ") on ", found["day"].cast("string"),
        ibis.ifelse(found["stores"].isnull(), "", sentence(" at ", found["store"].fill_null("?"))),
    )


def _one_of_params(rule: Rule) -> str | None:
    columns = rule.params.get("columns")
    entity = ENTITIES[rule.entity]
    if (not isinstance(columns, list) or len(columns) < 2
            or any(column not in entity.column_names for column in columns)):
        return f"one_of needs params.columns, a list of two or more columns of {rule.entity}"
    return None


def _given(ctx: CheckContext, rule: Rule) -> ir.IntegerValue:
    """How many of the rule's columns the row gives (not empty)."""
    return sum((ctx.text(column).notnull().ifelse(1, 0) for column in rule.params["columns"]), ibis.literal(0))


def _one_of_reason(ctx: CheckContext, rule: Rule) -> ir.StringValue:
    named = ", ".join(rule.params["columns"])
    # Each given column as ", name 'value'"; the first separator is cut.
    given = sentence(*[ibis.ifelse(ctx.text(column).notnull(), sentence(f", {column} ", shown(ctx.text(column))), "")
                       for column in rule.params["columns"]]).substr(2)
    return ibis.ifelse(_given(ctx, rule) == 0, ibis.literal(f"none of {named} is given; give one"),
                       sentence(f"give one of {named}, not several: ", given))


def _other_numeric(rule: Rule) -> str | None:
    other = rule.params.get("other")
    if not isinstance(other, str) or other not in ENTITIES[rule.entity].column_names:
        return f"{rule.kind} needs params.other, a numeric column of {rule.entity}"
    return _typed_numeric(rule) or _typed_numeric(rule.model_copy(update={"column": other}))


def _same_sign_fails(ctx: CheckContext, rule: Rule) -> ir.BooleanValue:
    value, other = ctx.typed(rule.column), ctx.typed(rule.params["other"])
    return ((value > 0) & (other < 0)) | ((value < 0) & (other > 0))


def _sign_by_type_params(rule: Rule) -> str | None:
    by = rule.params.get("by")
    if not isinstance(by, str) or by not in ENTITIES[rule.entity].column_names:
        return f"sign_by_type needs params.by, a column of {rule.entity}"
    for key in ("non_negative", "non_positive"):
        values = rule.params.get(key, [])
        if not isinstance(values, list) or not all(isinstance(value, str) for value in values):
            return f"params.{key} must be a list of texts"
    return _typed_numeric(rule)


def _sign_by_type_fails(ctx: CheckContext, rule: Rule) -> ir.BooleanValue:
    value, kind = ctx.typed(rule.column), ctx.text(rule.params["by"]).lower()
    non_negative = [value.lower() for value in rule.params.get("non_negative", [])]
    non_positive = [value.lower() for value in rule.params.get("non_positive", [])]
    return ((kind.isin(non_negative) & (value < 0)) if non_negative else ibis.literal(False)) | (
        (kind.isin(non_positive) & (value > 0)) if non_positive else ibis.literal(False))


def _free_line_prepare(ctx: CheckContext, rule: Rule | None = None) -> str:
    """Ask for the product's list price."""
    return ctx.reference("products", "product_id", "product_id", ["unit_price"])


def _free_line_fails(ctx: CheckContext, rule: Rule) -> ir.BooleanValue:
    price = ctx.table[f"{_free_line_prepare(ctx)}_unit_price"]
    return (ctx.typed(rule.column) == 0) & (price > 0)


def _value_reason(template: str) -> Callable[[CheckContext, Rule], ir.StringValue]:
    before, after = template.split("{value}")

    def reason(ctx: CheckContext, rule: Rule) -> ir.StringValue:
        return sentence(before.format(column=rule.column, **rule.params), shown(ctx.text(rule.column)),
                        after.format(column=rule.column, **rule.params))

    return reason


KINDS: dict[str, Kind] = {
    "not_null": Kind(
        fails=lambda ctx, rule: ctx.text(rule.column).isnull(),
        reason=lambda ctx, rule: ibis.literal(f"{rule.column} is missing"),
    ),
    "valid_type": Kind(
        fails=lambda ctx, rule: ctx.text(rule.column).notnull() & ctx.typed(rule.column).isnull(),
        reason=lambda ctx, rule: sentence(
            f"{rule.column} ", shown(ctx.text(rule.column)),
            f" is not {TYPE_WORDS[ENTITIES[rule.entity].column(rule.column).type]}"),
        check_params=lambda rule: None if ENTITIES[rule.entity].column(rule.column or "").type in TYPE_WORDS
        else f"valid_type needs a typed column, {rule.column} is text",
    ),
    "positive": Kind(
        fails=lambda ctx, rule: ctx.typed(rule.column) <= 0,
        reason=_value_reason("{column} must be positive, got {value}"),
        check_params=_typed_numeric,
    ),
    "non_negative": Kind(
        fails=lambda ctx, rule: ctx.typed(rule.column) < 0,
        reason=_value_reason("{column} must not be negative, got {value}"),
        check_params=_typed_numeric,
    ),
    "non_zero": Kind(
        fails=lambda ctx, rule: ctx.typed(rule.column) == 0,
        reason=_value_reason("{column} must not be 0, got {value}"),
        check_params=_typed_numeric,
    ),
    "same_sign": Kind(
        fails=_same_sign_fails,
        reason=lambda ctx, rule: sentence(
            f"{rule.column} ", shown(ctx.text(rule.column)), f" and {rule.params['other']} ",
            shown(ctx.text(rule.params["other"])), " have opposite signs (a return has both negative)"),
        check_params=_other_numeric,
    ),
    "sign_by_type": Kind(
        fails=_sign_by_type_fails,
        reason=lambda ctx, rule: sentence(
            f"{rule.column} ", shown(ctx.text(rule.column)), " has the wrong sign for a ",
            ctx.text(rule.params["by"]).fill_null("?"), f" ({rule.params['by']})"),
        check_params=_sign_by_type_params,
    ),
    "free_line": Kind(
        fails=_free_line_fails,
        reason=lambda ctx, rule: sentence(
            f"{rule.column} ", shown(ctx.text(rule.column)), " for product ", shown(ctx.text("product_id")),
            " listed at ", ctx.table[f"{_free_line_prepare(ctx)}_unit_price"].cast("string"),
            " (a free line: gift, sample or bundle part?)"),
        check_params=lambda rule: None if rule.entity == "store_sales_line_items" else "applies to store_sales_line_items",
        prepare=_free_line_prepare,
    ),
    "in_range": Kind(
        fails=_in_range_fails,
        reason=lambda ctx, rule: sentence(
            f"{rule.column} ", shown(ctx.text(rule.column)),
            f" is outside {rule.params.get('min', '-inf')}..{rule.params.get('max', 'inf')}"),
        check_params=_in_range_params,
    ),
    "in_set": Kind(
        fails=lambda ctx, rule: ctx.text(rule.column).notnull() & ~ctx.text(rule.column).isin(
            [str(value) for value in rule.params["values"]]),
        reason=lambda ctx, rule: sentence(
            f"{rule.column} ", shown(ctx.text(rule.column)), f" is not one of {', '.join(map(str, rule.params['values']))}"),
        check_params=_in_set_params,
    ),
    "matches_regex": Kind(
        fails=lambda ctx, rule: ctx.text(rule.column).notnull() & ~ctx.text(rule.column).re_search(rule.params["pattern"]),
        reason=_value_reason("{column} {value} does not have the expected format"),
        check_params=_regex_params,
    ),
    "single_value": Kind(
        fails=lambda ctx, rule: ctx.text(rule.column).re_search(r"[,;|]").fill_null(False),
        reason=_value_reason("{column} {value} holds several values; one value per cell"),
    ),
    "compare": Kind(
        fails=_compare_fails,
        reason=lambda ctx, rule: sentence(
            f"{rule.column} ", shown(ctx.text(rule.column)), f" must be {rule.params['op']} {rule.params['other']} ",
            shown(ctx.text(rule.params["other"]))),
        check_params=_compare_params,
    ),
    "exists_in": Kind(
        fails=_exists_fails,
        reason=lambda ctx, rule: sentence(
            f"{rule.column} ", shown(ctx.text(rule.column)), f" not found in {rule.params['references']}"),
        check_params=_exists_params,
        prepare=_referenced,
    ),
    "unique": Kind(
        fails=_unique_fails,
        reason=_unique_reason,
        needs_column=False,
        check_params=_unique_params,
        prepare=_unique_prepare,
        cascades=False,
    ),
    "sums_to": Kind(
        fails=_sums_fails,
        reason=_sums_reason,
        check_params=_sums_params,
        prepare=_sums_prepare,
    ),
    "one_of": Kind(
        fails=lambda ctx, rule: _given(ctx, rule) != 1,
        reason=_one_of_reason,
        needs_column=False,
        check_params=_one_of_params,
    ),
    "promotion_applicable": Kind(
        fails=_promotion_fails,
        reason=_promotion_reason,
        needs_column=False,
        check_params=lambda rule: None if rule.entity == "store_sales_line_items" else "applies to store_sales_line_items",
        prepare=_promotion_prepare,
    ),
}
