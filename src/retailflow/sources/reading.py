"""Planning the read of one received file: its header checked against its source, the drift found, and for
each entity it feeds the columns raw receives and the SQL of each (parsing.FileRows).

Raw keeps the file's own columns as received (lower-case names) and, beside them, our columns as the mapping
gives them. A file column whose name is one of ours that the mapping computes otherwise is kept as
`<name>_as_sent`. Everything is checked before anything is written: a file a plan refuses loads nothing.
"""

from __future__ import annotations

import codecs
import contextlib
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from retailflow.config import anonymous_ids
from retailflow.errors import UserError
from retailflow.model import ENTITIES, LINEAGE_COLUMNS, TYPE_PATTERNS, TYPE_WORDS, Entity
from retailflow.sources.expressions import cell_sql, literal, quote, target_sql, text_valued
from retailflow.sources.mapping import HEADER as HEADER_ENTITY
from retailflow.sources.mapping import SALES_LINES, ColumnSpec, Source, SourceMap
from retailflow.sources.parsing import FileRows, first_line, read_header, relation_sql

#: Rows of a file read to check that a given date format reads its values.
FORMAT_SAMPLE_ROWS = 1000
AS_SENT = "_as_sent"
TRANSCODE_CHUNK = 1 << 20


@dataclass
class Feed:
    """One entity's rows of a planned file."""

    entity: Entity
    #: Our column -> its spec (None: the file column of the same name).
    specs: dict[str, ColumnSpec | None]
    #: File columns kept in raw under their own name (or `<name>_as_sent`).
    kept: dict[str, str]
    #: Derived rows: one per distinct value of these columns (None: one per file row).
    key: tuple[str, ...] | None = None
    where: str | None = None

    @property
    def derived_master(self) -> bool:
        """Whether its rows are a master made from the file's facts (not the file's own entity)."""
        return self.key is not None and self.entity.master


@dataclass
class FilePlan:
    """How one received file is read: its source, header, drift and the entities it feeds."""

    path: Path
    source: Source
    header: list[str]
    sha256: str
    feeds: list[Feed]
    missing: frozenset[str] = frozenset()
    notes: list[str] = field(default_factory=list)
    drift: list[str] = field(default_factory=list)

    @property
    def entity(self) -> Entity:
        """The entity the file is of (for a line-level export, its line items)."""
        return self.source.entities[-1]

    @contextlib.contextmanager
    def rows(self) -> Iterator[list[tuple[Feed, FileRows]]]:
        """Each feed with the rows a backend appends; a file in another encoding is read from a UTF-8 copy."""
        with _utf8(self.path, self.source.read.encoding) as readable:
            line = first_line(self.path, self.source.read)
            yield [(feed, self._file_rows(feed, readable, line)) for feed in self.feeds]

    def _file_rows(self, feed: Feed, readable: Path, line: int) -> FileRows:
        values: dict[str, str] = {}
        for target, spec in feed.specs.items():
            column = feed.entity.column(target)
            values[target] = quote(target) if spec is None else target_sql(spec, column, self.source.read,
                                                                           self.missing)
        for name, stored in feed.kept.items():
            values.setdefault(stored, quote(name))
        return FileRows(self.path, readable, tuple(self.header), self.source.read, tuple(values),
                        tuple(values.values()), line, feed.key, feed.where)


@contextlib.contextmanager
def _utf8(path: Path, encoding: str) -> Iterator[Path]:
    """`path` itself when it is UTF-8 (or Parquet), else a UTF-8 copy made by Python's codec, chunk by chunk."""
    if encoding == "utf-8" or path.suffix.lower() == ".parquet":
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="retailflow-") as folder:
        copy = Path(folder) / path.name
        decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
        lines = 1
        with path.open("rb") as source, copy.open("w", encoding="utf-8", newline="") as target:
            while chunk := source.read(TRANSCODE_CHUNK):
                try:
                    text = decoder.decode(chunk)
                except UnicodeDecodeError as error:
                    line = lines + chunk[:error.start].count(b"\n")
                    raise UserError(f"{path}:{line}: not {encoding} text; check read.encoding in the source mapping "
                                    "or re-export the file") from None
                lines += chunk.count(b"\n")
                target.write(text)
            target.write(decoder.decode(b"", final=True))
        yield copy


