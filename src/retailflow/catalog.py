"""The tables retailflow writes in audit, analytics, loyalty and notifications, each declared once.

Every stored table is a `StoredTable`: its columns (name, logical type from model.TYPES, meaning), key, grain
("one row per …"), scope (how a run changes it: see SCOPES) and how it is made (`created_from`):

- "declaration": created from this declaration (Backend.ensure_tables writes its DDL) and written row by row
  sets: audit's tables, the loyalty ledger, opening balances and runs, the outbox, the churn fit.
- "expression": (re)created by Backend.replace_table from a stage's Ibis expression. Its columns here are what
  that expression gives; tests/catalog builds every stage's expression and compares the two, so a stage that
  changes its output without its declaration fails a test.

DDL, the Ibis tables stages read stored tables through (`table()`), the report's stored schemas, the analyst
views and the docs reference are derived from `STORED_TABLES`; the input entities (raw, staging, quarantine)
are declared in retailflow.model.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from retailflow.lazy import LazyModule
from retailflow.model import ENTITIES, IBIS_TYPES, TYPES, Column, data_subject

if TYPE_CHECKING:
    import ibis.expr.types as ir

# Imported at the first table built: the declarations alone need no Ibis (lazy.py).
ibis = LazyModule("ibis")

#: How a run changes a stored table (StoredTable.scope).
PER_DAY, PER_CUSTOMER, GLOBAL, LOG = "per day", "per customer", "global", "append-only"
SCOPES = {
    PER_DAY: "a run replaces the rows of the business days it recomputes (the changed days, a backfill's, "
             "or every day)",
    PER_CUSTOMER: "a run replaces the rows of the customers the recomputed days touch",
    GLOBAL: "a run recomputes the whole table, from the per-day and per-customer tables rather than from the facts",
    LOG: "a run adds rows and keeps them (an audit trail, ledger or queue); only a row's status columns change",
}
#: How a stored table is made (StoredTable.created_from).
DECLARATION, EXPRESSION = "declaration", "expression"
#: Whether CREATE TABLE declares the key (StoredTable.key_constraint): always, only where the engine declares fact
#: keys (Capabilities.declares_fact_keys), or never (the code writing the table keeps it unique).
ALWAYS, FACT, NEVER = "always", "fact", "never"


@dataclass(frozen=True)
class StoredColumn:
    """One column of a stored table."""

    name: str
    #: A logical type of model.TYPES.
    type: str
    description: str
    #: Declared NOT NULL (tables created from their declaration).
    not_null: bool = False
    #: Personal data of a person, copied from the input model: hidden from analysts, erased by `forget`.
    personal: bool = False
    #: A personal e-mail address analysts see masked (a***@domain).
    masked_as_email: bool = False

    @property
    def sql_type(self) -> str:
        return TYPES[self.type].sql

    @property
    def ibis_type(self) -> str:
        return TYPES[self.type].ibis


@dataclass(frozen=True)
class StoredTable:
    """One table retailflow writes: schema, name, columns, key, grain, scope and how it is made."""

    schema: str
    name: str
    description: str
    #: "One row per …": what a row is.
    grain: str
    #: PER_DAY, PER_CUSTOMER, GLOBAL or LOG (SCOPES says what each means).
    scope: str
    columns: tuple[StoredColumn, ...]
    #: The columns that identify a row ((): rows may repeat, see the grain).
    key: tuple[str, ...] = ()
    #: DECLARATION or EXPRESSION (module docstring).
    created_from: str = EXPRESSION
    #: ALWAYS, FACT or NEVER: whether the DDL declares `key` as the primary key.
    key_constraint: str = NEVER

    @property
    def qualified_name(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)

    def column(self, name: str) -> StoredColumn:
        return next(column for column in self.columns if column.name == name)

    def ibis_schema(self) -> ibis.Schema:
        return ibis.schema({column.name: column.ibis_type for column in self.columns})

    def table(self) -> ir.Table:
        """An unbound Ibis table over the stored table, for building expressions that read or write it."""
        return ibis.table(self.ibis_schema(), name=self.name, database=self.schema)

    def cast(self, rows: ir.Table) -> ir.Table:
        """`rows` with exactly this table's columns, in order, of its types."""
        return rows.select(*[rows[column.name].cast(column.ibis_type).name(column.name) for column in self.columns])


def _c(name: str, type_: str, description: str, *, not_null: bool = False) -> StoredColumn:
    return StoredColumn(name, type_, description, not_null)


def _copied(entity: str, name: str, *, not_null: bool = False, description: str | None = None) -> StoredColumn:
    """A column copied from an input entity's column: its name, type, meaning and personal flags."""
    column = ENTITIES[entity].column(name)
    return StoredColumn(column.name, column.type, description or column.description, not_null,
                        column.personal, column.masked_as_email)


def _some(columns: tuple[StoredColumn, ...], *names: str) -> tuple[StoredColumn, ...]:
    """The columns of these names, shared with another table, in this order."""
    by_name = {column.name: column for column in columns}
    return tuple(by_name[name] for name in names)


