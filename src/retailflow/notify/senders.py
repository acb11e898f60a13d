"""Where messages go: a structured log line, an .eml file per message, or an SMTP server."""

from __future__ import annotations

import json
import logging
import os
import smtplib
from email.message import EmailMessage
from pathlib import Path

from retailflow.config import env, env_flag
from retailflow.errors import UserError

log = logging.getLogger("retailflow.notify")


class SendError(Exception):
    """The message was not accepted; the outbox row is marked failed with this text."""


class LogSender:
    """Simulated delivery: one JSON log line per message (the default)."""

    name = "log"

    def __init__(self) -> None:
        # INFO lines go nowhere until logging is configured (the CLI does not): then print them on stderr.
        if not log.hasHandlers():
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter("%(message)s"))
            log.addHandler(handler)
            log.setLevel(logging.INFO)

    def send(self, message: EmailMessage) -> None:
        log.info(json.dumps({"to": message["To"], "subject": message["Subject"], "message_id": message["Message-ID"]}))


def eml_name(message_key: str) -> str:
    """The file name FileSender gives the message of an outbox key."""
    return message_key.replace(":", "_").replace("/", "_") + ".eml"


class FileSender:
    """One RFC 5322 .eml file per message in a folder, named by its outbox key."""

    name = "file"

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        # Absolute: the outbox records where each file went, and forget may run from another directory.
        self.folder = folder.resolve()

    def file_path(self, message_key: str) -> Path:
        """The absolute path of the file written for the message of an outbox key."""
        return self.folder / eml_name(message_key)

    def send(self, message: EmailMessage) -> None:
        target = self.file_path(message["X-Retailflow-Key"])
        # Written aside, then renamed: whatever picks up *.eml never sees half a message after a crash.
        partial = target.with_name(f"{target.name}.partial")
        partial.write_bytes(bytes(message))
        os.replace(partial, target)


class SmtpSender:
    """A real SMTP server; settings only from the environment, the password never printed."""

    name = "smtp"

    def __init__(self) -> None:
        self.host = env("RETAILFLOW_SMTP_HOST") or ""
        if not self.host:
            raise UserError("set RETAILFLOW_SMTP_HOST (and _PORT, _STARTTLS, _USER, _PASSWORD) to send by SMTP")
        port = env("RETAILFLOW_SMTP_PORT") or "25"
        if not port.isdigit():
            raise UserError(f"RETAILFLOW_SMTP_PORT must be a port number such as 25 or 587, not {port!r}")
        self.port = int(port)
        self.starttls = env_flag("RETAILFLOW_SMTP_STARTTLS")
        self.user = env("RETAILFLOW_SMTP_USER")
        self._password = env("RETAILFLOW_SMTP_PASSWORD")
        self._connection: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        if self._connection is None:
            connection = smtplib.SMTP(self.host, self.port, timeout=30)
            try:
                if self.starttls:
                    connection.starttls()
                if self.user:
                    connection.login(self.user, self._password or "")
            except BaseException:
                connection.close()  # a refused login must not leave the socket open until garbage collection
                raise
            self._connection = connection
        return self._connection

    def send(self, message: EmailMessage) -> None:
        try:
            refused = self._connect().send_message(message)
        except smtplib.SMTPRecipientsRefused as error:
            raise SendError(f"recipient refused: {next(iter(error.recipients.values()))}") from None
        except (smtplib.SMTPException, OSError) as error:
            self._connection = None
            raise SendError(f"SMTP error: {error}") from None
        if refused:
            raise SendError(f"recipient refused: {refused}")

    def close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.quit()
            except smtplib.SMTPException:
                pass
            self._connection = None


def make_sender(name: str, out_dir: Path | None = None):
    if name == "log":
        return LogSender()
    if name == "file":
        return FileSender(out_dir or Path("outbox"))
    if name == "smtp":
        return SmtpSender()
    raise UserError(f"unknown sender {name!r}; use log, file or smtp")