def plan_file(path: Path, source: Source, sha256: str, known_columns: list[str] | None,
              first_columns: list[str] | None = None) -> FilePlan:
    """Check `path` against `source` and plan its read; `known_columns` are the columns of the source's earlier
    files (None for its first). A UserError, before anything is written, for what cannot be read."""
    header = read_header(path, source.read)
    reserved = [name for name in header if name in LINEAGE_COLUMNS or name.startswith("_")]
    if reserved:
        raise UserError(f"{path}:1: column name(s) {', '.join(reserved)} are reserved; rename them in the export")
    if source.contract:
        return _contract_plan(path, source, header, sha256)
    plan = FilePlan(path, source, header, sha256, [])
    used = {name for spec in _all_specs(source) for name in spec.file_columns}
    missing = sorted(used - set(header))
    if missing:
        where = ", ".join(sorted({_where_read(source, name) for name in missing}))
        if source.schema == "freeze":
            raise UserError(f"{path}:1: column(s) {', '.join(missing)} that source {source.name!r} maps ({where}) "
                            f"are not in the file (its header has {', '.join(header)}); the source is frozen: map "
                            "the new name or set schema: evolve")
        plan.missing = frozenset(missing)
        plan.drift.append(f"missing: {', '.join(missing)} (empty)")
        plan.notes.append(f"mapped column(s) not in the file, read as empty: {', '.join(missing)} ({where})")
    known = set(header) if known_columns is None else set(known_columns)
    new = [name for name in header if name not in known and name not in used]
    gone = sorted(known - set(header) - used)
    if new and source.schema == "freeze":
        raise UserError(f"{path}:1: new column(s) {', '.join(new)} that earlier files of source {source.name!r} did "
                        "not have; the source is frozen: set schema: evolve (keep them) or discard_value (drop them)")
    if new:
        plan.drift.append(f"new: {', '.join(new)}")
        plan.notes.append(f"new column(s) {'dropped' if source.schema == 'discard_value' else 'kept in raw'}: "
                          f"{', '.join(new)}")
    if gone:
        plan.drift.append(f"gone: {', '.join(gone)}")
        plan.notes.append(f"column(s) of earlier files no longer sent: {', '.join(gone)}")
    # discard_value keeps the columns of the source's first file (and those it maps): a column dropped once stays out.
    baseline = set(header if first_columns is None else first_columns) | used
    kept = [name for name in header if source.schema != "discard_value" or name in baseline]
    plan.feeds = _mapped_feeds(source, header, kept)
    _check_formats(plan, known_columns is None)
    return plan


def _contract_plan(path: Path, source: Source, header: list[str], sha256: str) -> FilePlan:
    entity = source.entities[0]
    missing = [name for name in entity.required_columns if name not in header]
    if missing:
        raise UserError(f"{path}:1: missing required column(s) {', '.join(missing)} for {entity.name}; "
                        f"the header has {', '.join(header)}")
    plan = FilePlan(path, source, header, sha256, [Feed(entity, {}, {name: name for name in header})])
    extra = [name for name in header if name not in entity.column_names]
    if extra:
        plan.notes.append(f"extra columns kept in raw: {', '.join(extra)}")
    # A column the model expects but may do without (a renamed customer column makes every sale anonymous): said.
    absent = [column.name for column in entity.columns if column.name not in header and not column.optional]
    if absent:
        plan.notes.append(f"column(s) absent, empty in every row: {', '.join(absent)}")
    return plan


def _all_specs(source: Source) -> list[ColumnSpec]:
    return [*(source.columns or {}).values(), *(spec for specs in source.derive.values() for spec in specs.values())]