def _audit(name: str, description: str, grain: str, columns: Iterable[StoredColumn], scope: str = LOG,
           key: tuple[str, ...] = (), key_constraint: str = NEVER) -> StoredTable:
    return StoredTable("audit", name, description, grain, scope, tuple(columns), key, DECLARATION, key_constraint)


_STORE, _PRODUCT, _CUSTOMER = (_copied("stores", "store_id"), _copied("products", "product_id"),
                               _copied("customer_details", "customer_id"))
_CATEGORY = _copied("products", "product_category", description="Category of the product.")
_SALE_DATE = _c("sale_date", "date", "Business day (of the transaction).")
_RUN_COLUMNS = (
    _STORE, _PRODUCT,
    _c("first_day", "date", "First trading day of the run."),
    _c("last_day", "date", "Last trading day of the run."),
    _c("first_number", "int", "The store's trading-day number of the first day (its days numbered from 1)."),
    _c("last_number", "int", "The store's trading-day number of the last day."),
    _c("days", "int", "Trading days in the run."),
    _c("min_stock_on_hand", "int", "Lowest snapshot of the run."),
    _c("max_stock_on_hand", "int", "Highest snapshot of the run."),
)
_RATE_COLUMNS = (
    _STORE, _PRODUCT,
    _c("counted_days", "count_sum", "Days counted: in stock on a trading day."),
    _c("sales", "count_sum", "Sales (transactions with the product) on the counted days."),
    _c("units", "count_sum", "Net units sold on the counted days."),
)
_APPEND_ID = _c("append_id", "int", "The extension (night) that logged the row; 0 is the rebuild.")

# The checks' tables (checks/): what each store delivered and how its days looked, and what the checks found.
STORE_DAY_DELIVERIES = StoredTable(
    "analytics", "store_day_deliveries",
    "What each store delivered per entity and day: the input of the expected-deliveries check.",
    "One row per store × fact entity × business date with a row staged or quarantined", PER_DAY, (
        _c("store_id", "text", "Store (a quarantined row counts only when its store is staged)."),
        _c("entity", "text", "store_sales_header, store_sales_line_items or inventory_daily."),
        _c("business_date", "date", "The day the rows are of (a line takes its transaction's)."),
        _c("staged_rows", "int", "Rows of the day now in staging."),
        _c("quarantined_rows", "int", "Rows of the day in quarantine whose store and date could be read."),
        _c("restated_rows", "int", "Staged rows that came in a file loaded with --restate."),
        _c("first_loaded_at", "timestamp", "When the earliest file holding these rows was loaded."),
        _c("last_loaded_at", "timestamp", "When the latest file holding these rows was loaded."),
    ), ("store_id", "entity", "business_date"))

STORE_DAY_METRICS = StoredTable(
    "analytics", "store_day_metrics",
    "The volume and shape of each store's day: what the anomaly check compares with the same weekday's past.",
    "One row per store × business date with a sales header staged or quarantined", PER_DAY, (
        _c("store_id", "text", "Store."),
        _c("business_date", "date", "Day of the sales."),
        _c("weekday", "int", "0 = Monday … 6 = Sunday."),
        _c("line_count", "int", "Staged lines of the transactions that count (every one but voids)."),
        _c("revenue", "money_sum", "Net revenue: the sum of those lines' amounts, returns negative."),
        _c("transactions", "int", "Staged transactions that count (sales, returns, exchanges; not voids)."),
        _c("distinct_products", "int", "Products on those lines."),
        _c("anonymous_transactions", "int", "Transactions without a loyalty customer."),
        _c("sold_units", "int", "Units on lines of positive quantity."),
        _c("returned_units", "int", "Units on returned lines (negative quantity), as a positive number."),
        _c("promoted_lines", "int", "Lines naming a promotion or giving their own discount."),
        _c("staged_headers", "int", "Sales headers staged (voids included)."),
        _c("quarantined_headers", "int", "Sales headers quarantined whose store and date could be read."),
        _c("anonymous_share", "float", "anonymous_transactions / transactions."),
        _c("return_rate", "float", "returned_units / sold_units."),
        _c("quarantine_rate", "float", "quarantined_headers / (staged_headers + quarantined_headers)."),
    ), ("store_id", "business_date"))

EXPECTED_DELIVERIES = StoredTable(
    "audit", "expected_deliveries",
    "Completeness and freshness: which store-days were expected, which came, late or restated, which are missing.",
    "One row per store × fact entity × business date that was expected or delivered, plus one per store closure",
    GLOBAL, (
        _c("store_id", "text", "Store."),
        _c("entity", "text", "Fact entity (a store's closure and opening are noted on store_sales_header)."),
        _c("business_date", "date", "Day."),
        _c("expected", "boolean", "Whether a delivery was expected (docs/explanation/checks.md says how)."),
        _c("staged_rows", "int", "Rows staged."),
        _c("quarantined_rows", "int", "Rows quarantined."),
        _c("first_loaded_at", "timestamp", "When its rows first arrived (kept across restatements)."),
        _c("due_at", "timestamp", "The day after, at the cut-off time (midnight without one)."),
        _c("status", "text", "delivered, late, missing, pending (not due yet) or not_expected."),
        _c("finding", "text", "missing, late, restated, closed, opened or empty: the check this row raises."),
        _c("severity", "text", "The finding's severity: info, warn or block."),
        _c("reported_missing_at", "timestamp", "When a checks run first found it missing (a late delivery keeps it)."),
    ), ("store_id", "entity", "business_date"))

