"""`retailflow map --check`: what a mapping (or the contract) would quarantine, per column, loading nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from exports import write_online_shop

RETAILFLOW = Path(sys.executable).with_name("retailflow")


def _check(tmp_path: Path, *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(RETAILFLOW), "--db", f"duckdb:///{tmp_path}/never.duckdb", *arguments],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120,
                          env={"COLUMNS": "250", "PATH": "/usr/bin:/bin"})


def test_check_names_each_column_its_problem_and_examples(tmp_path):
    export = write_online_shop(tmp_path)
    # Read as day first, 12/13/2010 is no date: the two lines of 13 December would be quarantined (lines 14 and 16).
    (tmp_path / "sources.yaml").write_text(export.mapping.replace("%m/%d/%Y %H:%M", "%d/%m/%Y %H:%M"))
    result = _check(tmp_path, "--sources", "sources.yaml", "map", "--check", str(export.files[0]))
    assert result.returncode == 2, result.stderr
    assert "store_sales_header.transaction_date" in result.stdout and "'12/13/2010 17:06'" in result.stdout
    assert not (tmp_path / "never.duckdb").exists(), "--check loads nothing"

    (tmp_path / "sources.yaml").write_text(export.mapping)
    result = _check(tmp_path, "--sources", "sources.yaml", "map", "--check", str(export.files[0]))
    assert result.returncode == 0 and "no problem found" in result.stdout, result.stdout + result.stderr


def test_check_reads_a_contract_file_too(tmp_path):
    # Line 3: a month-first date; line 4: no store id.
    (tmp_path / "stores.csv").write_text("store_id,store_name,opening_date\nS1,A,2024-01-01\nS2,B,01/02/2024\n,C,\n")
    result = _check(tmp_path, "map", "--check", "stores.csv")
    assert result.returncode == 2
    assert "stores.opening_date" in result.stdout and "'01/02/2024'" in result.stdout
    assert "stores.store_id" in result.stdout and "(empty)" in result.stdout
