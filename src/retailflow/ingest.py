"""CSV (or Parquet) files to the raw layer: no validation, every value kept as text, with lineage."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from retailflow.backends import Backend
from retailflow.backends import csv_reader
from retailflow.errors import UserError
from retailflow.model import ENTITIES, LINEAGE_COLUMNS, Entity, entity_for_file
from retailflow.privacy.pseudonyms import suppress_erased

INPUT_SUFFIXES = (".csv", ".parquet")


@dataclass
class IngestResult:
    """What happened to one input file."""

    path: Path
    entity: str
    status: str
    batch_id: int | None = None
    rows: int = 0
    seconds: float = 0.0
    note: str = ""


@dataclass
class PlannedFile:
    path: Path
    entity: Entity
    columns: list[str]
    sha256: str


def is_input_name(name: str) -> bool:
    """Whether a file or folder name is read at all: not hidden ('.') nor set aside ('_', e.g. the generator's
    _truth, the watcher's _failed)."""
    return not name.startswith((".", "_"))


def is_input_file(path: Path) -> bool:
    """A file name retailflow reads: CSV or Parquet, not hidden or set aside."""
    return is_input_name(path.name) and path.suffix.lower() in INPUT_SUFFIXES


def discover(paths: Sequence[Path], entity_name: str | None = None) -> list[tuple[Path, Entity]]:
    """Input files under `paths` with their entity; folders are scanned (sorted, `_`-prefixed folders skipped)."""
    forced = _entity_named(entity_name) if entity_name else None
    found: list[tuple[Path, Entity]] = []
    for path in paths:
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and is_input_file(p)
                           and all(map(is_input_name, p.relative_to(path).parts)))
            found += [(file, forced or entity) for file in files if (entity := entity_for_file(file)) or forced]
        elif path.is_file():
            entity = forced or entity_for_file(path)
            if entity is None:
                raise UserError(f"{path}: cannot tell which entity this file holds from its name; "
                                f"name it like stores.csv or pass --entity ({', '.join(ENTITIES)})")
            found.append((path, entity))
        else:
            raise UserError(f"{path}: no such file or folder")
    if not found:
        raise UserError(f"no input files found in {', '.join(map(str, paths))}; expected files such as "
                        "stores.csv, store_sales_header_2024-12-13.csv")
    return found


def _entity_named(name: str) -> Entity:
    if name not in ENTITIES:
        raise UserError(f"unknown entity {name!r}; use one of {', '.join(ENTITIES)}")
    return ENTITIES[name]


def _plan(path: Path, entity: Entity) -> PlannedFile:
    columns = csv_reader.read_header(path)
    missing = [name for name in entity.required_columns if name not in columns]
    if missing:
        raise UserError(f"{path}:1: missing required column(s) {', '.join(missing)} for {entity.name}; "
                        f"the header has {', '.join(columns)}")
    reserved = [name for name in columns if name in LINEAGE_COLUMNS or name.startswith("_")]
    if reserved:
        raise UserError(f"{path}:1: column name(s) {', '.join(reserved)} are reserved; rename them in the export")
    return PlannedFile(path, entity, columns, csv_reader.sha256_of(path))


def ingest(backend: Backend, files: Iterable[tuple[Path, Entity]],
           on_loaded: Callable[[IngestResult], None] = lambda result: None, *,
           restate: bool = False) -> list[IngestResult]:
    """Load every file into raw.<entity> as a batch; all files or none (one transaction).

    With `restate`, each fact file replaces what is staged for its entity and business dates when it is
    validated (a corrected day re-sent); a master file replaces the staged rows of its keys either way.
    `on_loaded` hears about each file as it is done (a progress bar); nothing is committed until the end.
    """
    planned = [_plan(path, entity) for path, entity in files]
    results: list[IngestResult] = []
    with backend.transaction():
        for plan in planned:
            results.append(_load(backend, plan, restate))
            on_loaded(results[-1])
        backend.analyse_loaded_tables()
    return results


def _load(backend: Backend, plan: PlannedFile, restate: bool = False) -> IngestResult:
    entity = plan.entity
    previous = backend.fetch_dicts(
        f"SELECT batch_id, source_file FROM audit.batches WHERE sha256 = {backend.literal(plan.sha256)} "
        f"AND entity = {backend.literal(entity.name)} ORDER BY batch_id LIMIT 1")
    if previous:
        nothing_to_do = "; nothing to restate, the day is staged as sent" if restate and not entity.master else ""
        return IngestResult(plan.path, entity.name, "skipped", int(previous[0]["batch_id"]),
                            note=f"identical to batch {previous[0]['batch_id']} ({previous[0]['source_file']})"
                                 f"{nothing_to_do}")
    mode = "restate" if restate and not entity.master else "append"
    started = time.perf_counter()
    batch_id = int(backend.scalar("SELECT coalesce(max(batch_id), 0) + 1 FROM audit.batches"))
    extra = [name for name in plan.columns if name not in entity.column_names]
    backend.add_text_columns(entity.name, extra)
    rows = backend.bulk_load(plan.path, csv_reader.file_format(plan.path), entity.name, plan.columns,
                             batch_id, plan.path.name)
    suppressed = suppress_erased(backend, entity, batch_id)
    seconds = time.perf_counter() - started
    backend.execute(
        "INSERT INTO audit.batches (batch_id, entity, source_file, sha256, size_bytes, rows, columns, extra_columns, "
        "status, loaded_at, load_seconds, mode) VALUES ("
        f"{batch_id}, {backend.literal(entity.name)}, {backend.literal(str(plan.path))}, {backend.literal(plan.sha256)}, "
        f"{plan.path.stat().st_size}, {rows}, {backend.literal(','.join(plan.columns))}, "
        f"{backend.literal(','.join(extra))}, 'loaded', CURRENT_TIMESTAMP, {seconds:.4f}, {backend.literal(mode)})")
    notes = [f"extra columns kept in raw: {', '.join(extra)}"] if extra else []
    # A column the model expects but may do without (a renamed customer column makes every sale anonymous): said.
    absent = [column.name for column in entity.columns if column.name not in plan.columns and not column.optional]
    if absent:
        notes.append(f"column(s) absent, empty in every row: {', '.join(absent)}")
    if suppressed:
        notes.append(f"{suppressed} row(s) of erased customers pseudonymised")
    if mode == "restate":
        notes.append("restates its dates when validated")
    return IngestResult(plan.path, entity.name, "loaded", batch_id, rows, seconds, note="; ".join(notes))
