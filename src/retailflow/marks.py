"""Changes and stage marks as they are stored: the latest change id, and per stage the last change it processed
with the digest of the parameters and code it ran with (audit.stage_marks; incremental.py writes them).

Plain SQL through the driver, no Ibis: a command whose stage has nothing new to do decides so here and answers
from its stored tables (answers.py) without importing Ibis (lazy.py).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from retailflow.backends import Backend


def latest_change(backend: Backend) -> int:
    return int(backend.scalar("SELECT coalesce(max(change_id), 0) FROM (SELECT change_id FROM audit.batch_dates "
                              "UNION ALL SELECT change_id FROM audit.master_changes) AS changes"))


def _mark_row(backend: Backend, stage: str) -> tuple[int, str | None] | None:
    """`stage`'s row of audit.stage_marks: (change id, parameters digest), or None when it has never run."""
    rows = backend.fetch(f"SELECT change_id, parameters FROM audit.stage_marks WHERE stage = {backend.literal(stage)}")[1]
    return (int(rows[0][0]), rows[0][1]) if rows else None


def mark(backend: Backend, stage: str) -> int | None:
    """The last change id `stage` has processed; None when it has never run (or was asked to rebuild)."""
    row = _mark_row(backend, stage)
    return None if row is None else row[0]


def up_to_date(backend: Backend, stage: str) -> bool:
    """Whether `stage` has processed every change there is."""
    return mark(backend, stage) == latest_change(backend)


def digest(stage: str, parameters: dict[str, object]) -> str:
    """What a stage's stored results depend on besides the data: its parameters and the code that made them (an
    upgrade or an edit of retailflow recomputes once)."""
    from retailflow.backends.sql_cache import code_version

    text = f"{stage} {sorted(parameters.items())!r} {code_version()}"
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def current(backend: Backend, stage: str, parameters: dict[str, object]) -> bool:
    """Whether `stage`'s stored results already answer a run with these `parameters`: it has processed every change
    there is, and its last run over the changed days used the same parameters and code (incremental.window's
    parameters). Two small reads: a stage with nothing new to do returns its stored results without recomputing
    anything."""
    row = _mark_row(backend, stage)
    return row is not None and row[1] == digest(stage, parameters) and row[0] == latest_change(backend)
