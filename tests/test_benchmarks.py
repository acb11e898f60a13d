"""The benchmarks docs/development.md lists still run and print their JSON (on tiny inputs; the figures are not judged)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.mark.slow
@pytest.mark.parametrize("arguments, fields", [
    (["startup.py", "--runs", "1"], {"help_seconds", "reconcile_empty_seconds", "targets_met"}),
    (["generate.py", "5000", "--no-inventory"], {"line_items", "line_items_per_second"}),
    (["ingest_validate.py", "--line-items", "2000", "--days", "7", "--stores", "3", "--products", "40", "--shape",
      "per-entity"], {"ingest_seconds", "validate_seconds", "ratio_to_floor", "floor_seconds", "typed_load_seconds",
                      "run_seconds", "idle_command_seconds", "ratio_run_to_floor", "ratio_to_typed_load"}),
    (["daily.py", "--line-items", "4000", "--days", "7", "--stores", "3", "--products", "40"], {"day_on_history", "day_on_masters",
                                                           "ratio_history_to_masters", "ratio_restated_to_day"}),
    # Not the generator's default 20 stores x 300 products x 30 days (180k inventory snapshots to build): the script
    # took 14.6 CPU seconds with them, 8.9 with these (2026-12-07, load 7-9). The other cases' time is each run's
    # fixed cost, not their rows: a quarter of their line items measured the same CPU seconds.
    (["forget.py", "--line-items", "1000", "--days", "7", "--stores", "2", "--products", "20", "--customers", "1",
      "5"], {"runs", "staged_line_items", "peak_rss_mb"}),
    (["checks.py", "--line-items", "10000", "--days", "42", "--stores", "6", "--products", "80", "--seed", "3",
      "--nights", "1"], {"precision", "recall", "ratio_checks_to_run"}),
    (["no_inventory.py", "--stores", "3", "--products", "30", "--days", "10", "--line-items", "2000",
      "--with-products", "20"], {"without_inventory", "with_inventory", "ratio_without_to_with"}),
], ids=lambda value: value[0] if isinstance(value, list) else "")
def test_benchmark_prints_its_json(arguments, fields, tmp_path):
    result = subprocess.run([sys.executable, str(BENCHMARKS / arguments[0]), *arguments[1:]], capture_output=True,
                            text=True, cwd=BENCHMARKS, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert fields <= set(json.loads(result.stdout.strip().splitlines()[-1]))


@pytest.mark.slow
def test_mapping_benchmark_stages_the_same_rows_from_the_export():
    result = subprocess.run([sys.executable, str(BENCHMARKS / "mapping.py"), "--line-items", "2000", "--days", "7",
                             "--runs", "1"], capture_output=True, text=True, cwd=BENCHMARKS, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    output = json.loads(result.stdout.strip().splitlines()[-1])
    assert output["staged_equal"] and output["unit_price_inexact_rows"] == 0
    assert not any(count for differing in output["differing_rows"].values() for count in differing.values())
    assert {"seconds", "ratio_mapped_to_contract", "ratios"} <= set(output)
