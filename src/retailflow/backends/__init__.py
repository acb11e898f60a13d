"""Connect to a database by URL; everything engine-specific lives in this package."""

from __future__ import annotations

from urllib.parse import urlsplit

from retailflow.backends.base import Backend
from retailflow.errors import UserError

__all__ = ["Backend", "connect", "mask_url"]


def mask_url(url: str) -> str:
    """The URL with any password replaced by ***, safe to print."""
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
    """Open the database at `url` (duckdb:///path, postgresql://user@host:port/db, mysql://user@host:port/db) and ensure its schemas."""
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        scheme = ""
    if scheme == "duckdb":
        from retailflow.backends.duckdb import DuckDBBackend

        backend: Backend = DuckDBBackend(url)
    elif scheme in ("postgresql", "postgres"):
        from retailflow.backends.postgres import PostgresBackend

        backend = PostgresBackend(url)
    elif scheme in ("mysql", "mariadb"):
        from retailflow.backends.mysql import MySQLBackend

        backend = MySQLBackend(url)
    else:
        raise UserError(
            f"database URL {mask_url(url)!r} is not supported: use duckdb:///path/file.duckdb "
            "postgresql://user@host:5432/dbname or mysql://user@host:3306/dbname"
        )
    backend.create_schemas()
    return backend
