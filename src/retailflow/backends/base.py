"""The interface every engine implements, and the DDL derived from the data model."""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import ibis
import ibis.expr.types as ir
import sqlglot.expressions as sge

from retailflow.sources.parsing import FileRows
from retailflow.errors import UserError
from retailflow.model import ENTITIES, IBIS_TYPES, TYPE_PATTERNS, Entity

SCHEMAS = ("raw", "staging", "quarantine", "audit", "analytics", "loyalty", "notifications")

AUDIT_TABLES = {
    "batches": (
        ("batch_id", "BIGINT PRIMARY KEY"),
        ("entity", "VARCHAR NOT NULL"),
        ("source_file", "VARCHAR NOT NULL"),
        ("sha256", "VARCHAR NOT NULL"),
        ("size_bytes", "BIGINT"),
        ("rows", "BIGINT"),
        ("columns", "VARCHAR"),
        ("extra_columns", "VARCHAR"),
        ("status", "VARCHAR NOT NULL"),
        ("loaded_at", "TIMESTAMP"),
        ("load_seconds", "DOUBLE PRECISION"),
        ("validated_at", "TIMESTAMP"),
        ("validate_seconds", "DOUBLE PRECISION"),
        ("staged_rows", "BIGINT"),
        ("quarantined_rows", "BIGINT"),
        ("superseded_rows", "BIGINT"),
        ("warned_rows", "BIGINT"),
        # 'append' (a new day), 'restate' (replaces what was staged for the entity and its dates) or 'derived'
        # (a master made from a file's facts, by a source mapping's derive:).
        ("mode", "VARCHAR"),
        # The mapped source that read the file (NULL: the contract), and the drift found in its header.
        ("source", "VARCHAR"),
        ("drift", "VARCHAR"),
    ),
    # The business dates each fact batch covers (sales: the transaction's day; inventory: the
    # snapshot day), as staged by one validate, replay or restate run (change_id, increasing):
    # the incremental stages recompute the dates of the changes they have not seen yet.
    "batch_dates": (
        ("change_id", "BIGINT NOT NULL"),
        ("batch_id", "BIGINT NOT NULL"),
        ("entity", "VARCHAR NOT NULL"),
        ("business_date", "DATE NOT NULL"),
        ("staged_rows", "BIGINT NOT NULL"),
        ("superseded_rows", "BIGINT NOT NULL"),
    ),
    # Per incremental stage, the last change id of batch_dates it has processed.
    "stage_marks": (
        ("stage", "VARCHAR NOT NULL"),
        ("change_id", "BIGINT NOT NULL"),
    ),
    # Masters staged by a validate or replay run (change_id as in batch_dates): a stage whose per-day
    # tables are built from that master recomputes every day.
    "master_changes": (
        ("change_id", "BIGINT NOT NULL"),
        ("entity", "VARCHAR NOT NULL"),
        ("staged_rows", "BIGINT NOT NULL"),
    ),
    "rule_results": (
        ("batch_id", "BIGINT NOT NULL"),
        ("entity", "VARCHAR NOT NULL"),
        ("rule_id", "VARCHAR NOT NULL"),
        ("severity", "VARCHAR NOT NULL"),
        ("phase", "VARCHAR NOT NULL"),
        ("checked", "BIGINT NOT NULL"),
        ("failed", "BIGINT NOT NULL"),
        ("recorded_at", "TIMESTAMP"),
    ),
    # One row per erased person and request (`retailflow forget`): no personal data, only the pseudonym.
    # The pseudonyms here are also the suppression list that ingest applies to every later file.
    "erasures": (
        ("erasure_id", "BIGINT NOT NULL"),
        ("pseudonym", "VARCHAR NOT NULL"),
        ("erased_at", "TIMESTAMP NOT NULL"),
        ("reason", "VARCHAR"),
        # A fingerprint of RETAILFLOW_PII_KEY: a later run with another key would not recognise the pseudonyms.
        ("key_check", "VARCHAR NOT NULL"),
    ),
    # Rows an erasure changed, per person and table.
    "erasure_rows": (
        ("erasure_id", "BIGINT NOT NULL"),
        ("pseudonym", "VARCHAR NOT NULL"),
        ("table_name", "VARCHAR NOT NULL"),
        ("rows", "BIGINT NOT NULL"),
    ),
    "warnings": (
        ("entity", "VARCHAR NOT NULL"),
        ("row_key", "VARCHAR"),
        ("rule_ids", "VARCHAR NOT NULL"),
        ("reasons", "VARCHAR NOT NULL"),
        ("_batch_id", "BIGINT NOT NULL"),
        ("_source_line", "BIGINT NOT NULL"),
    ),
}

