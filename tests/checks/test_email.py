"""`retailflow checks --email`: one message per run to an operator, through the loyalty e-mails' senders."""

from __future__ import annotations

import email

from typer.testing import CliRunner

from helpers import SAMPLE_DIR
from retailflow.cli import app


def test_the_operator_gets_one_message_listing_the_findings(tmp_path):
    # The sample's 9 store-days without sales files (tests/test_stages.py works them out), headers and lines: 18.
    database = f"duckdb:///{tmp_path}/shop.duckdb"
    runner = CliRunner()
    assert runner.invoke(app, ["--db", database, "-q", "run", str(SAMPLE_DIR)]).exit_code == 0
    sent = runner.invoke(app, ["--db", database, "-q", "checks", "--email", "ops@shop.example", "--sender", "file",
                               "--out", str(tmp_path / "mail")])
    assert sent.exit_code == 0, sent.output
    files = list((tmp_path / "mail").glob("*.eml"))
    assert len(files) == 1
    message = email.message_from_bytes(files[0].read_bytes())
    assert message["To"] == "ops@shop.example" and "18 open finding(s)" in message["Subject"]
    assert "ST03 2024-12-05" in message.get_payload()
