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


FROM_OPTION = typer.Option(None, "--from", metavar="DATE",
                           help="Recompute from this business date (YYYY-MM-DD), e.g. after a quarantine replay.")
TO_OPTION = typer.Option(None, "--to", metavar="DATE", help="Recompute up to this business date (YYYY-MM-DD).")


def date_range(first: str | None, last: str | None):
    """--from/--to as a retailflow.incremental.DateRange, None when neither is given (the changed days)."""
    if first is None and last is None:
        return None
    import datetime as dt

    from retailflow.errors import UserError
    from retailflow.incremental import DateRange

    def day(value: str | None, option: str):
        try:
            return dt.date.fromisoformat(value) if value else None
        except ValueError:
            raise UserError(f"{option} {value!r} is not a date; use YYYY-MM-DD") from None

    return DateRange(day(first, "--from"), day(last, "--to"))
