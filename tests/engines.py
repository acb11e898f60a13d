"""The database engines the tests run on, one class each, as ibis's backend test classes are.

An engine names a fresh database and gives its URL, connects to it through retailflow's own `connect`,
copies a finished database, reads one without retailflow, drops databases, and says what it can do:
`capabilities` is the backend class's own object, never restated here. conftest.py hands a test its
engine through the `engine` fixture; the databases the engine made for the test are dropped after it
(on PostgreSQL when the process ends, see PostgresEngine.discard).

A database that many tests start from (the validated sample, the incremental tests' full and nightly
runs) is built once per test run by `Engine.prepared`, by whichever pytest-xdist worker asks first, and
copied for each test. Measured at load 5 on 2 cores: a copy is a file copy on DuckDB, 0.2 s on
PostgreSQL (CREATE DATABASE … TEMPLATE) and 1.8 s on MariaDB, where building the validated sample
took 8 s.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar
from urllib.parse import urlsplit

import psycopg

from retailflow.backends import Backend, connect

if TYPE_CHECKING:
    from retailflow.backends.base import Capabilities

POSTGRES_ADMIN = os.environ.get("RETAILFLOW_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
MYSQL_ADMIN = os.environ.get("RETAILFLOW_TEST_MYSQL", "mysql://root@127.0.0.1:3306")

#: Spark tuned for a dozen rows: one shuffle partition, no adaptive re-planning, expressions
#: interpreted rather than compiled, and the JVM's quick compiler only (read when the JVM starts).
TINY_DATA = ("spark.sql.shuffle.partitions=1&spark.sql.adaptive.enabled=false&spark.sql.codegen.wholeStage=false"
             "&spark.sql.codegen.factoryMode=NO_CODEGEN&spark.driver.extraJavaOptions=-XX:TieredStopAtLevel=1")


def _postgres_unavailable() -> str | None:
    try:
        with psycopg.connect(POSTGRES_ADMIN, connect_timeout=3):
            return None
    except psycopg.OperationalError as error:
        return f"PostgreSQL not reachable at {POSTGRES_ADMIN}: {str(error).strip().splitlines()[0]}"


def mysql_connection():
    """A MySQLdb connection to the test server, as its administrator."""
    import MySQLdb

    parts = urlsplit(MYSQL_ADMIN)
    return MySQLdb.connect(host=parts.hostname or "127.0.0.1", port=parts.port or 3306, user=parts.username or "root",
                           password=parts.password or "", connect_timeout=3)


def drop_mysql_database(name: str) -> None:
    """Drop retailflow database `name` on the MySQL test server: `name` and its per-schema databases (name_raw, ...)."""
    from retailflow.backends.mysql import drop_database

    connection = mysql_connection()
    try:
        drop_database(connection.cursor(), name)
    finally:
        connection.close()


def _mysql_unavailable() -> str | None:
    try:
        mysql_connection().close()
        return None
    except Exception as error:  # noqa: BLE001 - the driver missing or the server down: both mean skip
        return f"MySQL/MariaDB not reachable at {MYSQL_ADMIN}: {error}"


def _spark_unavailable() -> str | None:
    from retailflow.backends import pyspark

    if pyspark.SparkSession is None:
        return "PySpark is not installed: pip install -e '.[pyspark]'"
    if not (shutil.which("java") or os.environ.get("JAVA_HOME")):
        return "PySpark needs Java 17: none on PATH and JAVA_HOME is not set"
    return None


#: A query function: SQL in, (column names, rows) out.
Query = Callable[[str], tuple[list[str], list[tuple]]]
#: PostgreSQL databases this process no longer needs, dropped as it ends (PostgresEngine.discard).
_DISCARDED_POSTGRES: set[str] = set()
#: Engine name -> why it cannot run here (None: it can), once asked.
_UNAVAILABLE: dict[str, str | None] = {}


@contextlib.contextmanager
def _exclusive(lock_file: Path) -> Iterator[None]:
    """Hold an operating-system lock on lock_file: one process of the run at a time inside."""
    with lock_file.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass(frozen=True)
class SuiteRun:
    """What the processes of one pytest run share: a folder, and an id in the names of what is built once."""

    folder: Path
    run_id: str

    def once(self, key: str, build: Callable[[], str]) -> str:
        """What build() returned the first time any process of the run asked for `key`; it runs only then. When
        it failed, every later request fails at once with its error (a known gap must not be rebuilt per test)."""
        if not re.fullmatch(r"[a-z0-9]+", key):
            raise ValueError(f"key {key!r}: use lower-case letters and digits")
        self.folder.mkdir(parents=True, exist_ok=True)
        built, failed = self.folder / f"{key}.built", self.folder / f"{key}.failed"
        with _exclusive(self.folder / f"{key}.lock"):
            if failed.exists():
                raise RuntimeError(f"building {key} failed earlier in this run: {failed.read_text(encoding='utf-8')}")
            if not built.exists():
                try:
                    built.write_text(build(), encoding="utf-8")
                except Exception as error:
                    failed.write_text(f"{type(error).__name__}: {error}", encoding="utf-8")
                    raise
        return built.read_text(encoding="utf-8")

    def template(self, key: str) -> str:
        """The name of the run's database built once for `key` (short: MySQL adds _<schema> to it, 64 at most)."""
        return f"{template_prefix(self.run_id)}_{key}"


