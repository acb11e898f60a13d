"""`retailflow forget`: an erased customer's personal data is nowhere, every total is unchanged, and later files
holding the customer are pseudonymised on the way in."""

from __future__ import annotations

import decimal
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import SAMPLE_DIR
from retailflow.backends import Backend, connect
from retailflow.backends.base import SCHEMAS
from retailflow.errors import UserError
from retailflow.ingest import discover, ingest
from retailflow.notify import outbox
from retailflow.notify.senders import FileSender
from retailflow.pipeline import run_analytics, run_pipeline
from retailflow.privacy import pseudonyms
from retailflow.privacy.forget import forget
from retailflow.quality.engine import route_all
from retailflow.quality.rules import load_rules
from retailflow.report.dashboard import build_report

KEY = "test-key-0123456789abcdef"
#: C01 (renamed so that the name is unique), C05 (a quarantined sale), C06 (an e-mail the rules warn
#: about, quoted in the warning) and C99 (known only from a quarantined sale naming an unknown customer).
ERASED = ["C01", "C05", "C06", "C99"]
PERSONAL = ["Annabel-Zq", "annabel.zq@example.org", "eve@example.com", "finn.example.com"]

pytestmark = pytest.mark.parametrize("db_url", ["duckdb", "postgres"], indirect=True)


@pytest.fixture(autouse=True)
def pii_key(monkeypatch):
    monkeypatch.setenv(pseudonyms.KEY_VARIABLE, KEY)


def _sample(folder: Path) -> Path:
    shutil.copytree(SAMPLE_DIR, folder)
    customers = folder / "customer_details.csv"
    customers.write_text(customers.read_text().replace("C01,Ann,ann@example.com", "C01,Annabel-Zq,annabel.zq@example.org"))
    return folder


def _whole_loop(backend: Backend, data: Path, mail: Path) -> None:
    run_pipeline(backend, [data], load_rules())
    outbox.send(backend, FileSender(mail))
    # A message that failed and is due again, to an erased customer: it must never go out.
    backend.execute("UPDATE notifications.outbox SET status = 'failed', attempts = 1, "
                    "next_attempt_at = TIMESTAMP '2000-01-01 00:00:00' WHERE customer_id = 'C05'")


def _cells(backend: Backend) -> list[tuple[str, str]]:
    """(table, cell text) of every cell of every table in every retailflow schema."""
    found = []
    for schema in SCHEMAS:
        for table in backend.tables(schema):
            _, rows = backend.fetch(f"SELECT * FROM {backend.qualified(schema, table)}")
            found += [(f"{schema}.{table}", str(cell)) for row in rows for cell in row if cell is not None]
    return found


#: An erased id or personal value as a word of its own (the report's embedded JavaScript holds "\\uDC05").
NEEDLES = re.compile("|".join(rf"\b{re.escape(needle)}\b" for needle in ERASED + PERSONAL))


def _leaks(backend: Backend, folder: Path, report: Path) -> list[str]:
    leaks = [f"{table}: {cell!r}" for table, cell in _cells(backend) if NEEDLES.search(cell)]
    for path in [*folder.iterdir(), report]:
        leaks += [f"{path.name}: {found}" for found in NEEDLES.findall(path.name + path.read_text(errors="replace"))]
    return leaks


def _totals(backend: Backend) -> dict[str, tuple]:
    """Row count and the sum of every numeric column of every staging, analytics and loyalty table."""
    totals = {}
    for schema in ("staging", "analytics", "loyalty"):
        for table in backend.tables(schema):
            names, rows = backend.fetch(f"SELECT * FROM {backend.qualified(schema, table)}")
            numeric = [index for index, name in enumerate(names) if not name.startswith("_") and any(
                isinstance(row[index], (int, float, decimal.Decimal)) and not isinstance(row[index], bool)
                for row in rows)]
            totals[f"{schema}.{table}"] = (len(rows), *[
                round(float(sum(row[index] or 0 for row in rows)), 6) for index in numeric])
    return totals


