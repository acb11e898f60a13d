"""Reading input files: header checks in Python, the rows parsed by DuckDB for every engine.

DuckDB's CSV reader handles quotes, CRLF, BOM and ragged rows well and streams large files,
so it is the single parser; each backend then moves the parsed rows with its own bulk path.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Sequence
from pathlib import Path

import duckdb

from retailflow.errors import UserError

READ_CHUNK = 1 << 20


def sha256_of(path: Path) -> str:
    """The file's SHA-256; a UserError if it holds a NUL byte (no engine stores those as text)."""
    digest = hashlib.sha256()
    newlines = 0
    with path.open("rb") as handle:
        while chunk := handle.read(READ_CHUNK):
            digest.update(chunk)
            nul = chunk.find(b"\x00")
            if nul >= 0:
                line = newlines + chunk.count(b"\n", 0, nul) + 1
                raise UserError(f"{path}:{line}: contains a NUL byte (binary or UTF-16 data?); "
                                "remove it or re-export the file as UTF-8 text")
            newlines += chunk.count(b"\n")
    return digest.hexdigest()


def file_format(path: Path) -> str:
    return "parquet" if path.suffix.lower() == ".parquet" else "csv"


def read_header(path: Path) -> list[str]:
    """The file's column names, normalised (trimmed, lower case); a UserError if unusable."""
    if file_format(path) == "parquet":
        try:
            names = [row[0] for row in duckdb.sql(f"DESCRIBE SELECT * FROM read_parquet({_quote(path)})").fetchall()]
        except duckdb.Error as error:
            raise UserError(f"{path}: not a readable Parquet file ({_first_line(error)}); re-export it") from None
        return [name.strip().lower() for name in names]
    try:
        with path.open("rb") as handle:
            first = handle.readline(READ_CHUNK).decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UserError(f"{path}:1: the header is not UTF-8 text; re-export the file as UTF-8 CSV") from None
    except OSError as error:
        raise UserError(f"{path}: cannot be read ({error.strerror}); check the path and permissions") from None
    if not first.strip():
        raise UserError(f"{path}:1: the file is empty or has no header row; export it with a header line")
    if "\x00" in first:
        raise UserError(f"{path}:1: the header contains NUL bytes (binary or UTF-16 file?); re-export as UTF-8 CSV")
    names = [name.strip().lower() for name in next(csv.reader([first]))]
    blank = [str(index + 1) for index, name in enumerate(names) if not name]
    if blank:
        raise UserError(f"{path}:1: header column {', '.join(blank)} has no name; name every column")
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise UserError(f"{path}:1: header repeats column(s) {', '.join(duplicates)}; each column must appear once")
    return names


def first_line(path: Path) -> int:
    """The line number of a file's first row: 2 in a CSV file (after its header), 1 in a Parquet file."""
    return 1 if file_format(path) == "parquet" else 2


def select_sql(path: Path, file_columns: Sequence[str], batch_id: int, source_name: str, *,
               numbered: bool = True) -> str:
    """A DuckDB SELECT yielding the file's rows as text, with batch id, source file and line number.

    Without `numbered`, every line number is 0, for an engine that numbers the rows once they are stored.
    """
    if file_format(path) == "parquet":
        source = f"read_parquet({_quote(path)})"
        values = ", ".join(f'CAST("{_ident(name)}" AS VARCHAR)' for name in file_columns)
    else:
        struct = ", ".join(f"{_quote(name)}: 'VARCHAR'" for name in file_columns)
        source = (
            f"read_csv({_quote(path)}, header = true, auto_detect = false, delim = ',', quote = '\"', "
            f"escape = '\"', null_padding = true, strict_mode = true, encoding = 'utf-8', "
            f"columns = {{{struct}}})"
        )
        values = ", ".join(f'"{_ident(name)}"' for name in file_columns)
    line = f"row_number() OVER () + {first_line(path) - 1}" if numbered else "0"
    return f"SELECT {values}, {batch_id} AS _batch_id, {_quote(source_name)} AS _source_file, {line} AS _source_line FROM {source}"


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
