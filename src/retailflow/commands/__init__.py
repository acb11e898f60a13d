"""CLI command functions for the stages; `retailflow.cli` registers them on the app."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from retailflow.backends import Backend


def open_backend(ctx: typer.Context, *, writes: bool = False) -> Backend:
    """Connect to the database the command line or environment names (ctx.obj is retailflow.config.Settings).

    Commands that write pass writes=True: a second writer on the same database is refused.
    """
    from retailflow.backends import connect

    backend = connect(ctx.obj.db_url)
    if writes:
        backend.lock_for_writing()
    return backend
