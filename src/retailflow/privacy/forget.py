"""`retailflow forget`: erase people's personal data from every table and file retailflow wrote, keep the numbers.

A person's personal cells (the model's `personal` columns, wherever they were copied) become NULL, quoted
values in the reasons kept about their rows are erased, and their id becomes a pseudonym (pseudonyms.py) in
every table, so sales, ledger rows and every total stay and still join. All of it is one transaction. The .eml
files of the file sender, found by the path the outbox recorded (or by name in a folder, for messages sent before
it recorded paths), are removed last, just before the commit: a crash before leaves everything to a re-run, a
failed commit leaves only rows, which a re-run erases; no crash leaves a file whose path is no longer known.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import ibis
import ibis.expr.types as ir

from retailflow import catalog
from retailflow.backends import Backend
from retailflow.backends.base import SCHEMAS
from retailflow.backends.run_values import run_value
from retailflow.errors import UserError
from retailflow.model import data_subject, person_references, personal_columns
from retailflow.notify import outbox
from retailflow.notify.senders import eml_name
from retailflow.privacy.pseudonyms import checked_key, key_check, pseudonym

#: The request's ids with their pseudonyms, as a temporary table the statements join to: the original id, its
#: pseudonym, and the token message ids write it as (outbox.message_token).
REQUEST = "rf_forget"
REQUESTED = ibis.table({"original": "string", "pseudonym": "string", "token": "string"}, name=REQUEST)
WARNINGS, ERASURE_ROWS = catalog.table("audit.warnings"), catalog.table("audit.erasure_rows")
#: A value quoted in a reason, and what erasing puts in its place.
QUOTED_VALUE = "'[^']*'"
ERASED_VALUE = "'[erased]'"
#: Columns of retailflow's own free-text notes about a row: erased quoted values when the row is a person's.
NOTE_COLUMNS = ("_reasons", "reasons")


@dataclass
class ForgetResult:
    """What one `forget` request did."""

    erasure_id: int
    erased: list[str] = field(default_factory=list)
    already_erased: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    files_removed: int = 0


@dataclass(frozen=True)
class _Table:
    schema: str
    name: str
    columns: tuple[str, ...]
    person: str

    @property
    def label(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def holds_cells_as_sent(self) -> bool:
        """raw and quarantine keep cells as the file had them, white space included."""
        return self.schema in ("raw", "quarantine")

    def rows(self) -> ir.Table:
        """An Ibis table over it, as the database has it."""
        return catalog.existing_table(self.schema, self.name, self.columns)


def forget(backend: Backend, person_ids: Sequence[str], *, reason: str | None = None,
           outbox_folder: Path | None = None) -> ForgetResult:
    """Erase the given people (ids as in the customer file); unknown ids are reported, not an error here."""
    if not backend.capabilities.updates_in_place:
        raise UserError(f"{backend.display_url}: forget needs an engine that updates rows in a transaction "
                        "(DuckDB, PostgreSQL, MySQL/MariaDB); Spark rewrites whole tables, so an erasure could "
                        "not be all or nothing")
    key = checked_key(backend)
    ids = list(dict.fromkeys(person_id.strip() for person_id in person_ids if person_id.strip()))
    names = {pseudonym(key, person_id): person_id for person_id in ids}
    erasure_id = int(backend.scalar("SELECT coalesce(max(erasure_id), 0) + 1 FROM audit.erasures"))
    result = ForgetResult(erasure_id)
    if not ids:
        return result
    tables = person_tables(backend)
    with backend.transaction():
        _request_table(backend, [(person_id, name, outbox.message_token(person_id))
                                 for name, person_id in names.items()])
        for table in tables:
            _count(backend, erasure_id, table)
        _count_warnings(backend, erasure_id)
        found = {row[0] for row in backend.fetch(
            f"SELECT DISTINCT pseudonym FROM audit.erasure_rows WHERE erasure_id = {erasure_id}")[1]}
        files: set[Path] = set()
        if found:
            files |= _recorded_files(backend, tables)
            _erase(backend, tables)
            noted = ERASURE_ROWS.filter(ERASURE_ROWS.erasure_id == erasure_id).select("pseudonym").distinct()
            backend.insert("audit", "erasures", noted.select(
                "pseudonym", erased_at=ibis.now().cast("timestamp"), reason=ibis.literal(reason, "string"),
                key_check=ibis.literal(key_check(key)), erasure_id=run_value("erasure_id", erasure_id, "int64")))
        earlier = {row[0] for row in backend.fetch(
            f"SELECT DISTINCT pseudonym FROM audit.erasures WHERE erasure_id < {erasure_id}")[1]}
        backend.drop_temp_tables(REQUEST)
        if outbox_folder is not None:
            erased_now = {name: person_id for name, person_id in names.items() if name in found or name in earlier}
            files |= _files_in_folder(backend, tables, erased_now, outbox_folder)
        # Inside the transaction: the paths are erased from the outbox with everything else.
        result.files_removed = _remove_files(files)
    result.erased = sorted(names[name] for name in found)
    result.already_erased = [person_id for name, person_id in names.items() if name in earlier and name not in found]
    result.unknown = [person_id for name, person_id in names.items() if name not in earlier and name not in found]
    _, counted = backend.fetch("SELECT table_name, sum(rows) FROM audit.erasure_rows "
                               f"WHERE erasure_id = {erasure_id} GROUP BY table_name ORDER BY table_name")
    result.rows = {table: int(rows) for table, rows in counted}
    return result


def person_tables(backend: Backend) -> list[_Table]:
    """Every table of retailflow's schemas with a column holding a person's id."""
    person_columns = set(person_references().values())
    tables = []
    for schema in SCHEMAS:
        for name, columns in backend.schema_columns(schema).items():
            person = next((column for column in columns if column in person_columns), None)
            if person:
                tables.append(_Table(schema, name, tuple(columns), person))
    return tables


def _request_table(backend: Backend, rows: list[tuple[str, str, str]]) -> None:
    backend.drop_temp_tables(REQUEST)
    columns = ", ".join(f"{backend.quote(name)} VARCHAR" for name in REQUESTED.columns)
    backend.execute(f"CREATE TEMPORARY TABLE {backend.quote(REQUEST)} ({columns})")
    backend.append_values(REQUESTED, rows)


def _matches(backend: Backend, table: _Table, rows: ir.Table, request: ir.Table) -> ir.BooleanValue:
    """Whether a row of `table` (`rows`) is the person of a row of the request."""
    cell = rows[table.person]
    if table.holds_cells_as_sent:
        cell = backend.engine_scalar(cell, "trim({value})")
    return cell == request.original


def _count(backend: Backend, erasure_id: int, table: _Table) -> None:
    rows = table.rows()
    matched = rows.join(REQUESTED, _matches(backend, table, rows, REQUESTED)).select(pseudonym=REQUESTED.pseudonym)
    _record_rows(backend, erasure_id, table.label, matched)


def _record_rows(backend: Backend, erasure_id: int, label: str, matched: ir.Table) -> None:
    """Add to audit.erasure_rows the rows of table `label` per person, `matched` holding one row (its pseudonym)
    for each."""
    counts = matched.group_by("pseudonym").aggregate(rows=matched.count())
    backend.insert("audit", "erasure_rows", counts.select("pseudonym", "rows", table_name=ibis.literal(label),
                                                          erasure_id=run_value("erasure_id", erasure_id, "int64")))


def _erased_quotes(text: ir.StringValue) -> ir.StringValue:
    """The text with every value quoted in it (as reasons quote cells: 'x') replaced by '[erased]'."""
    return text.re_replace(QUOTED_VALUE, ERASED_VALUE)


def _erase(backend: Backend, tables: list[_Table]) -> None:
    """Rewrite every row of the request's people; the subject's staged rows are re-inserted under the pseudonym
    before their references move and deleted after, so declared foreign keys hold at every statement."""
    subject = data_subject()
    staged_subject = next(table for table in tables if (table.schema, table.name) == ("staging", subject.name))
    outbox_table = _outbox_table(tables)
    if outbox_table:
        messages = outbox_table.rows()
        backend.update_from(messages, REQUESTED, lambda rows, request: [_matches(backend, outbox_table, rows, request)],
                            lambda *_: outbox.CANCELLED, where=messages.status.isin(outbox.UNSENT))
    _erase_warnings(backend)
    personal = set(personal_columns())
    staged = staged_subject.rows()
    joined = staged.join(REQUESTED, staged[staged_subject.person] == REQUESTED.original)
    backend.insert("staging", subject.name, joined.select(**{
        name: REQUESTED.pseudonym if name == staged_subject.person
        else ibis.null(staged[name].type()) if name in personal else staged[name]
        for name in staged_subject.columns}))
    for table in tables:
        if table is not staged_subject:
            backend.update_from(table.rows(), REQUESTED,
                                lambda rows, request, table=table: [_matches(backend, table, rows, request)],
                                lambda rows, request, table=table: _erased_values(table, rows, request, personal,
                                                                                  table is outbox_table))
    backend.delete_matching(staged, REQUESTED.select("original"), [staged_subject.person])


def _erased_values(table: _Table, rows: ir.Table, request: ir.Table, personal: set[str],
                   is_outbox: bool) -> dict[str, ir.Value | None]:
    """A person's row of `table` erased: the pseudonym for the id, no personal cells, no quoted values in notes."""
    values: dict[str, ir.Value | None] = {table.person: request.pseudonym}
    values |= {name: None for name in table.columns if name in personal}
    values |= {name: _erased_quotes(rows[name]) for name in table.columns if name in NOTE_COLUMNS}
    if is_outbox:
        values |= outbox.pseudonym_values(rows, request)
        if outbox.MESSAGE_FILE in table.columns:
            # The file goes before the commit, and its name holds the original id.
            values[outbox.MESSAGE_FILE] = None
    return values


