"""What an export's sample says about its text and its columns, before anything is mapped.

A file's first megabyte is read: the encoding (UTF-8, else Windows-1252), the delimiter and any lines before the
header are sniffed from the first lines, the sample is loaded into DuckDB as text, and every column is profiled in
one query (whole numbers, decimals and their separator, ids written as 17850.0, dates and the order of their
fields, times). The proposer (propose) places columns from these profiles; keeping the measuring here leaves it
the decisions alone, and lets the measures be read and tested without any of our columns in view.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from retailflow.errors import UserError
from retailflow.sources.expressions import quote

#: How much of a file is sampled: enough for thousands of rows, fast on any export.
SAMPLE_BYTES = 1 << 20
#: Lines the delimiter and the header position are sniffed from.
SNIFF_LINES = 30
DELIMITERS = (",", ";", "\t", "|")
#: Words in a column name that make whole numbers below 2400 times of day written HHMM (0930).
TIME_NAME = re.compile("time|zeit|heure|hora", re.IGNORECASE)

#: Shapes of cells, as RE2 patterns for DuckDB (MEASURES names them in braces).
PATTERNS = {
    # day/month/year (or year-month-day) with an optional time: groups 1, 3, 4 the fields, 2 the separator,
    # 5 the time, 6 the character before it, 9 the seconds.
    "DATE": r"([0-9]{1,4})([./-])([0-9]{1,2})[./-]([0-9]{1,4})"
            r"(([ T])([0-9]{1,2}):([0-9]{2})(:([0-9]{2})(\.[0-9]+)?)?)?",
    "POINT": r"[+-]?([0-9]{1,3}(,[0-9]{3})+|[0-9]*)\.[0-9]+",
    "COMMA": r"[+-]?([0-9]{1,3}(\.[0-9]{3})+|[0-9]*),[0-9]+",
    "TIME": r"[0-9]{1,2}:[0-9]{2}(:[0-9]{2})?",
}
#: What the sample says about one column: SQL aggregates over the column {c}, one query for all columns.
MEASURES = {
    "filled": "count({c})",
    "distinct": "count(DISTINCT {c})",
    "whole": "count(*) FILTER (WHERE regexp_full_match({c}, '[+-]?[0-9]+'))",
    "float_id": r"count(*) FILTER (WHERE regexp_full_match({c}, '[0-9]+\.0'))",
    "point": "count(*) FILTER (WHERE regexp_full_match({c}, '{POINT}'))",
    "comma": "count(*) FILTER (WHERE regexp_full_match({c}, '{COMMA}'))",
    "dot_thousands": r"count(*) FILTER (WHERE regexp_full_match({c}, '[+-]?[0-9]{1,3}(\.[0-9]{3})+,[0-9]+'))",
    "comma_thousands": r"count(*) FILTER (WHERE regexp_full_match({c}, '[+-]?[0-9]{1,3}(,[0-9]{3})+\.[0-9]+'))",
    "grouped": r"min({c}) FILTER (WHERE regexp_full_match({c}, '[+-]?[0-9]{1,3}([.,][0-9]{3})+[.,][0-9]+'))",
    "decimals": "max(length(regexp_extract({c}, '[.,]([0-9]+)$', 1))) "
                "FILTER (WHERE regexp_full_match({c}, '{POINT}') OR regexp_full_match({c}, '{COMMA}'))",
    "negative": "count(*) FILTER (WHERE starts_with({c}, '-'))",
    "dates": "count(*) FILTER (WHERE regexp_full_match({c}, '{DATE}'))",
    "first": "max(TRY_CAST(regexp_extract({c}, '^{DATE}$', 1) AS INTEGER))",
    "second": "max(TRY_CAST(regexp_extract({c}, '^{DATE}$', 3) AS INTEGER))",
    "first_digits": "max(length(regexp_extract({c}, '^{DATE}$', 1)))",
    "third_digits": "min(length(regexp_extract({c}, '^{DATE}$', 4))) FILTER (WHERE regexp_full_match({c}, '{DATE}'))",
    "separator": "min(regexp_extract({c}, '^{DATE}$', 2)) FILTER (WHERE regexp_full_match({c}, '{DATE}'))",
    "timed": "count(*) FILTER (WHERE regexp_extract({c}, '^{DATE}$', 5) <> '')",
    "seconds": "count(*) FILTER (WHERE regexp_extract({c}, '^{DATE}$', 9) <> '')",
    "time_separator": "min(regexp_extract({c}, '^{DATE}$', 6)) FILTER (WHERE regexp_extract({c}, '^{DATE}$', 6) <> '')",
    "day_first_proof": "min({c}) FILTER (WHERE TRY_CAST(regexp_extract({c}, '^{DATE}$', 1) AS INTEGER) "
                       "BETWEEN 13 AND 31)",
    "month_first_proof": "min({c}) FILTER (WHERE TRY_CAST(regexp_extract({c}, '^{DATE}$', 3) AS INTEGER) "
                         "BETWEEN 13 AND 31)",
    "times": "count(*) FILTER (WHERE regexp_full_match({c}, '{TIME}'))",
    "hhmm": "count(*) FILTER (WHERE regexp_full_match({c}, '[0-9]{1,4}') AND TRY_CAST({c} AS INTEGER) < 2400 "
            "AND TRY_CAST({c} AS INTEGER) % 100 < 60)",
    "spaced": "count(*) FILTER (WHERE contains({c}, ' '))",
    "longest": "max(length({c}))",
    "low": "min({c})",
    "high": "max({c})",
}


@dataclass(frozen=True)
class Sniffed:
    """How a file's text is written, as far as its first lines tell, and the decoded sample."""

    encoding: str
    encoding_why: str
    delimiter: str
    delimiter_why: str
    skip: int
    text: str