QUARANTINE_COLUMNS = (("_rule_ids", "VARCHAR"), ("_reasons", "VARCHAR"), ("_quarantined_at", "TIMESTAMP"))


#: A value quoted in a reason, and what erase_quoted_values puts in its place.
QUOTED_VALUE = "'[^']*'"
ERASED_VALUE = "'[erased]'"


class IntegerSums:
    """A compiler mixin: an integer SUM comes out with the 64-bit type Ibis gives it.

    MySQL sums integers into DECIMAL and DuckDB into 128-bit HUGEINT, which a table then stores and
    DuckDB scans several times slower (the units of 2.6M store-days: 0.47 s, as BIGINT 0.05 s).
    """

    def visit_Sum(self, op, *, arg, where):
        total = super().visit_Sum(op, arg=arg, where=where)
        return self.cast(total, op.dtype) if op.dtype.is_integer() else total

    def visit_WindowFunction(self, op, *, func, **kwargs):
        # An integer SUM over a window: the cast goes around the window, not inside OVER.
        if isinstance(func, sge.Cast):
            return func.__class__(this=super().visit_WindowFunction(op, func=func.this, **kwargs), to=func.to)
        return super().visit_WindowFunction(op, func=func, **kwargs)


def hmac_pads(key: bytes) -> tuple[str, str]:
    """The inner and outer padded keys of HMAC-SHA256 as hex, for engines that hash but have no HMAC."""
    import hashlib

    block = (hashlib.sha256(key).digest() if len(key) > 64 else key).ljust(64, b"\0")
    return bytes(byte ^ 0x36 for byte in block).hex(), bytes(byte ^ 0x5C for byte in block).hex()


