"""The source mapping: which files a source reads, which entity they feed, how the text is written and where
each of our columns comes from (docs/reference/sources.md is its reference).

Loaded and checked when a command starts: an unknown entity or column, an expression that does not compile
or a bad option stops it with one line naming the mapping file, the line and the key. Without a mapping,
every file is read in the contract (`contract_source`), exactly as before mappings existed.
"""

from __future__ import annotations

import codecs
import fnmatch
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import duckdb
import sqlglot
import sqlglot.expressions as sge
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from retailflow.model import ENTITIES, Entity, entity_for_file
from retailflow.yaml_file import YamlFile, read_yaml

#: `feeds: sales_lines`: one row per line item that also carries its transaction's columns.
SALES_LINES = "sales_lines"
HEADER, LINES = "store_sales_header", "store_sales_line_items"
#: Masters a source may derive from its rows, by the name `derive:` uses.
DERIVABLE = {"products": "products", "customers": "customer_details", "stores": "stores"}
#: sqlglot underlines the failing part of an expression with terminal colour codes.
TERMINAL_CODES = re.compile(r"\x1b\[[0-9;]*m")
SchemaMode = Literal["evolve", "freeze", "discard_value"]


class ReadOptions(BaseModel):
    """How a source's text is written (docs/reference/sources.md, "read")."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    delimiter: str = ","
    quote: str = '"'
    encoding: str = "utf-8"
    header: bool = True
    names: tuple[str, ...] = ()
    skip: int = 0
    decimal: Literal[".", ","] = "."
    thousands: Literal["", ",", ".", " ", "'"] = ""
    date_format: tuple[str, ...] = ()
    timestamp_format: tuple[str, ...] = ()
    null_values: tuple[str, ...] = ()

    @field_validator("delimiter", "quote")
    @classmethod
    def _one_character(cls, value: str) -> str:
        if len(value) != 1:
            raise ValueError("write one character, e.g. ';' or '\\t' in double quotes")
        return value

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        try:
            return codecs.lookup(value).name
        except LookupError:
            raise ValueError(f"unknown encoding {value!r}; e.g. utf-8, cp1252, latin-1, utf-16") from None

    @field_validator("skip")
    @classmethod
    def _not_negative(cls, value: int) -> int:
        if value < 0:
            raise ValueError("write 0 or more lines")
        return value

    @field_validator("date_format", "timestamp_format", mode="before")
    @classmethod
    def _formats(cls, value: Any) -> Any:
        formats = [value] if isinstance(value, str) else value
        if isinstance(formats, (list, tuple)):
            for text in formats:
                if not isinstance(text, str) or "%" not in text:
                    raise ValueError(f"{text!r} is not a strftime format; write e.g. '%d.%m.%Y' or '%m/%d/%Y %H:%M'")
        return formats

    @field_validator("names", "null_values", mode="before")
    @classmethod
    def _texts(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


@dataclass(frozen=True)
class ColumnSpec:
    """Where one of our columns comes from: a file column, a constant or an SQL expression over the file's columns."""

    #: The SQL expression over the file's columns (a bare name for a column), or None for a constant.
    expression: sge.Expression | None
    #: The constant's text, for `{value: ...}`.
    value: str | None = None
    #: Date or date-time formats of this column, overriding the source's.
    formats: tuple[str, ...] = ()
    #: The line of the mapping file it is written on.
    line: int = 0

    @property
    def file_columns(self) -> tuple[str, ...]:
        """The file columns it reads (lower case)."""
        if self.expression is None:
            return ()
        return tuple(dict.fromkeys(column.name.lower() for column in self.expression.find_all(sge.Column)))

    @property
    def bare_column(self) -> str | None:
        """The file column it is, when it is one column as written (lower case)."""
        return self.expression.name.lower() if isinstance(self.expression, sge.Column) else None