@dataclass(frozen=True)
class DateShape:
    """How a column's dates are written: their strftime formats (none for ISO) and whether the values decide."""

    formats: tuple[str, ...]
    decided: bool
    why: str
    #: Whether the dates carry a time of day (also for ISO dates, which have no formats to show it).
    has_time: bool = False


@dataclass(frozen=True)
class Profile:
    """One file column as the sample shows it."""

    name: str
    distinct: int
    #: empty, date, time, hhmm (whole numbers reading as HHMM), float_id (17850.0), whole, decimal, code or text.
    shape: str
    decimals: int
    decimal_comma: bool
    thousands: str
    negatives: int
    low: str | None
    high: str | None
    date: DateShape | None = None
    #: A value with its thousands grouped (1.234,50), when there is one.
    grouped: str | None = None

    def describe(self) -> str:
        """The values in a few words, for comments and the summary."""
        example = f"{self.low!r}" if self.low == self.high else f"{self.low!r}, {self.high!r}"
        words = {
            "empty": "empty in the sample",
            "date": "dates",
            "time": "times of day",
            "hhmm": "whole numbers (times HHMM?)",
            "float_id": "whole numbers written with .0",
            "whole": f"whole numbers, {self.distinct} distinct" + (", some negative" if self.negatives else ""),
            "decimal": f"decimals (up to {self.decimals} after the {'comma' if self.decimal_comma else 'point'})"
                       + (", some negative" if self.negatives else ""),
            "code": f"words without spaces, {self.distinct} distinct",
            "text": "text",
        }[self.shape]
        return words if self.shape == "empty" else f"{words}, e.g. {example}"


def sniff(path: Path) -> Sniffed:
    """The encoding, delimiter and lines before the header of a file, from its first megabyte."""
    with path.open("rb") as handle:
        head = handle.read(SAMPLE_BYTES + 1)
    if len(head) > SAMPLE_BYTES:
        head = head[: head.rfind(b"\n", 0, SAMPLE_BYTES) + 1] or head[:SAMPLE_BYTES]
    encoding, encoding_why, text = _decode(head)
    if not text.strip():
        raise UserError(f"{path}: empty; give a file with a header line (and rows) to propose a mapping from")
    lines = text.splitlines()[:SNIFF_LINES]
    delimiter, skip, delimiter_why = _delimiter(lines)
    return Sniffed(encoding, encoding_why, delimiter, delimiter_why, skip, text)