class Backend(abc.ABC):
    """A database retailflow runs on: execution, transactions, DDL, safe casts and bulk load."""

    #: sqlglot/Ibis dialect name used to compile expressions.
    dialect: str
    #: Whether staging tables declare FOREIGN KEY constraints.
    supports_foreign_keys = True
    #: Whether fact tables (sales, line items, inventory) declare their primary and foreign keys.
    #: The rules guarantee both either way.
    declares_fact_keys = True
    #: Whether master tables declare their primary keys (the upsert below needs them; an engine
    #: without them overrides upsert).
    declares_master_keys = True
    #: Whether text compares byte for byte (a binary collation), so that `<` on text orders by code point.
    compares_text_bytewise = False
    #: Whether EXISTS / NOT EXISTS runs as a subquery per row rather than as a semi- or anti-join (tables.matching).
    joins_exists_per_row = False

    def __init__(self, url: str) -> None:
        self.url = url
        self.ibis = self._connect()

    @property
    def display_url(self) -> str:
        from retailflow.backends import mask_url

        return mask_url(self.url)

    @abc.abstractmethod
    def _connect(self) -> ibis.BaseBackend: ...

    def server_address(self, default_port: int, default_user: str) -> dict[str, Any]:
        """host, port, user, password (None when absent) and database of a server URL, percent-decoded.

        URLs percent-encode reserved characters: a password with '@' is written %40.
        """
        parts = urlsplit(self.url)
        try:
            port = parts.port or default_port
        except ValueError:
            scheme = parts.scheme or "scheme"
            raise UserError(f"database URL {self.display_url!r} has an invalid port; "
                            f"use {scheme}://user:password@host:{default_port}/dbname") from None
        return dict(host=parts.hostname or "localhost", port=port, user=unquote(parts.username or default_user),
                    password=unquote(parts.password) if parts.password is not None else None,
                    database=unquote(parts.path.lstrip("/")) or "retailflow")

    @abc.abstractmethod
    def execute(self, sql: str) -> int:
        """Run one statement; returns the affected row count where the engine reports it."""

    @abc.abstractmethod
    def fetch(self, sql: str) -> tuple[list[str], list[tuple]]:
        """Run a query; returns (column names, rows)."""

    def execute_built(self, sql: str) -> int:
        """Run a statement made only of compile(), qualified() and quote() output: already this engine's SQL."""
        return self.execute(sql)

    def fetch_built(self, sql: str) -> tuple[list[str], list[tuple]]:
        """fetch() for a query from compile()."""
        return self.fetch(sql)

    @abc.abstractmethod
    def transaction(self) -> contextlib.AbstractContextManager[None]:
        """Everything executed inside commits together or not at all."""

    @contextlib.contextmanager
    def _joined_transaction(self, begin: Callable[[], Any], commit: Callable[[], Any],
                            rollback: Callable[[], Any]) -> Iterator[None]:
        """A transaction from the driver's begin/commit/rollback; a nested one joins the outer."""
        if getattr(self, "_depth", 0):
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        begin()
        self._depth = 1
        try:
            yield
        except BaseException:
            rollback()
            raise
        else:
            commit()
        finally:
            self._depth = 0

    @abc.abstractmethod
    def bulk_load(self, rows: FileRows, table: str, batch_id: int, source_name: str) -> int:
        """Append one entity's rows of a file to raw.<table> with the engine's native bulk path; returns rows loaded."""

    #: Whether try_cast_temporal already returns NULL for text not of the type's pattern (model.TYPE_PATTERNS).
    temporal_cast_checks_pattern = False

    @abc.abstractmethod
    def try_cast_temporal(self, value: ir.StringValue, logical_type: str) -> ir.Value:
        """Cast well-formed text to a date or timestamp, NULL where the value does not exist (2024-02-30)."""

    #: Whether rows are updated in place inside a transaction, so that an erasure is all or nothing.
    updates_in_place = True
    #: Whether the engine has roles and grants (`retailflow grant analyst`).
    supports_roles = False

    def ensure_schema(self, schema: str) -> None:
        """Create a schema (a namespace for tables and views) if it is missing."""
        self.execute(f"CREATE SCHEMA IF NOT EXISTS {self.quote(schema)}")

    def views(self, schema: str) -> list[str]:
        """Names of the schema's views, sorted."""
        _, rows = self.fetch("SELECT table_name FROM information_schema.views "
                             f"WHERE table_schema = {self.literal(self.catalog_schema(schema))} ORDER BY table_name")
        return [row[0] for row in rows]

    def create_role_if_missing(self, role: str) -> None:
        """Create a role without login (people log in as their own users and are granted it)."""
        raise NotImplementedError

    def grant_schema_read(self, role: str, schema: str) -> None:
        """Let `role` read every table and view of `schema`, and nothing more."""
        raise NotImplementedError

    def lock_for_writing(self) -> None:
        """Refuse to go on while another retailflow process writes to this database.

        DuckDB's file lock already keeps a second process out, so only server engines act here.
        """

    def close(self) -> None:
        """Disconnect; a second call does nothing."""
        if not getattr(self, "_closed", False):
            self._closed = True
            self.ibis.disconnect()

    # -- queries ------------------------------------------------------------------

    def compile(self, expr: ir.Expr) -> str:
        """The engine's SQL for expr; compiled once, then kept by the expression's fingerprint (sql_cache)."""
        from retailflow.backends import sql_cache

        return sql_cache.compiled(expr, self.compile_key, self.compile_uncached)

    @property
    def compile_key(self) -> str:
        """Everything besides the expression that the compiled SQL depends on."""
        return f"{type(self).__name__} {self.dialect}"

    def compile_uncached(self, expr: ir.Expr) -> str:
        return ibis.to_sql(expr, dialect=self.dialect)

    def fetch_dicts(self, sql_or_expr: str | ir.Expr) -> list[dict[str, Any]]:
        if isinstance(sql_or_expr, str):
            names, rows = self.fetch(sql_or_expr)
            return [dict(zip(names, row)) for row in rows]
        names, rows = self.fetch_built(self.compile(sql_or_expr))
        # Engines without a boolean type (MySQL) return 0/1: the expression's types say which are flags.
        flags = [index for index, dtype in enumerate(sql_or_expr.schema().types) if dtype.is_boolean()]
        if flags:
            rows = [tuple(bool(value) if index in flags and value is not None else value
                          for index, value in enumerate(row)) for row in rows]
        return [dict(zip(names, row)) for row in rows]

    def scalar(self, sql: str) -> Any:
        _, rows = self.fetch(sql)
        return rows[0][0] if rows else None

    def quote(self, identifier: str) -> str:
        return sge.to_identifier(identifier, quoted=True).sql(self.dialect)

    #: Whether string literals follow the SQL standard (only a quote is escaped, by doubling it), so that
    #: literal() need not ask sqlglot (60 µs a value: 10,000 ids of a `forget` request took 1.3 s).
    standard_string_literals = True

    def literal(self, value: str) -> str:
        if self.standard_string_literals:
            return "'" + value.replace("'", "''") + "'"
        return sge.Literal.string(value).sql(self.dialect)

    def qualified(self, schema: str, table: str) -> str:
        return f"{self.quote(schema)}.{self.quote(table)}"

    def catalog_schema(self, schema: str) -> str:
        """The schema's name in information_schema (MySQL keeps each schema as a database)."""
        return schema

    def table_columns(self, schema: str, table: str) -> list[str]:
        """Column names of schema.table in order, [] when the table does not exist."""
        _, rows = self.fetch(
            "SELECT column_name FROM information_schema.columns "
            f"WHERE table_schema = {self.literal(self.catalog_schema(schema))} AND table_name = {self.literal(table)} "
            "ORDER BY ordinal_position"
        )
        return [row[0] for row in rows]

    def schema_columns(self, schema: str) -> dict[str, list[str]]:
        """Column names of every table of the schema, in order, by table (one catalog query)."""
        _, rows = self.fetch(
            "SELECT table_name, column_name FROM information_schema.columns "
            f"WHERE table_schema = {self.literal(self.catalog_schema(schema))} ORDER BY table_name, ordinal_position")
        columns: dict[str, list[str]] = {}
        for table, column in rows:
            columns.setdefault(table, []).append(column)
        return columns

    def tables(self, schema: str) -> list[str]:
        """Names of the schema's tables, sorted."""
        _, rows = self.fetch(
            "SELECT table_name FROM information_schema.tables "
            f"WHERE table_schema = {self.literal(self.catalog_schema(schema))} AND table_type = 'BASE TABLE' "
            "ORDER BY table_name"
        )
        return [row[0] for row in rows]

    def has_table(self, schema: str, table: str) -> bool:
        return bool(self.table_columns(schema, table))

    def raw_table(self, schema: str, table: str, columns: Sequence[str] | None = None) -> ir.Table:
        """An Ibis table over a raw or quarantine table (whose `columns` are known, or looked up): every column
        text, lineage typed."""
        types = {"_batch_id": "int64", "_source_line": "int64", "_quarantined_at": "timestamp"}
        columns = columns or self.table_columns(schema, table)
        return ibis.table({name: types.get(name, "string") for name in columns}, name=table, database=schema)

    def insert(self, schema: str, table: str, expr: ir.Table, constants: Mapping[str, int] | None = None) -> int:
        """INSERT INTO schema.table (expr's columns) SELECT expr; returns rows inserted.

        `constants`: integer columns set to the same value in every row, such as the run's change id: kept out
        of the compiled expression, whose SQL is then the same text every night (sql_cache) instead of being
        compiled again for each new value.
        """
        names, select = self.insert_select(expr, constants)
        columns = ", ".join(self.quote(name) for name in names)
        return self.execute_built(f"INSERT INTO {self.qualified(schema, table)} ({columns}) {select}")

    def insert_select(self, expr: ir.Table, constants: Mapping[str, int] | None = None) -> tuple[list[str], str]:
        """The columns and the SELECT that insert() writes: expr compiled, with the `constants` added around it."""
        if not constants:
            return list(expr.columns), self.compile(expr)
        values = ", ".join(f"{int(value)} AS {self.quote(name)}" for name, value in constants.items())
        return [*constants, *expr.columns], f"SELECT {values}, rf_inserted.* FROM ({self.compile(expr)}) AS rf_inserted"

    def upsert(self, schema: str, table: str, columns: Sequence[str], key: Sequence[str], select_sql: str) -> None:
        """Insert the SELECT's rows; a row whose key is already there replaces that row's other columns."""
        updates = ", ".join(f"{self.quote(name)} = EXCLUDED.{self.quote(name)}" for name in columns if name not in key)
        self.execute(f"INSERT INTO {self.qualified(schema, table)} ({', '.join(map(self.quote, columns))}) "
                     f"{select_sql} ON CONFLICT ({', '.join(map(self.quote, key))}) DO UPDATE SET {updates}")

    def create_temp_table(self, name: str, expr: ir.Table, indexed: Sequence[Sequence[str]] = ()) -> ir.Table:
        """Materialise expr as a temporary table and return an Ibis table over it.

        `indexed`: column lists the queries reading it join or group on, for an engine that needs an
        index to do either well (MariaDB); the others plan hash joins without one.
        """
        self.execute(f"DROP TABLE IF EXISTS {self.quote(name)}")
        self.execute(f"CREATE TEMPORARY TABLE {self.quote(name)} AS {self.compile(expr)}")
        self.refresh_statistics(self.quote(name))
        return ibis.table(expr.schema(), name=name)

    def analyse_loaded_tables(self) -> None:
        """Give the planner statistics of the raw tables a load just wrote, before anything reads them."""

    def refresh_statistics(self, qualified_name: str) -> None:
        """Give the planner fresh statistics after a bulk write (engines that plan without them skip this)."""

    def computed_once(self, table: ir.Table) -> ir.Table:
        """`table` such that the engine computes its columns once per row, however often the query above uses them.

        Engines that share a derived column between its uses need nothing (the default).
        """
        return table

    def replace_table(self, schema: str, name: str, expr: ir.Table) -> int:
        """(Re)create schema.name from expr inside the current transaction; returns its row count."""
        target = self.qualified(schema, name)
        with self.transaction():
            self.execute(f"DROP TABLE IF EXISTS {target}")
            self.execute(f"CREATE TABLE {target} AS {self.compile(expr)}")
            return int(self.scalar(f"SELECT count(*) FROM {target}"))

    def hmac_sha256(self, text_sql: str, key: bytes) -> str:
        """SQL for the HMAC-SHA256 of a text value's UTF-8 bytes under `key`, as lower-case hex (RFC 2104)."""
        inner, outer = hmac_pads(key)
        return f"sha256(unhex('{outer}') || unhex(sha256(unhex('{inner}') || encode({text_sql}))))"

    def erase_quoted_values(self, text_sql: str) -> str:
        """SQL for the text with every value quoted in it (as reasons quote cells: 'x') replaced by '[erased]'."""
        return f"regexp_replace({text_sql}, {self.literal(QUOTED_VALUE)}, {self.literal(ERASED_VALUE)}, 'g')"

    @staticmethod
    def calendar_checked_cast(value: ir.StringValue, logical_type: str) -> ir.Value:
        """Cast text of the date/timestamp pattern, NULL where the day or time does not exist.

        For engines whose cast of 2024-02-30 is an error rather than NULL and that have no
        safe-cast function: the calendar is checked with integer arithmetic first.
        """
        year, month, day = (value.substr(start, length).cast("int32") for start, length in ((0, 4), (5, 2), (8, 2)))
        leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
        month_days = (ibis.cases((month == 2, ibis.ifelse(leap, 29, 28)), (month.isin([4, 6, 9, 11]), 30),
                                 else_=31))
        valid = (year >= 1) & month.between(1, 12) & day.between(1, month_days)
        if logical_type == "timestamp":
            clock = value.length() > 10
            hour, minute = value.substr(11, 2).cast("int32"), value.substr(14, 2).cast("int32")
            second = ibis.ifelse(value.length() >= 19, value.substr(17, 2).cast("int32"), 0)
            valid &= ibis.ifelse(clock, (hour <= 23) & (minute <= 59) & (second <= 59), True)
        return ibis.ifelse(valid, value.cast(logical_type), ibis.null(logical_type))

    def trimmed(self, cell: ir.StringValue) -> ir.StringValue:
        """The cell without leading and trailing white space, NULL when nothing is left."""
        trimmed = cell.strip().nullif("")
        if not self.compares_text_bytewise:
            return trimmed
        # Most cells have nothing to trim, and trimming is dear: DuckDB's TRIM with a character set
        # under NULLIF (which evaluates it twice) cost 0.13 µs a cell, MySQL's strip is six nested
        # TRIMs that MariaDB evaluates again at every use. Every white space character sorts below
        # '!' byte for byte, so only a cell whose first or last character does is trimmed; one that
        # passes but holds no white space is trimmed to itself. DuckDB: 5x faster on 6M cells;
        # MariaDB: typing 100k line items 1.64 s -> 0.57 s.
        return ibis.ifelse((cell < "!") | (cell.right(1) < "!"), trimmed, cell)

    def parse(self, trimmed: ir.StringValue, logical_type: str, column: str | None = None) -> ir.Value:
        """Typed value of a trimmed text cell (NULL when empty), NULL when it is not a valid value of that type;
        `column` names the model column it is of, for an engine that types some columns apart (MySQL's keys)."""
        if logical_type == "text":
            return trimmed
        ibis_type = IBIS_TYPES[logical_type]
        if logical_type in ("date", "timestamp"):
            typed = self.try_cast_temporal(trimmed, logical_type)
            if self.temporal_cast_checks_pattern:
                return typed
        elif logical_type == "percent":
            # Exports write 15% as 15.00 or as 0.15; staging keeps percent.
            number = trimmed.cast("decimal(12, 4)")
            typed = ibis.ifelse(number.abs() < 1, number * 100, number).cast(ibis_type)
        else:
            typed = trimmed.cast(ibis_type)
        return ibis.ifelse(trimmed.re_search(TYPE_PATTERNS[logical_type]), typed, ibis.null(ibis_type))

    # -- schema ---------------------------------------------------------------------

    def create_schemas(self) -> None:
        """Create the schemas and tables retailflow needs where they are missing."""
        with self.transaction():
            self._serialise_schema_changes()
            for schema in SCHEMAS:
                self.execute(f"CREATE SCHEMA IF NOT EXISTS {self.quote(schema)}")
            self._create_support_functions()
            for name, columns in AUDIT_TABLES.items():
                self._create_table("audit", name, columns)
                self._add_missing_columns("audit", name, columns)
            for entity in ENTITIES.values():
                text_columns = [(name, "VARCHAR") for name in entity.column_names]
                lineage = [("_batch_id", "BIGINT NOT NULL"), ("_source_file", "VARCHAR NOT NULL"),
                           ("_source_line", "BIGINT NOT NULL")]
                self._create_table("raw", entity.name, text_columns + lineage)
                self._index_batches("raw", entity.name)
                self._create_table("quarantine", entity.name, text_columns + lineage + list(QUARANTINE_COLUMNS))
            for entity in ENTITIES.values():
                if not self.has_table("staging", entity.name):
                    self.execute(self.staging_ddl(entity))
            self._upgrade_entity_tables()

    def _upgrade_entity_tables(self) -> None:
        """Bring a database made by an earlier release to the model: columns the model added (optional ones,
        NULL in old rows) and columns it made nullable (an anonymous sale's customer, an uncategorised product).

        Every command connects through here: one catalog query per schema (a query per table was 48 of a
        DuckDB connection's 119 ms)."""
        for schema in ("raw", "quarantine", "staging"):
            existing = self.schema_columns(schema)
            for entity in ENTITIES.values():
                for column in entity.columns:
                    if column.name not in existing.get(entity.name, []):
                        sql_type = column.sql_type if schema == "staging" else "VARCHAR"
                        self.execute(f"ALTER TABLE {self.qualified(schema, entity.name)} "
                                     f"ADD COLUMN {self.quote(column.name)} {sql_type}")
        nullable = {(entity.name, column.name) for entity in ENTITIES.values() for column in entity.columns
                    if column.nullable}
        for table, column in self.not_null_columns("staging") & nullable:
            self.allow_null("staging", table, column)

    def not_null_columns(self, schema: str) -> set[tuple[str, str]]:
        """(table, column) of every column of the schema declared NOT NULL."""
        _, rows = self.fetch("SELECT table_name, column_name FROM information_schema.columns "
                             f"WHERE table_schema = {self.literal(self.catalog_schema(schema))} AND is_nullable = 'NO'")
        return {(table, column) for table, column in rows}

    def allow_null(self, schema: str, table: str, column: str) -> None:
        """Drop a column's NOT NULL constraint."""
        self.execute(f"ALTER TABLE {self.qualified(schema, table)} ALTER COLUMN {self.quote(column)} DROP NOT NULL")

    def _serialise_schema_changes(self) -> None:
        """Make a concurrent process wait while this one creates the schemas (a server engine's lock)."""

    def _create_support_functions(self) -> None:
        """Engine-specific helpers (e.g. safe casts) created once per database."""

    def _index_batches(self, schema: str, table: str) -> None:
        """Let a night's statements find a batch's rows without reading the whole table (engines without zone maps)."""

    def _create_table(self, schema: str, table: str, columns: Sequence[tuple[str, str]]) -> None:
        body = ", ".join(f"{self.quote(name)} {sql_type}" for name, sql_type in columns)
        self.execute(f"CREATE TABLE IF NOT EXISTS {self.qualified(schema, table)} ({body})")

    def _add_missing_columns(self, schema: str, table: str, columns: Sequence[tuple[str, str]]) -> None:
        """Columns added by a later release, added to a database made by an earlier one (nullable)."""
        existing = set(self.table_columns(schema, table))
        for name, sql_type in columns:
            if name not in existing:
                nullable = sql_type.replace(" NOT NULL", "").replace(" PRIMARY KEY", "")
                self.execute(f"ALTER TABLE {self.qualified(schema, table)} ADD COLUMN {self.quote(name)} {nullable}")

    def staging_ddl(self, entity: Entity) -> str:
        """CREATE TABLE for staging.<entity>: typed columns, lineage, primary and foreign keys."""
        parts = [
            f"{self.quote(column.name)} {column.sql_type}{'' if column.nullable else ' NOT NULL'}"
            for column in entity.columns
        ]
        parts += ['"_batch_id" BIGINT NOT NULL', '"_source_line" BIGINT NOT NULL']
        if not (self.declares_master_keys if entity.master else self.declares_fact_keys):
            return f"CREATE TABLE {self.qualified('staging', entity.name)} ({', '.join(parts)})"
        parts.append(f"PRIMARY KEY ({', '.join(self.quote(name) for name in entity.primary_key)})")
        if self.supports_foreign_keys:
            for foreign_key in entity.foreign_keys:
                target = ENTITIES[foreign_key.references]
                parts.append(
                    f"FOREIGN KEY ({self.quote(foreign_key.column)}) REFERENCES "
                    f"{self.qualified('staging', target.name)} ({self.quote(target.primary_key[0])})"
                )
        return f"CREATE TABLE {self.qualified('staging', entity.name)} ({', '.join(parts)})"

    def add_text_columns(self, table: str, names: Sequence[str]) -> None:
        """Add extra file columns to raw.<table> and quarantine.<table> (kept as text)."""
        for schema in ("raw", "quarantine"):
            existing = set(self.table_columns(schema, table))
            for name in names:
                if name not in existing:
                    self.execute(f"ALTER TABLE {self.qualified(schema, table)} ADD COLUMN {self.quote(name)} VARCHAR")

