"""The retailflow data model: entities, columns, types and keys, declared once.

DDL, CSV header checks, casting, type rules and documentation are all derived from
`ENTITIES`; nothing else in the package lists an entity's columns.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class LogicalType:
    """A column type as retailflow declares it: the SQL type its DDL writes and the Ibis type its expressions have."""

    sql: str
    ibis: str
    description: str


#: Every logical column type, declared once: the input entities use the first seven (each with a TYPE_PATTERNS
#: entry), the stored tables of retailflow.catalog the others too (sums, measures and flags the stages compute).
TYPES = {
    "text": LogicalType("VARCHAR", "string", "text"),
    "int": LogicalType("BIGINT", "int64", "a 64-bit whole number"),
    "money": LogicalType("DECIMAL(10,2)", "decimal(10, 2)", "an amount of money, 8 digits and 2 decimals"),
    "rate": LogicalType("DECIMAL(12,4)", "decimal(12, 4)", "a rate, 8 digits and 4 decimals"),
    "percent": LogicalType("DECIMAL(7,2)", "decimal(7, 2)", "a percentage, 15.00 = 15%"),
    "date": LogicalType("DATE", "date", "a calendar day"),
    "timestamp": LogicalType("TIMESTAMP", "timestamp", "a date and time, without a zone (UTC)"),
    "small_int": LogicalType("SMALLINT", "int16", "a 16-bit whole number"),
    "float": LogicalType("DOUBLE PRECISION", "float64", "a double-precision number"),
    "boolean": LogicalType("BOOLEAN", "boolean", "true or false"),
    "money_sum": LogicalType("DECIMAL(18,2)", "decimal(18, 2)", "a day's or a customer's sum of amounts, 16 digits "
                           "and 2 decimals"),
    "money_total": LogicalType("DECIMAL(38,2)", "decimal(38, 2)", "a sum of amounts as the engine sums them"),
    "count_sum": LogicalType("DECIMAL(38,0)", "decimal(38, 0)", "a count summed night by night "
                           "(phantom_state.day_rates says why)"),
}
#: The SQL type of each logical type.
SQL_TYPES = {name: logical.sql for name, logical in TYPES.items()}
#: The Ibis dtype of each logical type.
IBIS_TYPES = {name: logical.ibis for name, logical in TYPES.items()}

#: Text a value must match before it is cast, so every engine accepts the same inputs.
#: The digit limits make the numeric casts total (a value that matches always fits its
#: type), so only dates and timestamps need the engine's error-free cast.
TYPE_PATTERNS = {
    "int": r"^[+-]?[0-9]{1,18}$",
    "money": r"^[+-]?([0-9]{1,8}(\.[0-9]{0,2})?|\.[0-9]{1,2})$",
    "rate": r"^[+-]?([0-9]{1,8}(\.[0-9]{0,4})?|\.[0-9]{1,4})$",
    "percent": r"^[+-]?([0-9]{1,3}(\.[0-9]{0,4})?|\.[0-9]{1,4})$",
    "date": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
    "timestamp": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([ T][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?)?$",
}
TYPE_WORDS = {
    "int": "a whole number",
    "money": "an amount like 12.50 (at most 8 digits before and 2 after the point)",
    "rate": "a number like 1.25 (at most 4 decimals)",
    "percent": "a percentage like 15.00 (or the fraction 0.15)",
    "date": "a date YYYY-MM-DD",
    "timestamp": "a date-time YYYY-MM-DD HH:MM:SS",
}

LINEAGE_COLUMNS = ("_batch_id", "_source_file", "_source_line")
#: The category of a product whose export gives none.
UNCATEGORISED = "(uncategorised)"
#: What separates the ids of a list cell (a promotion's products or stores): never part of an id, since a
#: sale's product_id or store_id holding one is rejected as several values.
LIST_SEPARATORS = ("|", ",", ";")


@dataclass(frozen=True)
class Column:
    """One column of an entity: name, logical type and meaning."""

    name: str
    type: str
    description: str
    nullable: bool = False
    #: Optional columns may be absent from a file; they are NULL then.
    optional: bool = False
    #: Personal data of a person (name, e-mail): erased by `retailflow forget`, hidden from analysts.
    personal: bool = False
    #: A personal e-mail address analysts see masked (a***@domain) rather than not at all.
    masked_as_email: bool = False
    #: The value staged when the cell is empty or the column absent (a documented stand-in, never a guess).
    default: str | None = None
    #: The entity whose key this column names without a declared foreign key (a return's sale): joined as a key.
    names_key_of: str | None = None

    @property
    def sql_type(self) -> str:
        return SQL_TYPES[self.type]


@dataclass(frozen=True)
class ForeignKey:
    """A reference from `column` to the primary key of entity `references`."""

    column: str
    references: str
    #: True when the child belongs to its parent: a failure on either side rejects both.
    atomic: bool = False


@dataclass(frozen=True)
class Entity:
    """An input entity: one CSV file kind, one raw, staging and quarantine table."""

    name: str
    description: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    foreign_keys: tuple[ForeignKey, ...] = ()
    #: Masters are full snapshots: a re-sent key updates the staged row. Facts never repeat.
    master: bool = False
    file_patterns: tuple[str, ...] = field(default=())
    #: The column giving a fact row's business date (its day); a fact without one (line items)
    #: takes its atomic parent's.
    business_date: str | None = None
    #: A master many exports lack (an online shop has no stores file): while it was never delivered, its keys
    #: are staged from the facts that name them (lineage batch 0), and its other columns stay empty.
    implied: bool = False

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)

    @property
    def required_columns(self) -> tuple[str, ...]:
        """The columns a file must have: a column that may be empty may as well be absent (it is NULL then)."""
        return tuple(column.name for column in self.columns if not (column.optional or column.nullable))

    def column(self, name: str) -> Column:
        return next(column for column in self.columns if column.name == name)


def _c(name: str, type_: str, description: str, **kwargs) -> Column:
    return Column(name, type_, description, **kwargs)


ENTITIES: dict[str, Entity] = {
    entity.name: entity
    for entity in (
        Entity(
            "stores",
            "One row per store.",
            (
                _c("store_id", "text", "Store identifier, e.g. ST001."),
                _c("store_name", "text", "Display name of the store.", nullable=True),
                _c("store_city", "text", "City the store is in.", nullable=True),
                _c("store_region", "text", "Region or state of the store.", nullable=True),
                _c("opening_date", "date", "Date the store opened.", nullable=True),
            ),
            ("store_id",),
            master=True,
            implied=True,
        ),
        Entity(
            "products",
            "One row per product.",
            (
                _c("product_id", "text", "Product identifier, e.g. P001."),
                _c("product_name", "text", "Display name of the product.", nullable=True),
                _c("product_category", "text", "Category the product belongs to; empty or absent = "
                   f"{UNCATEGORISED}.", nullable=True, optional=True, default=UNCATEGORISED),
                _c("unit_price", "money", "List price of one unit; empty or absent = unknown (stages that need a "
                   "price use the realised one).", nullable=True, optional=True),
                _c("current_stock_level", "int", "Stock level at export time.", nullable=True),
            ),
            ("product_id",),
            master=True,
        ),
        Entity(
            "customer_details",
            "One row per loyalty customer.",
            (
                _c("customer_id", "text", "Customer identifier, e.g. C001."),
                _c("first_name", "text", "First name used in e-mails.", nullable=True, personal=True),
                _c("email", "text", "E-mail address for loyalty messages.", nullable=True, personal=True,
                   masked_as_email=True),
                _c("loyalty_status", "text", "Loyalty tier (Bronze, Silver, Gold, Platinum).", nullable=True),
                _c("total_loyalty_points", "int", "Point balance at export time.", nullable=True),
                _c("last_purchase_date", "date", "Date of the customer's last purchase.", nullable=True),
                _c("segment_id", "text", "Segment code: HS, AR or empty.", nullable=True),
            ),
            ("customer_id",),
            master=True,
            file_patterns=("customer_details*", "customers*"),
        ),
        Entity(
            "promotion_details",
            "One row per promotion.",
            (
                _c("promotion_id", "text", "Promotion identifier, e.g. PR001."),
                _c("promotion_name", "text", "Display name of the promotion.", nullable=True),
                _c("start_date", "date", "First day the promotion runs."),
                _c("end_date", "date", "Last day the promotion runs (inclusive)."),
                _c(
                    "discount_percentage",
                    "percent",
                    "Discount in percent (15.00 = 15%); a value below 1 is read as a fraction (0.15 = 15%). Empty "
                    "or absent = none advertised (a display or mailer placement: its lines carry the discount).",
                    nullable=True, optional=True,
                ),
                _c("applicable_category", "text", "Product category it applies to; ALL = every category. A "
                   "promotion names a category or products, not both.", nullable=True, optional=True),
                _c("applicable_products", "text", "Product ids it applies to instead of a category: one, or a "
                   "list separated by | (or , or ;) such as P1|P2.", nullable=True, optional=True),
                _c("applicable_stores", "text", "Store ids it runs at, one or a list as applicable_products; "
                   "empty = every store.", nullable=True, optional=True),
            ),
            ("promotion_id",),
            master=True,
            file_patterns=("promotion_details*", "promotions*"),
        ),
        Entity(
            "loyalty_rules",
            "One row per loyalty earning rule.",
            (
                _c("rule_id", "text", "Rule identifier."),
                _c("rule_name", "text", "Display name of the rule.", nullable=True),
                _c("points_per_unit_spend", "rate", "Points earned per currency unit spent."),
                _c("min_spend_threshold", "money", "Minimum transaction total for the rule to apply."),
                _c("bonus_points", "int", "Flat bonus points when the rule applies."),
                _c("valid_days", "text", "Weekdays the rule applies on, e.g. 'Sat,Sun'; empty = every day.",
                   nullable=True, optional=True),
                _c("start_date", "date", "First day the rule applies; empty = always.", nullable=True, optional=True),
                _c("end_date", "date", "Last day the rule applies; empty = always.", nullable=True, optional=True),
                _c("applicable_category", "text", "Only transactions with a product of this category; empty = all.",
                   nullable=True, optional=True),
            ),
            ("rule_id",),
            master=True,
        ),
        Entity(
            "store_sales_header",
            "One row per sales transaction (a till receipt).",
            (
                _c("transaction_id", "text", "Transaction identifier, unique across all days."),
                _c("customer_id", "text", "Loyalty customer who bought; empty (or a placeholder id such as GUEST, "
                   "see RETAILFLOW_ANONYMOUS_IDS) = an anonymous sale.", nullable=True),
                _c("store_id", "text", "Store where the sale happened."),
                _c("transaction_date", "timestamp", "Date and time of the sale."),
                _c("total_amount", "money", "Receipt total, negative for a return; equals the sum of its line "
                   "items. Empty or absent = the sum of its lines.", optional=True),
                _c("transaction_type", "text", "sale, return or void when the export says; empty = the signs of "
                   "the lines decide.", nullable=True, optional=True),
                _c("original_transaction_id", "text", "For a return: the sale it refers to, when known.",
                   nullable=True, optional=True, names_key_of="store_sales_header"),
            ),
            ("transaction_id",),
            (ForeignKey("customer_id", "customer_details"), ForeignKey("store_id", "stores")),
            file_patterns=("store_sales_header*", "sales_header*"),
            business_date="transaction_date",
        ),
        Entity(
            "store_sales_line_items",
            "One row per line of a sales transaction.",
            (
                _c("line_item_id", "text", "Line identifier, unique across all days; empty or absent = "
                   "<transaction_id>-<position of the line within its transaction in the file>.", optional=True),
                _c("transaction_id", "text", "Transaction the line belongs to."),
                _c("product_id", "text", "Product sold."),
                _c("promotion_id", "text", "Promotion applied; empty = not promoted.", nullable=True),
                _c("quantity", "int", "Units sold; negative = units returned. Never 0."),
                _c("line_item_amount", "money", "Amount charged for the line after discount: 0 for a free line, "
                   "negative (like its quantity) for a returned line."),
                _c("discount_amount", "money", "Money off the line's price when the export says (a sold line's is "
                   "positive, a returned line's negative, like the amount); empty or absent = list price × "
                   "quantity − amount.", nullable=True, optional=True),
            ),
            ("line_item_id",),
            (
                ForeignKey("transaction_id", "store_sales_header", atomic=True),
                ForeignKey("product_id", "products"),
                ForeignKey("promotion_id", "promotion_details"),
            ),
            file_patterns=("store_sales_line_items*", "sales_line_items*", "line_items*"),
        ),
        Entity(
            "inventory_daily",
            "One row per store, product and day: the stock on hand at the daily snapshot.",
            (
                _c("snapshot_date", "date", "Day of the snapshot."),
                _c("store_id", "text", "Store holding the stock."),
                _c("product_id", "text", "Product counted."),
                _c("stock_on_hand", "int", "Units on hand at the snapshot."),
            ),
            ("snapshot_date", "store_id", "product_id"),
            (ForeignKey("store_id", "stores"), ForeignKey("product_id", "products")),
            file_patterns=("inventory*",),
            business_date="snapshot_date",
        ),
    )
}

def atomic_parent(entity: Entity) -> ForeignKey | None:
    """The reference that makes `entity`'s rows part of a parent's row (line items of a header), if any."""
    return next((foreign_key for foreign_key in entity.foreign_keys if foreign_key.atomic), None)


def atomic_child(entity: Entity) -> tuple[Entity, ForeignKey] | None:
    """The entity whose rows belong to `entity`'s rows (line items of a header), if any."""
    for other in ENTITIES.values():
        foreign_key = atomic_parent(other)
        if foreign_key and foreign_key.references == entity.name:
            return other, foreign_key
    return None


