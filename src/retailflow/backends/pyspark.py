"""PySpark: a local Spark (`pyspark://local[2]`) or a Spark Connect cluster (`sc://host:15002`).

Every retailflow schema is a Spark database. Locally a retailflow database is one warehouse
folder (`pyspark://local[2]?warehouse=/path`, default `./retailflow-spark`): the tables'
Parquet files under `tables/` and its own Hive metastore (embedded Derby) under `metastore/`,
so the tables outlive the process, two databases never share a catalog, and Derby's lock keeps
a second process out while one has the database open (as DuckDB's file lock does). Other
`spark.*` URL parameters are passed to Spark as they are
(`pyspark://local[4]?warehouse=/data/rf&spark.driver.memory=8g`). Over Spark Connect the
schemas live in the cluster's catalog, one retailflow database per catalog, and nothing keeps
two retailflow processes from writing at once.

Spark has no UPDATE, DELETE, MERGE or transactions on plain Parquet tables, and no ON CONFLICT.
A row change (the Backend methods delete_where, update_where, update_from, …, and UPDATE or
DELETE text given to execute()) computes the table's new contents, checkpoints them (so the plan
no longer reads the table, which Spark refuses to overwrite while reading it) and INSERT
OVERWRITEs the table: a rewrite of the whole table, however few rows change. Other statements
given as text are parsed once with sqlglot and re-written: key constraints are dropped (the
rules guarantee keys and references before a row is staged) and NOT NULL too (Spark's file
tables accept it but never enforce it).

Not atomic: `transaction()` is a no-op, so the crash-safety guarantees of the other engines do
not hold here. A table replaced whole (replace_table) is written aside and swapped in, so a kill
leaves the old table or, during the swap, the new one for the next connection to name
(finish_swaps). Everything else can be half-done: a stage's tables are not replaced together, an
append can be half-written, and a process killed during an INSERT OVERWRITE (a row change) can
leave that table empty; re-run the stage (or rebuild from the inputs).
"""

from __future__ import annotations

import collections
import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import duckdb
import ibis
import ibis.expr.operations as ops
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.parquet as pq
import sqlglot
import sqlglot.expressions as sge
from ibis.backends.sql.compilers.pyspark import PySparkCompiler
from ibis.backends.sql.dialects import PySpark

from retailflow.backends.base import (
    SCHEMAS,
    Backend,
    Capabilities,
    JoinOn,
    Value,
    Where,
    join_conditions,
    row_condition,
    typed_values,
)
from retailflow.backends.compiling import EngineScalars
from retailflow.backends.run_values import bind
from retailflow.errors import UserError
from retailflow.sources import parsing

try:
    from pyspark.sql import Observation, SparkSession, Window
    from pyspark.sql import functions as spark_functions
except ImportError:  # the extra is not installed: connecting says how to install it
    SparkSession = None

DEFAULT_MASTER = "local[2]"
#: Spark setting naming the warehouse a local session was started for.
WAREHOUSE_SETTING = "spark.retailflow.warehouse"
DEFAULT_WAREHOUSE = "retailflow-spark"
#: Temporary view holding a checkpointed result while it is written back.
SCRATCH_VIEW = "rf_spark_rewrite"
#: Suffix of the table replace_table writes before it takes the table's name.
SWAP_SUFFIX = "__rf_new"
#: Column a re-written UPDATE or DELETE marks the rows it changes with.
CHANGED = "__rf_changed"
#: Column marking the FROM source's rows in a re-written UPDATE ... FROM.
MATCHED = "__rf_matched"

#: Settings every session gets. ANSI off: a division by zero or a cast of text that is not a
#: number gives NULL, as on DuckDB, instead of failing the whole statement. Constraint propagation off:
#: on validate's wide plans (a rule per column, each a CASE over the same cells) the optimizer's
#: inference of constraints filled a 1 GB driver's heap and ran for minutes in full garbage
#: collections (a thread dump of the sample's run, 2026-12-06: getAllValidConstraints); it only
#: adds redundant filters, so results are the same without it.
SESSION_SETTINGS = {"spark.sql.ansi.enabled": "false", "spark.sql.session.timeZone": "UTC",
                    "spark.sql.constraintPropagation.enabled": "false"}
#: Backends of this process using each session (by warehouse or Connect URL); the last one to close stops it.
_OPEN: collections.Counter[str] = collections.Counter()
#: Per local warehouse this process has open, its lock file (held while a session uses the warehouse).
_LOCKS: dict[str, object] = {}


class _Written(PySpark):
    """Spark SQL that also reads "double-quoted" identifiers, as retailflow's portable SQL writes them."""

    class Tokenizer(PySpark.Tokenizer):
        QUOTES = ["'"]
        IDENTIFIERS = ["`", '"']


class _Compiler(EngineScalars, PySparkCompiler):
    """Ibis's PySpark compiler, stripping whitespace as the other engines do.

    Ibis trims the characters of string.whitespace, written '\\v' and '\\f' in the literal, which
    Spark reads as the letters v and f ('Dev' became 'De'), and Spark's LTRIM/RTRIM trim spaces
    only; Java's \\s is exactly string.whitespace.
    """

    SIMPLE_OPS = {op: name for op, name in PySparkCompiler.SIMPLE_OPS.items() if op not in (ops.LStrip, ops.RStrip)}

    def visit_Strip(self, op, *, arg):
        return self.f.regexp_replace(arg, r"^\s+|\s+\z", "")

    def visit_LStrip(self, op, *, arg):
        return self.f.regexp_replace(arg, r"^\s+", "")

    def visit_RStrip(self, op, *, arg):
        return self.f.regexp_replace(arg, r"\s+\z", "")


