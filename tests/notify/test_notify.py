"""Loyalty e-mails through a real SMTP server (aiosmtpd on localhost): delivered once, refusals recorded."""

from __future__ import annotations

import collections
import email
import os
import signal
import socket
import subprocess
import sys
from email.policy import default
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from retailflow.analytics.loyalty import run_loyalty
from retailflow.analytics.segmentation import run_segments
from retailflow.backends import connect
from retailflow.errors import UserError
from retailflow.notify import outbox
from retailflow.notify.senders import FileSender, SmtpSender, make_sender

REFUSED = "eve@example.com"


class Mailbox:
    """An SMTP handler that keeps messages and refuses one recipient."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address == REFUSED:
            return "550 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content, policy=default))
        return "250 Message accepted"


@pytest.fixture
def smtp_server(monkeypatch):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("RETAILFLOW_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("RETAILFLOW_SMTP_PORT", str(port))
    yield mailbox
    controller.stop()


@pytest.fixture
def ready(staged_sample):
    run_loyalty(staged_sample)
    run_segments(staged_sample)
    return staged_sample


def test_messages_arrive_once_and_refusals_are_recorded(ready, smtp_server):
    queued = outbox.queue(ready)
    # Six customers earned points; C06's address (finn.example.com) is invalid and skipped.
    assert (queued["queued"], queued["skipped"]) == (5, 1)
    result = outbox.send(ready, SmtpSender())
    assert (result["sent"], result["failed"]) == (4, 1)
    by_recipient = {message["To"]: message for message in smtp_server.messages}
    assert set(by_recipient) == {"ann@example.com", "ben@example.com", "cara@example.com", "dev@example.com"}
    ann = by_recipient["ann@example.com"]
    assert ann["Subject"] == "Ann, you earned 325 points"
    text = ann.get_body(("plain",)).get_content()
    html = ann.get_body(("html",)).get_content()
    assert "1525 points (Gold member)" in text and "<strong>1525</strong>" in html
    assert "best customers" in text  # C01 is the sample's High-Spender
    assert ann["Message-ID"].startswith("<C01.") and ann["Message-ID"].endswith("@retailflow>")
    statuses = dict(ready.fetch("SELECT customer_id, status FROM notifications.outbox")[1])
    assert statuses == {"C01": "sent", "C02": "sent", "C03": "sent", "C04": "sent", "C05": "failed", "C06": "skipped"}
    assert "recipient refused" in ready.scalar("SELECT last_error FROM notifications.outbox WHERE customer_id = 'C05'")
    # Running again sends nothing new: the refused one waits for its back-off.
    again = outbox.send(ready, SmtpSender())
    assert (again["due"], len(smtp_server.messages)) == (0, 4)
    assert outbox.queue(ready)["new"] == 0


def test_failed_messages_are_retried_with_back_off_up_to_a_limit(ready, smtp_server):
    import datetime as dt

    outbox.queue(ready)
    outbox.send(ready, SmtpSender())
    later = dt.datetime.now() + dt.timedelta(hours=1)
    for _attempt in (2, 3):
        result = outbox.send(ready, SmtpSender(), now=later, max_attempts=3)
        assert (result["due"], result["failed"]) == (1, 1)
        later += dt.timedelta(hours=1)
    assert outbox.send(ready, SmtpSender(), now=later, max_attempts=3)["due"] == 0
    assert ready.scalar("SELECT attempts FROM notifications.outbox WHERE customer_id = 'C05'") == 3


def test_file_sender_writes_real_mime_and_escapes_html(ready, tmp_path):
    ready.execute("UPDATE staging.customer_details SET first_name = '<script>alert(1)</script>' "
                  "WHERE customer_id = 'C02'")
    outbox.queue(ready)
    outbox.send(ready, FileSender(tmp_path))
    files = sorted(tmp_path.glob("*.eml"))
    assert len(files) == 5
    message = email.message_from_bytes(next(f for f in files if f.name.startswith("C02")).read_bytes(), policy=default)
    assert "&lt;script&gt;" in message.get_body(("html",)).get_content()
    assert message.get_body(("plain",)).get_content().startswith("Hi <script>")


def test_an_outbox_from_before_message_file_gains_it_and_records_each_file_absolute(ready, tmp_path, monkeypatch):
    old_columns = [(name, kind) for name, kind in outbox.OUTBOX_COLUMNS if name != outbox.MESSAGE_FILE]
    ready.execute("CREATE TABLE notifications.outbox ("
                  f"{', '.join(f'{ready.quote(name)} {kind}' for name, kind in old_columns)})")
    monkeypatch.chdir(tmp_path)

    outbox.queue(ready)
    outbox.send(ready, FileSender(Path("mail")))  # relative, as `notify --out mail` passes it

    assert ready.table_columns("notifications", "outbox")[-1] == outbox.MESSAGE_FILE
    recorded = dict(ready.fetch(f"SELECT customer_id, {outbox.MESSAGE_FILE} FROM notifications.outbox")[1])
    run_id = ready.scalar("SELECT max(run_id) FROM notifications.outbox")
    # Five messages written; C06 (invalid address) was skipped and has no file.
    assert recorded == {customer: str(tmp_path.resolve() / "mail" / f"{customer}_{run_id}.eml")
                        for customer in ("C01", "C02", "C03", "C04", "C05")} | {"C06": None}
    assert all(Path(path).is_file() for path in recorded.values() if path)


def test_dry_run_renders_without_sending(ready):
    outbox.queue(ready)
    result = outbox.send(ready, make_sender("log"), dry_run=True)
    assert result["due"] == 5 and len(result["previews"]) == 5 and result["sent"] == 0
    assert ready.scalar("SELECT count(*) FROM notifications.outbox WHERE status = 'queued'") == 5


def test_broken_templates_and_missing_settings_are_user_errors(ready, tmp_path, monkeypatch):
    (tmp_path / "points.txt.j2").write_text("Hi {{ first_name }\n")
    with pytest.raises(UserError, match="points.txt.j2"):
        outbox.templates(tmp_path)
    monkeypatch.delenv("RETAILFLOW_SMTP_HOST", raising=False)
    with pytest.raises(UserError, match="RETAILFLOW_SMTP_HOST"):
        SmtpSender()


@pytest.mark.parametrize(("name", "text", "line", "message"), [
    ("points.txt.j2", "Hi {{ first_name }\n", 1, "template syntax error: unexpected '}'"),
    ("points.html.j2", "<p>Hi</p>\n\n{{ no_such_field }}\n", 3, "template error: 'no_such_field' is undefined"),
    ("points.subject.j2", "{% for x in points_earned %}{{ x }}{% endfor %}\n", 1, "template error: 'int' object"),
])
def test_template_errors_name_the_file_and_line(tmp_path, name, text, line, message):
    (tmp_path / name).write_text(text)
    with pytest.raises(UserError, match=message) as raised:
        outbox.templates(tmp_path)
    assert str(raised.value).startswith(f"{tmp_path / name}:{line}: ")
    with pytest.raises(UserError, match="no such templates folder"):
        outbox.templates(tmp_path / "missing")


def test_a_broken_template_override_stops_notify_with_exit_code_2(tmp_path):
    database = f"duckdb:///{tmp_path}/notify.duckdb"
    backend = connect(database)
    run_loyalty(backend)  # nothing staged: an empty run, enough for notify to reach the templates
    backend.close()
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "points.html.j2").write_text("<p>\n{% if tier %}\n{{ tier }\n")
    result = subprocess.run([sys.executable, "-m", "retailflow", "--db", database, "notify", "--templates",
                             str(tmp_path / "templates")], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "COLUMNS": "300"})
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {tmp_path / 'templates' / 'points.html.j2'}:3: "
                                                   "template syntax error"), lines


# Runs in a subprocess: sends with SMTP and dies (SIGKILL) right after the server accepted the
# second message, before its outbox row is marked sent.
DIES_AFTER_ACCEPTANCE = """
import os, signal, sys
from retailflow.backends import connect
from retailflow.notify import outbox
from retailflow.notify.senders import SmtpSender

