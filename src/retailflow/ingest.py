"""CSV (or Parquet) files to the raw layer: no validation, every value kept as text, with lineage."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from retailflow import catalog
from retailflow.backends import NOW, Backend
from retailflow.errors import UserError
from retailflow.model import ENTITIES, Entity
from retailflow.privacy.pseudonyms import suppress_erased
from retailflow.sources import parsing
from retailflow.sources.mapping import Source, SourceMap, contract_source
from retailflow.sources.reading import Feed, FilePlan, plan_file

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


def is_input_name(name: str) -> bool:
    """Whether a file or folder name is read at all: not hidden ('.') nor set aside ('_', e.g. the generator's
    _truth, the watcher's _failed)."""
    return not name.startswith((".", "_"))


def is_input_file(path: Path) -> bool:
    """A file name retailflow reads: CSV or Parquet, not hidden or set aside."""
    return is_input_name(path.name) and path.suffix.lower() in INPUT_SUFFIXES


def discover(paths: Sequence[Path], entity_name: str | None = None,
             sources: SourceMap = SourceMap()) -> list[tuple[Path, Source]]:
    """Input files under `paths` with the source that reads each (a mapped source, else the contract's entity);
    folders are scanned (sorted, `_`-prefixed folders skipped), a file no source reads is left there."""
    forced = contract_source(_entity_named(entity_name)) if entity_name else None
    found: list[tuple[Path, Source]] = []
    for path in paths:
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and is_input_name(p.name)
                           and all(map(is_input_name, p.relative_to(path).parts)))
            found += [(file, source) for file in files
                      if (source := forced or _readable(file, sources))]
        elif path.is_file():
            source = forced or sources.source_for(path)
            if source is None:
                raise UserError(f"{path}: cannot tell which entity this file holds from its name; name it like "
                                f"stores.csv, pass --entity ({', '.join(ENTITIES)}) or map it in a source mapping "
                                "(see `retailflow map`)")
            found.append((path, source))
        else:
            raise UserError(f"{path}: no such file or folder")
    if not found:
        raise UserError(f"no input files found in {', '.join(map(str, paths))}; expected files such as "
                        "stores.csv, store_sales_header_2024-12-13.csv, or files a source mapping names")
    return found


def _readable(path: Path, sources: SourceMap) -> Source | None:
    """The source of a file found in a folder: a mapped one by name, or the contract for CSV and Parquet files."""
    source = sources.source_for(path)
    if source and source.contract and path.suffix.lower() not in INPUT_SUFFIXES:
        return None
    return source


def _entity_named(name: str) -> Entity:
    if name not in ENTITIES:
        raise UserError(f"unknown entity {name!r}; use one of {', '.join(ENTITIES)}")
    return ENTITIES[name]


def _plan(backend: Backend, path: Path, source: Source | Entity, earlier: dict[str, list[list[str]]]) -> FilePlan:
    """Plan one file; `earlier` holds the headers of the files of each source planned before it in this ingest,
    which count as the source's earlier files as much as the loaded ones."""
    if isinstance(source, Entity):
        source = contract_source(source)
    if source.contract:
        return plan_file(path, source, parsing.sha256_of(path), None)
    rows = backend.fetch_dicts(f"SELECT columns FROM audit.batches WHERE source = {backend.literal(source.name)} "
                               "AND mode <> 'derived' ORDER BY batch_id")
    headers = [[name for name in str(row["columns"] or "").split(",") if name] for row in rows]
    headers += earlier.get(source.name, [])
    known = sorted({name for header in headers for name in header}) or None
    plan = plan_file(path, source, parsing.sha256_of(path), known, headers[0] if headers else None)
    earlier.setdefault(source.name, []).append(plan.header)
    return plan


def ingest(backend: Backend, files: Iterable[tuple[Path, Source | Entity]],
           on_loaded: Callable[[IngestResult], None] = lambda result: None, *,
           restate: bool = False) -> list[IngestResult]:
    """Load every file into raw as one batch per entity it feeds; all files or none (one transaction).

    With `restate`, each fact file replaces what is staged for its entity and business dates when it is
    validated (a corrected day re-sent); a master file replaces the staged rows of its keys either way.
    `on_loaded` hears about each file as it is done (a progress bar); nothing is committed until the end.
    """
    earlier: dict[str, list[list[str]]] = {}
    planned = [_plan(backend, path, source, earlier) for path, source in files]
    results: list[IngestResult] = []
    with backend.transaction():
        for plan in planned:
            for result in _load(backend, plan, restate):
                results.append(result)
                on_loaded(result)
        backend.analyse_loaded_tables()
    return results


def _load(backend: Backend, plan: FilePlan, restate: bool = False) -> list[IngestResult]:
    results = []
    with plan.rows() as feeds:
        for feed, rows in feeds:
            results.append(_load_feed(backend, plan, feed, rows, restate))
    fact = next(result for result in results if result.entity == plan.entity.name)
    if fact.status == "loaded":
        fact.note = "; ".join(filter(None, [*plan.notes, fact.note]))
    return results


def _load_feed(backend: Backend, plan: FilePlan, feed: Feed, rows: parsing.FileRows,
               restate: bool) -> IngestResult:
    entity = feed.entity
    previous = backend.fetch_dicts(
        f"SELECT batch_id, source_file FROM audit.batches WHERE sha256 = {backend.literal(plan.sha256)} "
        f"AND entity = {backend.literal(entity.name)} ORDER BY batch_id LIMIT 1")
    if previous:
        nothing_to_do = "; nothing to restate, the day is staged as sent" if restate and not entity.master else ""
        return IngestResult(plan.path, entity.name, "skipped", int(previous[0]["batch_id"]),
                            note=f"identical to batch {previous[0]['batch_id']} ({previous[0]['source_file']})"
                                 f"{nothing_to_do}")
    mode = "derived" if feed.derived_master else "restate" if restate and not entity.master else "append"
    started = time.perf_counter()
    batch_id = int(backend.scalar("SELECT coalesce(max(batch_id), 0) + 1 FROM audit.batches"))
    extra = [name for name in rows.columns if name not in entity.column_names]
    backend.add_text_columns(entity.name, extra)
    loaded = backend.bulk_load(rows, entity.name, batch_id, plan.path.name)
    suppressed = suppress_erased(backend, entity, batch_id)
    seconds = time.perf_counter() - started
    source = None if plan.source.contract else plan.source.name
    backend.append_values(catalog.table("audit.batches"), [(
        batch_id, entity.name, str(plan.path), plan.sha256, plan.path.stat().st_size, loaded, ",".join(plan.header),
        ",".join(extra), "loaded", NOW, round(seconds, 4), mode, source, "; ".join(plan.drift) or None)],
        columns=["batch_id", "entity", "source_file", "sha256", "size_bytes", "rows", "columns", "extra_columns",
                 "status", "loaded_at", "load_seconds", "mode", "source", "drift"])
    notes = []
    if feed.derived_master:
        notes.append(f"derived from {plan.path.name} ({plan.source.name})")
    elif feed.key is not None:
        notes.append(f"one per {', '.join(entity.primary_key)} of {plan.path.name}")
    if suppressed:
        notes.append(f"{suppressed} row(s) of erased customers pseudonymised")
    if mode == "restate":
        notes.append("restates its dates when validated")
    return IngestResult(plan.path, entity.name, "loaded", batch_id, loaded, seconds, note="; ".join(notes))
