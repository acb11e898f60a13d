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
