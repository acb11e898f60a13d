"""MySQL / MariaDB, reached with mysqlclient; statements compiled by Ibis's MySQL compiler.

MySQL has no schemas inside a database: a schema *is* a database. retailflow's schemas become
databases named after the URL's database (`mysql://root@host/shop` keeps staging in
`shop_staging`), so two retailflow databases on one server never meet. Compiled statements name
those databases (Ibis's trees are mapped before they are written); a statement given as text is
parsed once with sqlglot and re-written for MySQL: schema names mapped, types sized. Row changes
are built as MySQL writes them: DELETE alias FROM, multi-table UPDATE … JOIN (MySQL has no
UPDATE … FROM), DROP TEMPORARY TABLE (a plain DROP would commit the transaction).
"""

from __future__ import annotations

import contextlib
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import sqlglot
import sqlglot.expressions as sge
from sqlglot.dialects.mysql import MySQL

from retailflow.backends.base import (
    NOW,
    SCHEMAS,
    Backend,
    Capabilities,
    DriverConnection,
    Value,
    hmac_pads,
)
from retailflow.config import env
from retailflow.errors import UserError
from retailflow.lazy import LazyModule
from retailflow.model import ENTITIES

if TYPE_CHECKING:
    import ibis.expr.types as ir

# Imported at first use: a command that only reads stored tables never compiles nor loads a file (lazy.py).
ibis = LazyModule("ibis")
duckdb = LazyModule("duckdb")
parsing = LazyModule("retailflow.sources.parsing")
mysql_compiler = LazyModule("retailflow.backends.mysql_compiler")

#: Key columns need a length in MySQL; 255 characters of utf8mb4 stay inside InnoDB's key limit.
KEY_VARCHAR = "VARCHAR(255)"
#: Its length, as an Ibis type's (String(length=KEY_LENGTH)), which the compiler writes as CAST(... AS CHAR(255)).
KEY_LENGTH = 255
#: Text columns that are a primary or foreign key in every entity that has them. Validation types
#: them VARCHAR(255), not TEXT: MariaDB joins TEXT only by nested loops (a join of 100k TEXT keys
#: took 368 s, of the same keys as VARCHAR(255) 3 s), while a VARCHAR key of a derived table gets an
#: index and a hash join can hash the whole value.
TEXT_KEY_COLUMNS = frozenset(
    name for name in {column.name for entity in ENTITIES.values() for column in entity.columns}
    if all(column.type == "text" and (column.names_key_of or name in {
        *entity.primary_key, *(key.column for key in entity.foreign_keys)})
           for entity in ENTITIES.values() for column in entity.columns if column.name == name))
#: Session join buffer: MariaDB hash-joins the rows that fit in it and reads the other table again
#: for every refill. The header check of 530k transactions refilled 64 MB 11 times (66 s); 256 MB
#: took 3 (52 s), 1 GB once (53 s). Sized to the need up to this; RETAILFLOW_MYSQL_JOIN_BUFFER overrides it. It also
#: bounds the session's in-memory temporary tables (tmp_table_size).
DEFAULT_JOIN_BUFFER = "256M"
#: The start of DuckDB's error for a key too long for VARCHAR(255) (see _refusing_long_keys).
LONG_KEY = "retailflow: key too long at line "
#: A LIMIT no table reaches (see computed_once).
NO_LIMIT = 1 << 62


def drop_database(cursor, name: str) -> None:
    """Drop the retailflow database `name` through a DB-API cursor: `name` and its per-schema databases (name_raw, ...)."""
    cursor.execute("SELECT schema_name FROM information_schema.schemata WHERE schema_name = %s "
                   "OR schema_name LIKE %s", (name, name.replace("_", "\\_") + "\\_%"))
    for (schema,) in cursor.fetchall():
        cursor.execute(f"DROP DATABASE `{schema}`")


#: Stands for the database's name in compiled SQL, where it only ever prefixes a quoted database
#: name (see MySQLBackend.compile).
DATABASE_TOKEN = "rf0compiled0database0"


class _Written(MySQL):
    """MySQL syntax that also reads "double-quoted" identifiers, as retailflow's portable SQL writes them."""

    class Tokenizer(MySQL.Tokenizer):
        QUOTES = ["'"]
        IDENTIFIERS = ["`", '"']


