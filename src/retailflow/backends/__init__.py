"""Connect to a database by URL; everything engine-specific lives in this package."""

from __future__ import annotations

from urllib.parse import urlsplit

from retailflow.backends.base import Backend
from retailflow.errors import UserError

__all__ = ["Backend", "connect", "mask_url"]


def mask_url(url: str) -> str:
    """The URL with any password replaced by ***, safe to print."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def connect(url: str) -> Backend:
    """Open the database at `url` (duckdb:///path, postgresql://user@host:port/db) and ensure its schemas."""
    scheme = urlsplit(url).scheme.lower()
    if scheme == "duckdb":
        from retailflow.backends.duckdb import DuckDBBackend

        backend: Backend = DuckDBBackend(url)
    elif scheme in ("postgresql", "postgres"):
        from retailflow.backends.postgres import PostgresBackend

        backend = PostgresBackend(url)
    else:
        raise UserError(
            f"database URL {mask_url(url)!r} is not supported: use duckdb:///path/file.duckdb "
            "or postgresql://user@host:5432/dbname"
        )
    backend.create_schemas()
    return backend