def _where_read(source: Source, file_column: str) -> str:
    for target, spec in (source.columns or {}).items():
        if file_column in spec.file_columns:
            return source.where(target)
    for master, specs in source.derive.items():
        for target, spec in specs.items():
            if file_column in spec.file_columns:
                return source.where(target, master)
    return source.origin


def _mapped_feeds(source: Source, header: list[str], kept: list[str]) -> list[Feed]:
    """The feeds of a mapped file: its entity (a line-level export: headers derived, then lines) and derived masters."""
    mapped = source.columns or {}
    specs: dict[str, dict[str, ColumnSpec | None]] = {}
    for entity in source.entities:
        own = {name: mapped[name] for name in entity.column_names if name in mapped}
        by_name = {name: None for name in entity.column_names if name not in mapped and name in header}
        specs[entity.name] = {**own, **by_name}
        absent = [name for name in entity.required_columns if name not in specs[entity.name]]
        if absent:
            raise UserError(f"{source.origin}: source {source.name!r} gives no {', '.join(absent)} for {entity.name} "
                            f"(the file has {', '.join(header)}); map it under columns:, e.g. {absent[0]}: COLUMN")
    facts = source.entities[-1]
    computed = {name for name, spec in specs[facts.name].items()
                if spec is not None and (spec.bare_column != name or _transformed(spec, facts, source))}
    kept_names = {name: f"{name}{AS_SENT}" if name in computed else name for name in kept}
    feeds = []
    if source.feeds == SALES_LINES:
        header_specs = specs[HEADER_ENTITY]
        feeds.append(Feed(ENTITIES[HEADER_ENTITY], header_specs, {}, key=tuple(header_specs)))
    feeds.append(Feed(facts, specs[facts.name], kept_names))
    for master_name, master_specs in source.derive.items():
        master = ENTITIES[master_name]
        key = master.primary_key[0]
        key_spec = mapped.get(key)
        if key_spec is None and key not in header:
            raise UserError(f"{source.where(key) if key in mapped else source.origin}: source {source.name!r} derives "
                            f"{master.name} but gives no {key}; map it under columns:")
        where = f"trim(\"{key}\") <> ''"
        if master.name == "customer_details":
            where += f' AND upper(trim("{key}")) NOT IN ({", ".join(map(literal, anonymous_ids())) or "NULL"})'
        feeds.append(Feed(master, {key: key_spec, **master_specs}, {}, key=(key,), where=where))
    return feeds


def _transformed(spec: ColumnSpec, entity: Entity, source: Source) -> bool:
    """Whether a bare column's text is rewritten on its way to our column (separators, formats, null markers)."""
    column = entity.column(spec.bare_column) if spec.bare_column in entity.column_names else None
    if column is None:
        return True
    return target_sql(spec, column, source.read) != quote(spec.bare_column)


