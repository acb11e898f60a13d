"""Small helpers shared by tests: write CSV files, run the pipeline, read tables."""

from __future__ import annotations

from pathlib import Path

from retailflow.backends import Backend
from retailflow.ingest import discover, ingest
from retailflow.quality.engine import RouteOutcome, route_all
from retailflow.quality.rules import load_rules


def write_csv(folder: Path, name: str, text: str) -> Path:
    """Write `text` (leading/trailing blank lines removed) as folder/name."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text.strip("\n") + "\n", encoding="utf-8")
    return path


def load_and_validate(backend: Backend, *paths: Path, rules_path: Path | None = None) -> RouteOutcome:
    ingest(backend, discover(list(paths)))
    return route_all(backend, load_rules(rules_path), "validate")


def column(backend: Backend, sql: str) -> list:
    """The first column of a query, as a list."""
    return [row[0] for row in backend.fetch(sql)[1]]