class DiesAfterAcceptance(SmtpSender):
    accepted = 0

    def send(self, message):
        super().send(message)
        DiesAfterAcceptance.accepted += 1
        if DiesAfterAcceptance.accepted == 2:
            os.kill(os.getpid(), signal.SIGKILL)

outbox.send(connect(sys.argv[1]), DiesAfterAcceptance())
"""


def test_a_crash_after_the_server_accepted_resends_that_message_once_with_its_message_id(ready, db_url,
                                                                                         smtp_server):
    outbox.queue(ready)
    ready.close()  # the subprocesses need the database (DuckDB admits one process)
    killed = subprocess.run([sys.executable, "-c", DIES_AFTER_ACCEPTANCE, db_url], capture_output=True, text=True,
                            timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert len(smtp_server.messages) == 2
    rerun = subprocess.run([sys.executable, "-m", "retailflow", "--db", db_url, "notify", "--sender", "smtp"],
                           capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    ids = collections.Counter(message["Message-ID"] for message in smtp_server.messages)
    second = smtp_server.messages[1]["Message-ID"]
    assert ids[second] == 2 and all(count == 1 for message_id, count in ids.items() if message_id != second)
    assert {message["To"] for message in smtp_server.messages} == {
        "ann@example.com", "ben@example.com", "cara@example.com", "dev@example.com"}
    backend = connect(db_url)
    try:
        statuses = dict(backend.fetch("SELECT customer_id, status FROM notifications.outbox")[1])
        attempts = backend.scalar("SELECT max(attempts) FROM notifications.outbox WHERE status = 'sent'")
    finally:
        backend.close()
    assert statuses == {"C01": "sent", "C02": "sent", "C03": "sent", "C04": "sent", "C05": "failed", "C06": "skipped"}
    assert attempts == 1  # the attempt that died was never recorded


def test_the_log_sender_prints_one_json_line_when_logging_is_not_configured():
    script = ("from email.message import EmailMessage\n"
              "from retailflow.notify.senders import LogSender\n"
              "message = EmailMessage()\n"
              "message['To'], message['Subject'] = 'ann@example.com', 'Hi'\n"
              "message['Message-ID'] = '<C01.r@retailflow>'\n"
              "LogSender().send(message)\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout == ""
    assert result.stderr.splitlines() == [
        '{"to": "ann@example.com", "subject": "Hi", "message_id": "<C01.r@retailflow>"}']