ANOMALIES = StoredTable(
    "audit", "anomalies",
    "Volume and shape anomalies: a metric far from the same store's same weekday of the past weeks.",
    "One row per store × business date × metric whose value is anomalous against its baseline", PER_DAY, (
        _c("store_id", "text", "Store."),
        _c("business_date", "date", "Day."),
        _c("metric", "text", "A metric of analytics.store_day_metrics (docs/explanation/checks.md lists them)."),
        _c("value", "float", "The day's value."),
        _c("baseline", "float", "Median of the baseline days' values."),
        _c("spread", "float", "1.4826 × their median absolute deviation, held within the metric's bounds."),
        _c("score", "float", "(value − baseline) / spread."),
        _c("baseline_days", "int", "How many days the baseline has."),
        _c("direction", "text", "low or high."),
        _c("severity", "text", "warn or block; info when explained (a holiday, a promotion)."),
        _c("explanation", "text", "Why an anomaly is not a finding: holiday <name>, or the promotion's share."),
    ), ("store_id", "business_date", "metric"))

CHECK_RUNS = StoredTable(
    "audit", "check_runs",
    "Each checks run: what it had seen (its marks), what it found and what it blocked.",
    "One row per checks run", LOG, (
        _c("run_id", "int", "1, 2, … in order."),
        _c("ran_at", "timestamp", "When the run started (its 'now': what is due is judged against it)."),
        _c("change_id", "int", "The last change of audit.batch_dates the run had seen."),
        _c("last_batch_id", "int", "The last batch the run had seen (its quarantined rows included)."),
        _c("settings_digest", "text", "Digest of the checks settings and holiday calendar in force."),
        _c("days_recomputed", "int", "Business dates whose metrics it recomputed (NULL: every one)."),
        _c("findings", "int", "Findings open after it (warn and block)."),
        _c("new_findings", "int", "Of those, the ones it raised first."),
        _c("blocked_dates", "int", "Business dates a blocking finding holds back."),
    ), ("run_id",))

