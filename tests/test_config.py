"""Settings from the environment are declared once (config.VARIABLES) and read in one place (config.env)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from retailflow.config import VARIABLES, env, env_flag

SOURCE = Path(__file__).resolve().parents[1] / "src" / "retailflow"


def test_every_variable_the_code_names_is_declared():
    named = {name for path in SOURCE.rglob("*.py") for name in re.findall(r"RETAILFLOW_[A-Z_]+[A-Z]", path.read_text())}
    # RETAILFLOW_SMTP_ in a message ("and _PORT, _USER …") is the family's prefix, not a variable.
    assert named - {"RETAILFLOW_SMTP"} <= set(VARIABLES), sorted(named - set(VARIABLES))


def test_only_config_reads_the_environment_for_our_settings():
    readers = [path.relative_to(SOURCE) for path in SOURCE.rglob("*.py") if path.name != "config.py"
               and re.search(r"os\.environ(\.get)?\(?\[?[\"']RETAILFLOW_", path.read_text())]
    assert readers == []


def test_an_empty_value_is_unset_unless_it_means_something(monkeypatch):
    monkeypatch.setenv("RETAILFLOW_DB", "")
    monkeypatch.setenv("RETAILFLOW_ANONYMOUS_IDS", "")
    monkeypatch.setenv("RETAILFLOW_QUIET", "Yes")
    assert env("RETAILFLOW_DB") is None and env("RETAILFLOW_ANONYMOUS_IDS") == "" and env_flag("RETAILFLOW_QUIET")
    with pytest.raises(KeyError):
        env("RETAILFLOW_UNDECLARED")


def test_the_settings_command_lists_every_variable_and_hides_secrets(tmp_path):
    import json
    import os
    import subprocess
    import sys

    from retailflow.config import VARIABLES

    env = {**os.environ, "RETAILFLOW_PII_KEY": "a-secret-key-of-some-length",
           "RETAILFLOW_DB": "postgresql://etl:hunter2@db.example/shop", "RETAILFLOW_QUIET": "1"}
    listed = subprocess.run([sys.executable, "-m", "retailflow", "--db", f"duckdb:///{tmp_path}/x.duckdb", "settings",
                             "--format", "json"], capture_output=True, text=True, env=env, timeout=120)
    assert listed.returncode == 0, listed.stderr
    rows = {row["variable"]: row for row in json.loads(listed.stdout)}
    assert set(rows) == set(VARIABLES)
    assert "a-secret" not in listed.stdout and "hunter2" not in listed.stdout
    assert rows["RETAILFLOW_PII_KEY"]["value"] == "(set, hidden)"
    # --db wins over the environment; the environment's quiet is in effect.
    assert rows["RETAILFLOW_DB"]["in effect"] == f"duckdb:///{tmp_path}/x.duckdb"
    assert rows["RETAILFLOW_QUIET"]["in effect"] == "yes"