def _warned_rows(backend: Backend, entity_name: str, column: str) -> ir.Table:
    """Lineage and pseudonym of the request's people's raw rows of an entity (audit.warnings names rows by entity
    and lineage, not by person)."""
    raw = backend.raw_table("raw", entity_name, [column, "_batch_id", "_source_line"])
    joined = raw.join(REQUESTED, backend.engine_scalar(raw[column], "trim({value})") == REQUESTED.original)
    return joined.select(raw._batch_id, raw._source_line, REQUESTED.pseudonym)


def _same_row(entity_name: str, warnings: ir.Table, erased: ir.Table) -> list[ir.BooleanValue]:
    return [warnings.entity == entity_name, warnings._batch_id == erased._batch_id,
            warnings._source_line == erased._source_line]


def _count_warnings(backend: Backend, erasure_id: int) -> None:
    for entity_name, column in person_references().items():
        erased = _warned_rows(backend, entity_name, column)
        matched = WARNINGS.join(erased, _same_row(entity_name, WARNINGS, erased)).select(pseudonym=erased.pseudonym)
        _record_rows(backend, erasure_id, "audit.warnings", matched)


def _erase_warnings(backend: Backend) -> None:
    """Warnings about the request's people's rows lose their quoted values; the subject's row key becomes the
    pseudonym."""
    subject = data_subject()
    for entity_name, column in person_references().items():
        def erased_values(warnings: ir.Table, erased: ir.Table, subject_rows: bool = entity_name == subject.name):
            return {"reasons": _erased_quotes(warnings.reasons),
                    **({"row_key": erased.pseudonym} if subject_rows else {})}

        backend.update_from(WARNINGS, _warned_rows(backend, entity_name, column),
                            lambda warnings, erased, entity_name=entity_name: _same_row(entity_name, warnings, erased),
                            erased_values)


