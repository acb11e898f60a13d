"""The transactional outbox: queue one message per customer per loyalty run, then send it.

Queuing is one INSERT … SELECT from the ledger of a loyalty run, keyed by customer + run
(`message_key`, unique): re-queuing adds nothing. Sending reads queued rows (and failed ones
due for a retry), renders and sends each, and marks it sent or failed in its own small
transaction. A crash between the server accepting a message and the row being marked sent
means that message is sent again next time: at-least-once, with the same Message-ID
(<message_key@retailflow>, characters outside [A-Za-z0-9.-] as dots) so a mail system can drop the duplicate.
A sender that writes files has each file's absolute path recorded (`message_file`) before it writes it, so
`forget` finds every file wherever `--out` put it.
"""

from __future__ import annotations

import datetime as dt
import re
import traceback
from email.message import EmailMessage
from pathlib import Path

import ibis
import ibis.expr.types as ir
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PackageLoader, StrictUndefined, TemplateSyntaxError

from retailflow import catalog
from retailflow.backends import NOW, Backend
from retailflow.backends.run_values import run_value
from retailflow.errors import UserError
from retailflow.notify.senders import SendError
from retailflow.tables import indexed_where_needed, staging_table

EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
SENDER_ADDRESS = "loyalty@retailflow.example"
DECLARED = catalog.stored("notifications.outbox")
#: The outbox's columns and their SQL types, as created (a table from an earlier version may lack the last ones).
OUTBOX_COLUMNS = tuple((column.name, column.sql_type) for column in DECLARED.columns)
#: The absolute path of the .eml file written for a message (NULL for other senders, and for files written
#: before the path was recorded: `forget --outbox` looks for those by name).
MESSAGE_FILE = "message_file"
OUTBOX = DECLARED.table()
LEDGER, BALANCES, ERASURES = (catalog.table(name) for name in ("loyalty.points_ledger", "loyalty.balances",
                                                               "audit.erasures"))
SEGMENT_LINES = {
    "AR": "We miss you: your points are waiting for your next visit.",
    "HS": "As one of our best customers, thank you for your loyalty.",
}
TEMPLATE_NAMES = ("points.subject.j2", "points.txt.j2", "points.html.j2")
#: An outbox row the templates are tried on when they are loaded.
EXAMPLE_ROW = {name: None for name in DECLARED.column_names} | {
    "message_key": "C01:run", "customer_id": "C01", "run_id": "run", "email": "ann@example.com", "first_name": "Ann",
    "points_earned": 120, "new_total": 1320, "tier": "Gold", "segment_id": "HS", "transactions": 2,
    "status": "queued", "attempts": 0, "message_id": "<C01.run@retailflow>", "queued_at": dt.datetime(2024, 12, 7)}


#: The temporary table of a queue's points per customer, where the engine needs it indexed (indexed_where_needed).
EARNED = "rf_notify_earned"
#: Statuses of messages not sent yet: an erased customer's are cancelled.
UNSENT = ("queued", "failed")
#: Characters a message id does not keep from the outbox key.
NOT_IN_TOKEN = r"[^A-Za-z0-9.\-]"
ERASED_NOTE = "customer erased"
#: What an erased customer's unsent messages become.
CANCELLED = {"status": "cancelled", "last_error": ERASED_NOTE}


def message_token(text: str) -> str:
    """Text as message ids write it (characters outside [A-Za-z0-9.-] as dots)."""
    return re.sub(NOT_IN_TOKEN, ".", text)


def pseudonym_values(messages: ir.Table, erased: ir.Table) -> dict[str, ir.StringValue]:
    """An erased customer's message key and id with the pseudonym where the id was; `erased` is the erasure request
    (original id, pseudonym, token = the original as message_token writes it), joined to `messages` (the outbox)."""
    return {"message_key": messages.message_key.replace(erased.original + ":", erased.pseudonym + ":"),
            "message_id": messages.message_id.replace("<" + erased.token + ".", "<" + erased.pseudonym + ".")}