def _decode(head: bytes) -> tuple[str, str, str]:
    """The encoding, why, and the text: UTF-8 when it decodes, else Windows-1252 (what Excel and tills write)."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        # A sample cut after a newline byte leaves UTF-16LE's newline half read: whole code units only.
        return "utf-16", "a UTF-16 byte-order mark", head[: len(head) - len(head) % 2].decode("utf-16")
    try:
        return "utf-8", "", head.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = head[: error.start].count(b"\n") + 1
        where = f"byte 0x{head[error.start]:02x} on line {line}"
    try:
        encoding, name, text = "cp1252", "Windows-1252", head.decode("cp1252")
    except UnicodeDecodeError:
        # Five bytes Windows-1252 leaves undefined: Latin-1 reads every byte.
        encoding, name, text = "latin-1", "Latin-1", head.decode("latin-1")
    word = re.search(r"\w*[^\x00-\x7f]\w*", text)
    return encoding, f"not UTF-8 ({where}); {name} reads it" + (f": {word.group(0)!r}" if word else ""), text


def _delimiter(lines: list[str]) -> tuple[str, int, str]:
    """The delimiter splitting the most lines into the same number (> 1) of fields, and the lines before the first
    of them (a title or banner above the header)."""
    best = (0.0, 0, ",", 0)
    for delimiter in DELIMITERS:
        field_counts = [len(row) for row in csv.reader(lines, delimiter=delimiter)]
        # The width is the rows' own: the later half of the lines, past any banner.
        row_counts = field_counts[len(field_counts) // 2:] or field_counts
        width = max(set(row_counts), key=row_counts.count) if row_counts else 0
        if width < 2:
            continue
        # A banner above the header has fewer fields than the rows; a ragged row may have more.
        skip = next(index for index, count in enumerate(field_counts) if count >= width)
        share = sum(count >= width for count in field_counts[skip:]) / len(field_counts[skip:])
        if (share, width) > best[:2]:
            best = (share, width, delimiter, skip)
    share, width, delimiter, skip = best
    if not width:
        return ",", 0, "one column: no delimiter splits the lines"
    shown = {"\t": "tab", " ": "space"}.get(delimiter, repr(delimiter))
    why = f"{shown} splits the first lines into {width} fields"
    if skip:
        why += f"; {skip} line{'s' if skip > 1 else ''} before the header"
    return delimiter, skip, why


def load_sample(connection: duckdb.DuckDBPyConnection, sniffed: Sniffed) -> list[str]:
    """Load the sample as the table `sample` (all text) and return its column names, as the header gives them."""
    header_line = sniffed.text.splitlines()[sniffed.skip]
    names: list[str] = []
    for index, name in enumerate(next(csv.reader([header_line], delimiter=sniffed.delimiter), [])):
        names.append(name if name and name not in names else f"{name or 'column'}_{index + 1}")
    # A proposal is made from the rows that read: a ragged or broken row is the load's to report, not the sample's.
    relation = connection.read_csv(io.StringIO(sniffed.text), sep=sniffed.delimiter, quotechar='"', escapechar='"',
                                   skiprows=sniffed.skip, header=True, auto_detect=False,
                                   columns={name: "VARCHAR" for name in names}, null_padding=True,
                                   strict_mode=False, ignore_errors=True)
    relation.to_table("sample")
    return names


def profile_columns(connection: duckdb.DuckDBPyConnection, names: Sequence[str]) -> dict[str, Profile]:
    """Every column of the table `sample` measured in one query."""
    selects = [f"{_measure_sql(template, name)} AS {quote(f'{index}:{measure}')}"
               for index, name in enumerate(names) for measure, template in MEASURES.items()]
    cursor = connection.execute(f"SELECT {', '.join(selects)} FROM sample")
    values = dict(zip((column[0] for column in cursor.description), cursor.fetchone(), strict=True))
    return {name: _profile(name, {measure: values[f"{index}:{measure}"] for measure in MEASURES})
            for index, name in enumerate(names)}


def _measure_sql(template: str, name: str) -> str:
    """One measure of MEASURES over the column `name`."""
    for pattern, regex in PATTERNS.items():
        template = template.replace("{" + pattern + "}", regex)
    return template.replace("{c}", quote(name))


def _profile(name: str, measured: dict) -> Profile:
    """The shape of a column's values: the first that every filled cell has, in order of strictness."""
    filled = measured["filled"]
    numeric = measured["whole"] + measured["point"]
    comma_numeric = measured["whole"] + measured["comma"]
    date = None
    if filled == 0:
        shape = "empty"
    elif measured["dates"] == filled:
        shape, date = "date", _date_shape(measured)
    elif measured["times"] == filled:
        shape = "time"
    elif measured["float_id"] == filled:
        shape = "float_id"
    elif measured["whole"] == filled:
        shape = "hhmm" if measured["hhmm"] == filled and TIME_NAME.search(name) else "whole"
    elif (numeric == filled and measured["point"]) or (comma_numeric == filled and measured["comma"]):
        shape = "decimal"
    elif not measured["spaced"] and (measured["longest"] or 0) <= 40:
        shape = "code"
    else:
        shape = "text"
    decimal_comma = shape == "decimal" and comma_numeric == filled and measured["comma"] > 0
    thousands = ("." if measured["dot_thousands"] else "") if decimal_comma else (
        "," if shape == "decimal" and measured["comma_thousands"] else "")
    return Profile(name, measured["distinct"], shape, measured["decimals"] or 0, decimal_comma, thousands,
                   measured["negative"], measured["low"], measured["high"], date, measured["grouped"])