class MySQLBackend(Backend):
    """A MySQL or MariaDB server; one database per retailflow schema, created on first use."""

    dialect = "mysql"
    capabilities = Capabilities(
        declares_fact_keys=False,
        # No MEDIAN in MySQL / MariaDB (Ibis has no rule for it there).
        has_median=False,
        # utf8mb4_nopad_bin (MariaDB) or utf8mb4_0900_bin on the connection and every database (_connect).
        compares_text_bytewise=True,
        # Semi-join rewrites are off (see the optimizer switches below): EXISTS is a subquery per row.
        joins_exists_per_row=True,
        # A derived table has no index, and some were hashed on a two-byte key (tables.indexed_where_needed).
        keeps_shared_pieces=True,
        supports_roles=True,
        # Backslash escapes in string literals.
        standard_string_literals=False,
    )

    def _connect(self) -> DriverConnection:
        address = self.server_address(3306, "root")
        self.database = address.pop("database")
        if not re.fullmatch(r"[A-Za-z0-9_]{1,48}", self.database):
            raise UserError(f"database name {self.database!r} in {self.display_url}: use letters, digits and _ "
                            "(at most 48, as each retailflow schema becomes a database named <name>_<schema>)")
        params = dict(address, password=address["password"] or "", local_infile=1, charset="utf8mb4")
        try:
            import MySQLdb
        except ImportError:
            raise UserError("the MySQL driver is not installed: pip install 'retailflow[mysql]' "
                            "(it builds mysqlclient: needs libmariadb-dev and pkg-config)") from None
        # As Ibis's MySQL connect: autocommit, and TCP to the local server rather than its socket. The session's zone
        # is set below as an offset, which needs none of the server's zone tables.
        if params["host"] == "localhost":
            params["host"] = "127.0.0.1"
        try:
            connection = DriverConnection(MySQLdb.connect(**params, autocommit=True))
        except MySQLdb.Error as error:
            raise UserError(f"cannot connect to {self.display_url}: {error.args[-1]}") from None
        with connection.con.cursor() as cursor:
            cursor.execute("SELECT VERSION()")
            mariadb = "mariadb" in cursor.fetchone()[0].lower()
            # Text compares byte for byte, trailing spaces included, as on the other engines
            # (MySQL's default collations ignore case and trailing spaces).
            self.collation = "utf8mb4_nopad_bin" if mariadb else "utf8mb4_0900_bin"
            cursor.execute(f"SET NAMES utf8mb4 COLLATE {self.collation}")
            cursor.execute("SET SESSION time_zone = '+00:00'")
            cursor.execute(f"CREATE DATABASE IF NOT EXISTS `{self.database}` CHARACTER SET utf8mb4 "
                           f"COLLATE {self.collation}")
            cursor.execute(f"USE `{self.database}`")
            # Strict mode: a value that does not fit is an error, never a silent truncation.
            cursor.execute("SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_DATE,NO_ZERO_IN_DATE,"
                           "ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'")
            cursor.execute("SET SESSION group_concat_max_len = 1048576")
            join_buffer = _join_buffer_bytes()
            cursor.execute(f"SET SESSION join_buffer_size = {join_buffer}")
            # The same budget for a grouped or derived table held in memory: past 16 MB (the default) it
            # moves to disk, and MEMORY rows are fixed width (a VARCHAR(255) key takes 1 KB), so the
            # unique check and the references of 52k headers went to disk (100k line items: 15.8 s of
            # statements -> 12.5 s).
            cursor.execute(f"SET SESSION tmp_table_size = {join_buffer}, max_heap_table_size = {join_buffer}")
            if mariadb:
                # MariaDB hash-joins (BNLH) only from join_cache_level 3, and level 4 lets each
                # join of a chain buffer just its own columns. All buffers of a query share
                # join_buffer_space_limit (2 MB by default).
                cursor.execute("SET SESSION join_cache_level = 4")
                cursor.execute(f"SET SESSION join_buffer_space_limit = {4 * join_buffer}")
                # A semi-join on the pending batches made the optimizer key a lookup on _batch_id
                # alone (all of a batch's rows per probe: the customer check took 5 s for 2.7k rows).
                # Split materialization ("LATERAL DERIVED") computes a grouped derived table once per row
                # of the outer table, which is fast only while the estimates hold: at 1M line items the
                # line-item check chose it for the product and promotion lookups (a scan of the typed rows
                # per line) and had not finished after 5.5 minutes (SHOW EXPLAIN FOR); at 100k one header
                # check of three ran for over 10 minutes instead of 3 s. Derived tables are computed once, whole.
                cursor.execute("SET SESSION optimizer_switch = 'semijoin=off,split_materialized=off'")
        return connection

    @property
    def _raw(self):
        return self.ibis.con

    def catalog_schema(self, schema: str) -> str:
        """The MySQL database holding a retailflow schema."""
        return f"{self.database}_{schema}"

    def qualified(self, schema: str, table: str) -> str:
        return f"{self.quote(self.catalog_schema(schema))}.{self.quote(table)}"

    # -- statements -------------------------------------------------------------------

    def _compiled(self, expr: ir.Expr, kind: str, build) -> str:
        # Compiled (and kept by sql_cache) once for every database, then pointed at this one: with the
        # database's own name in the compiled text, every test database and every retailflow database
        # compiled each statement again (Ibis's compiler was most of loading the 12-row sample).
        return super()._compiled(expr, kind, build).replace(f"`{DATABASE_TOKEN}_", f"`{self.database}_")

    def _sql_tree(self, expr: ir.Expr) -> sge.Expression:
        return self._mapped(mysql_compiler.COMPILER.to_sqlglot(expr.unbind()), DATABASE_TOKEN)

    def _render(self, tree: sge.Expression) -> str:
        return tree.sql("mysql")

    def _mapped(self, tree: sge.Expression, database: str | None = None) -> sge.Expression:
        """The tree with retailflow schema names replaced by the databases that hold them (those of `database`)."""
        for node in tree.find_all(sge.Table, sge.Column):
            db = node.args.get("db")
            if db is not None and db.name in SCHEMAS:
                node.set("db", sge.to_identifier(f"{database or self.database}_{db.name}", quoted=True))
        return tree

    def execute_built(self, sql: str) -> int:
        # Already MySQL with database names: parsing a large compiled query again costs more than running it.
        with self._raw.cursor() as cursor:
            return max(cursor.execute(sql), 0)

    def fetch_built(self, sql: str) -> tuple[list[str], list[tuple]]:
        with self._raw.cursor() as cursor:
            cursor.execute(sql)
            names = [column[0] for column in cursor.description or ()]
            return names, [tuple(row) for row in cursor.fetchall()]

    def translate(self, sql: str) -> str:
        """retailflow's SQL (portable text and Ibis's MySQL output) as MySQL runs it.

        Written by sqlglot's MySQL dialect, which Ibis changes when it is imported (lazy.py: a command may run plain
        SQL first): `length`, `stddev`, `bool_or`/`bool_and` and REGEXP come out differently before and after, so
        portable text for MySQL avoids them (an Ibis expression says them the same way every time)."""
        statements = []
        for tree in sqlglot.parse(sql, read=_Written):
            tree = self._mapped(tree)
            if isinstance(tree, sge.Drop) and tree.args.get("kind") == "TABLE" and not tree.this.args.get("db"):
                # Unqualified tables are create_temp_table's; a plain DROP would commit the transaction
                # (drop_temp_tables says so itself).
                tree.set("temporary", True)
            if isinstance(tree, sge.Create) and isinstance(tree.this, sge.Schema):
                _size_types(tree.this, staging=tree.this.this.db == self.catalog_schema("staging"))
            elif isinstance(tree, sge.Alter):
                for definition in tree.find_all(sge.ColumnDef):
                    _size_column(definition, key=False)
            statements.append(tree.sql("mysql"))
        return ";\n".join(statements)

    def execute(self, sql: str) -> int:
        return self.execute_built(self.translate(sql))

    def fetch(self, sql: str) -> tuple[list[str], list[tuple]]:
        return self.fetch_built(self.translate(sql))

    # -- row changes -------------------------------------------------------------------

    def _delete_statement(self, statement: ir.Table) -> str:
        # MySQL's single-table DELETE takes no alias (MariaDB refuses one), its multi-table form does.
        select = self._sql_tree(statement)
        target = select.args["from_"].this
        return (f"DELETE {self.quote(target.alias)} FROM {self._render(target)} "
                f"WHERE {self._render(select.args['where'].this)}")

    def _update_from_statement(self, statement: ir.Table) -> str:
        # MySQL has no UPDATE … FROM: the source is joined to the target (a multi-table UPDATE).
        select = self._sql_tree(statement)
        target, (join,) = select.args["from_"].this, select.args["joins"]
        assignments = ", ".join(f"{self.quote(target.alias)}.{self.quote(item.alias_or_name)} = "
                                f"{self._render(item.unalias())}" for item in select.expressions)
        return (f"UPDATE {self._render(target)} INNER JOIN {self._render(join.this)} "
                f"ON {self._render(join.args['on'])} SET {assignments}")

    def drop_temp_tables(self, *names: str) -> None:
        # TEMPORARY: a plain DROP TABLE would commit the transaction.
        for name in names:
            self.execute_built(f"DROP TEMPORARY TABLE IF EXISTS {self.quote(name)}")

    def transaction(self) -> contextlib.AbstractContextManager[None]:
        # MySQL commits implicitly before any DDL, so only row changes are atomic here.
        return self._joined_transaction(self._raw.begin, self._raw.commit, self._raw.rollback)

    def sql_value(self, value: Value) -> str:
        # NOW with microseconds, as the other engines have it (DATETIME(6) columns keep them): whole seconds could
        # not tell two writes in one second apart (a churn refit from the fit before it).
        return "CURRENT_TIMESTAMP(6)" if value is NOW else super().sql_value(value)

    def replace_table(self, schema: str, name: str, expr: ir.Table) -> int:
        # DDL cannot be rolled back here: build the new table aside, then swap with one atomic RENAME.
        target, fresh, old = (self.qualified(schema, name), self.qualified(schema, f"{name}__new"),
                              self.qualified(schema, f"{name}__old"))
        self.execute_built(f"DROP TABLE IF EXISTS {fresh}")
        self.execute_built(f"CREATE TABLE {fresh} AS {self.compile(expr)}")
        if self.has_table(schema, name):
            self.execute_built(f"DROP TABLE IF EXISTS {old}")
            self.execute_built(f"RENAME TABLE {target} TO {old}, {fresh} TO {target}")
            self.execute_built(f"DROP TABLE {old}")
        else:
            self.execute_built(f"RENAME TABLE {fresh} TO {target}")
        return int(self.scalar(f"SELECT count(*) FROM {target}"))

    def create_temp_table(self, name: str, expr: ir.Table, indexed: Sequence[Sequence[str]] = ()) -> ir.Table:
        # TEMPORARY: the one DDL MySQL does not commit implicitly, so validation stays one
        # transaction. (MariaDB opens a temporary table twice in one query; MySQL 8 cannot.)
        # MariaDB groups by sorting rows into an indexed temporary table of its own unless an index
        # gives the order (the unique check of 100k line items: 0.9 s), and probes an index where a
        # hash join would hash the whole table first.
        indexes = ", ".join(f"INDEX ({', '.join(map(self.quote, columns))})" for columns in indexed)
        self.execute_built(f"DROP TEMPORARY TABLE IF EXISTS {self.quote(name)}")
        self.execute_built(f"CREATE TEMPORARY TABLE {self.quote(name)} {f'({indexes}) ' if indexes else ''}"
                           f"AS {self.compile(expr)}")
        return ibis.table(expr.schema(), name=name)

    def computed_once(self, table: ir.Table) -> ir.Table:
        # MariaDB merges a derived table into the query reading it and then evaluates a derived
        # column at every use: a trimmed cell six TRIMs deep inside every test of the calendar
        # check, a rule again for its reason (8.6 s of the header check's 11.6 s on 52k rows, ANALYZE).
        # A derived table with a LIMIT is never merged, so its columns are computed once per row.
        return table.limit(NO_LIMIT)

    def upsert(self, schema: str, table: str, columns: Sequence[str], key: Sequence[str], select_sql: str) -> None:
        updates = ", ".join(f"{self.quote(name)} = VALUES({self.quote(name)})" for name in columns if name not in key)
        self.execute_built(f"INSERT INTO {self.qualified(schema, table)} ({', '.join(map(self.quote, columns))}) "
                     f"{select_sql} ON DUPLICATE KEY UPDATE {updates}")

    def try_cast_temporal(self, value: ir.StringValue, logical_type: str) -> ir.Value:
        return self.calendar_checked_cast(value, logical_type)

    def hmac_sha256(self, text_sql: str, key: bytes) -> str:
        inner, outer = hmac_pads(key)
        return (f"SHA2(CONCAT(UNHEX('{outer}'), UNHEX(SHA2(CONCAT(UNHEX('{inner}'), "
                f"CONVERT({text_sql} USING utf8mb4)), 256))), 256)")

    def ensure_schema(self, schema: str) -> None:
        self.execute_built(f"CREATE DATABASE IF NOT EXISTS {self.quote(self.catalog_schema(schema))} "
                           f"CHARACTER SET utf8mb4 COLLATE {self.collation}")

    def create_role_if_missing(self, role: str) -> None:
        self.execute_built(f"CREATE ROLE IF NOT EXISTS {self.quote(role)}")

    def grant_schema_read(self, role: str, schema: str) -> None:
        self.execute_built(f"GRANT SELECT ON {self.quote(self.catalog_schema(schema))}.* TO {self.quote(role)}")

    def parse(self, trimmed: ir.StringValue, logical_type: str, column: str | None = None) -> ir.Value:
        # Key cells become VARCHAR(255) (see TEXT_KEY_COLUMNS); ingest refuses longer keys, so nothing is cut.
        if logical_type == "text" and column in TEXT_KEY_COLUMNS:
            # Typed as plain text for Ibis (unions with staging's keys), VARCHAR(255) in the SQL.
            return trimmed.cast(ibis.expr.datatypes.String(length=KEY_LENGTH)).cast("string")
        return super().parse(trimmed, logical_type, column)

    def delete_matching(self, table: ir.Table, keys: ir.Table, columns: Sequence[str] | None = None) -> int:
        # MariaDB 10.x runs a single-table DELETE's IN (subquery) once per row of the table (semi-joins in
        # UPDATE/DELETE came with 11.1): a 30-day loyalty backfill of 50k line items spent 83 s deleting the
        # touched customers' purchases. A multi-table DELETE joins the distinct keys instead.
        names = self._matched_columns(table, keys, columns)
        on = " AND ".join(f"t.{self.quote(name)} = k.{self.quote(key)}" for name, key in zip(names, keys.columns))
        return self.execute_built(f"DELETE t FROM {self._target(table)} AS t JOIN (SELECT DISTINCT * FROM "
                                  f"({self.compile(keys)}) AS s) AS k ON {on}")

    def lock_for_writing(self) -> None:
        if not self.scalar(f"SELECT GET_LOCK({self.literal('retailflow:' + self.database)}, 0)"):
            raise UserError(f"another retailflow process is writing to {self.display_url}; "
                            "wait for it to finish and run the command again")

    def _serialise_schema_changes(self) -> None:
        self.scalar(f"SELECT GET_LOCK({self.literal('retailflow-schema:' + self.database)}, 60)")

    def allow_null(self, schema: str, table: str, column: str) -> None:
        kind = self.scalar("SELECT column_type FROM information_schema.columns WHERE table_schema = "
                           f"{self.literal(self.catalog_schema(schema))} AND table_name = {self.literal(table)} "
                           f"AND column_name = {self.literal(column)}")
        self.execute(f"ALTER TABLE {self.qualified(schema, table)} MODIFY COLUMN {self.quote(column)} {kind} NULL")

    def create_schemas(self) -> None:
        for schema in SCHEMAS:
            self.ensure_schema(schema)
        try:
            super().create_schemas()
        finally:
            self.scalar(f"SELECT RELEASE_LOCK({self.literal('retailflow-schema:' + self.database)})")

    def bulk_load(self, rows: parsing.FileRows, table: str, batch_id: int, source_name: str) -> int:
        columns = [*rows.columns, "_batch_id", "_source_file", "_source_line"]
        keys = [name for name in rows.columns if name in TEXT_KEY_COLUMNS]
        select = _refusing_long_keys(rows.select_sql(batch_id, source_name), keys)
        path = rows.path
        with tempfile.TemporaryDirectory(prefix="retailflow-") as folder:
            parsed = Path(folder) / "rows.csv"
            try:
                # Every value quoted and NULL written bare: LOAD DATA reads a bare NULL as NULL and
                # a quoted "NULL" (or "") as text.
                duckdb.connect().execute(f"COPY ({select}) TO '{parsed}' "
                                         "(FORMAT csv, HEADER false, FORCE_QUOTE *, NULLSTR 'NULL')")
            except duckdb.Error as error:
                long_key = re.search(rf"{LONG_KEY}(\d+) (\S+) (\d+)", str(error))
                if long_key:
                    line, name, size = long_key.groups()
                    raise UserError(f"{path}:{line}: {name} is {size} characters long; keys on MySQL / MariaDB "
                                    f"hold at most {KEY_LENGTH}: shorten it, or use DuckDB or PostgreSQL") from None
                raise parsing.explain_read_error(path, error) from None
            target = ", ".join(self.quote(name) for name in columns)
            return int(self.execute_built(
                f"LOAD DATA LOCAL INFILE {self.literal(str(parsed))} INTO TABLE {self.qualified('raw', table)} "
                "CHARACTER SET utf8mb4 FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '' "
                f"LINES TERMINATED BY '\\n' ({target})"))