_COMPILER = _Compiler()


def parse_url(url: str) -> tuple[str, Path, dict[str, str]]:
    """(master, warehouse folder, extra Spark settings) of a pyspark:// URL."""
    rest = url.split("://", 1)[1]
    master, _, query = rest.partition("?")
    # unquote, not parse_qsl: a '+' stays a '+' (-XX:+UseG1GC); a space is written %20.
    settings = {unquote(name): unquote(value) for name, _, value in
                (part.partition("=") for part in query.split("&") if part)}
    warehouse = Path(settings.pop("warehouse", DEFAULT_WAREHOUSE)).expanduser().absolute()
    unknown = sorted(name for name in settings if not name.startswith("spark."))
    if unknown:
        raise UserError(f"database URL {url!r}: unknown parameter(s) {', '.join(unknown)}; use "
                        "pyspark://local[2]?warehouse=/path (and spark.* settings, e.g. spark.driver.memory=4g)")
    return master.strip("/") or DEFAULT_MASTER, warehouse, settings


class PySparkBackend(Backend):
    """Spark SQL through Ibis's PySpark backend; row changes re-written as table rewrites."""

    dialect = "pyspark"
    capabilities = Capabilities(
        supports_foreign_keys=False, declares_fact_keys=False,
        # Every row change rewrites the table (see the module's docstring).
        updates_in_place=False,
        # Backslash escapes in string literals.
        standard_string_literals=False,
        # Each reference to a piece is its own subplan: kept once instead (tables.indexed_where_needed).
        keeps_shared_pieces=True,
    )

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.finish_swaps()

    @property
    def is_connect(self) -> bool:
        return self.url.lower().startswith("sc://")

    def _connect(self) -> ibis.BaseBackend:
        if SparkSession is None:
            raise UserError("PySpark is not installed: pip install 'retailflow[pyspark]' (needs Java 17)")
        self._schemas: dict[tuple[str, str], object] = {}
        if self.is_connect:
            self._owner = self.url
            try:
                session = SparkSession.builder.remote(self.url).getOrCreate()
            except ImportError as error:
                raise UserError(f"Spark Connect needs its client libraries ({error}): "
                                "pip install 'retailflow[spark-connect]'") from None
        else:
            master, warehouse, settings = parse_url(self.url)
            self._owner = str(warehouse)
            active = SparkSession.getActiveSession()
            if active is None:
                _lock_warehouse(warehouse)
                try:
                    session = _start_local_session(master, warehouse, settings)
                except BaseException:
                    _unlock_warehouse(str(warehouse))
                    raise
            elif active.conf.get(WAREHOUSE_SETTING, None) == str(warehouse):
                session = active
            else:
                raise UserError(f"this process already has another Spark database open "
                                f"({active.conf.get(WAREHOUSE_SETTING, 'not a retailflow warehouse')}); "
                                f"close it before opening {warehouse}")
        connection = ibis.pyspark.connect(session)
        for name, value in SESSION_SETTINGS.items():
            session.conf.set(name, value)
        _OPEN[self._owner] += 1
        self._closed = False
        return connection

    @property
    def _session(self):
        return self.ibis._session

    def close(self) -> None:
        """Stop the Spark session when no other backend of this process uses it."""
        if self._closed:
            return
        self._closed = True
        _OPEN[self._owner] -= 1
        if not _OPEN[self._owner]:
            self._session.stop()
            _unlock_warehouse(self._owner)

    # -- statements ---------------------------------------------------------------------

    def _parse(self, sql: str) -> list[sge.Expression]:
        return [tree for tree in sqlglot.parse(sql, read=_Written) if tree is not None]

    def _sql(self, tree: sge.Expression | str):
        return self._session.sql(tree if isinstance(tree, str) else tree.sql(self.dialect))

    def execute(self, sql: str) -> int:
        """Run statements; UPDATE and DELETE return the rows they changed, other statements 0."""
        affected = 0
        for tree in self._parse(sql):
            if isinstance(tree, sge.Update):
                affected = self._update(tree)
            elif isinstance(tree, sge.Delete):
                affected = self._delete(tree)
            elif isinstance(tree, sge.Alter):
                self._alter(tree)
                affected = 0
            else:
                if isinstance(tree, sge.Create) and isinstance(tree.this, sge.Schema):
                    _drop_constraints(tree.this)
                self._sql(tree).collect()
                affected = 0
            if isinstance(tree, (sge.Create, sge.Drop, sge.Alter)):
                self._forget(tree.this.this if isinstance(tree.this, sge.Schema) else tree.this)
        return affected

    def _sql_tree(self, expr: ir.Expr) -> sge.Expression:
        return _COMPILER.to_sqlglot(expr.unbind())

    def _render(self, tree: sge.Expression) -> str:
        return tree.sql(self.dialect)

    def fetch(self, sql: str) -> tuple[list[str], list[tuple]]:
        *before, query = self._parse(sql)
        for tree in before:
            self.execute(tree.sql(self.dialect))
        table = self._sql(query).toArrow()
        # Spark's TIMESTAMP is an instant shown in the session's zone (UTC): as a naive
        # date-time it reads as the value written, as DuckDB's TIMESTAMP does.
        columns = [column.cast(_naive(column.type)) if _is_zoned(column.type) else column
                   for column in table.columns]
        return table.column_names, list(zip(*(column.to_pylist() for column in columns)))

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """No transaction: Spark commits every statement on its own (see the module's docstring)."""
        yield

    # -- catalog --------------------------------------------------------------------------

    def tables(self, schema: str) -> list[str]:
        if not self._session.catalog.databaseExists(schema):
            return []
        rows = self._sql(f"SHOW TABLES IN {self.quote(schema)}").collect()
        return sorted(row.tableName for row in rows if not row.isTemporary)

    def _schema(self, qualified_name: str):
        """The Spark schema (StructType) of a table, None when it does not exist.

        Each look-up asks the metastore; the answers are kept until this backend runs DDL.
        """
        key = _table_key(sge.to_table(qualified_name, dialect=_Written))
        if key not in self._schemas:
            exists = self._session.catalog.tableExists(qualified_name)
            self._schemas[key] = self._session.table(qualified_name).schema if exists else None
        return self._schemas[key]

    def _forget(self, changed: sge.Expression | None) -> None:
        """Drop what _schema knows about a table whose DDL ran (everything, for other DDL)."""
        if isinstance(changed, sge.Table) and changed.args.get("db"):
            self._schemas.pop(_table_key(changed), None)
        else:
            self._schemas.clear()

    def schema_columns(self, schema: str) -> dict[str, list[str]]:
        return {table: self.table_columns(schema, table) for table in self.tables(schema)}

    def not_null_columns(self, schema: str) -> set[tuple[str, str]]:
        """None: the constraints are dropped from Spark's DDL (see execute), so every column takes NULL."""
        return set()

    def table_columns(self, schema: str, table: str) -> list[str]:
        found = self._schema(self.qualified(schema, table))
        return [field.name for field in found.fields] if found else []

    def _column_types(self, name: str) -> list[tuple[str, str]]:
        """(name, Spark SQL type) of each column of a table, in order."""
        found = self._schema(name)
        if found is None:
            raise UserError(f"table {name} does not exist")
        return [(field.name, field.dataType.simpleString()) for field in found.fields]

    # -- row changes ----------------------------------------------------------------------
    #
    # Each computes the table's new rows with a flag on the changed ones (CHANGED) as one Ibis expression, and
    # _rewrite writes them back when a row changed. execute() does the same for UPDATE and DELETE text (_update,
    # _delete), for statements written by hand.

    def delete_where(self, table: ir.Table, where: Where = None) -> int:
        """Delete by rewriting the table with the rows `where` does not hold for (a TRUNCATE for every row)."""
        target, condition = self._target(table), row_condition(table, where)
        if condition is None:
            count = int(self.scalar(f"SELECT count(*) FROM {target}"))
            self._sql(f"TRUNCATE TABLE {target}").collect()
            return count
        return self._rewrite_table(table, table.select(**{CHANGED: condition.fill_null(False)}), keep_changed=False)

    def delete_matching(self, table: ir.Table, keys: ir.Table, columns: Sequence[str] | None = None) -> int:
        """Delete by rewriting the table without the rows a LEFT JOIN with the distinct keys matches."""
        names = list(columns or keys.columns)
        marked = keys.distinct().mutate(**{MATCHED: ibis.literal(True)})
        joined = table.left_join(marked, [table[name] == marked[key] for name, key in zip(names, keys.columns)])
        return self._rewrite_table(table, joined.select(**{CHANGED: marked[MATCHED].notnull()}), keep_changed=False)

    def update_where(self, table: ir.Table, values: Mapping[str, Value], where: Where = None) -> int:
        """Update by rewriting every row: CASE WHEN <where> THEN <new> ELSE <old> for each column set."""
        condition = row_condition(table, where)
        changed = ibis.literal(True) if condition is None else condition.fill_null(False)
        return self._rewrite_with(table, typed_values(table, values), changed, table)

    def update_from(self, table: ir.Table, source: ir.Table, on: JoinOn,
                    values: Callable[[ir.Table, ir.Table], Mapping[str, Value]], where: Where = None) -> int:
        """Update by rewriting every row through a LEFT JOIN with the source (marked, to tell a match)."""
        marked = source.mutate(**{MATCHED: ibis.literal(True)})
        joined = table.left_join(marked, join_conditions(on, table, marked))
        condition = row_condition(table, where)
        changed = marked[MATCHED].notnull() & (ibis.literal(True) if condition is None else condition.fill_null(False))
        expected_rows = int(self.scalar(f"SELECT count(*) FROM {self._target(table)}"))
        return self._rewrite_with(table, typed_values(table, values(table, marked)), changed, joined,
                                  expected_rows=expected_rows)

    def drop_temp_tables(self, *names: str) -> None:
        # Temporary tables are checkpointed temporary views here (create_temp_table).
        for name in names:
            self._session.catalog.dropTempView(name)

    def _rewrite_with(self, table: ir.Table, new: Mapping[str, ir.Value], changed: ir.BooleanValue,
                      rows: ir.Table, *, expected_rows: int | None = None) -> int:
        """_rewrite_table of `rows` (the table, or it joined to a source): each column of `new` set where
        `changed`."""
        items = {name: ibis.ifelse(changed, value.cast(table[name].type()), table[name]) for name, value in new.items()}
        return self._rewrite_table(table, rows.select(**items, **{CHANGED: changed}), keep_changed=True,
                                   expected_rows=expected_rows)

    def _rewrite_table(self, table: ir.Table, computed: ir.Table, *, keep_changed: bool,
                       expected_rows: int | None = None) -> int:
        """_rewrite of the target's rows as `computed` (a SELECT of the columns it changes and CHANGED, from the
        target) gives them, its other columns as they are: the Ibis table of the target need not have them all."""
        target = self._target(table)
        columns = [name for name, _ in self._column_types(target)]
        tree = self._sql_tree(computed)
        alias = tree.args["from_"].this.alias_or_name
        items = {item.alias_or_name: item for item in tree.expressions}
        tree.set("expressions", [items.get(name) or sge.column(name, table=alias, quoted=True) for name in columns]
                 + [items[CHANGED]])
        sql = bind(self._render(tree), computed, self.sql_value)
        return self._rewrite(target, columns, sql, keep_changed=keep_changed, expected_rows=expected_rows)

    def _update(self, tree: sge.Update) -> int:
        """UPDATE [FROM]: every row re-computed with CASE WHEN <matched> THEN <new> ELSE <old>."""
        target = tree.this
        alias = target.alias or "__rf_target"
        plain_target = target.copy()
        plain_target.set("alias", None)
        target_name = plain_target.sql(self.dialect)
        columns = self._column_types(target_name)
        source = tree.args.get("from_")
        names = {_table_key(target): alias}
        joined = ""
        if source is not None:
            if source.args.get("joins"):
                raise NotImplementedError("UPDATE ... FROM on Spark takes one source (a table, subquery or VALUES)")
            source_alias = source.this.alias_or_name
            if not source_alias:
                raise UserError("UPDATE ... FROM on Spark: give the source subquery an alias")
            if isinstance(source.this, sge.Table):
                names[_table_key(source.this)] = source_alias
        where = tree.args.get("where")
        condition = _requalified(where.this, names) if where else sge.true()
        assignments = {eq.this.name: _requalified(eq.expression, names) for eq in tree.expressions}
        if source is not None:
            joined = (f" LEFT JOIN (SELECT *, TRUE AS {MATCHED} FROM {source.this.sql(self.dialect)}) AS "
                      f"{self.quote(source_alias)} ON {condition.sql(self.dialect)}")
            matched = f"{self.quote(source_alias)}.{MATCHED} IS NOT NULL"
        else:
            matched = f"COALESCE({condition.sql(self.dialect)}, FALSE)"
        quoted_alias = self.quote(alias)
        items = []
        for name, sql_type in columns:
            old = f"{quoted_alias}.{self.quote(name)}"
            if name in assignments:
                new = f"CAST({assignments[name].sql(self.dialect)} AS {sql_type})"
                items.append(f"CASE WHEN {matched} THEN {new} ELSE {old} END AS {self.quote(name)}")
            else:
                items.append(old)
        select = (f"SELECT {', '.join(items)}, {matched} AS {CHANGED} "
                  f"FROM {target_name} AS {quoted_alias}{joined}")
        expected_rows = int(self.scalar(f"SELECT count(*) FROM {target_name}")) if source is not None else None
        return self._rewrite(target_name, [name for name, _ in columns], select, keep_changed=True,
                             expected_rows=expected_rows)

    def _delete(self, tree: sge.Delete) -> int:
        """DELETE: the table re-written with the rows the condition does not hold for."""
        target = tree.this
        target_name = target.sql(self.dialect)
        where = tree.args.get("where")
        if where is None:
            count = int(self.scalar(f"SELECT count(*) FROM {target_name}"))
            self._sql(f"TRUNCATE TABLE {target_name}").collect()
            return count
        columns = [name for name, _ in self._column_types(target_name)]
        select = (f"SELECT {', '.join(map(self.quote, columns))}, "
                  f"COALESCE({where.this.sql(self.dialect)}, FALSE) AS {CHANGED} FROM {target_name}")
        return self._rewrite(target_name, columns, select, keep_changed=False)

    def _rewrite(self, target_name: str, columns: Sequence[str], select: str, *, keep_changed: bool,
                 expected_rows: int | None = None) -> int:
        """Write back `select` (the table's rows plus a CHANGED flag) when any row changed; returns how many.

        The rows are checkpointed first: the plan that writes no longer reads the table.
        """
        counting = (spark_functions.count(spark_functions.lit(1)).alias("total"),
                    spark_functions.count_if(spark_functions.col(CHANGED)).alias("changed"))
        counts = Observation()
        rows = self._session.sql(select).observe(counts, *counting).localCheckpoint()
        metrics = counts.get
        if "total" not in metrics:  # Spark Connect observes nothing during a checkpoint: count the rows kept
            metrics = rows.agg(*counting).first().asDict()
        total, changed = metrics["total"], metrics["changed"]
        if expected_rows is not None and total != expected_rows:
            raise UserError(f"UPDATE of {target_name}: the FROM source matches some rows more than once "
                            f"({total} rows instead of {expected_rows}); make the source unique on the join key")
        if changed:
            rows.createOrReplaceTempView(SCRATCH_VIEW)
            kept = "" if keep_changed else f" WHERE NOT {CHANGED}"
            try:
                self._sql(f"INSERT OVERWRITE TABLE {target_name} "
                          f"SELECT {', '.join(map(self.quote, columns))} FROM {SCRATCH_VIEW}{kept}").collect()
            finally:
                self._session.catalog.dropTempView(SCRATCH_VIEW)
        return int(changed)

    def _alter(self, tree: sge.Alter) -> None:
        """ALTER TABLE ... ADD COLUMN [IF NOT EXISTS]: Spark adds columns but has no IF NOT EXISTS."""
        actions = tree.args.get("actions") or []
        if not all(isinstance(action, sge.ColumnDef) for action in actions):
            self._sql(tree).collect()
            return
        existing = {name for name, _ in self._column_types(tree.this.sql(self.dialect))}
        added = [action for action in actions if not (action.args.get("exists") and action.name in existing)]
        if added:
            definitions = ", ".join(f"{self.quote(action.name)} {action.args['kind'].sql(self.dialect)}"
                                    for action in added)
            self._sql(f"ALTER TABLE {tree.this.sql(self.dialect)} ADD COLUMNS ({definitions})").collect()

    # -- writes -----------------------------------------------------------------------------

    def _append(self, frame, schema: str, table: str, measures: Mapping[str, object] | None = None):
        """Append a DataFrame to schema.table, matching columns by name; returns the rows written (or, given
        `measures`, those aggregates of the rows written, by name, computed in the same pass)."""
        target = self.qualified(schema, table)
        types = self._column_types(target)
        present = set(frame.columns)
        unknown = sorted(present - {name for name, _ in types})
        if unknown:
            raise ValueError(f"{target} has no column(s) {', '.join(unknown)}")
        ordered = frame.select(*[
            frame[name].cast(sql_type).alias(name) if name in present
            else spark_functions.lit(None).cast(sql_type).alias(name)
            for name, sql_type in types])
        counts = Observation()
        observed = measures or {"rows": spark_functions.count(spark_functions.lit(1))}
        ordered.observe(counts, *(measure.alias(name) for name, measure in observed.items())).write.insertInto(target)
        return counts.get if measures else int(counts.get["rows"])

    def insert(self, schema: str, table: str, expr: ir.Table) -> int:
        # Spark reports no row count for INSERT: an observed count on the written rows gives it in the same pass.
        return self._append(self._session.sql(self.compile(expr)), schema, table)

    def upsert(self, schema: str, table: str, columns: Sequence[str], key: Sequence[str], select_sql: str) -> None:
        """Rows whose key is new are added, rows whose key is there replace it: the table is re-written."""
        target = self.qualified(schema, table)
        incoming = "rf_spark_incoming"
        self._session.sql(self._translated(select_sql)).localCheckpoint().createOrReplaceTempView(incoming)
        try:
            names = [name for name, _ in self._column_types(target)]
            on = " AND ".join(f"t.{self.quote(name)} = i.{self.quote(name)}" for name in key)
            chosen = ", ".join(f"{'i' if name in columns else 't'}.{self.quote(name)}" for name in names)
            select = (f"SELECT {chosen}, TRUE AS {CHANGED} FROM {incoming} AS i LEFT JOIN {target} AS t ON {on} "
                      f"UNION ALL SELECT {', '.join(f't.{self.quote(name)}' for name in names)}, FALSE "
                      f"FROM {target} AS t LEFT ANTI JOIN {incoming} AS i ON {on}")
            self._rewrite(target, names, select, keep_changed=True)
        finally:
            self._session.catalog.dropTempView(incoming)

    def replace_table(self, schema: str, name: str, expr: ir.Table) -> int:
        """Write the new table aside (name + SWAP_SUFFIX), then swap it in (_swap): a process killed while the
        rows are written leaves the previous table whole; one killed during the swap leaves the new one for the
        next connection to finish (finish_swaps). A table not there yet has nothing to keep whole: it is written
        under its own name, without the swap's drop and rename (0.35 s of the 0.7 s a small table's replace took,
        and a first run replaces some 25 tables)."""
        target = self.qualified(schema, name)
        if self._schema(target) is None:
            return self._save_new(target, expr)
        fresh = self.qualified(schema, name + SWAP_SUFFIX)
        self._sql(f"DROP TABLE IF EXISTS {fresh}").collect()
        rows = self._save_new(fresh, expr)
        self._swap(schema, name)
        return rows

    def _save_new(self, qualified_name: str, expr: ir.Table) -> int:
        """Write `expr` as the new table `qualified_name`; returns its rows (counted as they are written)."""
        counts = Observation()
        self._session.sql(self.compile(expr)).observe(
            counts, spark_functions.count(spark_functions.lit(1)).alias("rows")).write.saveAsTable(qualified_name)
        self._forget(sge.to_table(qualified_name, dialect=_Written))
        return int(counts.get["rows"])

    def _swap(self, schema: str, name: str) -> None:
        """Give schema.name + SWAP_SUFFIX, complete, the name schema.name: two metastore operations (drop, rename)."""
        target, fresh = self.qualified(schema, name), self.qualified(schema, name + SWAP_SUFFIX)
        self._sql(f"DROP TABLE IF EXISTS {target}").collect()
        self._sql(f"ALTER TABLE {fresh} RENAME TO {target}").collect()
        self._forget(None)

    def finish_swaps(self) -> list[str]:
        """Finish what a killed replace_table left: a table written aside whose old table is still there was never
        swapped in (the stage did not finish: the old one stays, the new one goes); one whose old table is gone
        was being swapped in (it is complete: it takes the name). Returns the tables it acted on."""
        existing = {database.name for database in self._session.catalog.listDatabases()}
        acted = []
        for schema in (schema for schema in SCHEMAS if schema in existing):
            rows = self._sql(f"SHOW TABLES IN {self.quote(schema)}").collect()
            for fresh in (row.tableName for row in rows if not row.isTemporary and row.tableName.endswith(SWAP_SUFFIX)):
                name = fresh[:-len(SWAP_SUFFIX)]
                if self._session.catalog.tableExists(f"{schema}.{name}"):
                    self._sql(f"DROP TABLE {self.qualified(schema, fresh)}").collect()
                else:
                    self._sql(f"ALTER TABLE {self.qualified(schema, fresh)} RENAME TO "
                              f"{self.qualified(schema, name)}").collect()
                acted.append(f"{schema}.{name}")
        self._forget(None)
        return acted

    def _translated(self, sql: str) -> str:
        return ";\n".join(tree.sql(self.dialect) for tree in self._parse(sql))

    def create_temp_table(self, name: str, expr: ir.Table, indexed: Sequence[Sequence[str]] = ()) -> ir.Table:
        # A checkpointed temporary view: computed once, and cut from its inputs, so a later
        # rewrite of a table it was read from (DELETE FROM quarantine) leaves it as it was.
        self._session.sql(self.compile(expr)).localCheckpoint().createOrReplaceTempView(name)
        return ibis.table(expr.schema(), name=name)

    def try_cast_temporal(self, value: ir.StringValue, logical_type: str) -> ir.Value:
        # Spark's TRY_CAST gives NULL for a day that does not exist (2024-02-30).
        return value.try_cast(logical_type)

    def bulk_load(self, rows: parsing.FileRows, table: str, batch_id: int, source_name: str) -> int:
        """One file as bulk_load_files reads a file Spark does not read itself (DuckDB parses it)."""
        return self._parsed_here(table, [(rows, batch_id, source_name)])[0]

    def bulk_load_files(self, table: str, loads: Sequence[tuple[parsing.FileRows, int, str]]) -> list[int]:
        """Spark reads the files itself, all at once, when each is a file's own columns (no expressions, no
        derived rows) in CSV or Parquet that Spark reads exactly as DuckDB does (file_reads): one read per kind
        of file, one append; the rows never pass through this process. Otherwise, and when a row has more values
        than the header (which DuckDB names with its line), DuckDB parses them here (_parsed_here): nothing was
        written by the refused append."""
        if not loads:
            return []
        reads = file_reads(loads)
        if reads is None:
            return self._parsed_here(table, loads)
        local = not self.is_connect
        if local:  # a refused row is answered below: Spark's page of task errors would only hide the answer
            self._session.sparkContext.setLogLevel("OFF")
        try:
            return self._load_files(table, loads, reads)
        except Exception as error:
            if not any(kind in str(error) for kind in SPARK_READ_REFUSALS):
                raise
        finally:
            if local:
                self._session.sparkContext.setLogLevel("ERROR")
        return self._parsed_here(table, loads)

    def _parsed_here(self, table: str, loads: Sequence[tuple[parsing.FileRows, int, str]]) -> list[int]:
        """DuckDB parses every file here (as for every engine), then Spark appends all their rows at once: as
        Parquet files it reads, or over Spark Connect (whose cluster cannot read a local file) as Arrow batches.

        That is Spark's native bulk path (spark.read) fed by the one parser every engine shares, so NULL and empty
        text, quoting and line numbers come out as on DuckDB; a file DuckDB cannot read is refused before anything
        is written."""
        with tempfile.TemporaryDirectory(prefix="retailflow-") as folder:
            frames = []
            for index, (rows, batch_id, source_name) in enumerate(loads):
                select = rows.select_sql(batch_id, source_name)
                try:
                    if self.is_connect:
                        frames.append(self._session.createDataFrame(duckdb.connect().execute(select).to_arrow_table()))
                    else:
                        parsed = Path(folder) / f"rows-{index}.parquet"
                        duckdb.connect().execute(f"COPY ({select}) TO '{parsed}' (FORMAT parquet)")
                        frames.append(self._session.read.parquet(str(parsed)))
                except duckdb.Error as error:
                    raise parsing.explain_read_error(rows.path, error) from None
            return self._append_files(table, loads, frames)

    def _load_files(self, table: str, loads: Sequence[tuple[parsing.FileRows, int, str]],
                    reads: Sequence[SparkRead]) -> list[int]:
        """One Spark read per kind of file, each row with its file's batch id, name and line; one append."""
        F = spark_functions
        frames = []
        for read in reads:
            chosen = [loads[index] for index in read.loads]
            # The path as a string, absolute: Spark (or a Spark Connect server) resolves it on its side.
            paths = [str(rows.path.absolute()) for rows, _, _ in chosen]
            if read.format == "csv":
                positional = [f"_c{index}" for index in range(len(read.header))]
                # A row with another count of values than the header keeps its text in CORRUPT (and its values,
                # padded with NULL when fewer, as DuckDB pads them).
                frame = self._session.read.csv(
                    paths, schema=", ".join(f"{name} STRING" for name in [*positional, CORRUPT]), header=True,
                    sep=read.delimiter, quote=read.quote, escape=read.quote, lineSep=read.line_ending,
                    multiLine=True, mode="PERMISSIVE", columnNameOfCorruptRecord=CORRUPT, encoding="UTF-8")
                values = [F.col(name) for name in positional]
                # One split per file (multiLine): the ids rise through each file in its order.
                order = F.monotonically_increasing_id()
                # More values than the header: its delimiters outside quoted values counted. Spark stops, and
                # DuckDB then names the row (the client path).
                unquoted = F.regexp_replace(CORRUPT, '"(?:[^"]|"")*"', "")
                count = F.length(unquoted) - F.length(F.replace(unquoted, F.lit(read.delimiter))) + 1
                too_many = F.col(CORRUPT).isNotNull() & (count > len(read.header))
            else:
                frame = self._session.read.parquet(*paths)
                values = [F.col(_backquoted(name)).cast("string") for name in frame.columns]
                order = F.col("_metadata.row_index")
                too_many = F.lit(False)
            # Spark names the file it read URL-encoded ("a%20b.csv"), '+' as it is (which url_decode would read as
            # a space); the files of one read have distinct names.
            read_name = F.expr("url_decode(replace(_metadata.file_name, '+', '%2B'))")

            def per_file(results, chosen=chosen, read_name=read_name):
                cases = F
                for (rows, _, _), result in zip(chosen, results):
                    cases = cases.when(read_name == F.lit(rows.path.name), F.lit(result))
                return cases

            position = {name: index for index, name in enumerate(read.header)}
            frame = frame.select(
                *(values[position[name]].alias(column) for column, name in zip(read.columns, read.names)),
                F.when(too_many, F.raise_error(F.lit(TOO_MANY_VALUES)))
                .otherwise(per_file([batch_id for _, batch_id, _ in chosen])).alias("_batch_id"),
                per_file([source_name for _, _, source_name in chosen]).alias("_source_file"),
                per_file([rows.first_line for rows, _, _ in chosen]).alias("_first"), order.alias("_order"))
            line = F.row_number().over(Window.partitionBy("_batch_id").orderBy("_order")) + F.col("_first") - 1
            frames.append(frame.select(*(F.col(_backquoted(column)) for column in read.columns), "_batch_id",
                                       "_source_file", line.alias("_source_line")))
        return self._append_files(table, loads, frames)

    def _append_files(self, table: str, loads: Sequence[tuple[parsing.FileRows, int, str]], frames: list) -> list[int]:
        """Append the files' rows (`frames`, their union) to raw.<table> in one write; the rows of each file."""
        F = spark_functions
        combined = frames[0]
        for frame in frames[1:]:
            combined = combined.unionByName(frame, allowMissingColumns=True)
        measures = {f"b{batch_id}": F.count_if(F.col("_batch_id") == F.lit(batch_id)) for _, batch_id, _ in loads}
        counts = self._append(combined, "raw", table, measures)
        return [int(counts[f"b{batch_id}"]) for _, batch_id, _ in loads]