def ensure_outbox(backend: Backend) -> None:
    """Create notifications.outbox, or add the columns an outbox from an earlier version lacks (message_file)."""
    backend.ensure_tables([DECLARED])


def queue(backend: Backend, run_id: str | None = None) -> dict:
    """Queue one message per customer whose balance changed in the loyalty run (default: the latest), with the
    net change: a restated day's reversal and new credit are one message."""
    if not backend.has_table("loyalty", "runs"):
        raise UserError("no loyalty run yet: run `retailflow loyalty` first")
    run_id = run_id or backend.scalar("SELECT run_id FROM loyalty.runs ORDER BY started_at DESC, run_id DESC LIMIT 1")
    ensure_outbox(backend)
    if run_id is None:
        return {"run_id": None, "queued": 0, "skipped": 0}
    run = run_value("run", run_id, "string")
    earned = LEDGER.filter(LEDGER.run_id == run).group_by("customer_id").aggregate(
        points_earned=LEDGER.points.sum(), transactions=LEDGER.transaction_id.nunique())
    # MariaDB hashed this aggregate on a two-byte key: 52 s to join 26k customers' points at 200k line items.
    with indexed_where_needed(backend, EARNED, earned.filter(earned.points_earned != 0), ("customer_id",)) as earned:
        inserted = _queue_new(backend, earned, run)
    counts = {row["status"]: row["n"] for row in backend.fetch_dicts(
        OUTBOX.filter(OUTBOX.run_id == run).group_by("status").aggregate(n=ibis._.count()))}
    return {"run_id": run_id, "new": inserted, "queued": counts.get("queued", 0), "skipped": counts.get("skipped", 0)}


def _queue_new(backend: Backend, earned: ir.Table, run: ir.StringValue) -> int:
    """Insert the messages of `earned` (points and transactions per customer of run `run`) not queued yet."""
    customers = staging_table("customer_details")
    rows = earned.join(customers, earned.customer_id == customers.customer_id).select(
        earned, customers.email, customers.first_name, customers.segment_id)
    rows = rows.join(BALANCES, rows.customer_id == BALANCES.customer_id).select(rows, BALANCES.balance, BALANCES.tier)
    erased = ERASURES.select(_erased=ERASURES.pseudonym).distinct()
    rows = rows.left_join(erased, rows.customer_id == erased._erased).select(rows, erased._erased)
    valid = rows.email.notnull() & rows.email.re_search(EMAIL_PATTERN)
    key = rows.customer_id + ":" + run
    candidates = rows.select(
        message_key=key, customer_id=rows.customer_id, run_id=run, email=rows.email,
        first_name=rows.first_name, points_earned=rows.points_earned, new_total=rows.balance, tier=rows.tier,
        segment_id=rows.segment_id, transactions=rows.transactions,
        status=ibis.cases((rows._erased.notnull(), "cancelled"), (valid, "queued"), else_="skipped"),
        attempts=ibis.literal(0, "int64"),
        last_error=ibis.cases((rows._erased.notnull(), ERASED_NOTE), (valid, ibis.null("string")),
                              else_="invalid e-mail address"),
        message_id="<" + key.re_replace(NOT_IN_TOKEN, ".") + "@retailflow>",
        queued_at=ibis.now().cast("timestamp"))
    with backend.transaction():
        return backend.insert("notifications", "outbox", candidates.anti_join(OUTBOX, "message_key"))