def _date_shape(measured: dict) -> DateShape:
    """The formats of a column of dates, the order of day and month decided from the values when they can."""
    separator = measured["separator"]
    if measured["first_digits"] == 4:
        order, decided, why = f"%Y{separator}%m{separator}%d", True, "year first"
    else:
        year = "%Y" if measured["third_digits"] == 4 else "%y"
        day_first = f"%d{separator}%m{separator}{year}"
        if measured["first"] > 12 and measured["second"] <= 12:
            order, decided = day_first, True
            why = f"day first: {measured['day_first_proof']!r} has a first field above 12"
        elif measured["second"] > 12 and measured["first"] <= 12:
            order, decided = f"%m{separator}%d{separator}{year}", True
            why = f"month first: {measured['month_first_proof']!r} has a second field above 12"
        elif measured["first"] > 12:
            order, decided = day_first, False
            why = (f"day and month first mixed: {measured['day_first_proof']!r} and {measured['month_first_proof']!r}"
                   " each have a field above 12; day first assumed")
        else:
            order, decided = day_first, False
            why = ("day or month first cannot be told from the values: no field is above 12 (e.g. "
                   f"{measured['low']!r}); day first assumed")
    time_separator = measured["time_separator"] or " "
    with_time = f"{order}{time_separator}%H:%M" + (":%S" if measured["seconds"] else "")
    if measured["timed"] == measured["filled"]:
        formats: tuple[str, ...] = (with_time,)
    elif measured["timed"]:
        formats = (with_time, order)
    else:
        formats = (order,)
    has_time = bool(measured["timed"])
    if formats in (("%Y-%m-%d",), ("%Y-%m-%d %H:%M",), ("%Y-%m-%d %H:%M:%S",), ("%Y-%m-%dT%H:%M:%S",)):
        return DateShape((), True, "ISO dates, read as they are", has_time)
    return DateShape(formats, decided, why, has_time)