#: The column of a CSV row's text when it has another count of values than the header.
CORRUPT = "_rf_corrupt_row"
#: The error a row with more values than the header raises in Spark.
TOO_MANY_VALUES = "retailflow: a row has more values than the header"
#: What Spark says when it refuses a file (or cannot find it, over Spark Connect on another machine).
SPARK_READ_REFUSALS = (TOO_MANY_VALUES, "MALFORMED_RECORD_IN_PARSING", "MALFORMED_CSV_RECORD", "FAILED_READ_FILE",
                       "PATH_NOT_FOUND")
#: Parquet types whose text Spark writes as DuckDB does (CAST AS VARCHAR); other types are read by DuckDB.
SAME_TEXT_TYPES = ("string", "large_string", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
                   "bool", "date32[day]")
#: Characters a Spark path reads as a pattern or cannot hold (a file so named is read by DuckDB).
PATTERN_CHARACTERS = set("*?[]{}\\:")


@dataclass(frozen=True)
class SparkRead:
    """Files Spark reads in one go: one format, header and read options, the same columns of raw from the same
    file columns, distinct file names; `loads` are their indexes in the call."""

    format: str
    header: tuple[str, ...]
    columns: tuple[str, ...]
    names: tuple[str, ...]
    delimiter: str = ","
    quote: str = '"'
    line_ending: str = "\n"
    #: A Parquet file's types (its column types, which every file of a read must share).
    types: tuple[str, ...] = ()
    loads: tuple[int, ...] = ()