def test_an_erased_customer_is_nowhere_and_every_total_stays(backend, tmp_path):
    data, mail = _sample(tmp_path / "data"), tmp_path / "outbox"
    _whole_loop(backend, data, mail)
    assert any("annabel.zq" in path.read_text() for path in mail.iterdir())
    before = _totals(backend)
    sales = backend.scalar("SELECT count(*) FROM staging.store_sales_header WHERE customer_id = 'C01'")

    result = forget(backend, [*ERASED, "C404", " C01 "], reason="erasure request 1", outbox_folder=mail)

    assert (sorted(result.erased), result.unknown) == (ERASED, ["C404"])
    # Messages were written for C01 and C05; C06's address is invalid (skipped), C99 earned nothing.
    assert result.rows["staging.customer_details"] == 3 and result.files_removed == 2
    assert _totals(backend) == before
    # Every stage again: the outputs carry the pseudonyms and still add up to the same numbers.
    run_analytics(backend, rebuild=True)
    assert _totals(backend) == before
    sent = outbox.send(backend, FileSender(mail))
    assert sent["sent"] == 0, "nothing is due for an erased customer"
    report = build_report(backend, tmp_path / "report.html").path
    assert not _leaks(backend, mail, report)
    cancelled = backend.fetch("SELECT status, last_error FROM notifications.outbox WHERE status = 'cancelled'")[1]
    assert cancelled == [("cancelled", "customer erased")]
    pseudonym = pseudonyms.pseudonym(KEY.encode(), "C01")
    assert backend.scalar(f"SELECT count(*) FROM staging.store_sales_header WHERE customer_id = '{pseudonym}'") == sales > 0
    assert backend.fetch("SELECT reason, pseudonym FROM audit.erasures ORDER BY pseudonym")[1] == sorted(
        ("erasure request 1", pseudonyms.pseudonym(KEY.encode(), person)) for person in ERASED)

    again = forget(backend, ["C01"], outbox_folder=mail)
    assert (again.erased, again.already_erased, again.rows) == ([], ["C01"], {})


def test_files_sent_before_the_outbox_recorded_paths_are_found_by_name_in_the_outbox_folder(backend, tmp_path):
    data, mail = _sample(tmp_path / "data"), tmp_path / "outbox"
    _whole_loop(backend, data, mail)
    # A database whose outbox predates message_file, and notify has not run since.
    backend.execute(f"ALTER TABLE notifications.outbox DROP COLUMN {outbox.MESSAGE_FILE}")
    assert sorted(path.name[:3] for path in mail.iterdir()) == ["C01", "C02", "C03", "C04", "C05"]

    result = forget(backend, ["C01"], outbox_folder=mail)

    assert (result.erased, result.files_removed) == (["C01"], 1)
    assert sorted(path.name[:3] for path in mail.iterdir()) == ["C02", "C03", "C04", "C05"]


# Runs in a subprocess: the file sender writes the first message (C01's, in key order) and dies (SIGKILL) before
# its outbox row is marked sent.
DIES_AFTER_WRITING = """
import os, signal, sys
from pathlib import Path
from retailflow.backends import connect
from retailflow.notify import outbox
from retailflow.notify.senders import FileSender

class DiesAfterWriting(FileSender):
    def send(self, message):
        super().send(message)
        os.kill(os.getpid(), signal.SIGKILL)

outbox.send(connect(sys.argv[1]), DiesAfterWriting(Path(sys.argv[2])))
"""


