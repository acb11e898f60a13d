"""Reading input files: header checks in Python, the rows parsed by DuckDB for every engine.

DuckDB's CSV reader handles quotes, CRLF, BOM and ragged rows well and streams large files,
so it is the single parser; each backend then moves the parsed rows with its own bulk path.
Spark alone reads a plain file itself (backends/pyspark.py, file_reads), where its reader gives
exactly what DuckDB's does: FileRows says what its relation reads (the file, its columns, the read
options) and text_facts what the file's text is like.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from retailflow.errors import UserError
from retailflow.sources.mapping import ReadOptions

READ_CHUNK = 1 << 20


def sha256_of(path: Path) -> str:
    """The file's SHA-256; a UserError if a CSV file holds a NUL byte (no engine stores those as text; Parquet, a
    binary format, is full of them). Every file of every run passes through here: it does nothing else."""
    text = file_format(path) == "csv"
    digest = hashlib.sha256()
    lines = 0
    with path.open("rb") as handle:
        while chunk := handle.read(READ_CHUNK):
            digest.update(chunk)
            nul = chunk.find(b"\x00") if text else -1
            if nul >= 0:
                line = lines + chunk.count(b"\n", 0, nul) + 1
                raise UserError(f"{path}:{line}: contains a NUL byte (binary or UTF-16 data?); "
                                "remove it or re-export the file as UTF-8 text")
            lines += chunk.count(b"\n") if text else 0
    return digest.hexdigest()


def _read_facts(path: Path) -> TextFacts:
    """How the file's bytes are written, in one pass over them."""
    newlines = crlf = lone_cr = quotes = 0
    previous = b""
    decoder = codecs.getincrementaldecoder("utf-8")()
    utf8 = True
    with path.open("rb") as handle:
        while chunk := handle.read(READ_CHUNK):
            newlines += chunk.count(b"\n")
            quotes += chunk.count(b'"')
            crlf += chunk.count(b"\r\n") + (previous == b"\r" and chunk[:1] == b"\n")
            lone_cr += chunk.count(b"\r")
            previous = chunk[-1:]
            # ASCII (most exports) is UTF-8 as it is, unless a character began in the chunk before.
            if utf8 and not (chunk.isascii() and not decoder.getstate()[0]):
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError:
                    utf8 = False
    if utf8:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            utf8 = False
    # \r counted once each: those before a \n are CRLF, the others stand alone (old Mac endings or inside values).
    lone_cr -= crlf
    if lone_cr or (crlf and crlf != newlines):
        ending = None
    else:
        ending = "\r\n" if crlf else "\n"
    return TextFacts(utf8, ending, quotes % 2 == 0)


@dataclass(frozen=True)
class TextFacts:
    """How a file's bytes are written, as an engine reading the file itself needs to know."""

    #: Whether the bytes are valid UTF-8 (another engine's reader might replace what is not, where DuckDB refuses).
    utf8: bool
    #: The one line ending of the file ("\n" or "\r\n"), None when it mixes them or has a lone "\r" (even inside a
    #: quoted value).
    line_ending: str | None
    #: Whether it has an even number of double quotes: a quote left open (which DuckDB refuses, where another reader
    #: might take the rest of the file as its value) or a stray one makes it odd.
    even_quotes: bool = True


#: Facts of the files read by this process, by (path, size, modification time).
_FACTS: dict[tuple[str, int, int], TextFacts] = {}


def _identity(path: Path, stat: os.stat_result) -> tuple[str, int, int]:
    return str(Path(path).absolute()), stat.st_size, stat.st_mtime_ns


def text_facts(path: Path) -> TextFacts:
    """How the CSV file's text is written, as it is now: for an engine that reads the file itself (Spark), which
    asks per file it would read. A pass of its own, not part of sha256_of's: the hashing pass of every run on every
    engine took twice as long with it (0.2-0.3 -> 0.4-0.9 s per 50 MB)."""
    identity = _identity(path, path.stat())
    if identity not in _FACTS:
        _FACTS[identity] = _read_facts(path)
    return _FACTS[identity]