def file_reads(loads: Sequence[tuple[parsing.FileRows, int, str]]) -> list[SparkRead] | None:
    """The reads in which Spark reads every file of `loads` as DuckDB does (parsing.relation_sql), byte for byte;
    None when one file is not such a file."""
    kinds: dict[tuple, list[int]] = {}
    for index, (rows, _, _) in enumerate(loads):
        kind = _read_kind(rows)
        if kind is None:
            return None
        kinds.setdefault(kind, []).append(index)
    reads = []
    for kind, indexes in kinds.items():
        # Spark tells a row's file by its name: a name twice, a read more.
        batches: list[tuple[set[str], list[int]]] = []
        for index in indexes:
            name = loads[index][0].path.name
            batch = next((batch for batch in batches if name not in batch[0]), None)
            if batch is None:
                batches.append(batch := (set(), []))
            batch[0].add(name)
            batch[1].append(index)
        reads += [SparkRead(*kind, loads=tuple(batch[1])) for batch in batches]
    return reads


def _read_kind(rows: parsing.FileRows) -> tuple | None:
    """What a file's read must share with the files read with it, None when Spark cannot read it as DuckDB does."""
    plain = rows.plain_columns()
    if plain is None or rows.readable != rows.path or PATTERN_CHARACTERS & set(str(rows.path)):
        return None
    read = rows.read
    common = (rows.header, tuple(rows.columns), tuple(plain))
    if parsing.file_format(rows.path) == "parquet":
        try:
            schema = pq.read_schema(rows.path)
        except (OSError, pa.ArrowException):
            return None
        if ([name.strip().lower() for name in schema.names] != list(rows.header)
                or any(str(field.type) not in SAME_TEXT_TYPES for field in schema)):
            return None
        return ("parquet", *common, ",", '"', "\n", tuple(str(field.type) for field in schema))
    if not read.header or read.skip or read.encoding != "utf-8" or read.quote != '"':
        return None
    facts = parsing.text_facts(rows.path)
    if not facts.utf8 or facts.line_ending is None or not facts.even_quotes:
        return None
    return ("csv", *common, read.delimiter, read.quote, facts.line_ending, ())


