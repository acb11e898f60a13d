"""A mistake in a mapping file stops the command before anything is loaded, with one line naming the mapping
file, the line and the key (exit 2, no traceback): through the command line as a user types it, and through
load_sources (and ingest, for a format that only the file's values can refute)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from exports import ONLINE_SHOP_MAPPING, write_online_shop
from retailflow.backends import connect
from retailflow.errors import UserError
from retailflow.ingest import discover, ingest
from retailflow.sources.mapping import load_sources

RETAILFLOW = str(Path(sys.executable).with_name("retailflow"))
TIMESTAMP_FORMAT = 'timestamp_format: "%m/%d/%Y %H:%M"'
AMOUNT = "line_item_amount: round(Quantity * UnitPrice, 2)"


def bad_mapping(old: str, new: str) -> str:
    """The online shop's mapping (tests/exports.py) with one line changed."""
    assert old in ONLINE_SHOP_MAPPING
    return ONLINE_SHOP_MAPPING.replace(old, new, 1)


def line_of(text: str, start: str) -> int:
    """The 1-based line of `text` that starts (after its indent) with `start`."""
    return next(number for number, line in enumerate(text.splitlines(), 1) if line.strip().startswith(start))


# id: (the mapping, the line the message names (its start), words the message must hold: the key and the value)
MAPPING_MISTAKES = {
    "unknown entity": (bad_mapping("feeds: sales_lines", "feeds: salez"), "feeds:", ["feeds", "'salez'"]),
    "unknown column": (bad_mapping("transaction_id: InvoiceNo", "transacton_id: InvoiceNo"), "transacton_id:",
                       ["transacton_id"]),
    "expression that does not compile": (bad_mapping(AMOUNT, "line_item_amount: Quantity ** "), "line_item_amount:",
                                         ["line_item_amount", "Quantity **"]),
    "unknown function": (bad_mapping(AMOUNT, "line_item_amount: foo(Quantity)"), "line_item_amount:",
                         ["line_item_amount", "foo"]),
    # An unclosed list is found where the next key starts; the message says where it began.
    "not YAML": (bad_mapping("feeds: sales_lines", "feeds: [sales_lines"), "read:",
                 ["not valid YAML", f"started on line {line_of(ONLINE_SHOP_MAPPING, 'feeds:')}"]),
    "no header and no names": (bad_mapping(TIMESTAMP_FORMAT, f"{TIMESTAMP_FORMAT}\n      header: false"), "header:",
                               ["header", "read.names"]),
}
# Month-first dates with slashes (12/1/2010 8:26) read with a German format: only the file can tell.
WRONG_FORMAT = bad_mapping(TIMESTAMP_FORMAT, 'timestamp_format: "%d.%m.%Y"')
WRONG_FORMAT_WORDS = ["timestamp_format", "%d.%m.%Y", "'12/1/2010 8:26'"]


def assert_one_line_naming(message: str, mapping: Path | str, text: str, start: str, words: list[str]) -> None:
    assert message.startswith(f"{mapping}:{line_of(text, start)}: "), message
    assert "\n" not in message.strip() and "Traceback" not in message
    # Terminal colour codes (an underlined excerpt) are no use in a log or a CI message.
    assert "\x1b" not in message and "[4m" not in message, message
    for word in words:
        assert word in message


def loaded_rows(database: Path) -> tuple[int, int]:
    """Batches in audit and rows in raw of a DuckDB file; (0, 0) when the command never created it."""
    if not database.exists():
        return 0, 0
    with duckdb.connect(str(database), read_only=True) as connection:
        batches = connection.sql("SELECT count(*) FROM audit.batches").fetchone()[0]
        tables = [row[0] for row in connection.sql("SELECT table_name FROM information_schema.tables "
                                                   "WHERE table_schema = 'raw'").fetchall()]
        rows = sum(connection.sql(f'SELECT count(*) FROM raw."{table}"').fetchone()[0] for table in tables)
    return batches, rows


def retailflow(folder: Path, command: str, mapping: str) -> subprocess.CompletedProcess:
    """`retailflow --db duckdb:///shop.duckdb --sources sources.yaml COMMAND export` in `folder`, holding the
    online shop's export and `mapping` as sources.yaml."""
    write_online_shop(folder)
    (folder / "sources.yaml").write_text(mapping, encoding="utf-8")
    return subprocess.run([RETAILFLOW, "--db", "duckdb:///shop.duckdb", "--sources", "sources.yaml", command, "export"],
                          cwd=folder, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "RETAILFLOW_QUIET": "1"})


@pytest.mark.parametrize("mistake", list(MAPPING_MISTAKES))
def test_the_command_line_names_a_mapping_mistake_in_one_line_and_loads_nothing(tmp_path, mistake):
    text, start, words = MAPPING_MISTAKES[mistake]
    result = retailflow(tmp_path, "ingest", text)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: ")
    assert_one_line_naming(result.stderr.removeprefix("error: "), "sources.yaml", text, start, words)
    assert "Traceback" not in result.stdout
    assert loaded_rows(tmp_path / "shop.duckdb") == (0, 0)


def test_run_names_a_date_format_that_reads_no_value_of_the_file_in_one_line_and_loads_nothing(tmp_path):
    result = retailflow(tmp_path, "run", WRONG_FORMAT)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: ")
    assert_one_line_naming(result.stderr.removeprefix("error: "), "sources.yaml", WRONG_FORMAT, "timestamp_format:",
                           WRONG_FORMAT_WORDS)
    assert "Traceback" not in result.stdout
    assert loaded_rows(tmp_path / "shop.duckdb") == (0, 0)


@pytest.mark.parametrize("mistake", list(MAPPING_MISTAKES))
def test_load_sources_names_a_mapping_mistake_in_one_line(tmp_path, mistake):
    text, start, words = MAPPING_MISTAKES[mistake]
    mapping = tmp_path / "sources.yaml"
    mapping.write_text(text, encoding="utf-8")
    with pytest.raises(UserError) as raised:
        load_sources(mapping)
    assert_one_line_naming(str(raised.value), mapping, text, start, words)


def test_ingest_refuses_a_date_format_that_reads_no_value_of_the_file_before_loading_anything(tmp_path):
    fixture = write_online_shop(tmp_path)
    mapping = tmp_path / "sources.yaml"
    mapping.write_text(WRONG_FORMAT, encoding="utf-8")
    sources = load_sources(mapping)  # the mapping itself is well-formed
    backend = connect(f"duckdb:///{tmp_path}/shop.duckdb")
    try:
        with pytest.raises(UserError) as raised:
            ingest(backend, discover([fixture.export], sources=sources))
        assert_one_line_naming(str(raised.value), mapping, WRONG_FORMAT, "timestamp_format:", WRONG_FORMAT_WORDS)
        assert backend.scalar("SELECT count(*) FROM audit.batches") == 0
        assert backend.scalar("SELECT count(*) FROM raw.store_sales_line_items") == 0
    finally:
        backend.close()