def template_prefix(run_id: str) -> str:
    """What the names of the databases built once in run `run_id` begin with."""
    return f"rf_tpl_{run_id[:10]}"


class Engine:
    """A database engine: fresh databases, their URLs, copies, drops, and the backend's capabilities."""

    #: The engine's name in test ids and in @pytest.mark.engines / @pytest.mark.gap.
    name: ClassVar[str]
    #: retailflow's backend class for the engine, as module:class (imported when asked for).
    backend_path: ClassVar[str]

    def __init__(self, run: SuiteRun) -> None:
        self.run = run
        self.made: list[str] = []
        self.opened: list[Backend] = []

    @classmethod
    def unavailable(cls) -> str | None:
        """Why the engine cannot run on this machine (server down, no Java), or None; asked once per process."""
        if cls.name not in _UNAVAILABLE:
            _UNAVAILABLE[cls.name] = cls._check()
        return _UNAVAILABLE[cls.name]

    @classmethod
    def _check(cls) -> str | None:
        return None

    @property
    def backend_class(self) -> type[Backend]:
        module, _, name = self.backend_path.partition(":")
        return getattr(importlib.import_module(module), name)

    @property
    def capabilities(self) -> Capabilities:
        """What the engine can do, as retailflow's backend declares it."""
        return self.backend_class.capabilities

    def fresh(self) -> str:
        """The name of a new, empty database (retailflow creates it on first connect), dropped afterwards."""
        name = f"rf_test_{uuid.uuid4().hex[:12]}"
        self.made.append(name)
        return name

    def url(self, name: str) -> str:
        raise NotImplementedError

    def connect(self, name: str) -> Backend:
        """retailflow's backend on database `name`, schemas created; closed afterwards."""
        backend = connect(self.url(name))
        self.opened.append(backend)
        return backend

    def copy(self, source: str, target: str | None = None) -> str:
        """The name of a copy of database `source`: `target` (a fresh name not yet used), or a new one; dropped
        afterwards."""
        target = target or self.fresh()
        self.wait_until_idle(source)
        self._copy(source, target)
        return target

    def _copy(self, source: str, target: str) -> None:
        raise NotImplementedError

    def drop(self, name: str) -> None:
        """Remove database `name`; nothing happens when it does not exist."""
        raise NotImplementedError

    def reader(self, name: str) -> contextlib.AbstractContextManager[Query]:
        """Queries on database `name` through one connection, without retailflow (whose connect creates schemas,
        that is, writes)."""
        raise NotImplementedError

    def discard(self, name: str) -> None:
        """Database `name` is no longer needed: dropped now, or when the process ends where that is cheaper."""
        self.drop(name)

    @classmethod
    def drop_discarded(cls) -> None:
        """Drop the databases whose drop `discard` put off (every process calls this as it ends)."""

    def wait_until_idle(self, name: str) -> None:
        """Let a killed client's server session end (its locks go with it)."""

    def prepared(self, key: str, build: Callable[[Backend], None]) -> str:
        """The name of a database holding what build(backend) leaves in an empty one, built once per test run
        by whichever process asks first; copy it (`copy`), never change it."""
        def build_template() -> str:
            name = self.run.template(key)
            backend = connect(self.url(name))
            try:
                build(backend)
            finally:
                backend.close()
            return name

        return self.run.once(f"{self.name}{key}", build_template)

    @classmethod
    def drop_templates(cls, run_id: str) -> None:
        """Drop the server databases `prepared` built in run `run_id` (its last process calls this). Files stay
        in the run's temporary folder, which pytest keeps for the last three runs."""

    def close(self) -> None:
        """Close the backends opened and discard the databases made for the test."""
        for backend in self.opened:
            backend.close()
        for name in self.made:
            self.discard(name)
        self.opened.clear()
        self.made.clear()