def _refusing_long_keys(select: str, keys: Sequence[str]) -> str:
    """DuckDB's `select` of a file's rows, failing with LONG_KEY, the line, key and length at a key over 255 characters.

    Validation casts keys to VARCHAR(255) (see TEXT_KEY_COLUMNS), and a cast cuts a longer value
    silently. The check rides on the one pass that parses the file (a second pass cost 3.3 s of
    the 18 s ingest of 1M line items); the length is the trimmed one, as validation trims.
    """
    if not keys:
        return select
    replaced = []
    for name in keys:
        # As Ibis's strip() trims on MySQL: one white space character after the other.
        trimmed = f'"{name}"'
        for blank in (32, 9, 10, 13, 11, 12):
            trimmed = f"trim({trimmed}, chr({blank}))"
        limit = KEY_LENGTH
        # Trimmed only where the cell itself is too long; a NULL cell is never too long.
        replaced.append(f'CASE WHEN length("{name}") > {limit} AND length({trimmed}) > {limit} '
                        f"THEN error(concat('{LONG_KEY}', _source_line, ' {name} ', length({trimmed}))) "
                        f'ELSE "{name}" END AS "{name}"')
    return f"SELECT * REPLACE ({', '.join(replaced)}) FROM ({select})"


def _join_buffer_bytes() -> int:
    """The session's join buffer in bytes: RETAILFLOW_MYSQL_JOIN_BUFFER (e.g. 256M, 1G or bytes), else DEFAULT_JOIN_BUFFER."""
    value = env("RETAILFLOW_MYSQL_JOIN_BUFFER") or DEFAULT_JOIN_BUFFER
    size = re.fullmatch(r"\s*([0-9]+)\s*([KMG]?)B?\s*", value, flags=re.IGNORECASE)
    if not size:
        raise UserError(f"RETAILFLOW_MYSQL_JOIN_BUFFER={value!r} is not a size: write bytes or a number with K, M or G "
                        f"(default {DEFAULT_JOIN_BUFFER})")
    return int(size[1]) * 1024 ** " KMG".index(size[2].upper() or " ")