STORED_TABLES: tuple[StoredTable, ...] = (
    _audit("batches", "Every batch loaded: its file, checksum and size, its status and timings, and where its rows "
           "ended up.", "One row per batch: one file's rows of one entity.", (
               _c("batch_id", "int", "Batch identifier, increasing in load order."),
               _c("entity", "text", "The entity the rows are (see the input model).", not_null=True),
               _c("source_file", "text", "Path of the file the rows came from.", not_null=True),
               _c("sha256", "text", "SHA-256 of the file: the same file sent again is skipped.", not_null=True),
               _c("size_bytes", "int", "Size of the file in bytes."),
               _c("rows", "int", "Rows loaded into raw."),
               _c("columns", "text", "The file's header as written, comma-separated."),
               _c("extra_columns", "text", "Columns of the file outside the model, kept as text in raw and "
                  "quarantine."),
               _c("status", "text", "loaded (waiting for validation) or validated.", not_null=True),
               _c("loaded_at", "timestamp", "When the batch was loaded."),
               _c("load_seconds", "float", "Seconds the load took."),
               _c("validated_at", "timestamp", "When the batch was validated."),
               _c("validate_seconds", "float", "Seconds of the validation run that routed it."),
               _c("staged_rows", "int", "Rows of the batch now staged."),
               _c("quarantined_rows", "int", "Rows of the batch now in quarantine."),
               _c("superseded_rows", "int", "Rows of the batch replaced by a newer master row or a restated day "
                  "(kept in raw)."),
               _c("warned_rows", "int", "Staged rows of the batch that failed a warning rule."),
               _c("mode", "text", "'append' (a new day), 'restate' (replaces what was staged for the entity and "
                  "its dates) or 'derived' (a master made from a file's facts, by a source mapping's derive:)."),
               _c("source", "text", "The mapped source that read the file; empty: the contract."),
               _c("drift", "text", "The drift found in a mapped file's header."),
           ), key=("batch_id",), key_constraint=ALWAYS),
    _audit("batch_dates", "The business dates each fact batch covers (sales: the transaction's day; inventory: the "
           "snapshot day), as staged or superseded by one validate, replay or restate run (a change): the "
           "incremental stages recompute the dates of the changes they have not processed yet.",
           "One row per change, credited batch, entity and business date with staged or superseded rows.", (
               _c("change_id", "int", "The run that staged or superseded the rows (increasing).", not_null=True),
               _c("batch_id", "int", "The batch credited: the rows' own, or the restating batch that superseded "
                  "them.", not_null=True),
               _c("entity", "text", "The fact entity of the rows.", not_null=True),
               _c("business_date", "date", "The rows' business date.", not_null=True),
               _c("staged_rows", "int", "Rows of the date the change staged.", not_null=True),
               _c("superseded_rows", "int", "Rows of the date the change took out of staging or quarantine.",
                  not_null=True),
           )),
    _audit("setup", "Which code last set the database up (its schemas and tables, the model's columns): a "
           "connection from the same code skips the set-up; another release, or an edited retailflow, does it again.",
           "One row.", (
               _c("code", "text", "A digest of retailflow's source, Ibis's and sqlglot's versions and the engine.",
                  not_null=True),
               _c("set_up_at", "timestamp", "When it set the database up.", not_null=True),
           ), scope=GLOBAL),
    _audit("stage_marks", "The last change each incremental stage has processed: it recomputes the dates of the "
           "changes after it.", "One row per incremental stage that has run.", (
               _c("stage", "text", "The stage (promotions, inventory, loyalty, purchases).", not_null=True),
               _c("change_id", "int", "The last change of batch_dates and master_changes it has processed.",
                  not_null=True),
               _c("parameters", "text", "A digest of the parameters and code its stored results were made with; "
                  "NULL when unknown (a backfill since, or a stage that is never skipped). A run with nothing new "
                  "and the same digest is answered from the stored results."),
           ), scope=GLOBAL, key=("stage",)),
    _audit("master_changes", "Masters staged by a validate or replay run (a change, numbered as in batch_dates): a "
           "stage whose per-day tables are built from such a master recomputes every day.",
           "One row per change and master entity it staged rows of.", (
               _c("change_id", "int", "The run that staged the rows.", not_null=True),
               _c("entity", "text", "The master entity.", not_null=True),
               _c("staged_rows", "int", "Rows staged.", not_null=True),
           )),
    _audit("rule_results", "How many rows each rule checked and failed, per batch and run.",
           "One row per batch, rule and validate or replay run (a replay adds rows).", (
               _c("batch_id", "int", "The batch checked.", not_null=True),
               _c("entity", "text", "The entity of the batch.", not_null=True),
               _c("rule_id", "text", "The rule; <entity>.transaction.atomic counts rows rejected with their "
                  "transaction.", not_null=True),
               _c("severity", "text", "reject or warn.", not_null=True),
               _c("phase", "text", "validate or replay.", not_null=True),
               _c("checked", "int", "Rows of the batch checked.", not_null=True),
               _c("failed", "int", "Rows that failed the rule.", not_null=True),
               _c("recorded_at", "timestamp", "When the run recorded it."),
           )),
    _audit("erasures", "People erased by `retailflow forget`: no personal data, only the pseudonym. The pseudonyms "
           "here are also the suppression list ingest applies to every later file.",
           "One row per erased person and request.", (
               _c("erasure_id", "int", "The request (increasing).", not_null=True),
               _c("pseudonym", "text", "The person's pseudonym.", not_null=True),
               _c("erased_at", "timestamp", "When the request ran.", not_null=True),
               _c("reason", "text", "The reason given with the request."),
               _c("key_check", "text", "A fingerprint of RETAILFLOW_PII_KEY: a later run with another key would "
                  "not recognise the pseudonyms.", not_null=True),
           ), key=("erasure_id", "pseudonym")),
    _audit("erasure_rows", "The rows an erasure changed.", "One row per request, person and table it changed rows "
           "of.", (
               _c("erasure_id", "int", "The request.", not_null=True),
               _c("pseudonym", "text", "The person's pseudonym.", not_null=True),
               _c("table_name", "text", "The table, schema.table.", not_null=True),
               _c("rows", "int", "Rows of the person changed.", not_null=True),
           ), key=("erasure_id", "pseudonym", "table_name")),
    _audit("warnings", "Staged rows that failed a warning rule: staged all the same, with the rules and reasons.",
           "One row per staged row that failed a warning rule.", (
               _c("entity", "text", "The entity of the row.", not_null=True),
               _c("row_key", "text", "The row's primary key as staged, parts joined by |."),
               _c("rule_ids", "text", "The warning rules it failed, comma-separated.", not_null=True),
               _c("reasons", "text", "Their reasons, joined by '; '.", not_null=True),
               _c("_batch_id", "int", "The row's batch.", not_null=True),
               _c("_source_line", "int", "The row's line in its file.", not_null=True),
           ), key=("entity", "_batch_id", "_source_line")),

    StoredTable("analytics", "customer_daily", "Each loyalty customer's purchases day by day: what "
                "customer_purchases is summed from.", "One row per loyalty customer and business day with a "
                "staged sale or return.", PER_DAY, (
                    _CUSTOMER, _SALE_DATE,
                    _c("transactions", "int", "Purchases that day: transactions with a net total above 0."),
                    _c("spend", "money_sum", "Net spend that day, returns subtracted."),
                ), key=("customer_id", "sale_date")),
    StoredTable("analytics", "customer_purchases", "Each loyalty customer's purchases over the staged history, "
                "recomputed for the customers a changed day touches: what balances, RFM and churn read.",
                "One row per loyalty customer with a staged sale.", PER_CUSTOMER, (
                    _CUSTOMER,
                    _c("frequency", "int", "Purchases (transactions with a net total above 0)."),
                    _c("monetary", "money_sum", "Net spend."),
                    _c("purchase_days", "int", "Days with a purchase."),
                    _c("first_day", "date", "First day with a purchase."),
                    _c("last_day", "date", "Last day with a purchase."),
                ), key=("customer_id",)),
    StoredTable("analytics", "customer_rfm", "RFM scores, point balance and the two required segments "
                "(High-Spenders, At-Risk); segment_id is written back to staging.customer_details.",
                "One row per loyalty customer.", GLOBAL, (
                    _CUSTOMER, _copied("customer_details", "first_name"), _copied("customer_details", "email"),
                    _c("last_purchase", "date", "The later of the last staged purchase and the export's last "
                       "purchase date."),
                    _c("recency_days", "int", "Days from the last purchase to the as-of date."),
                    _c("frequency", "int", "Purchases."),
                    _c("monetary", "money_sum", "Net spend."),
                    _c("balance", "int", "Point balance."),
                    _c("r_score", "int", "Recency quintile, 1 (longest ago) to 5."),
                    _c("f_score", "int", "Frequency quintile, 1 to 5."),
                    _c("m_score", "int", "Monetary quintile, 1 to 5."),
                    _c("segment", "text", "Segment name from rfm_segments.csv by R and (F + M) / 2."),
                    _c("is_high_spender", "boolean", "In the top 10% of buying customers by spend."),
                    _c("is_at_risk", "boolean", "No purchase for 60 days or more, and a positive balance."),
                    _c("segment_id", "text", "AR (at risk), else HS (high spender), else empty."),
                ), key=("customer_id",)),
    StoredTable("analytics", "customer_churn", "Each customer's churn probability from the BG/NBD-family model, "
                "beside the model's inputs.", "One row per loyalty customer.", GLOBAL, (
                    _CUSTOMER,
                    _c("repeat_purchases", "int", "x: purchase days - 1; empty without a purchase."),
                    _c("first_to_last_days", "int", "t_x: days from the first to the last purchase day."),
                    _c("first_to_as_of_days", "int", "T: days from the first purchase day to the as-of date."),
                    _c("p_alive", "float", "P(alive); empty unless the fit is estimated."),
                    _c("churn_probability", "float", "1 - P(alive)."),
                    _c("churn_status", "text", "estimated, not estimable (with the reason) or no purchase by the "
                       "as-of date."),
                ), key=("customer_id",)),
    StoredTable("analytics", "churn_model", "The churn model's latest fit, reused for a week of data.",
                "One row: the fit that scored customer_churn.", GLOBAL, (
                    _c("model", "text", "BG/NBD or MBG/NBD."),
                    _c("status", "text", "estimated, or not estimable with the reason."),
                    _c("customers", "int", "Customers with a purchase by the as-of date."),
                    _c("repeat_buyers", "int", "Customers who bought on two different days."),
                    _c("history_days", "int", "Days from the first purchase day to the as-of date, longest."),
                    _c("r", "float", "Shape of the purchase rate's Gamma distribution."),
                    _c("alpha", "float", "Scale of the purchase rate's Gamma distribution, in days."),
                    _c("a", "float", "Dropout Beta distribution's a."),
                    _c("b", "float", "Dropout Beta distribution's b."),
                    _c("log_likelihood", "float", "Log-likelihood of the fit."),
                    _c("as_of", "date", "The day the fit measured to."),
                    _c("fitted_at", "timestamp", "When the fit ran."),
                ), created_from=DECLARATION),
    StoredTable("analytics", "store_product_daily", "Net sales per store, product and day: what the inventory "
                "stage's outputs are computed from.", "One row per store, product and day with a sale or a "
                "return.", PER_DAY, (
                    _STORE, _PRODUCT, _CATEGORY, _SALE_DATE,
                    _c("units", "int", "Net units sold (returns subtracted)."),
                    _c("revenue", "money_sum", "Net revenue."),
                    _c("sales", "int", "Transactions that sold the product (returns aside)."),
                ), key=("store_id", "product_id", "sale_date")),
    StoredTable("analytics", "product_daily", "store_product_daily summed over the stores: what rankings, prices "
                "and trading days read.", "One row per product and day with a sale or a return.", PER_DAY, (
                    _PRODUCT, _CATEGORY, _SALE_DATE,
                    _c("units", "int", "Net units sold."),
                    _c("revenue", "money_sum", "Net revenue."),
                ), key=("product_id", "sale_date")),
    StoredTable("analytics", "returns", "What came back, where and when, beside the units sold.",
                "One row per store, product and day with a returned line.", PER_DAY, (
                    _STORE, _PRODUCT, _CATEGORY, _SALE_DATE,
                    _c("returned_units", "int", "Units returned (a positive number)."),
                    _c("returned_amount", "money_sum", "Amount refunded (a positive number)."),
                    _c("sold_units", "int", "Units sold that day, before returns."),
                ), key=("store_id", "product_id", "sale_date")),
    StoredTable("analytics", "top_products", "The best sellers by net units.", "One row per top product.", GLOBAL, (
        _PRODUCT, _CATEGORY,
        _c("units", "int", "Net units sold."),
        _c("revenue", "money_total", "Net revenue."),
        _c("rank", "int", "1 = most units (ties: revenue, then product id)."),
        _copied("products", "product_name"),
        _c("average_price", "float", "Revenue per unit."),
    ), key=("product_id",)),
    StoredTable("analytics", "stockouts", "How often the top products were out of stock at each store.",
                "One row per top product and store with snapshots.", GLOBAL, (
                    _c("rank", "int", "The product's rank among the top products."),
                    _PRODUCT, _STORE,
                    _c("days_observed", "int", "Trading days with a snapshot of the product."),
                    _c("days_out_of_stock", "int", "Of those, days it read 0 or less."),
                    _c("out_of_stock_pct", "float", "Days out of stock per day observed, in %."),
                ), key=("product_id", "store_id")),
    StoredTable("analytics", "lost_sales", "The demand the top products' stock-outs left unmet, in units and "
                "revenue.", "One row per top product and store with snapshots.", GLOBAL, (
                    _c("rank", "int", "The product's rank among the top products."),
                    _PRODUCT, _STORE,
                    _c("stockout_days", "int", "Trading days out of stock."),
                    _c("day_rate", "float", "Mean units sold a day in stock."),
                    _c("store_price", "float", "Revenue per unit at the store."),
                    _c("product_price", "float", "Revenue per unit at every store."),
                    _c("lost_units", "float", "Expected demand not sold on the stock-out days."),
                    _c("lost_revenue", "float", "Lost units at the store's price (else the product's)."),
                    _c("method", "text", "How the expected demand was estimated."),
                ), key=("product_id", "store_id")),
    StoredTable("analytics", "phantom_inventory", "Suspected phantom inventory: runs of in-stock trading days "
                "without a sale that the store-product's own sales rate makes improbable.",
                "One row per suspected run.", GLOBAL, (
                    *_some(_RUN_COLUMNS, "store_id", "product_id", "first_day", "last_day", "days",
                           "min_stock_on_hand", "max_stock_on_hand"),
                    _c("ongoing", "boolean", "The run reaches the store's last trading day."),
                    _c("daily_sales", "float", "Sales per counted day of the store-product."),
                    _c("daily_units", "float", "Units per counted day of the store-product."),
                    _c("expected_units", "float", "Units the rate expects over the run."),
                    _c("probability", "float", "P(no sale over the run) at the store-product's rate (Poisson)."),
                ), key=("store_id", "product_id", "first_day")),
    StoredTable("analytics", "phantom_idle_runs", "Every run of in-stock trading days without a sale, extended "
                "night by night: what phantom_inventory flags runs from.",
                "One row per idle run of a store-product, of any length.", PER_DAY, _RUN_COLUMNS,
                key=("store_id", "product_id", "first_number")),
    StoredTable("analytics", "phantom_rates", "Each store-product's counted days, sales and units: sums, so a night "
                "adds its own.", "One row per store-product with a counted day.", GLOBAL, _RATE_COLUMNS,
                key=("store_id", "product_id")),
    StoredTable("analytics", "phantom_log", "The extensions of the phantom state that can be undone (the last 31 "
                "nights): a late or restated day among them is handled by undoing back to it.",
                "One row per extension (append_id 0: the rebuild).", LOG, (
                    _APPEND_ID,
                    _c("horizon_before", "date", "The last day in the state before the extension."),
                    _c("horizon_after", "date", "The last day in the state after it."),
                ), key=("append_id",)),
    StoredTable("analytics", "phantom_log_removed", "Idle runs an extension replaced (an open run it continued).",
                "One row per extension and idle run it replaced.", LOG, (*_RUN_COLUMNS, _APPEND_ID),
                key=("append_id", "store_id", "product_id", "first_number")),
    StoredTable("analytics", "phantom_log_added", "Idle runs an extension added or continued.",
                "One row per extension and idle run it wrote.", LOG,
                (*_some(_RUN_COLUMNS, "store_id", "product_id", "first_number"), _APPEND_ID),
                key=("append_id", "store_id", "product_id", "first_number")),
    StoredTable("analytics", "phantom_log_rates", "The counts an extension added to phantom_rates.",
                "One row per extension and store-product it counted days of.", LOG, (*_RATE_COLUMNS, _APPEND_ID),
                key=("append_id", "store_id", "product_id")),
    StoredTable("analytics", "promotion_daily", "Sales per in-stock cell (store-product-day) by category, day "
                "and the promotion credited with them: what promotion_effectiveness is computed from.",
                "One row per category, trading day and credited promotion (empty: cells no promotion covered), the "
                "cells of each product a product promotion lists apart.", PER_DAY, (
                    _CATEGORY, _SALE_DATE,
                    _c("weekday", "small_int", "Day of the week, 0 = Monday."),
                    _c("cells", "int", "In-stock cells (store-product-days)."),
                    _c("units", "int", "Net units sold in them."),
                    _c("revenue", "money_total", "Net revenue of them."),
                    _c("promotion_id", "text", "The promotion credited with the cells; empty: none covered them."),
                    _c("covering_count", "int", "Promotions covering the cells."),
                    _c("product_id", "text", "The listed product, for a product promotion's cells; else empty."),
                    _c("units_per_cell", "float", "Units per cell."),
                    _c("promoted", "boolean", "A promotion is credited."),
                ), key=("product_category", "sale_date", "promotion_id", "product_id")),
    StoredTable("analytics", "promotion_discounts_daily", "The discount each promotion gave away, by day.",
                "One row per day, promotion and category (and listed product) with promoted sales.", PER_DAY, (
                    _SALE_DATE, _copied("promotion_details", "promotion_id"), _CATEGORY,
                    _c("discount_cost", "money_total", "List value minus revenue of the promoted lines."),
                    _c("product_id", "text", "The listed product of a product promotion; else empty."),
                ), key=("sale_date", "promotion_id", "product_category", "product_id")),
    StoredTable("analytics", "promotion_effectiveness", "Promoted sales against a weekday-adjusted, stock-aware "
                "baseline: lift, incremental units and revenue, discount given, rank.",
                "One row per promotion and category it covers (and product it lists, for a product promotion).",
                GLOBAL, (
                    _copied("promotion_details", "promotion_id"), _copied("promotion_details", "promotion_name"),
                    _CATEGORY,
                    _c("product_id", "text", "The listed product of a product promotion; else empty."),
                    _copied("promotion_details", "start_date"), _copied("promotion_details", "end_date"),
                    _copied("promotion_details", "discount_percentage"),
                    _c("promoted_units", "int", "Net units of the cells credited to the promotion."),
                    _c("promoted_revenue", "money_total", "Net revenue of those cells."),
                    _c("expected_units", "float", "Units the baseline expects of those cells."),
                    _c("expected_revenue", "float", "Revenue the baseline expects of those cells."),
                    _c("days_observed", "int", "Days with credited cells."),
                    _c("overlap_days", "int", "Of those, days another promotion also covered."),
                    _c("baseline_days", "int", "Days with cells no promotion covered (the baseline)."),
                    _c("baseline_units", "int", "Net units of the baseline cells."),
                    _c("baseline_revenue", "money_total", "Net revenue of the baseline cells."),
                    _c("discount_cost", "money_total", "The discount given away."),
                    _c("lift_units_pct", "float", "(promoted / expected units - 1) x 100."),
                    _c("lift_revenue_pct", "float", "(promoted / expected revenue - 1) x 100."),
                    _c("incremental_units", "float", "Promoted minus expected units."),
                    _c("incremental_revenue", "float", "Promoted minus expected revenue."),
                    _c("status", "text", "ok, insufficient data or no sales in window."),
                    _c("promotion_lift_pct", "float", "The promotion's lift over its rows with status ok."),
                    _c("rank", "int", "1 = the highest promotion lift; empty without one."),
                ), key=("promotion_id", "product_category", "product_id")),

    StoredTable("loyalty", "points_ledger", "Append-only points: what each transaction earned per rule, what a "
                "return took back, and the reversals of a restated day; a re-run adds nothing.",
                "One row per transaction and rule whose points changed a balance, per run and reason.", LOG, (
                    _copied("store_sales_header", "transaction_id", not_null=True),
                    _copied("loyalty_rules", "rule_id", not_null=True),
                    _c("customer_id", "text", "Loyalty customer credited.", not_null=True),
                    _c("transaction_date", "timestamp", "Date and time of the transaction.", not_null=True),
                    _c("total_amount", "money", "The total the rules judged.", not_null=True),
                    _c("base_points", "int", "Points from the spend.", not_null=True),
                    _c("bonus_points", "int", "Bonus points.", not_null=True),
                    _c("points", "int", "base_points + bonus_points.", not_null=True),
                    _c("policy", "text", "best or stack: how the applicable rules combined.", not_null=True),
                    _c("run_id", "text", "The loyalty run that wrote the row.", not_null=True),
                    _c("recorded_at", "timestamp", "When it was written.", not_null=True),
                    _c("reason", "text", "'earned' (points credited), 'returned' (negative: points a return takes "
                       "back) or 'restated' (a reversal of points a restated day changed).", not_null=True),
                    _c("original_transaction_id", "text", "A return's row: the sale it names (its points depend on "
                       "it; a night that changes that sale or its other returns recomputes this one)."),
                ), key=("transaction_id", "rule_id", "run_id", "reason"), created_from=DECLARATION,
                # A fact table: keyed where the engine declares fact keys (on DuckDB the key's index made the
                # insert 14 of 27 s at 9M line items); ledger_changes keeps it unique either way.
                key_constraint=FACT),
    StoredTable("loyalty", "opening_balances", "Each customer's points and last purchase date from their first "
                "staged export, kept so re-runs never compound: the loyalty write-back replaces both in staging.",
                "One row per loyalty customer, from the first export that staged them.", LOG, (
                    _c("customer_id", "text", "Loyalty customer."),
                    _c("opening_points", "int", "Point balance of the first export.", not_null=True),
                    _c("recorded_at", "timestamp", "When it was recorded.", not_null=True),
                    _c("last_purchase_date", "date", "Last purchase date of the first export."),
                ), key=("customer_id",), created_from=DECLARATION, key_constraint=ALWAYS),
    StoredTable("loyalty", "runs", "The loyalty runs that credited points; `notify` announces the latest.",
                "One row per loyalty run that credited points.", LOG, (
                    _c("run_id", "text", "Run identifier: start time and a random suffix."),
                    _c("policy", "text", "best or stack.", not_null=True),
                    _c("started_at", "timestamp", "When the run started.", not_null=True),
                    _c("transactions", "int", "Transactions it credited.", not_null=True),
                    _c("points", "int", "Points it credited.", not_null=True),
                ), key=("run_id",), created_from=DECLARATION, key_constraint=ALWAYS),
    StoredTable("loyalty", "balances", "Each customer's points: opening, earned, balance and tier (written back to "
                "staging.customer_details with the last purchase date).", "One row per loyalty customer.", GLOBAL, (
                    _CUSTOMER,
                    _c("opening_points", "int", "Points of the first staged export."),
                    _c("earned_points", "int", "Net points of the ledger."),
                    _c("balance", "int", "opening_points + earned_points."),
                    _c("tier", "text", "Tier of the balance (RETAILFLOW_LOYALTY_TIERS)."),
                    _c("last_purchase_date", "date", "The later of the last staged purchase and the export's own."),
                    _c("run_points", "int", "Points of the latest run that credited points."),
                ), key=("customer_id",)),

    StoredTable("notifications", "outbox", "The transactional outbox: one message per customer and loyalty run, "
                "queued with the run's figures, then sent (at least once) or skipped.",
                "One row per message: a customer and a loyalty run.", LOG, (
                    _c("message_key", "text", "customer_id:run_id; unique, so queuing again adds nothing."),
                    _c("customer_id", "text", "Loyalty customer.", not_null=True),
                    _c("run_id", "text", "The loyalty run announced.", not_null=True),
                    _copied("customer_details", "email"), _copied("customer_details", "first_name"),
                    _c("points_earned", "int", "Net points of the run.", not_null=True),
                    _c("new_total", "int", "Balance after the run.", not_null=True),
                    _c("tier", "text", "Tier after the run."),
                    _copied("customer_details", "segment_id"),
                    _c("transactions", "int", "Transactions of the run.", not_null=True),
                    _c("status", "text", "queued, sent, failed, skipped (invalid address) or cancelled (erased).",
                       not_null=True),
                    _c("attempts", "int", "Sending attempts.", not_null=True),
                    _c("last_error", "text", "Why the last attempt failed, or why the message is not sent."),
                    _c("message_id", "text", "Message-ID: <message_key@retailflow>, characters outside "
                       "[A-Za-z0-9.-] as dots.", not_null=True),
                    _c("queued_at", "timestamp", "When it was queued.", not_null=True),
                    _c("sent_at", "timestamp", "When it was sent."),
                    _c("next_attempt_at", "timestamp", "When a failed message is tried again."),
                    _c("message_file", "text", "The absolute path of the .eml file the file sender wrote (empty for "
                       "other senders, and for files written before the path was recorded)."),
                ), key=("message_key",), created_from=DECLARATION, key_constraint=ALWAYS),
    STORE_DAY_DELIVERIES, STORE_DAY_METRICS, EXPECTED_DELIVERIES, ANOMALIES, CHECK_RUNS,
)

