"""CSV (or Parquet) files to the raw layer: no validation, every value kept as text, with lineage."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from retailflow import catalog
from retailflow.backends import NOW, Backend
from retailflow.errors import UserError
from retailflow.model import ENTITIES, Entity, person_references
from retailflow.privacy.pseudonyms import erasures_on_record, suppress_erased
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
    with backend.transaction():
        results = _load(backend, planned, restate, on_loaded)
        backend.analyse_loaded_tables()
    return results


@dataclass
class _Slot:
    """One entity's rows of one planned file, in file order: its result once known, and its load when it loads."""

    plan: FilePlan
    feed: Feed
    rows: parsing.FileRows
    result: IngestResult | None = None
    batch_id: int | None = None
    mode: str = "append"
    extra: tuple[str, ...] = ()


def _load(backend: Backend, planned: Sequence[FilePlan], restate: bool,
          on_loaded: Callable[[IngestResult], None]) -> list[IngestResult]:
    """Load every planned file: batch ids given up front in file order, each entity's files in one bulk_load_files
    call, the audit.batches rows in one INSERT; `on_loaded` hears of the files in order, as soon as each is done."""
    with contextlib.ExitStack() as stack:
        slots = [_Slot(plan, feed, rows) for plan in planned for feed, rows in stack.enter_context(plan.rows())]
        pending = _number(backend, slots, restate)
        by_entity: dict[str, list[_Slot]] = {}
        for slot in pending:
            by_entity.setdefault(slot.feed.entity.name, []).append(slot)
        erased: int | None = None
        told = 0
        for group in by_entity.values():
            if erased is None and person_references().get(group[0].feed.entity.name) is not None:
                erased = erasures_on_record(backend)  # once: suppress_erased costs a count per batch otherwise
            _load_entity(backend, group, bool(erased))
            while told < len(slots) and slots[told].result is not None:
                on_loaded(slots[told].result)
                told += 1
        backend.append_values(catalog.table("audit.batches"), [(
            slot.batch_id, slot.feed.entity.name, str(slot.plan.path), slot.plan.sha256, slot.plan.path.stat().st_size,
            slot.result.rows, ",".join(slot.plan.header), ",".join(slot.extra), "loaded", NOW,
            round(slot.result.seconds, 4), slot.mode, None if slot.plan.source.contract else slot.plan.source.name,
            "; ".join(slot.plan.drift) or None) for slot in pending],
            columns=["batch_id", "entity", "source_file", "sha256", "size_bytes", "rows", "columns", "extra_columns",
                     "status", "loaded_at", "load_seconds", "mode", "source", "drift"])
    for slot in slots[told:]:
        on_loaded(slot.result)
    return [slot.result for slot in slots]


def _number(backend: Backend, slots: Sequence[_Slot], restate: bool) -> list[_Slot]:
    """Give each slot to load its batch id, in file order; a file whose bytes an earlier batch of the entity loaded
    (before, or earlier in this ingest) is skipped. Returns the slots to load."""
    if not slots:
        return []
    hashes = ", ".join(backend.literal(sha) for sha in sorted({slot.plan.sha256 for slot in slots}))
    loaded: dict[tuple[str, str], tuple[int, str]] = {}
    for row in backend.fetch_dicts(f"SELECT batch_id, source_file, sha256, entity FROM audit.batches "
                                   f"WHERE sha256 IN ({hashes}) ORDER BY batch_id"):
        loaded.setdefault((row["sha256"], row["entity"]), (int(row["batch_id"]), row["source_file"]))
    next_batch = None
    pending = []
    for slot in slots:
        entity = slot.feed.entity
        key = (slot.plan.sha256, entity.name)
        if key in loaded:
            batch_id, source_file = loaded[key]
            nothing_to_do = "; nothing to restate, the day is staged as sent" if restate and not entity.master else ""
            slot.result = IngestResult(slot.plan.path, entity.name, "skipped", batch_id,
                                       note=f"identical to batch {batch_id} ({source_file}){nothing_to_do}")
            continue
        if next_batch is None:
            next_batch = int(backend.scalar("SELECT coalesce(max(batch_id), 0) + 1 FROM audit.batches"))
        slot.batch_id, next_batch = next_batch, next_batch + 1
        loaded[key] = (slot.batch_id, str(slot.plan.path))
        slot.mode = "derived" if slot.feed.derived_master else "restate" if restate and not entity.master else "append"
        slot.extra = tuple(name for name in slot.rows.columns if name not in entity.column_names)
        pending.append(slot)
    return pending


def _load_entity(backend: Backend, group: Sequence[_Slot], suppress: bool) -> None:
    """Load one entity's files with one bulk_load_files call and record each file's result."""
    entity = group[0].feed.entity
    started = time.perf_counter()
    backend.add_text_columns(entity.name, list(dict.fromkeys(name for slot in group for name in slot.extra)))
    counts = backend.bulk_load_files(entity.name, [(slot.rows, slot.batch_id, slot.plan.path.name) for slot in group])
    suppressed = [suppress_erased(backend, entity, slot.batch_id) if suppress else 0 for slot in group]
    seconds = time.perf_counter() - started
    total = sum(counts)
    for slot, loaded, erased in zip(group, counts, suppressed):
        plan = slot.plan
        notes = []
        if slot.feed.derived_master:
            notes.append(f"derived from {plan.path.name} ({plan.source.name})")
        elif slot.feed.key is not None:
            notes.append(f"one per {', '.join(entity.primary_key)} of {plan.path.name}")
        if erased:
            notes.append(f"{erased} row(s) of erased customers pseudonymised")
        if slot.mode == "restate":
            notes.append("restates its dates when validated")
        if entity.name == plan.entity.name:
            notes = [*filter(None, plan.notes), *notes]
        # The files load together: each is given its share of the time by its rows.
        share = loaded / total if total else 1 / len(group)
        slot.result = IngestResult(plan.path, entity.name, "loaded", slot.batch_id, loaded, seconds * share,
                                   note="; ".join(notes))