def _outbox_table(tables: list[_Table]) -> _Table | None:
    return next((table for table in tables if (table.schema, table.name) == ("notifications", "outbox")), None)


def _recorded_files(backend: Backend, tables: list[_Table]) -> set[Path]:
    """The files the outbox recorded for the request's people's messages (read before their rows are erased)."""
    outbox_table = _outbox_table(tables)
    if outbox_table is None or outbox.MESSAGE_FILE not in outbox_table.columns:
        return set()
    messages = outbox_table.rows()
    joined = messages.join(REQUESTED, _matches(backend, outbox_table, messages, REQUESTED))
    recorded = joined.select(path=messages[outbox.MESSAGE_FILE])
    return {Path(row["path"]) for row in backend.fetch_dicts(recorded.filter(recorded.path.notnull()))}


def _files_in_folder(backend: Backend, tables: list[_Table], people: dict[str, str], folder: Path) -> set[Path]:
    """Where the file sender would have written these people's messages (pseudonym -> original id) in a folder:
    messages sent before the outbox recorded paths are found only this way."""
    if not people or not folder.is_dir() or _outbox_table(tables) is None:
        return set()
    names = ", ".join(backend.literal(name) for name in people)
    _, rows = backend.fetch(f"SELECT customer_id, run_id FROM notifications.outbox WHERE customer_id IN ({names})")
    return {folder.resolve() / eml_name(f"{people[name]}:{run_id}") for name, run_id in rows}


def _remove_files(files: set[Path]) -> int:
    """Delete the message files (and any half-written .partial beside them); returns how many there were."""
    removed = 0
    for path in sorted(files):
        for candidate in (path, path.with_name(f"{path.name}.partial")):
            try:
                candidate.unlink()
            except FileNotFoundError:
                continue
            except OSError as error:
                raise UserError(f"{candidate}: cannot delete it ({error.strerror}); the database was left as it "
                                "was: make the file deletable by this user and run forget again") from None
            removed += 1
    return removed
