"""Connect to a database by URL; everything engine-specific lives in this package."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from retailflow.backends.base import NOW, Backend, Capabilities
from retailflow.errors import UserError

__all__ = ["NOW", "Backend", "Capabilities", "connect", "mask_url"]


def mask_url(url: str) -> str:
    """The URL with any password (or Spark Connect token) replaced by ***, safe to print."""
    if url.lower().startswith("sc://"):
        return re.sub(r"(;\s*token=)[^;]*", r"\1***", url, flags=re.IGNORECASE)
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        # Unparseable (e.g. a stray '['): hide everything that could be credentials.
        scheme, separator, rest = url.partition("://")
        return f"{scheme}{separator}***@{rest.rpartition('@')[2]}" if "@" in rest else url
    if password is None:
        return url
    user_info, _, host = parts.netloc.rpartition("@")
    netloc = f"{user_info.partition(':')[0]}:***@{host}"
    return parts._replace(netloc=netloc).geturl()


def connect(url: str) -> Backend:
    """Open the database at `url`, set up for this code (Backend.set_up): duckdb:///path, postgresql://user@host:port/db,
    mysql://user@host:port/db, pyspark://local[2]?warehouse=/path or sc://host:15002 (Spark Connect)."""
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        # pyspark://local[2]: urlsplit reads "[2]" as an IPv6 address and refuses it.
        scheme = "pyspark" if url.lower().startswith("pyspark://") else ""
    if scheme == "duckdb":
        from retailflow.backends.duckdb import DuckDBBackend

        backend: Backend = DuckDBBackend(url)
    elif scheme in ("postgresql", "postgres"):
        from retailflow.backends.postgres import PostgresBackend

        backend = PostgresBackend(url)
    elif scheme in ("mysql", "mariadb"):
        from retailflow.backends.mysql import MySQLBackend

        backend = MySQLBackend(url)
    elif scheme in ("pyspark", "sc"):
        from retailflow.backends.pyspark import PySparkBackend

        backend = PySparkBackend(url)
    else:
        raise UserError(
            f"database URL {mask_url(url)!r} is not supported: use duckdb:///path/file.duckdb "
            "postgresql://user@host:5432/dbname, mysql://user@host:3306/dbname, "
            "pyspark://local[2]?warehouse=/path or sc://host:15002"
        )
    backend.set_up()
    return backend