class DuckDBEngine(Engine):
    """A database file (and its write-ahead log) in the run's folder; a copy is a file copy."""

    name = "duckdb"
    backend_path = "retailflow.backends.duckdb:DuckDBBackend"

    def _files(self, name: str) -> tuple[Path, Path]:
        path = self.run.folder / "duckdb" / f"{name}.duckdb"
        return path, path.with_suffix(".duckdb.wal")

    def url(self, name: str) -> str:
        path = self._files(name)[0]
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"duckdb:///{path}"

    def _copy(self, source: str, target: str) -> None:
        for source_file, target_file in zip(self._files(source), self._files(target)):
            if source_file.exists():
                shutil.copyfile(source_file, target_file)

    def drop(self, name: str) -> None:
        for path in self._files(name):
            path.unlink(missing_ok=True)

    @contextlib.contextmanager
    def reader(self, name: str) -> Iterator[Query]:
        # One connection for every query: a connection per query made a snapshot of every table of the
        # sample take 6 s instead of 0.3 s (load 6, 2 cores).
        import duckdb

        with duckdb.connect(str(self._files(name)[0]), read_only=True) as connection:
            def query(sql: str) -> tuple[list[str], list[tuple]]:
                cursor = connection.execute(sql)
                return [column[0] for column in cursor.description], cursor.fetchall()

            yield query