def data_subject() -> Entity:
    """The entity whose rows are people (loyalty customers): the one holding personal columns."""
    return next(entity for entity in ENTITIES.values() if any(column.personal for column in entity.columns))


def personal_columns() -> tuple[str, ...]:
    """Names of the personal columns, wherever they are copied (staging, analytics, the outbox)."""
    return tuple(column.name for column in data_subject().columns if column.personal)


def person_references() -> dict[str, str]:
    """Per entity, the column holding a person's id: the data subject's key and every reference to it."""
    subject = data_subject()
    found = {subject.name: subject.primary_key[0]}
    for entity in ENTITIES.values():
        for foreign_key in entity.foreign_keys:
            if foreign_key.references == subject.name:
                found[entity.name] = foreign_key.column
    return found


#: Validation order: referenced entities before the entities that reference them.
VALIDATION_ORDER = tuple(ENTITIES)


def entity_for_file(path: Path) -> Entity | None:
    """The entity a file holds, recognised from its name (e.g. store_sales_header_2024-12-13.csv)."""
    stem = path.name.lower()
    for entity in ENTITIES.values():
        patterns = entity.file_patterns or (f"{entity.name}*",)
        if any(fnmatch.fnmatch(stem, f"{pattern}.csv") or fnmatch.fnmatch(stem, f"{pattern}.parquet")
               for pattern in patterns):
            return entity
    return None
