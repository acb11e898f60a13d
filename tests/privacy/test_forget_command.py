"""`retailflow forget` as typed: bad input is one line on stderr and exit code 2, nothing changed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from helpers import SAMPLE_DIR

RETAILFLOW = Path(sys.executable).with_name("retailflow")


def _forget(database: Path, *args: str, key: str | None = "command-test-key-0123456789"):
    env = {key_name: value for key_name, value in os.environ.items() if key_name != "RETAILFLOW_PII_KEY"}
    if key:
        env["RETAILFLOW_PII_KEY"] = key
    return subprocess.run([str(RETAILFLOW), "--db", f"duckdb:///{database}", "-q", "forget", *args],
                          capture_output=True, text=True, env={**env, "COLUMNS": "200"}, timeout=120)


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
