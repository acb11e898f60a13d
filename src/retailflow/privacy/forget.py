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

from retailflow.backends import Backend
from retailflow.backends.base import SCHEMAS
from retailflow.errors import UserError
from retailflow.model import ENTITIES, data_subject, person_references, personal_columns
from retailflow.notify import outbox
from retailflow.notify.senders import eml_name
from retailflow.privacy.pseudonyms import checked_key, key_check, pseudonym

#: The request's ids with their pseudonyms, as a temporary table the statements join to.
REQUEST = "rf_forget"
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

    def qualified(self, backend: Backend) -> str:
        return backend.qualified(self.schema, self.name)

    @property
    def label(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def holds_cells_as_sent(self) -> bool:
        """raw and quarantine keep cells as the file had them, white space included."""
        return self.schema in ("raw", "quarantine")


def forget(backend: Backend, person_ids: Sequence[str], *, reason: str | None = None,
           outbox_folder: Path | None = None) -> ForgetResult:
    """Erase the given people (ids as in the customer file); unknown ids are reported, not an error here."""
    if not backend.updates_in_place:
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
            backend.execute(
                "INSERT INTO audit.erasures (erasure_id, pseudonym, erased_at, reason, key_check) "
                f"SELECT DISTINCT {erasure_id}, pseudonym, CURRENT_TIMESTAMP, "
                f"{backend.literal(reason) if reason else 'NULL'}, {backend.literal(key_check(key))} "
                f"FROM audit.erasure_rows WHERE erasure_id = {erasure_id}")
        earlier = {row[0] for row in backend.fetch(
            f"SELECT DISTINCT pseudonym FROM audit.erasures WHERE erasure_id < {erasure_id}")[1]}
        backend.execute(f"DROP TABLE IF EXISTS {REQUEST}")
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
    backend.execute(f"DROP TABLE IF EXISTS {REQUEST}")
    backend.execute(f"CREATE TEMPORARY TABLE {REQUEST} (original VARCHAR, pseudonym VARCHAR, token VARCHAR)")
    values = ", ".join(f"({', '.join(backend.literal(value) for value in row)})" for row in rows)
    backend.execute(f"INSERT INTO {REQUEST} (original, pseudonym, token) VALUES {values}")


def _matches(backend: Backend, table: _Table) -> str:
    cell = f"{table.qualified(backend)}.{backend.quote(table.person)}"
    return f"{'trim(' + cell + ')' if table.holds_cells_as_sent else cell} = erased.original"


def _count(backend: Backend, erasure_id: int, table: _Table) -> None:
    backend.execute(
        "INSERT INTO audit.erasure_rows (erasure_id, pseudonym, table_name, rows) "
        f"SELECT {erasure_id}, erased.pseudonym, {backend.literal(table.label)}, count(*) "
        f"FROM {table.qualified(backend)} JOIN {REQUEST} AS erased ON {_matches(backend, table)} "
        "GROUP BY erased.pseudonym")


def _erase(backend: Backend, tables: list[_Table]) -> None:
    """Rewrite every row of the request's people; the subject's staged rows are re-inserted under the pseudonym
    before their references move and deleted after, so declared foreign keys hold at every statement."""
    subject = data_subject()
    staged_subject = next(table for table in tables if (table.schema, table.name) == ("staging", subject.name))
    outbox_table = _outbox_table(tables)
    if outbox_table:
        backend.execute(f"UPDATE {outbox_table.qualified(backend)} SET {outbox.cancelled_assignments()} "
                        f"FROM {REQUEST} AS erased WHERE {_matches(backend, outbox_table)} "
                        f"AND {outbox_table.qualified(backend)}.status IN {outbox.UNSENT}")
    _erase_warnings(backend)
    personal = set(personal_columns())
    copied = ["erased.pseudonym" if name == staged_subject.person else "NULL" if name in personal
              else f"staged.{backend.quote(name)}" for name in staged_subject.columns]
    backend.execute(
        f"INSERT INTO {staged_subject.qualified(backend)} ({', '.join(map(backend.quote, staged_subject.columns))}) "
        f"SELECT {', '.join(copied)} FROM {staged_subject.qualified(backend)} AS staged "
        f"JOIN {REQUEST} AS erased ON staged.{backend.quote(staged_subject.person)} = erased.original")
    for table in tables:
        if table is staged_subject:
            continue
        assignments = [f"{backend.quote(table.person)} = erased.pseudonym"]
        assignments += [f"{backend.quote(name)} = NULL" for name in table.columns if name in personal]
        assignments += [f"{backend.quote(name)} = {backend.erase_quoted_values(backend.quote(name))}"
                        for name in table.columns if name in NOTE_COLUMNS]
        if table is outbox_table:
            assignments += outbox.pseudonym_assignments()
            if outbox.MESSAGE_FILE in table.columns:
                # The file goes before the commit, and its name holds the original id.
                assignments.append(f"{backend.quote(outbox.MESSAGE_FILE)} = NULL")
        backend.execute(f"UPDATE {table.qualified(backend)} SET {', '.join(assignments)} "
                        f"FROM {REQUEST} AS erased WHERE {_matches(backend, table)}")
    backend.execute(f"DELETE FROM {staged_subject.qualified(backend)} WHERE {backend.quote(staged_subject.person)} "
                    f"IN (SELECT original FROM {REQUEST})")


def _warned_rows(backend: Backend, entity_name: str, column: str) -> str:
    """A subquery: lineage and pseudonym of the request's people's raw rows of an entity (audit.warnings names
    rows by entity and lineage, not by person)."""
    return (f"(SELECT raw_row._batch_id, raw_row._source_line, request.pseudonym "
            f"FROM {backend.qualified('raw', entity_name)} AS raw_row "
            f"JOIN {REQUEST} AS request ON trim(raw_row.{backend.quote(column)}) = request.original) AS erased")


def _count_warnings(backend: Backend, erasure_id: int) -> None:
    warnings = backend.qualified("audit", "warnings")
    for entity_name, column in person_references().items():
        backend.execute(
            "INSERT INTO audit.erasure_rows (erasure_id, pseudonym, table_name, rows) "
            f"SELECT {erasure_id}, erased.pseudonym, 'audit.warnings', count(*) FROM {warnings} "
            f"JOIN {_warned_rows(backend, entity_name, column)} ON {warnings}.entity = {backend.literal(entity_name)} "
            f"AND {warnings}._batch_id = erased._batch_id AND {warnings}._source_line = erased._source_line "
            "GROUP BY erased.pseudonym")


def _erase_warnings(backend: Backend) -> None:
    """Warnings about the request's people's rows lose their quoted values; the subject's row key becomes the
    pseudonym."""
    subject = data_subject()
    warnings = backend.qualified("audit", "warnings")
    for entity_name, column in person_references().items():
        row_key = "erased.pseudonym" if entity_name == subject.name else f"{warnings}.row_key"
        backend.execute(
            f"UPDATE {warnings} SET reasons = {backend.erase_quoted_values('reasons')}, row_key = {row_key} "
            f"FROM {_warned_rows(backend, entity_name, column)} "
            f"WHERE {warnings}.entity = {backend.literal(entity_name)} AND {warnings}._batch_id = erased._batch_id "
            f"AND {warnings}._source_line = erased._source_line")


def _outbox_table(tables: list[_Table]) -> _Table | None:
    return next((table for table in tables if (table.schema, table.name) == ("notifications", "outbox")), None)


def _recorded_files(backend: Backend, tables: list[_Table]) -> set[Path]:
    """The files the outbox recorded for the request's people's messages (read before their rows are erased)."""
    outbox_table = _outbox_table(tables)
    if outbox_table is None or outbox.MESSAGE_FILE not in outbox_table.columns:
        return set()
    column = f"{outbox_table.qualified(backend)}.{backend.quote(outbox.MESSAGE_FILE)}"
    _, rows = backend.fetch(f"SELECT {column} FROM {outbox_table.qualified(backend)} JOIN {REQUEST} AS erased "
                            f"ON {_matches(backend, outbox_table)} WHERE {column} IS NOT NULL")
    return {Path(row[0]) for row in rows}


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