def _check_formats(plan: FilePlan, first_file: bool) -> None:
    """Refuse a date format that reads none of the first rows' values of a source's first file (a wrong format, not
    a few bad cells); in a later file it is drift, noted."""
    read = plan.source.read
    checks = []
    for feed in plan.feeds:
        for target, spec in feed.specs.items():
            column = feed.entity.column(target)
            formats = spec.formats or read.date_format + read.timestamp_format if spec else ()
            if (column.type in ("date", "timestamp") and formats and spec.expression is not None
                    and not set(spec.file_columns) & plan.missing and text_valued(spec, read)):
                option = None if spec.formats else _format_option(column.type, read)
                checks.append((target, formats, cell_sql(spec, read), option))
    if not checks:
        return
    parsed = ", ".join(f"count(v{index}), count(try_strptime(v{index}, [{', '.join(map(literal, formats))}])), "
                       f"any_value(v{index})" for index, (_, formats, _, _) in enumerate(checks))
    values = ", ".join(f"{value} AS v{index}" for index, (_, _, value, _) in enumerate(checks))
    with _utf8(plan.path, read.encoding) as readable:
        try:
            found = duckdb.sql(f"SELECT {parsed} FROM (SELECT {values} FROM {relation_sql(readable, plan.header, read)} "
                               f"LIMIT {FORMAT_SAMPLE_ROWS})").fetchone()
        except duckdb.Error:
            return  # the load itself names the line it cannot read
    for index, (target, formats, _, option) in enumerate(checks):
        values_seen, values_read, example = found[3 * index:3 * index + 3]
        if values_seen and not values_read:
            where = plan.source.where(target) if option is None else plan.source.where_read(option)
            named = f"{option} {' or '.join(formats)}" if option else f"the format {' or '.join(formats)}"
            problem = (f"{named} reads none of the first {FORMAT_SAMPLE_ROWS} values of {target} in {plan.path} "
                       f"(e.g. {example!r})")
            if not first_file:
                # Files of this source loaded with it: the export changed, not the mapping. The rows are quarantined.
                plan.notes.append(f"{problem}; its rows are quarantined, add the new format to read it")
                plan.drift.append(f"format: {target} (e.g. {example!r})")
                continue
            raise UserError(f"{where}: {problem}; fix the format")


def _format_option(column_type: str, read) -> str:
    """The `read:` option a date or date-time column's formats come from (the first of its list that is set)."""
    first, second = ("date_format", "timestamp_format") if column_type == "date" else ("timestamp_format", "date_format")
    return first if getattr(read, first) else second


#: Examples of a bad value `retailflow map --check` shows per column.
CHECK_EXAMPLES = 3


def check_files(sources: SourceMap, paths: Sequence[Path]) -> list[dict]:
    """Read `paths` as `sources` says, loading nothing: per file and column of ours, what would be quarantined for
    its type or a missing required value (count, first line, examples); [] when all is well."""
    from retailflow.ingest import discover

    problems: list[dict] = []
    for path, source in discover(paths, sources=sources):
        try:
            plan = plan_file(path, source, "", None)
        except UserError as error:
            problems.append({"file": path.name, "column": "", "rows": None, "first_line": None, "problem": str(error),
                             "examples": ""})
            continue
        with plan.rows() as feeds:
            for feed, rows in feeds:
                problems += _feed_problems(path, feed, rows)
    return problems


def _feed_problems(path: Path, feed: Feed, rows: FileRows) -> list[dict]:
    checks = []
    # Ours as mapped, and ours the file has by name (a file in the contract maps nothing).
    targets = dict.fromkeys([*feed.specs, *(name for name in feed.kept.values() if name in feed.entity.column_names)])
    for target in targets:
        column = feed.entity.column(target)
        value = f"trim({quote(target)})"
        if not (column.nullable or column.optional):
            checks.append((target, f"{value} IS NULL OR {value} = ''", "empty, and it is required"))
        if column.type != "text":
            checks.append((target, f"NOT regexp_full_match({value}, {literal(TYPE_PATTERNS[column.type])})",
                           f"not {TYPE_WORDS[column.type]}"))
    if not checks:
        return []
    measures = ", ".join(f"count(*) FILTER (WHERE {bad}), min(_source_line) FILTER (WHERE {bad}), "
                         f"list(DISTINCT {quote(target)}) FILTER (WHERE {bad})" for target, bad, _ in checks)
    found = duckdb.sql(f"SELECT {measures} FROM ({rows.select_sql(0, path.name)})").fetchone()
    problems = []
    for index, (target, _, words) in enumerate(checks):
        count, line, examples = found[3 * index:3 * index + 3]
        if count:
            shown = ", ".join("(empty)" if value is None else repr(value)
                              for value in (examples or [])[:CHECK_EXAMPLES])
            problems.append({"file": path.name, "column": f"{feed.entity.name}.{target}", "rows": count,
                             "first_line": line, "problem": words, "examples": shown})
    return problems