def file_format(path: Path) -> str:
    return "parquet" if path.suffix.lower() == ".parquet" else "csv"


def read_header(path: Path, read: ReadOptions = ReadOptions()) -> list[str]:
    """The file's column names, normalised (trimmed, lower case); a UserError if unusable.

    A file without a header row (`read.header` false) takes `read.names`, which must be as many as its first
    row has values."""
    if file_format(path) == "parquet":
        try:
            names = [row[0] for row in duckdb.sql(f"DESCRIBE SELECT * FROM read_parquet({_quote(path)})").fetchall()]
        except duckdb.Error as error:
            raise UserError(f"{path}: not a readable Parquet file ({_first_line(error)}); re-export it") from None
        return [name.strip().lower() for name in names]
    first, line = _first_row(path, read)
    if not read.header:
        if len(first) != len(read.names):
            raise UserError(f"{path}:{line}: the first row has {len(first)} values but the mapping names "
                            f"{len(read.names)} columns (read.names); name every column in file order")
        first = list(read.names)
    names = [name.strip().lower() for name in first]
    blank = [str(index + 1) for index, name in enumerate(names) if not name]
    if blank:
        raise UserError(f"{path}:{line}: header column {', '.join(blank)} has no name; name every column")
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise UserError(f"{path}:{line}: header repeats column(s) {', '.join(duplicates)}; each column must appear once")
    return names


def _first_row(path: Path, read: ReadOptions) -> tuple[list[str], int]:
    """The first row after `read.skip` lines, split as `read` says, and its line number."""
    line = read.skip + 1
    # Decoded only as far as the header: a body in another encoding is the load's to report, at its line.
    decoder = codecs.getincrementaldecoder("utf-8-sig" if read.encoding == "utf-8" else read.encoding)()
    text = ""
    try:
        with path.open("rb") as handle:
            while text.count("\n") < line and (chunk := handle.readline(READ_CHUNK)):
                text += decoder.decode(chunk)
    except UnicodeDecodeError:
        encoding = "UTF-8" if read.encoding == "utf-8" else read.encoding
        raise UserError(f"{path}:{line}: the header is not {encoding} text; re-export the file as UTF-8 CSV "
                        "or give its encoding (read.encoding in a source mapping)") from None
    except OSError as error:
        raise UserError(f"{path}: cannot be read ({error.strerror}); check the path and permissions") from None
    lines = text.split("\n")
    first = lines[read.skip] if len(lines) > read.skip else ""
    if not first.strip():
        raise UserError(f"{path}:{line}: the file is empty or has no header row; export it with a header line")
    if "\x00" in first:
        raise UserError(f"{path}:{line}: the header contains NUL bytes (binary or UTF-16 file?); re-export as UTF-8 CSV")
    return next(csv.reader([first], delimiter=read.delimiter, quotechar=read.quote)), line


def first_line(path: Path, read: ReadOptions = ReadOptions()) -> int:
    """The line number of a file's first row: after its skipped lines and header in a CSV file, 1 in Parquet."""
    return 1 if file_format(path) == "parquet" else read.skip + (2 if read.header else 1)


def relation_sql(path: Path, columns: Sequence[str], read: ReadOptions = ReadOptions()) -> str:
    """A DuckDB relation of the file's rows, every column as text under the names `columns` (in file order)."""
    if file_format(path) == "parquet":
        values = ", ".join(f'CAST("{_ident(name)}" AS VARCHAR) AS "{_ident(name)}"' for name in columns)
        return f"(SELECT {values} FROM read_parquet({_quote(path)}))"
    struct = ", ".join(f"{_quote(name)}: 'VARCHAR'" for name in columns)
    return (f"read_csv({_quote(path)}, header = {str(read.header).lower()}, skip = {read.skip}, auto_detect = false, "
            f"delim = {_quote(read.delimiter)}, quote = {_quote(read.quote)}, escape = {_quote(read.quote)}, "
            f"null_padding = true, strict_mode = true, encoding = 'utf-8', columns = {{{struct}}})")