def _backquoted(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _lock_warehouse(warehouse: Path) -> None:
    """Refuse at once when another process has the warehouse open, before a JVM is started for nothing.

    Derby's own lock on the metastore would refuse it too, but only once Spark is up (half a minute on a
    busy machine). The lock is the operating system's: it goes with the process, however that ends.
    """
    import fcntl

    warehouse.mkdir(parents=True, exist_ok=True)
    handle = open(warehouse / ".retailflow.lock", "a+")  # noqa: SIM115 - held until the session stops
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise UserError(f"the Spark warehouse {warehouse} is in use by another retailflow process; "
                        "wait until it ends (one process at a time per warehouse)") from None
    _LOCKS[str(warehouse)] = handle


def _unlock_warehouse(warehouse: str) -> None:
    handle = _LOCKS.pop(warehouse, None)
    if handle is not None:
        handle.close()


def _start_local_session(master: str, warehouse: Path, settings: dict[str, str]) -> SparkSession:
    """A local Spark session whose catalog (Derby) and tables live in `warehouse`."""
    if "SPARK_CONNECT_MODE_ENABLED" in os.environ:
        # PySpark sets this for the rest of the process once a Spark Connect session exists.
        raise UserError("this process has used Spark Connect (sc://), after which PySpark cannot start a local "
                        "session; open the pyspark:// database in another process")
    warehouse.mkdir(parents=True, exist_ok=True)
    metastore = warehouse / "metastore"
    builder = SparkSession.builder.master(master).appName("retailflow")
    for name, value in {
        WAREHOUSE_SETTING: str(warehouse),
        "spark.sql.warehouse.dir": str(warehouse / "tables"),
        "spark.sql.catalogImplementation": "hive",
        "spark.hadoop.javax.jdo.option.ConnectionURL": f"jdbc:derby:;databaseName={metastore};create=true",
        "spark.hadoop.datanucleus.schema.autoCreateAll": "true",
        "spark.hadoop.hive.metastore.schema.verification": "false",
        "spark.hadoop.hive.exec.scratchdir": str(warehouse / "scratch"),
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        **settings,
    }.items():
        builder = builder.config(name, value)
    try:
        session = builder.getOrCreate()
    except Exception as error:  # the JVM did not start: Java missing or misconfigured
        raise UserError(f"cannot start Spark ({str(error).strip().splitlines()[0][:200]}); "
                        "PySpark needs Java 17 on PATH or JAVA_HOME") from None
    # Derby writes its log to the working directory unless told otherwise (read when it first boots).
    session.sparkContext._jvm.java.lang.System.setProperty("derby.stream.error.file",
                                                            str(warehouse / "derby.log"))
    # Opening the metastore is where a second process fails (Derby's lock); its page of
    # stack traces would hide the message below.
    session.sparkContext.setLogLevel("OFF")
    try:
        session.sql("SHOW DATABASES").collect()
    except Exception as error:
        session.stop()
        text = str(error)
        if "Derby" in text or "metastore" in text.lower():
            raise UserError(f"cannot open the Spark warehouse {warehouse}: its metastore is in use or damaged; "
                            "is another retailflow process using it?") from None
        raise
    session.sparkContext.setLogLevel("ERROR")
    return session


def _drop_constraints(schema: sge.Schema) -> None:
    """Remove key constraints and NOT NULL, which Spark's Parquet tables refuse or ignore."""
    schema.set("expressions", [node for node in schema.expressions
                               if not isinstance(node, (sge.PrimaryKey, sge.ForeignKey, sge.Constraint))])
    for definition in schema.expressions:
        if isinstance(definition, sge.ColumnDef):
            definition.set("constraints", [constraint for constraint in definition.constraints if not isinstance(
                constraint.kind, (sge.PrimaryKeyColumnConstraint, sge.NotNullColumnConstraint))])


def _table_key(table: sge.Table) -> tuple[str, str]:
    """(schema, table) of a table reference, lower case as Spark's catalog keeps them."""
    return (table.args["db"].name if table.args.get("db") else "").lower(), table.name.lower()


def _requalified(expression: sge.Expression, names: dict[tuple[str, str], str]) -> sge.Expression:
    """Columns written as schema.table.column or table.column, qualified by the table's alias instead."""
    def rename(node: sge.Expression) -> sge.Expression:
        if isinstance(node, sge.Column) and node.table:
            db = node.args["db"].name.lower() if node.args.get("db") else ""
            for (table_db, table_name), alias in names.items():
                if node.table.lower() == table_name and db in ("", table_db):
                    return sge.column(node.name, table=alias, quoted=True)
        return node

    return expression.copy().transform(rename)


def _is_zoned(arrow_type: pa.DataType) -> bool:
    return pa.types.is_timestamp(arrow_type) and arrow_type.tz is not None


def _naive(arrow_type: pa.DataType) -> pa.DataType:
    return pa.timestamp(arrow_type.unit)