def test_a_file_written_by_a_send_killed_before_its_row_was_marked_is_still_found(backend, db_url, tmp_path):
    run_pipeline(backend, [_sample(tmp_path / "data")], load_rules())
    backend.close()  # the subprocess needs the database (DuckDB admits one process)
    mail = tmp_path / "elsewhere" / "mail"
    killed = subprocess.run([sys.executable, "-c", DIES_AFTER_WRITING, db_url, str(mail)], capture_output=True,
                            text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    [written] = mail.iterdir()
    assert written.name.startswith("C01_") and "annabel.zq@example.org" in written.read_text()
    reopened = connect(db_url)
    try:
        assert reopened.fetch(f"SELECT status, {outbox.MESSAGE_FILE} FROM notifications.outbox "
                              "WHERE customer_id = 'C01'")[1] == [("queued", str(written.resolve()))]

        result = forget(reopened, ["C01"])
    finally:
        reopened.close()
    assert (result.erased, result.files_removed, list(mail.iterdir())) == (["C01"], 1, [])


def test_later_files_with_an_erased_customer_are_pseudonymised_on_the_way_in(backend, tmp_path):
    data, mail = _sample(tmp_path / "data"), tmp_path / "outbox"
    _whole_loop(backend, data, mail)
    forget(backend, ERASED, outbox_folder=mail)

    # The same export again is skipped as identical; a new one with C01 under a new address is cleaned.
    assert [result.status for result in ingest(backend, discover([data / "customer_details.csv"]))] == ["skipped"]
    newer = tmp_path / "newer"
    newer.mkdir()
    (newer / "customer_details.csv").write_text(
        "customer_id,first_name,email,loyalty_status,total_loyalty_points,last_purchase_date,segment_id\n"
        " C01 ,Annabel-Zq,annabel.zq@example.org,Platinum,5000,2024-12-20,\nC07,Gus,gus@example.com,Bronze,0,,\n")
    (newer / "store_sales_header.csv").write_text(
        "transaction_id,customer_id,store_id,transaction_date,total_amount\nT900,C01,ST01,2024-12-08 10:00:00,5.00\n")
    (newer / "store_sales_line_items.csv").write_text(
        "line_item_id,transaction_id,product_id,promotion_id,quantity,line_item_amount\n900,T900,P01,,1,5.00\n")
    loaded = ingest(backend, discover([newer]))
    route_all(backend, load_rules(), "validate")
    assert [result.note for result in loaded if result.entity == "customer_details"] == [
        "1 row(s) of erased customers pseudonymised"]
    pseudonym = pseudonyms.pseudonym(KEY.encode(), "C01")
    assert backend.fetch(f"SELECT loyalty_status, email FROM staging.customer_details "
                         f"WHERE customer_id = '{pseudonym}'")[1] == [("Platinum", None)]
    assert backend.scalar("SELECT customer_id FROM staging.store_sales_header WHERE transaction_id = 'T900'") == pseudonym
    # The new sale earns points; the message about them is cancelled, not sent.
    run_analytics(backend)
    assert backend.fetch(f"SELECT status, last_error FROM notifications.outbox WHERE customer_id = '{pseudonym}' "
                         "AND status <> 'sent'")[1] == [("cancelled", "customer erased")]
    assert outbox.send(backend, FileSender(mail))["sent"] == 0
    assert not _leaks(backend, mail, build_report(backend, tmp_path / "report.html").path)


def test_the_key_is_required_and_must_stay_the_same(backend, tmp_path, monkeypatch):
    run_pipeline(backend, [_sample(tmp_path / "data")], load_rules())
    monkeypatch.delenv(pseudonyms.KEY_VARIABLE)
    with pytest.raises(UserError, match="RETAILFLOW_PII_KEY is not set"):
        forget(backend, ["C01"])
    monkeypatch.setenv(pseudonyms.KEY_VARIABLE, "short")
    with pytest.raises(UserError, match="at least 16"):
        forget(backend, ["C01"])
    monkeypatch.setenv(pseudonyms.KEY_VARIABLE, KEY)
    forget(backend, ["C01"])
    monkeypatch.setenv(pseudonyms.KEY_VARIABLE, "another-key-0123456789")
    with pytest.raises(UserError, match="not the key"):
        forget(backend, ["C02"])


def test_the_engine_computes_the_same_pseudonyms_as_python(backend):
    key = "k\u00e9y-with-non-ascii-and-more-than-sixty-four-bytes-" * 2
    ids = ["C01", "Zo\u00eb", "a b"]
    values = " UNION ALL ".join(f"SELECT {backend.literal(person)} AS person" for person in ids)
    computed = dict(backend.fetch(f"SELECT person, {pseudonyms.pseudonym_sql(backend, key.encode(), 'person')} "
                                  f"FROM ({values}) AS people")[1])
    assert computed == {person: pseudonyms.pseudonym(key.encode(), person) for person in ids}
