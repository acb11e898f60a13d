"""Schema drift in each mode (evolve | freeze | discard_value): a new column, a mapped column dropped, a column
renamed and a date format that changes mid-year, each behaving as docs/reference/sources.md says, with nothing lost
(`reconcile` holds).

One database per mode holds every case: each case is a source of its own (files `<case>_2024-MM.csv`), its
files loaded month by month as they would arrive, then validated once. The same till export throughout: one
row per receipt line, dates written 31.12.2024.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from helpers import write_csv
from retailflow import audit
from retailflow.backends import Backend, connect
from retailflow.errors import UserError
from retailflow.ingest import IngestResult, discover, ingest
from retailflow.quality.engine import route_all
from retailflow.quality.rules import load_rules
from retailflow.sources.mapping import load_sources

MODES = ("evolve", "freeze", "discard_value")
COLUMNS = "receipt,day,shop,sku,qty,amount"
DAY_FIRST = '"%d.%m.%Y"'


def source_yaml(case: str, mode: str, formats: str = DAY_FIRST) -> str:
    return f"""
  {case}:
    files: "{case}_*.csv"
    feeds: sales_lines
    schema: {mode}
    read: {{date_format: {formats}}}
    columns:
      transaction_id: receipt
      transaction_date: day
      store_id: shop
      product_id: sku
      quantity: qty
      line_item_amount: amount
    derive: {{products: {{}}}}"""


def dated_files(prefix: str) -> dict[str, str]:
    """January as mapped; February written day/month/year with slashes throughout (the till was updated);
    March with one receipt in each way (the update came mid-month)."""
    return {
        "2024-01": f"{COLUMNS}\n{prefix}1,05.01.2024,S1,P1,2,3.00",
        "2024-02": f"{COLUMNS}\n{prefix}2,01/02/2024,S1,P1,1,1.50\n{prefix}3,02/02/2024,S2,P2,1,1.50",
        "2024-03": f"{COLUMNS}\n{prefix}4,01.03.2024,S1,P1,1,1.50\n{prefix}5,02/03/2024,S2,P2,1,1.50",
    }


def added_files(prefix: str) -> dict[str, str]:
    """A promotion code column appears in February and stays."""
    return {
        "2024-01": f"{COLUMNS}\n{prefix}1,05.01.2024,S1,P1,2,3.00\n{prefix}1,05.01.2024,S1,P2,1,1.50",
        "2024-02": f"{COLUMNS},promo\n{prefix}2,01.02.2024,S1,P1,1,1.50,SPRING",
        "2024-03": f"{COLUMNS},promo\n{prefix}3,01.03.2024,S2,P2,1,1.50,EASTER",
    }


#: Each case's files by month. The `together` case is `added` received at once (one ingest of all three files).
FILES = {
    "added": added_files("A"),
    "dropped": {"2024-01": f"{COLUMNS}\nD1,05.01.2024,S1,P1,2,3.00",
                # No shop column: store_id, required on a receipt, is left empty.
                "2024-02": "receipt,day,sku,qty,amount\nD2,01.02.2024,P1,1,1.50\nD2,01.02.2024,P2,2,3.00"},
    "renamed": {"2024-01": f"{COLUMNS}\nR1,05.01.2024,S1,P1,2,3.00",
                "2024-02": "receipt,day,branch,sku,qty,amount\nR2,01.02.2024,S1,P1,1,1.50"},
    "dated": dated_files("F"),
    "both": dated_files("B"),
    "together": added_files("T"),
}


@dataclass
class DriftLoad:
    """One mode's database after every case's files were loaded and validated."""

    mode: str
    mapping: Path
    backend: Backend
    #: Per file name (or "together" for the files loaded at once): what ingest did, or the error it raised.
    results: dict[str, list[IngestResult]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def where(self, case: str, key: str) -> str:
        """`mapping:line` of `key:` in the case's source, as messages name it."""
        lines = self.mapping.read_text().splitlines()
        start = lines.index(f"  {case}:")
        line = next(index for index, text in enumerate(lines) if index > start and text.strip().startswith(f"{key}:"))
        return f"{self.mapping}:{line + 1}"

    def notes(self, name: str) -> str:
        """The notes of every batch one ingest made (a file's, or "together")."""
        return "; ".join(result.note for result in self.results[name])

    def drift(self, name: str) -> set:
        """The drift audit recorded for each batch of one file."""
        rows = self.backend.fetch(f"SELECT drift FROM audit.batches WHERE source_file LIKE '%/{name}'")[1]
        return {row[0] for row in rows}

    def loaded_files(self, case: str) -> list[str]:
        """The names of a case's files whose rows are in raw."""
        rows = self.backend.fetch(f"SELECT DISTINCT _source_file FROM raw.store_sales_line_items "
                                  f"WHERE _source_file LIKE '{case}_%' ORDER BY 1")[1]
        return [row[0] for row in rows]

    def raw_values(self, column: str, case: str) -> list:
        """A file column's values in raw for one case's files, in file order ([] when raw has no such column)."""
        columns, _ = self.backend.fetch("SELECT * FROM raw.store_sales_line_items LIMIT 0")
        if column not in columns:
            return []
        return [row[0] for row in self.backend.fetch(
            f"SELECT {column} FROM raw.store_sales_line_items WHERE _source_file LIKE '{case}_%' "
            "ORDER BY _source_file, _source_line")[1]]

    def staged_dates(self, prefix: str) -> dict[str, str]:
        """The staged day of each of one case's receipts."""
        rows = self.backend.fetch("SELECT transaction_id, CAST(transaction_date AS DATE) "
                                  f"FROM staging.store_sales_header WHERE transaction_id LIKE '{prefix}%'")[1]
        return {row[0]: str(row[1]) for row in rows}

    def quarantined(self, entity: str, prefix: str) -> list[tuple]:
        """(transaction id, rule ids, reasons) of one case's quarantined rows of `entity`."""
        return sorted(self.backend.fetch(f"SELECT transaction_id, _rule_ids, _reasons FROM quarantine.{entity} "
                                         f"WHERE transaction_id LIKE '{prefix}%'")[1])

    def unbalanced(self) -> list[audit.BatchBalance]:
        """The batches whose raw rows are not all staged, superseded or quarantined."""
        balances = audit.reconcile(self.backend)
        assert balances
        return [balance for balance in balances if not balance.balanced]