@dataclass(frozen=True)
class FileRows:
    """One entity's rows of one file as a backend appends them to raw: column names and the SQL of each value
    over `relation` (relation_sql of `readable`, `header` and `read`, which also tell an engine that reads the
    file itself what DuckDB reads). With `key`, the rows are derived, one per distinct key (a transaction's
    header from its lines, a product from the lines naming it): the other columns from the key's last row in the
    file, the line number its first."""

    #: The file as received (errors and lineage name it).
    path: Path
    #: The file read: `path`, or a UTF-8 copy of it when it is written in another encoding.
    readable: Path
    #: The file's columns in file order, under the names the relation gives them (read_header).
    header: tuple[str, ...]
    #: How the file is written (its source's read options).
    read: ReadOptions
    columns: tuple[str, ...]
    values: tuple[str, ...]
    first_line: int
    key: tuple[str, ...] | None = None
    where: str | None = None

    @property
    def relation(self) -> str:
        """The DuckDB relation of the file's rows, every column as text (relation_sql)."""
        return relation_sql(self.readable, self.header, self.read)

    def plain_columns(self) -> list[str] | None:
        """The file column each of `columns` is, when the rows are the file's own, every value a column of the file
        as read (no expression, no derived rows); else None."""
        if self.key is not None or self.where is not None:
            return None
        names = {f'"{_ident(name)}"': name for name in self.header}
        plain = [names.get(value) for value in self.values]
        return None if None in plain else plain

    @property
    def numbers_itself(self) -> bool:
        """Whether the SELECT computes the line numbers even unnumbered (derived rows)."""
        return self.key is not None

    def select_sql(self, batch_id: int, source_name: str, *, numbered: bool = True) -> str:
        """A DuckDB SELECT of the rows as text, with batch id, source file and line number (0 when not
        `numbered`, for an engine that numbers the rows once they are stored)."""
        lineage = f"{batch_id} AS _batch_id, {_quote(source_name)} AS _source_file"
        named = ", ".join(f'{value} AS "{_ident(name)}"' for name, value in zip(self.columns, self.values))
        line = f"row_number() OVER () + {self.first_line - 1}"
        if self.key is None:
            return f"SELECT {named}, {lineage}, {line if numbered else '0'} AS _source_line FROM {self.relation}"
        picked = ", ".join(f'"{_ident(name)}"' if name in self.key else f'arg_max("{_ident(name)}", _line) AS "{_ident(name)}"'
                           for name in self.columns)
        where = f" WHERE {self.where}" if self.where else ""
        group = ", ".join(f'"{_ident(name)}"' for name in self.key)
        return (f"SELECT {picked}, {lineage}, min(_line) AS _source_line FROM (SELECT {named}, {line} AS _line "
                f"FROM {self.relation}){where} GROUP BY {group} ORDER BY _source_line")


def explain_read_error(path: Path, error: Exception) -> UserError:
    """Turn a DuckDB reader error into a one-line message naming the file, line and remedy."""
    text = str(error)
    line = re.search(r"Line: (\d+)", text)
    where = f"{path}:{line.group(1)}" if line else str(path)
    if "unicode" in text.lower() or "utf" in text.lower():
        return UserError(f"{where}: not valid UTF-8 text; re-export the file as UTF-8 CSV")
    found = re.search(r"Expected Number of Columns: (\d+) Found: (\d+)", text)
    if found:
        return UserError(
            f"{where}: the row has {found.group(2)} values but the header has {found.group(1)} columns; "
            "quote values that contain commas or fix the row"
        )
    if "quote" in text.lower():
        return UserError(f"{where}: a quoted value is never closed; fix the quoting in the file")
    return UserError(f"{where}: cannot be parsed as CSV ({_first_line(error)}); fix or re-export the file")


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0][:200]


def _quote(value: object) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _ident(name: str) -> str:
    return name.replace('"', '""')