@dataclass(frozen=True)
class Source:
    """One kind of export file and how to read it."""

    name: str
    files: tuple[str, ...]
    feeds: str
    schema: SchemaMode = "evolve"
    read: ReadOptions = field(default_factory=ReadOptions)
    #: Our column -> where it comes from; None for the contract (every column by its own name).
    columns: dict[str, ColumnSpec] | None = None
    #: Master entity -> its columns, derived from this source's rows.
    derive: dict[str, dict[str, ColumnSpec]] = field(default_factory=dict)
    #: Where it is written, for messages: "sources.yaml:12".
    origin: str = ""
    #: The mapping line of each `read:` option written, for messages.
    read_lines: dict[str, int] = field(default_factory=dict)

    @property
    def contract(self) -> bool:
        """Whether this is the contract itself (no mapping): files named and shaped as our entities."""
        return self.columns is None

    @property
    def entities(self) -> tuple[Entity, ...]:
        """The entities its rows feed, parents first."""
        return (ENTITIES[HEADER], ENTITIES[LINES]) if self.feeds == SALES_LINES else (ENTITIES[self.feeds],)

    def matches(self, path: Path) -> bool:
        return any(fnmatch.fnmatch(path.name.lower(), pattern.lower()) for pattern in self.files)

    def where(self, target: str, master: str | None = None) -> str:
        """The mapping line of one of our columns, for messages."""
        spec = (self.derive.get(master, {}) if master else self.columns or {}).get(target)
        file = self.origin.rsplit(":", 1)[0]
        return f"{file}:{spec.line}" if spec and spec.line else self.origin

    def where_read(self, option: str) -> str:
        """The mapping line of a `read:` option, for messages (the source's line when it is not written)."""
        line = self.read_lines.get(option)
        return f"{self.origin.rsplit(':', 1)[0]}:{line}" if line else self.origin


def contract_source(entity: Entity) -> Source:
    """The contract for one entity: its files by name, every column by its own name."""
    return Source(entity.name, entity.file_patterns or (f"{entity.name}*",), entity.name)


@dataclass(frozen=True)
class SourceMap:
    """A mapping file's sources, tried in order before the contract."""

    sources: tuple[Source, ...] = ()
    path: Path | None = None

    def source_for(self, path: Path) -> Source | None:
        """The source that reads `path`: the first mapped one matching its name, else the contract's entity."""
        mapped = next((source for source in self.sources if source.matches(path)), None)
        if mapped:
            return mapped
        entity = entity_for_file(path)
        return contract_source(entity) if entity else None


class _SourceEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    files: str | list[str]
    feeds: str
    schema_: SchemaMode = Field("evolve", alias="schema")
    read: ReadOptions = ReadOptions()
    columns: dict[str, Any] = {}
    derive: dict[str, dict[str, Any] | None] = {}


def load_sources(path: Path) -> SourceMap:
    """Read and check a mapping file; any problem is one UserError naming the file, line and key."""
    document = read_yaml(path, what="mapping file")
    entries = document.data.get("sources") if isinstance(document.data, dict) else None
    if not isinstance(entries, dict) or not entries:
        raise document.error(("sources",), "expected a 'sources:' mapping of source names to sources; "
                                           "see docs/reference/sources.md")
    return SourceMap(tuple(_source(document, str(name), entry) for name, entry in entries.items()), path)


