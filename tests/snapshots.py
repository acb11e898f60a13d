"""Every table of a retailflow database as multisets of normalised rows, and their differences.

Used to compare two runs that must agree: a killed-and-re-run stage with a clean run, and one
engine with another.
"""

from __future__ import annotations

import collections
import datetime as dt
import decimal
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

SCHEMAS = ("raw", "staging", "quarantine", "audit", "analytics", "loyalty", "notifications")

#: Columns whose values legitimately differ between two correct runs, and why. Everything else
#: must be identical. `*` matches every table of the schema.
VOLATILE_COLUMNS = {
    ("audit", "batches", "loaded_at"): "wall-clock time the file was loaded",
    ("audit", "batches", "load_seconds"): "how long the load took",
    ("audit", "batches", "validated_at"): "wall-clock time the batch was validated",
    ("audit", "batches", "validate_seconds"): "how long validation took",
    ("audit", "rule_results", "recorded_at"): "wall-clock time the rule counts were written",
    ("quarantine", "*", "_quarantined_at"): "wall-clock time the row was quarantined",
    ("loyalty", "points_ledger", "recorded_at"): "wall-clock time the points were credited",
    ("loyalty", "opening_balances", "recorded_at"): "wall-clock time the opening balance was taken",
    ("loyalty", "runs", "started_at"): "wall-clock time the loyalty run started",
    ("analytics", "churn_model", "fitted_at"): "wall-clock time the churn model was fitted",
    ("notifications", "outbox", "queued_at"): "wall-clock time the message was queued",
    ("audit", "erasures", "erased_at"): "wall-clock time the customer was erased",
    ("notifications", "outbox", "sent_at"): "wall-clock time the server (or the log) took it",
    ("notifications", "outbox", "next_attempt_at"): "now + back-off, set only after a failed attempt",
    ("analytics", "store_day_deliveries", "first_loaded_at"): "wall-clock time the day's first file was loaded",
    ("analytics", "store_day_deliveries", "last_loaded_at"): "wall-clock time the day's last file was loaded",
    ("audit", "expected_deliveries", "first_loaded_at"): "wall-clock time the delivery first arrived",
    ("audit", "expected_deliveries", "reported_missing_at"): "wall-clock time a checks run found it missing",
}
#: Logs of runs, where every correct run adds its row (a run again adds one more), and the set-up record: not compared.
RUN_LOGS = {("audit", "check_runs"): "one row per checks run",
            ("audit", "setup"): "which code set the database up, and when: it names the engine's backend"}
# Loyalty run ids (UTC time + random suffix) are not ignored but replaced everywhere, also inside
# outbox keys and Message-IDs, by their position in loyalty.runs: an extra run, or a message or
# ledger row pointing at another run than in the clean run, still shows.
RUN_ID = re.compile(r"\d{8}T\d{6}-[0-9a-f]{6}")


Query = Callable[[str], tuple[list[str], list[tuple]]]


@dataclass
class Snapshot:
    """Every table of the retailflow schemas: qualified name -> (columns kept, Counter of rows)."""

    tables: dict[str, tuple[list[str], collections.Counter]] = field(default_factory=dict)
    report: str | None = None


def _is_volatile(schema: str, table: str, column: str) -> bool:
    return (schema, table, column) in VOLATILE_COLUMNS or (schema, "*", column) in VOLATILE_COLUMNS


def _normalised(value: object, run_ids: dict[str, str]) -> object:
    if isinstance(value, str):
        return RUN_ID.sub(lambda found: run_ids.get(found.group(0), "run-unknown"), value)
    if isinstance(value, float):
        # Engines may add doubles in another order when they parallelise an aggregate.
        return round(value, 9)
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def _quoted(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def snapshot(query: Query, tables: Sequence[tuple[str, str]] | None = None) -> Snapshot:
    """Every table of the retailflow schemas, volatile columns left out and run ids numbered.

    `tables` lists (schema, table) where information_schema names schemas otherwise (MySQL).
    """
    if tables is None:
        schemas = ", ".join(f"'{schema}'" for schema in SCHEMAS)
        _, tables = query("SELECT table_schema, table_name FROM information_schema.tables "
                          f"WHERE table_schema IN ({schemas}) AND table_type = 'BASE TABLE'")
        tables = [tuple(row) for row in tables]
    run_ids: dict[str, str] = {}
    if ("loyalty", "runs") in tables:
        _, runs = query("SELECT run_id FROM loyalty.runs ORDER BY started_at, run_id")
        run_ids = {run_id: f"run-{index}" for index, (run_id,) in enumerate(runs, start=1)}
    result = Snapshot()
    for schema, table in sorted(tables):
        if (schema, table) in RUN_LOGS:
            continue
        names, _ = query(f'SELECT * FROM "{schema}"."{table}" LIMIT 0')
        kept = [name for name in names if not _is_volatile(schema, table, name)]
        _, rows = query(f'SELECT {", ".join(_quoted(name) for name in kept)} FROM "{schema}"."{table}"')
        result.tables[f"{schema}.{table}"] = (kept, collections.Counter(
            tuple(_normalised(value, run_ids) for value in row) for row in rows))
    return result


def differences(expected: Snapshot, actual: Snapshot) -> list[str]:
    """Readable differences: tables missing or extra, rows missing or extra (duplicates are extra)."""
    problems = [f"table {name} missing" for name in sorted(expected.tables.keys() - actual.tables.keys())]
    problems += [f"unexpected table {name}" for name in sorted(actual.tables.keys() - expected.tables.keys())]
    for name in sorted(expected.tables.keys() & actual.tables.keys()):
        columns, want = expected.tables[name]
        got_columns, got = actual.tables[name]
        if columns != got_columns:
            problems.append(f"{name}: columns {got_columns} instead of {columns}")
            continue
        problems += [f"{name}: missing {count}x {dict(zip(columns, row))}"
                     for row, count in sorted((want - got).items(), key=repr)[:5]]
        problems += [f"{name}: extra {count}x {dict(zip(columns, row))}"
                     for row, count in sorted((got - want).items(), key=repr)[:5]]
    if expected.report != actual.report:
        problems.append("report.html differs from the clean run's (beyond the time it was generated)")
    return problems
