"""Secrets stay secret: a database password and RETAILFLOW_SMTP_PASSWORD never show up in output,
help, the report, logs, the outbox or .eml files; URLs are shown with the password masked.

Commands run in this process through the console-script entry point (`retailflow.cli.entry`),
with stdout, stderr, logs and any traceback collected; one real process checks the same path end
to end. PostgreSQL's trust authentication accepts any password, so a URL can carry one here.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import traceback
import uuid
from collections.abc import Iterator
from unittest import mock

import psycopg
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from helpers import POSTGRES_ADMIN, POSTGRES_SKIP, SAMPLE_DIR
from retailflow.backends import mask_url
from retailflow.cli import app, entry

DB_PASSWORD = "s3cr3t-pw"
SMTP_PASSWORD = "smtp-pa55-w0rd"
SECRETS = (DB_PASSWORD, SMTP_PASSWORD)
HOST = POSTGRES_ADMIN.split("@", 1)[1].rsplit("/", 1)[0]  # host:port of the test server
UNREACHABLE = f"postgresql://postgres:{DB_PASSWORD}@127.0.0.1:1/shop"

# Every command that opens the database, with arguments that get it that far.
DATABASE_COMMANDS = [
    ["ingest", str(SAMPLE_DIR)], ["validate"], ["quarantine"], ["quarantine", "show", "stores"],
    ["quarantine", "replay"], ["reconcile"], ["run", str(SAMPLE_DIR)], ["promotions"], ["inventory"],
    ["loyalty"], ["loyalty", "explain", "T001"], ["segments"], ["notify"], ["report", "--out", "{tmp}/r.html"],
]


def _without_layout(text: str) -> str:
    """Text with whitespace and table borders removed, so a secret folded over two lines still shows."""
    return re.sub(r"[\s\u2500-\u257f|]", "", text)


def assert_no_secret(text: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in _without_layout(text), f"{secret!r} appears in {where}:\n{text}"


def retailflow(capsys, caplog, *args: str) -> tuple[int, str]:
    """Run the console script in-process; exit code and everything it printed or logged."""
    printed = ""
    with mock.patch.object(sys, "argv", ["retailflow", *args]):
        try:
            entry()
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
        except Exception:  # a real process would print the traceback on stderr
            code, printed = 1, traceback.format_exc()
    out, err = capsys.readouterr()
    logged = caplog.text
    caplog.clear()
    return code, out + err + printed + logged


@pytest.fixture
def secret_env(monkeypatch):
    monkeypatch.setenv("RETAILFLOW_SMTP_PASSWORD", SMTP_PASSWORD)
    monkeypatch.setenv("RETAILFLOW_SMTP_USER", "loyalty")


@pytest.fixture
def secret_url(secret_env) -> Iterator[str]:
    """A fresh PostgreSQL database reached with a URL that carries a password."""
    if POSTGRES_SKIP:
        pytest.skip(POSTGRES_SKIP)
    name = f"rf_test_{uuid.uuid4().hex[:12]}"
    yield f"postgresql://postgres:{DB_PASSWORD}@{HOST}/{name}"
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def smtp_requiring_login(monkeypatch) -> Iterator[list[str]]:
    """An SMTP server that offers AUTH without TLS and refuses every login; yields the passwords it got."""
    received: list[str] = []

    def refuse(server, session, envelope, mechanism, auth_data):
        received.append(auth_data.password.decode())
        return AuthResult(success=False, handled=False)

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(object(), hostname="127.0.0.1", port=port, authenticator=refuse, auth_require_tls=False)
    controller.start()
    monkeypatch.setenv("RETAILFLOW_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("RETAILFLOW_SMTP_PORT", str(port))
    yield received
    controller.stop()


def test_urls_are_masked_for_display():
    assert mask_url(f"postgresql://postgres:{DB_PASSWORD}@db:5432/shop") == "postgresql://postgres:***@db:5432/shop"
    assert mask_url("postgresql://u:p@ss:w@rd@db/shop") == "postgresql://u:***@db/shop"
    assert mask_url(f"postgresql://postgres:{DB_PASSWORD}@[db/shop") == "postgresql://***@[db/shop"
    assert mask_url("postgresql://postgres@db/shop") == "postgresql://postgres@db/shop"


def _command_paths() -> list[list[str]]:
    paths = [[]] + [[command.name] for command in app.registered_commands]
    for group in app.registered_groups:
        paths += [[group.name]] + [[group.name, command.name] for command in group.typer_instance.registered_commands]
    return paths


@pytest.mark.parametrize("command", _command_paths(), ids=lambda path: " ".join(path) or "retailflow")
def test_help_shows_no_secret(command, capsys, caplog, secret_env, monkeypatch):
    monkeypatch.setenv("RETAILFLOW_DB", UNREACHABLE)
    code, output = retailflow(capsys, caplog, "--db", UNREACHABLE, *command, "--help")
    assert code == 0 and "Usage" in output, output
    assert_no_secret(output, f"retailflow {' '.join(command)} --help")


@pytest.mark.parametrize("url", [UNREACHABLE, f"postgresql://postgres:{DB_PASSWORD}@127.0.0.1:port/shop",
                                 f"postgresql://postgres:{DB_PASSWORD}@[127.0.0.1/shop",
                                 f"mysql://postgres:{DB_PASSWORD}@127.0.0.1/shop"],
                         ids=["unreachable", "bad-port", "unparseable", "unsupported"])
def test_connection_failures_show_the_url_masked(url, capsys, caplog, secret_env, tmp_path):
    for command in DATABASE_COMMANDS:
        args = [arg.replace("{tmp}", str(tmp_path)) for arg in command]
        code, output = retailflow(capsys, caplog, "--db", url, *args)
        assert code == 2, f"retailflow {' '.join(command)}: exit {code}\n{output}"
        assert_no_secret(output, f"retailflow {' '.join(command)} on {url}")
        assert mask_url(url) in output and "Traceback" not in output, output


def test_a_real_process_masks_the_url_of_an_unreachable_database(secret_env):
    result = subprocess.run([sys.executable, "-m", "retailflow", "--db", UNREACHABLE, "validate"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.startswith("error: cannot connect to postgresql://postgres:***@127.0.0.1:1/shop")
    assert_no_secret(result.stdout + result.stderr, "stderr")


def test_every_output_of_a_whole_run_is_free_of_secrets(secret_url, smtp_requiring_login, capsys, caplog,
                                                         tmp_path):
    caplog.set_level("INFO")
    report, eml = tmp_path / "report.html", tmp_path / "eml"

    def requeue() -> None:
        with psycopg.connect(secret_url) as connection:
            connection.execute("UPDATE notifications.outbox SET status = 'queued' WHERE status = 'sent'")

    steps = [
        ["run", str(SAMPLE_DIR)], ["ingest", str(SAMPLE_DIR)], ["validate"], ["quarantine"],
        ["quarantine", "show", "store_sales_header"], ["quarantine", "replay"], ["reconcile"], ["rules"],
        ["promotions", "--format", "json"], ["inventory"], ["loyalty"], ["loyalty", "explain", "T001"],
        ["segments", "--format", "csv"], ["notify", "--sender", "log"], requeue,
        ["notify", "--sender", "file", "--out", str(eml)], requeue,
        ["notify", "--sender", "smtp"],  # every login refused: the messages fail with the server's reply
        ["report", "--out", str(report)],
    ]
    for step in steps:
        if callable(step):
            step()
            continue
        code, output = retailflow(capsys, caplog, "--db", secret_url, *step)
        assert code == 0, f"retailflow {' '.join(step)}: exit {code}\n{output}"
        assert_no_secret(output, f"the output of retailflow {' '.join(step)}")
    assert set(smtp_requiring_login) == {SMTP_PASSWORD}  # the password did reach the server

    with psycopg.connect(secret_url) as connection:
        outbox = connection.execute("SELECT * FROM notifications.outbox").fetchall()
        errors = [row[0] for row in connection.execute(
            "SELECT last_error FROM notifications.outbox WHERE status = 'failed'").fetchall()]
    assert errors and all(error.startswith("SMTP error") for error in errors), errors
    assert_no_secret(repr(outbox), "notifications.outbox")
    files = sorted(eml.glob("*.eml"))
    assert files
    for path in files:
        assert_no_secret(path.read_text(encoding="utf-8", errors="replace"), path.name)
    html = report.read_text(encoding="utf-8")
    assert_no_secret(html, "report.html")
    assert mask_url(secret_url) in html