def _source(document: YamlFile, name: str, entry: Any) -> Source:
    at = ("sources", name)
    if not isinstance(entry, dict):
        raise document.error(at, f"source {name!r} is not a mapping of files, feeds, read, columns")
    try:
        parsed = _SourceEntry(**entry)
    except ValidationError as error:
        problem = error.errors()[0]
        keys = [("schema" if part == "schema_" else str(part)) for part in problem["loc"]]
        raise document.error(at + tuple(keys), f"source {name!r}: {'.'.join(keys)}: {problem['msg']}") from None
    if parsed.feeds != SALES_LINES and parsed.feeds not in ENTITIES:
        raise document.error(at + ("feeds",), f"source {name!r}: feeds: unknown entity {parsed.feeds!r}; one of "
                                              f"{', '.join([*ENTITIES, SALES_LINES])}")
    if not parsed.read.header and not parsed.read.names:
        raise document.error(at + ("read", "header"), f"source {name!r}: a file without a header row needs "
                                                      "read.names, the column names in file order")
    feeds = (HEADER, LINES) if parsed.feeds == SALES_LINES else (parsed.feeds,)
    known = {column.name: column for entity in feeds for column in ENTITIES[entity].columns}
    columns = {target: _column(document, at + ("columns", target), name, target, spec, known)
               for target, spec in parsed.columns.items()}
    derive = {}
    for master_name, specs in parsed.derive.items():
        if master_name not in DERIVABLE:
            raise document.error(at + ("derive", master_name), f"source {name!r}: cannot derive {master_name!r}; "
                                                               f"one of {', '.join(DERIVABLE)}")
        master = ENTITIES[DERIVABLE[master_name]]
        key = master.primary_key[0]
        if key not in columns and key not in known:
            raise document.error(at + ("derive", master_name), f"source {name!r}: deriving {master_name} needs "
                                                               f"{key} among the columns it feeds")
        others = {column.name: column for column in master.columns if column.name != key}
        derive[master.name] = {target: _column(document, at + ("derive", master_name, target), name, target, spec,
                                               others)
                               for target, spec in (specs or {}).items()}
    files = (parsed.files,) if isinstance(parsed.files, str) else tuple(parsed.files)
    read_lines = {option: document.line(at + ("read", option)) for option in entry.get("read") or {}}
    return Source(name, files, parsed.feeds, parsed.schema_, parsed.read, columns, derive,
                  f"{document.name}:{document.line(at)}", read_lines)


def _column(document: YamlFile, at: tuple[str, ...], source: str, target: str, spec: Any, known: dict) -> ColumnSpec:
    where = f"source {source!r}, column {target}"
    if target not in known:
        raise document.error(at, f"{where}: not a column of what the source feeds; one of {', '.join(known)}")
    line = document.line(at)
    formats: tuple[str, ...] = ()
    if isinstance(spec, dict):
        unknown = set(spec) - {"value", "column", "sql", "format"}
        if unknown or len(set(spec) & {"value", "column", "sql"}) != 1:
            raise document.error(at, f"{where}: write a file column, an SQL expression, {{value: TEXT}}, "
                                     "{column: NAME, format: ...} or {sql: EXPRESSION, format: ...}")
        formats = tuple([spec["format"]] if isinstance(spec.get("format"), str) else spec.get("format") or ())
        if formats and known[target].type not in ("date", "timestamp"):
            raise document.error(at, f"{where}: format applies to date and date-time columns only")
        if "value" in spec:
            return ColumnSpec(None, "" if spec["value"] is None else str(spec["value"]), line=line)
        text = _identifier(str(spec["column"])) if "column" in spec else str(spec["sql"])
    elif isinstance(spec, (str, int, float)) and not isinstance(spec, bool):
        text = str(spec)
    else:
        raise document.error(at, f"{where}: write a file column, an SQL expression or {{value: TEXT}}")
    try:
        expression = sqlglot.parse_one(text, read="duckdb")
    except sqlglot.errors.ParseError as error:
        problem = " ".join(TERMINAL_CODES.sub("", str(error)).split())[:160]
        raise document.error(at, f"{where}: {text!r} is not an SQL expression ({problem})") from None
    compiled = ColumnSpec(expression, formats=formats, line=line)
    problem = compile_problem(compiled)
    if problem:
        raise document.error(at, f"{where}: {text!r} does not compile ({problem})")
    return compiled


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def compile_problem(spec: ColumnSpec) -> str | None:
    """Why an expression would not run on a file's text columns (an unknown function, a type error), or None."""
    from retailflow.sources.expressions import cell_sql

    columns = spec.file_columns
    relation = ", ".join(f"NULL::VARCHAR AS {_identifier(name)}" for name in columns) or "NULL AS _none"
    try:
        # Evaluated on one row of empty cells: a constant that cannot be what it is cast to fails here, not nightly.
        duckdb.sql(f"SELECT {cell_sql(spec, ReadOptions())} FROM (SELECT {relation})").fetchall()
    except duckdb.Error as error:
        return " ".join(str(error).split())[:200]
    return None