#: Every stored table by its qualified name (schema.table).
STORED: dict[str, StoredTable] = {table.qualified_name: table for table in STORED_TABLES}


def stored(qualified_name: str) -> StoredTable:
    """The declaration of a stored table, by "schema.table"."""
    try:
        return STORED[qualified_name]
    except KeyError:
        raise KeyError(f"{qualified_name} is not a stored table of retailflow.catalog") from None


def table(qualified_name: str) -> ir.Table:
    """An unbound Ibis table over a stored table, by "schema.table"."""
    return stored(qualified_name).table()


def in_schema(schema: str) -> tuple[StoredTable, ...]:
    """The stored tables of one schema, in declaration order."""
    return tuple(declared for declared in STORED_TABLES if declared.schema == schema)


#: The types of the lineage columns raw, staging and quarantine rows carry besides their cells.
LINEAGE_TYPES = {"_batch_id": "int64", "_source_line": "int64", "_quarantined_at": "timestamp"}


def _declared_columns(schema: str, name: str) -> dict[str, Column | StoredColumn]:
    """A table's columns as declared: an input entity's in raw, staging and quarantine (the input model), a stored
    table's in the catalog; none for a table nothing declares."""
    if schema in ("raw", "staging", "quarantine") and name in ENTITIES:
        return {column.name: column for column in ENTITIES[name].columns}
    declared = STORED.get(f"{schema}.{name}")
    return {column.name: column for column in declared.columns} if declared else {}


def existing_table(schema: str, name: str, columns: Sequence[str]) -> ir.Table:
    """An unbound Ibis table over a table as the database has it (`columns`, in order), each column of its
    declared type; text for raw and quarantine cells (as sent) and for a column nothing declares (a file's extra
    one)."""
    declared = {} if schema in ("raw", "quarantine") else {
        column_name: IBIS_TYPES[column.type] for column_name, column in _declared_columns(schema, name).items()}
    types = {**LINEAGE_TYPES, **declared}
    return ibis.table({column: types.get(column, "string") for column in columns}, name=name, database=schema)


def personal_column(schema: str, name: str, column: str) -> Column | StoredColumn | None:
    """The declaration of `column` when it holds personal data (its flags say how analysts see it), else None. In
    a table nothing declares, the data subject's personal columns are known by their names."""
    declared = _declared_columns(schema, name) or {subject.name: subject for subject in data_subject().columns}
    found = declared.get(column)
    return found if found is not None and found.personal else None
