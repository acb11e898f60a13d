"""CLI command functions for the stages; `retailflow.cli` registers them on the app."""

from __future__ import annotations

import typer

from retailflow.backends import Backend, connect


def open_backend(ctx: typer.Context) -> Backend:
    """Connect to the database the command line or environment names (ctx.obj is retailflow.config.Settings)."""
    return connect(ctx.obj.db_url)