class PostgresEngine(Engine):
    """A database on the test server; a copy is CREATE DATABASE … TEMPLATE."""

    name = "postgres"
    backend_path = "retailflow.backends.postgres:PostgresBackend"

    @classmethod
    def _check(cls) -> str | None:
        return _postgres_unavailable()

    def url(self, name: str) -> str:
        return f"{POSTGRES_ADMIN.rsplit('/', 1)[0]}/{name}"

    @staticmethod
    def _admin(sql: str) -> None:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
            admin.execute(sql)

    def _copy(self, source: str, target: str) -> None:
        self._admin(f'CREATE DATABASE "{target}" TEMPLATE "{source}"')

    def drop(self, name: str) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def discard(self, name: str) -> None:
        # DROP DATABASE forces a checkpoint: 0.9 s each beside other work (measured at load 5 on 2 cores), where
        # at the end of the process the first drop flushes and each after it takes 15 ms.
        _DISCARDED_POSTGRES.add(name)

    @classmethod
    def drop_discarded(cls) -> None:
        if _DISCARDED_POSTGRES:
            with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
                for name in _DISCARDED_POSTGRES:
                    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            _DISCARDED_POSTGRES.clear()

    def wait_until_idle(self, name: str) -> None:
        # A template must have no session; a killed client's lingers for a moment.
        deadline = time.monotonic() + 30
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
            while admin.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (name,)).fetchone()[0]:
                assert time.monotonic() < deadline, f"sessions on {name} did not end"
                time.sleep(0.05)

    @contextlib.contextmanager
    def reader(self, name: str) -> Iterator[Query]:
        with psycopg.connect(self.url(name), autocommit=True) as connection:
            def query(sql: str) -> tuple[list[str], list[tuple]]:
                cursor = connection.execute(sql)
                return [column.name for column in cursor.description], cursor.fetchall()

            yield query

    @classmethod
    def drop_templates(cls, run_id: str) -> None:
        if cls.unavailable():
            return
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
            names = admin.execute("SELECT datname FROM pg_database WHERE starts_with(datname, %s)",
                                  (f"{template_prefix(run_id)}_",)).fetchall()
            for (name,) in names:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class MySQLEngine(Engine):
    """A retailflow database on the MariaDB/MySQL test server: the URL's database and one database per schema
    (<name>_<schema>). A copy re-creates each table from SHOW CREATE TABLE and copies its rows, set-based."""

    name = "mysql"
    backend_path = "retailflow.backends.mysql:MySQLBackend"

    @classmethod
    def _check(cls) -> str | None:
        return _mysql_unavailable()

    def url(self, name: str) -> str:
        return f"{MYSQL_ADMIN.rstrip('/')}/{name}"

    @staticmethod
    def _databases(cursor, name: str) -> list[tuple[str, str, str]]:
        """(database, character set, collation) of retailflow database `name`: itself and its schemas."""
        cursor.execute("SELECT schema_name, default_character_set_name, default_collation_name "
                       "FROM information_schema.schemata WHERE schema_name = %s OR schema_name LIKE %s",
                       (name, name.replace("_", "\\_") + "\\_%"))
        return list(cursor.fetchall())

    def _copy(self, source: str, target: str) -> None:
        connection = mysql_connection()
        try:
            cursor = connection.cursor()
            # Tables are made in any order: a foreign key may name one not made yet.
            cursor.execute("SET SESSION foreign_key_checks = 0")
            for database, charset, collation in self._databases(cursor, source):
                copied = target + database[len(source):]
                cursor.execute(f"CREATE DATABASE `{copied}` CHARACTER SET {charset} COLLATE {collation}")
                cursor.execute("SELECT table_name FROM information_schema.tables "
                               "WHERE table_schema = %s AND table_type = 'BASE TABLE'", (database,))
                for (table,) in cursor.fetchall():
                    cursor.execute(f"SHOW CREATE TABLE `{database}`.`{table}`")
                    definition = cursor.fetchone()[1].replace(f"`{source}_", f"`{target}_")
                    cursor.execute(f"USE `{copied}`")
                    cursor.execute(definition)
                    cursor.execute(f"INSERT INTO `{copied}`.`{table}` SELECT * FROM `{database}`.`{table}`")
            connection.commit()
        finally:
            connection.close()

    def drop(self, name: str) -> None:
        drop_mysql_database(name)

    @classmethod
    def drop_templates(cls, run_id: str) -> None:
        if not cls.unavailable():
            drop_mysql_database(template_prefix(run_id))


class PySparkEngine(Engine):
    """A local Spark warehouse folder (its tables and its own metastore), Spark tuned for tiny tables.

    No copy: the warehouse's metastore names its tables' folders by absolute path.
    """

    name = "pyspark"
    backend_path = "retailflow.backends.pyspark:PySparkBackend"

    @classmethod
    def _check(cls) -> str | None:
        return _spark_unavailable()

    def warehouse(self, name: str) -> Path:
        return self.run.folder / "pyspark" / name

    def url(self, name: str) -> str:
        return f"pyspark://local[2]?warehouse={self.warehouse(name)}&{TINY_DATA}"

    def drop(self, name: str) -> None:
        shutil.rmtree(self.warehouse(name), ignore_errors=True)


ENGINES: dict[str, type[Engine]] = {engine.name: engine for engine in (
    DuckDBEngine, PostgresEngine, MySQLEngine, PySparkEngine)}