def _size_types(schema: sge.Schema, staging: bool) -> None:
    """Give VARCHAR a length where MySQL needs one (key columns), TEXT elsewhere; TIMESTAMP as DATETIME.

    In staging every text key is VARCHAR(255), also in fact tables, which declare no keys here:
    validation and analytics join them, and MariaDB hashes a TEXT key on its first bytes only
    (EXPLAIN: key_len 3), so such a join degrades to comparing every pair of rows.
    """
    keys = set(TEXT_KEY_COLUMNS) if staging else set()
    for constraint in schema.expressions:
        if isinstance(constraint, (sge.PrimaryKey, sge.ForeignKey)):
            keys |= {column.name for column in constraint.expressions}
    for definition in schema.expressions:
        if isinstance(definition, sge.ColumnDef):
            primary = any(isinstance(c.kind, sge.PrimaryKeyColumnConstraint) for c in definition.constraints)
            _size_column(definition, key=primary or definition.name in keys)


def _size_column(definition: sge.ColumnDef, key: bool) -> None:
    kind = definition.args.get("kind")
    if kind is None:
        return
    if kind.this in (sge.DataType.Type.VARCHAR, sge.DataType.Type.TEXT) and not kind.expressions:
        definition.set("kind", sge.DataType.build(KEY_VARCHAR if key else "TEXT", dialect="mysql"))
    elif kind.this in (sge.DataType.Type.TIMESTAMP, sge.DataType.Type.TIMESTAMPTZ):
        definition.set("kind", sge.DataType.build("DATETIME(6)", dialect="mysql"))
