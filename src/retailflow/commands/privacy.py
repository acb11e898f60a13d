"""`retailflow forget` and `retailflow grant analyst`: customer privacy."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Optional

import typer

from retailflow.commands import open_backend
from retailflow.errors import UserError
from retailflow.output import FORMAT_OPTION, Format, console, errors, render

grant_app = typer.Typer(help="Give a database role read access without personal data.", no_args_is_help=True)


def _ids_from_file(path: Path) -> list[str]:
    """Ids from a CSV with a customer_id column, or one id per line."""
    if not path.is_file():
        raise UserError(f"{path}: no such file; --file needs a CSV with a customer_id column or one id per line")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        rows = [row for row in csv.reader(handle) if row]
    if not rows:
        return []
    header = [cell.strip() for cell in rows[0]]
    if "customer_id" in header:
        column = header.index("customer_id")
        return [row[column] for row in rows[1:] if len(row) > column]
    if len(header) > 1:
        raise UserError(f"{path}:1: several columns but none named customer_id; name the id column customer_id")
    return [row[0] for row in rows]


def forget_command(
    ctx: typer.Context,
    customer_ids: Optional[list[str]] = typer.Argument(None, help="Customer ids to erase, as in the customer file."),
    file: Optional[Path] = typer.Option(None, "--file", help="CSV with a customer_id column, or one id per line."),
    reason: Optional[str] = typer.Option(None, "--reason", help="Why, kept in audit.erasures (no personal data here)."),
    outbox: Path = typer.Option(Path("outbox"), "--outbox", help="Folder searched for the .eml files of messages "
                                "sent before the outbox recorded each file's path (the --out of `notify --sender "
                                "file` then); recorded files are removed wherever they are."),
    output_format: Format = FORMAT_OPTION,
) -> None:
    """Erase customers' personal data everywhere retailflow wrote it; sales, points and totals stay.

    Names and e-mails are removed and the customer id becomes a pseudonym (an HMAC under RETAILFLOW_PII_KEY) in
    every table, in one transaction. The .eml files `notify --sender file` wrote for them are deleted, wherever
    they are. Later files holding an erased customer are pseudonymised on the way in.
    """
    from retailflow.privacy.forget import forget

    ids = list(customer_ids or []) + (_ids_from_file(file) if file else [])
    if not ids:
        raise UserError("give the customer ids to erase, or --file IDS.csv")
    result = forget(open_backend(ctx, writes=True), ids, reason=reason, outbox_folder=outbox)
    render([{"table": table, "rows": rows} for table, rows in result.rows.items()], output_format,
           title=f"Erasure {result.erasure_id}: rows changed")
    if result.unknown:
        shown = ", ".join(result.unknown[:10]) + (f" and {len(result.unknown) - 10} more" if len(result.unknown) > 10 else "")
        errors.print(f"not found, skipped: {shown}", highlight=False)
    if output_format is Format.table:
        console.print(f"erased {len(result.erased)} customer(s); already erased {len(result.already_erased)}; "
                      f"unknown {len(result.unknown)}; {result.files_removed} .eml file(s) removed")
    if not result.erased and not result.already_erased:
        raise typer.Exit(2)


@grant_app.command("analyst")
def grant_analyst_command(
    ctx: typer.Context,
    role: str = typer.Argument(..., help="Database role to grant read access to (created when missing)."),
) -> None:
    """(Re)create the `analyst` schema of views without personal data and grant ROLE read access to it alone."""
    from retailflow.privacy.analyst import grant_analyst

    views = grant_analyst(open_backend(ctx, writes=True), role)
    console.print(f"role {role} can read {len(views)} views in schema analyst: {', '.join(views)}")