class DriftLoads:
    """Each mode's DriftLoad, made once per test process on first use."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.loads: dict[str, DriftLoad] = {}

    def __call__(self, mode: str) -> DriftLoad:
        if mode not in self.loads:
            self.loads[mode] = self._load(mode)
        return self.loads[mode]

    def _load(self, mode: str) -> DriftLoad:
        folder = self.folder / mode
        sources = "".join(source_yaml(case, mode, '["%d.%m.%Y", "%d/%m/%Y"]' if case == "both" else DAY_FIRST)
                          for case in FILES)
        mapping = write_csv(folder, "sources.yaml", f"sources:{sources}")
        loaded = DriftLoad(mode, mapping, connect(f"duckdb:///{folder}/drift.duckdb"))
        sources_map = load_sources(mapping)

        def load(name: str, paths: list[Path]) -> None:
            try:
                loaded.results[name] = ingest(loaded.backend, discover(paths, sources=sources_map))
            except UserError as error:
                loaded.errors[name] = str(error)

        for case, months in FILES.items():
            paths = [write_csv(folder / "in", f"{case}_{month}.csv", text) for month, text in months.items()]
            if case == "together":
                load(case, paths)
            else:
                for path in paths:
                    load(path.name, [path])
        route_all(loaded.backend, load_rules(), "validate")
        return loaded

    def close(self) -> None:
        for loaded in self.loads.values():
            loaded.backend.close()


@pytest.fixture(scope="module")
def drift(tmp_path_factory) -> Iterator[DriftLoads]:
    loads = DriftLoads(tmp_path_factory.mktemp("drift"))
    yield loads
    loads.close()


@pytest.mark.parametrize("mode", MODES)
def test_nothing_is_lost_in_any_mode(drift, mode):
    assert drift(mode).unbalanced() == []


# --- a new column -----------------------------------------------------------------------------------------------

def test_evolve_keeps_a_new_column_in_raw_and_reports_it_once(drift):
    loaded = drift("evolve")
    assert "new column(s) kept in raw: promo" in loaded.notes("added_2024-02.csv")
    assert "promo" not in loaded.notes("added_2024-01.csv") + loaded.notes("added_2024-03.csv")
    assert loaded.drift("added_2024-02.csv") == {"new: promo"}
    assert loaded.drift("added_2024-03.csv") == {None}
    assert loaded.raw_values("promo", "added") == [None, None, "SPRING", "EASTER"]
    assert len(loaded.staged_dates("A")) == 3


def test_discard_value_reports_a_new_column_once_and_keeps_it_out_of_raw(drift):
    loaded = drift("discard_value")
    assert "new column(s) dropped: promo" in loaded.notes("added_2024-02.csv")
    assert "promo" not in loaded.notes("added_2024-03.csv")
    assert loaded.drift("added_2024-02.csv") == {"new: promo"}
    assert loaded.drift("added_2024-03.csv") == {None}
    assert loaded.raw_values("promo", "added") == []
    assert len(loaded.staged_dates("A")) == 3


def test_freeze_refuses_a_file_with_a_new_column_in_one_line_saying_what_to_do(drift):
    loaded = drift("freeze")
    for name in ("added_2024-02.csv", "added_2024-03.csv"):  # March too: February, which had it first, is not in
        error = loaded.errors[name]
        assert error.startswith(f"{loaded.mapping.parent / 'in' / name}:1: new column(s) promo")
        assert "schema: evolve" in error and "discard_value" in error and "\n" not in error
    assert loaded.loaded_files("added") == ["added_2024-01.csv"]


@pytest.mark.parametrize("mode", ["evolve", "discard_value"])
def test_a_new_column_in_files_received_together_is_reported_once_as_when_they_come_one_by_one(drift, mode):
    loaded = drift(mode)
    assert "together" not in loaded.errors
    assert loaded.drift("together_2024-02.csv") == {"new: promo"}
    assert loaded.drift("together_2024-03.csv") == {None}
    assert "promo" in loaded.notes("together") and loaded.notes("together").count("promo") == 1
    assert loaded.raw_values("promo", "together") == ([None, None, "SPRING", "EASTER"] if mode == "evolve" else [])


def test_freeze_refuses_files_received_together_when_one_has_a_new_column(drift):
    loaded = drift("freeze")
    assert "together_2024-02.csv:1: new column(s) promo" in loaded.errors["together"]
    assert loaded.loaded_files("together") == []  # all files of one ingest or none: January too


# --- a mapped column dropped, a column renamed ------------------------------------------------------------------

@pytest.mark.parametrize("case", ["dropped", "renamed"])
def test_freeze_refuses_a_file_without_a_mapped_column_naming_the_mapping_line(drift, case):
    loaded = drift("freeze")
    error = loaded.errors[f"{case}_2024-02.csv"]
    assert error.startswith(f"{loaded.mapping.parent / 'in' / case}_2024-02.csv:1: column(s) shop")
    assert f"({loaded.where(case, 'store_id')})" in error and "\n" not in error
    assert loaded.loaded_files(case) == [f"{case}_2024-01.csv"]


@pytest.mark.parametrize("mode", ["evolve", "discard_value"])
def test_a_dropped_mapped_column_reads_empty_with_a_note_and_its_rows_are_quarantined(drift, mode):
    loaded = drift(mode)
    assert (f"mapped column(s) not in the file, read as empty: shop ({loaded.where('dropped', 'store_id')})"
            in loaded.notes("dropped_2024-02.csv"))
    assert loaded.drift("dropped_2024-02.csv") == {"missing: shop (empty)"}
    assert loaded.quarantined("store_sales_header", "D") == [
        ("D2", "store_sales_header.store_id.not_null", "store_id is missing")]
    assert [row[:2] for row in loaded.quarantined("store_sales_line_items", "D")] == [
        ("D2", "store_sales_line_items.transaction.atomic")] * 2
    assert loaded.staged_dates("D") == {"D1": "2024-01-05"}


@pytest.mark.parametrize("mode", ["evolve", "discard_value"])
def test_a_renamed_column_is_a_dropped_one_and_a_new_one(drift, mode):
    loaded = drift(mode)
    notes = loaded.notes("renamed_2024-02.csv")
    assert f"read as empty: shop ({loaded.where('renamed', 'store_id')})" in notes
    kept = "kept in raw" if mode == "evolve" else "dropped"
    assert f"new column(s) {kept}: branch" in notes
    assert loaded.drift("renamed_2024-02.csv") == {"missing: shop (empty); new: branch"}
    assert loaded.raw_values("branch", "renamed") == ([None, "S1"] if mode == "evolve" else [])
    assert loaded.quarantined("store_sales_header", "R") == [
        ("R2", "store_sales_header.store_id.not_null", "store_id is missing")]


# --- a date format that changes mid-year --------------------------------------------------------------------------
# ISO dates would not show it: a value the mapping's format does not read is kept as written, and our contract
# reads ISO itself. So the till switches from 05.01.2024 to 01/02/2024, which nothing reads but a format.

@pytest.mark.parametrize("mode", MODES)
def test_dates_a_new_format_within_a_file_are_quarantined_with_their_text(drift, mode):
    loaded = drift(mode)
    assert loaded.staged_dates("F4") == {"F4": "2024-03-01"}
    assert loaded.quarantined("store_sales_header", "F5") == [
        ("F5", "store_sales_header.transaction_date.type",
         "transaction_date '02/03/2024' is not a date-time YYYY-MM-DD HH:MM:SS")]
    assert [row[:2] for row in loaded.quarantined("store_sales_line_items", "F5")] == [
        ("F5", "store_sales_line_items.transaction.atomic")]


@pytest.mark.parametrize("mode", MODES)
def test_dates_in_a_new_format_from_one_file_on_are_quarantined_with_their_text(drift, mode):
    """A format that reads no value of a source's first file is a wrong mapping (test_bad_mappings); once
    files have loaded with it, a file it no longer reads is drift: its rows are quarantined, the load goes on."""
    loaded = drift(mode)
    assert "dated_2024-02.csv" not in loaded.errors
    assert loaded.quarantined("store_sales_header", "F2") + loaded.quarantined("store_sales_header", "F3") == [
        ("F2", "store_sales_header.transaction_date.type",
         "transaction_date '01/02/2024' is not a date-time YYYY-MM-DD HH:MM:SS"),
        ("F3", "store_sales_header.transaction_date.type",
         "transaction_date '02/02/2024' is not a date-time YYYY-MM-DD HH:MM:SS")]


@pytest.mark.parametrize("mode", MODES)
def test_dates_in_both_formats_load_when_the_mapping_lists_both(drift, mode):
    loaded = drift(mode)
    assert [name for name in loaded.errors if name.startswith("both")] == []
    assert loaded.staged_dates("B") == {"B1": "2024-01-05", "B2": "2024-02-01", "B3": "2024-02-02",
                                        "B4": "2024-03-01", "B5": "2024-03-02"}
    assert loaded.quarantined("store_sales_header", "B") == []