def templates(folder: Path | None = None) -> Environment:
    """Jinja2 templates: a user folder first, then the package's; HTML parts are autoescaped.

    Each template is compiled and rendered once with an example row, so a syntax error or an
    unknown variable stops the command before anything is sent, naming the file and line.
    """
    if folder is not None and not folder.is_dir():
        raise UserError(f"{folder}: no such templates folder; --templates needs a folder holding "
                        f"{', '.join(TEMPLATE_NAMES)} (any of them)")
    loaders = ([FileSystemLoader(str(folder))] if folder else []) + [PackageLoader("retailflow.notify", "templates")]
    environment = Environment(loader=ChoiceLoader(loaders), undefined=StrictUndefined, keep_trailing_newline=False,
                              autoescape=lambda name: bool(name and name.endswith(".html.j2")))
    for name in TEMPLATE_NAMES:
        try:
            environment.get_template(name).render(_context(EXAMPLE_ROW))
        except TemplateSyntaxError as error:
            raise UserError(f"{error.filename or name}:{error.lineno}: template syntax error: {error.message}; "
                            "fix the template") from None
        except Exception as error:  # whatever a user's template raises, it is theirs to fix
            raise UserError(f"{_template_line(environment, name, error)}: template error: "
                            f"{str(error).splitlines()[0] if str(error) else type(error).__name__}; "
                            "fix the template") from None
    return environment


def _template_line(environment: Environment, name: str, error: Exception) -> str:
    """file:line of the template frame an error was raised in (Jinja maps its frames to template lines)."""
    filename = environment.get_template(name).filename or name
    lines = [frame.lineno for frame in traceback.extract_tb(error.__traceback__) if frame.filename == filename]
    return f"{filename}:{lines[-1] if lines else 1}"


def _context(row: dict) -> dict:
    return {**row, "segment_line": SEGMENT_LINES.get(row.get("segment_id") or "", "")}


def render(environment: Environment, row: dict) -> EmailMessage:
    """The MIME message for one outbox row: plain text and HTML alternatives."""
    context = _context(row)
    message = EmailMessage()
    message["From"] = SENDER_ADDRESS
    message["To"] = row["email"]
    message["Subject"] = environment.get_template("points.subject.j2").render(context).strip()
    message["Message-ID"] = row["message_id"]
    message["X-Retailflow-Key"] = row["message_key"]
    message.set_content(environment.get_template("points.txt.j2").render(context))
    message.add_alternative(environment.get_template("points.html.j2").render(context), subtype="html")
    return message


def send(backend: Backend, sender, *, template_dir: Path | None = None, max_attempts: int = 3,
         dry_run: bool = False, now: dt.datetime | None = None) -> dict:
    """Send queued messages and failed ones due for a retry; returns counts (and previews when dry_run)."""
    ensure_outbox(backend)
    environment = templates(template_dir)
    now = now or dt.datetime.now()
    due = OUTBOX.filter((OUTBOX.status == "queued") | (
        (OUTBOX.status == "failed") & (OUTBOX.attempts < max_attempts) & (OUTBOX.next_attempt_at <= now)))
    rows = backend.fetch_dicts(due.order_by("message_key"))
    result = {"due": len(rows), "sent": 0, "failed": 0, "previews": []}
    file_path = getattr(sender, "file_path", None)
    for row in rows:
        message = render(environment, row)
        if dry_run:
            result["previews"].append({"to": row["email"], "subject": message["Subject"]})
            continue
        attempts = int(row["attempts"]) + 1
        if file_path:
            # Recorded before the file is written: a crash in between leaves a path without a file (which forget
            # skips), never a file forget cannot find.
            with backend.transaction():
                backend.update_where(OUTBOX, {MESSAGE_FILE: str(file_path(row["message_key"]))},
                                     {"message_key": row["message_key"]})
        try:
            sender.send(message)
        except SendError as error:
            # Exponential back-off between retries: 1, 2, 4 … minutes.
            retry_at = now + dt.timedelta(minutes=2 ** (attempts - 1))
            with backend.transaction():
                backend.update_where(OUTBOX, {"status": "failed", "attempts": attempts, "last_error": str(error)[:500],
                                              "next_attempt_at": retry_at}, {"message_key": row["message_key"]})
            result["failed"] += 1
            continue
        with backend.transaction():
            backend.update_where(OUTBOX, {"status": "sent", "attempts": attempts, "last_error": None, "sent_at": NOW},
                                 {"message_key": row["message_key"]})
        result["sent"] += 1
    close = getattr(sender, "close", None)
    if close:
        close()
    return result
