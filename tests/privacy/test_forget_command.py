"""`retailflow forget` as typed: bad input is one line on stderr and exit code 2, nothing changed; the e-mail
files of the erased customers are deleted wherever `notify --out` put them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import SAMPLE_DIR
from retailflow.backends import connect
from retailflow.notify.outbox import MESSAGE_FILE

RETAILFLOW = Path(sys.executable).with_name("retailflow")
KEY = "command-test-key-0123456789"


def _retailflow(url: str, *args: str, key: str | None = KEY, cwd: Path | None = None):
    env = {key_name: value for key_name, value in os.environ.items() if key_name != "RETAILFLOW_PII_KEY"}
    if key:
        env["RETAILFLOW_PII_KEY"] = key
    return subprocess.run([str(RETAILFLOW), "--db", url, "-q", *args], capture_output=True, text=True,
                          env={**env, "COLUMNS": "200"}, timeout=120, cwd=cwd)


def _forget(database: Path, *args: str, key: str | None = KEY):
    return _retailflow(f"duckdb:///{database}", "forget", *args, key=key)


def test_forget_reports_bad_input_in_one_line(tmp_path):
    database = tmp_path / "shop.duckdb"
    subprocess.run([str(RETAILFLOW), "--db", f"duckdb:///{database}", "-q", "ingest", str(SAMPLE_DIR), "--validate"],
                   check=True, capture_output=True, timeout=120)

    missing = _forget(database, "C01", key=None)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "RETAILFLOW_PII_KEY" in missing.stderr

    unknown = _forget(database, "C404", "C405")
    assert unknown.returncode == 2 and "not found, skipped: C404, C405" in unknown.stderr

    ids = tmp_path / "ids.csv"
    ids.write_text("customer_id,note\nC02,asked by phone\nC404,\n")
    erased = _forget(database, "--file", str(ids), "--reason", "ticket 7")
    assert erased.returncode == 0, erased.stderr
    assert "erased 1 customer(s)" in erased.stdout and "C404" in erased.stderr
    assert "staging.customer_details" in erased.stdout

    again = _forget(database, "C02")
    assert again.returncode == 0 and "already erased 1" in again.stdout

    no_ids = _forget(database)
    assert no_ids.returncode == 2 and "give the customer ids" in no_ids.stderr


@pytest.mark.parametrize("db_url", ["duckdb", "postgres"], indirect=True)
def test_forget_deletes_the_mail_files_wherever_notify_wrote_them(db_url, tmp_path):
    shop, desk = tmp_path / "shop", tmp_path / "desk"
    shop.mkdir()
    desk.mkdir()
    for command in (["ingest", str(SAMPLE_DIR), "--validate"], ["loyalty"],
                    ["notify", "--sender", "file", "--out", "mail"]):
        ran = _retailflow(db_url, *command, cwd=shop)
        assert ran.returncode == 0, ran.stderr
    mail = shop / "mail"
    # Six customers earned points; C06's address (finn.example.com) is invalid: five messages, one per customer.
    assert sorted(path.name[:3] for path in mail.glob("*.eml")) == ["C01", "C02", "C03", "C04", "C05"]
    assert "ann@example.com" in next(mail.glob("C01_*.eml")).read_text()

    # As docs/how-to/erase-a-customer.md shows it: no --outbox, and from another folder (where no ./outbox exists).
    erased = _retailflow(db_url, "forget", "C01", cwd=desk)

    assert erased.returncode == 0, erased.stderr
    assert "erased 1 customer(s); already erased 0; unknown 0; 1 .eml file(s) removed" in erased.stdout
    assert sorted(path.name[:3] for path in mail.iterdir()) == ["C02", "C03", "C04", "C05"]
    assert not [path.name for path in [*mail.iterdir(), *desk.iterdir()] if "ann@example.com" in path.read_text()]
    backend = connect(db_url)
    try:
        recorded = dict(backend.fetch(f"SELECT customer_id, {MESSAGE_FILE} FROM notifications.outbox")[1])
    finally:
        backend.close()
    # The erased customer's row no longer names a file (its name held the id); the others name theirs, absolute.
    assert sorted(customer[:5] for customer, path in recorded.items() if path is None) == ["C06", "anon-"]
    assert sorted(path for path in recorded.values() if path) == sorted(str(path) for path in mail.resolve().iterdir())

    again = _retailflow(db_url, "forget", "C01", cwd=desk)
    assert again.returncode == 0 and "already erased 1; unknown 0; 0 .eml file(s) removed" in again.stdout
