"""Exports loaded as they come: each hand-written export (tests/exports.py) read through its mapping stages exactly
what the same data written in our contract stages, with raw keeping the retailer's own cells and audit saying
which source, drift and mode each batch had."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from exports import ExportFixture, write_grocery, write_online_shop, write_pos
from helpers import write_csv
from retailflow import audit
from retailflow.backends import Backend, connect
from retailflow.ingest import IngestResult, discover, ingest
from retailflow.model import ENTITIES
from retailflow.quality.engine import route_all
from retailflow.quality.rules import load_rules
from retailflow.sources.mapping import load_sources

WRITERS: dict[str, Callable[[Path], ExportFixture]] = {
    "online_shop": write_online_shop, "pos": write_pos, "grocery": write_grocery}
RETAILFLOW = str(Path(sys.executable).with_name("retailflow"))


def staged_rows(backend: Backend) -> dict[str, list[tuple]]:
    """Every staged row of every entity, all of our columns, as text (engines return their own Python types),
    sorted: what two loads are compared by."""
    staged = {}
    for entity in ENTITIES.values():
        columns = ", ".join(backend.quote(name) for name in entity.column_names)
        _, rows = backend.fetch(f"SELECT {columns} FROM {backend.qualified('staging', entity.name)}")
        staged[entity.name] = sorted((tuple(None if value is None else str(value) for value in row) for row in rows),
                                     key=lambda row: tuple("" if value is None else value for value in row))
    return staged


def quarantined(backend: Backend) -> dict[str, int]:
    """Quarantined rows per entity, the entities that have any."""
    counts = {name: backend.scalar(f"SELECT count(*) FROM {backend.qualified('quarantine', name)}")
              for name in ENTITIES}
    return {name: count for name, count in counts.items() if count}


def unbalanced(backend: Backend) -> list[audit.BatchBalance]:
    """The batches whose raw rows are not all staged, superseded or quarantined (none once a load is validated)."""
    balances = audit.reconcile(backend)
    assert balances
    return [balance for balance in balances if not balance.balanced]


def load_export(backend: Backend, fixture: ExportFixture, mapping: Path) -> list[IngestResult]:
    """The export's files through the mapping, then validated."""
    results = ingest(backend, discover(list(fixture.files), sources=load_sources(mapping)))
    route_all(backend, load_rules(), "validate")
    return results


@dataclass
class LoadedExport:
    fixture: ExportFixture
    mapping: Path
    backend: Backend
    #: What the first load of the export's files did, and a second load of the same files.
    first: list[IngestResult]
    again: list[IngestResult]


class Loads:
    """Each export and its contract folder loaded into DuckDB once per test process; the tests only read them."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.exports: dict[str, LoadedExport] = {}
        self.contracts: dict[str, dict[str, list[tuple]]] = {}
        self.backends: list[Backend] = []

    def _connect(self, name: str) -> Backend:
        backend = connect(f"duckdb:///{self.folder / name}.duckdb")
        self.backends.append(backend)
        return backend

    def export(self, name: str) -> LoadedExport:
        if name not in self.exports:
            fixture = WRITERS[name](self.folder / name)
            mapping = write_csv(self.folder / name, "sources.yaml", fixture.mapping)
            backend = self._connect(f"{name}-export")
            first = load_export(backend, fixture, mapping)
            again = ingest(backend, discover(list(fixture.files), sources=load_sources(mapping)))
            self.exports[name] = LoadedExport(fixture, mapping, backend, first, again)
        return self.exports[name]

    def contract(self, name: str) -> dict[str, list[tuple]]:
        """The staged rows of the export's data written in our contract."""
        if name not in self.contracts:
            backend = self._connect(f"{name}-contract")
            ingest(backend, discover([self.export(name).fixture.contract]))
            outcome = route_all(backend, load_rules(), "validate")
            assert outcome.quarantined == 0
            self.contracts[name] = staged_rows(backend)
        return self.contracts[name]

    def close(self) -> None:
        for backend in self.backends:
            backend.close()


@pytest.fixture(scope="module")
def loads(tmp_path_factory) -> Iterator[Loads]:
    loaded = Loads(tmp_path_factory.mktemp("mapped-loads"))
    yield loaded
    loaded.close()


@pytest.mark.parametrize("export", list(WRITERS))
def test_each_mapping_is_at_most_25_lines(export, tmp_path):
    assert len(WRITERS[export](tmp_path).mapping.strip("\n").splitlines()) <= 25


@pytest.mark.parametrize("export", list(WRITERS))
def test_an_export_through_its_mapping_stages_what_its_contract_stages(loads, export):
    loaded = loads.export(export)
    staged = staged_rows(loaded.backend)
    assert staged == loads.contract(export)
    assert staged["store_sales_line_items"]  # the comparison compared something
    assert quarantined(loaded.backend) == {}
    assert unbalanced(loaded.backend) == []


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_the_online_shop_on_postgres_stages_what_its_contract_stages_on_duckdb(loads, db_url, tmp_path):
    fixture = write_online_shop(tmp_path)
    backend = connect(db_url)
    try:
        load_export(backend, fixture, write_csv(tmp_path, "sources.yaml", fixture.mapping))
        assert staged_rows(backend) == loads.contract("online_shop")
        assert quarantined(backend) == {}
        assert unbalanced(backend) == []
    finally:
        backend.close()


def test_raw_keeps_the_online_shops_cells_as_sent(loads):
    backend = loads.export("online_shop").backend
    columns, _ = backend.fetch("SELECT * FROM raw.store_sales_line_items LIMIT 0")
    assert {"invoiceno", "stockcode", "description", "quantity", "invoicedate", "unitprice", "customerid",
            "country"} <= set(columns)
    # The file's first row (line 2) beside the values our columns take from it.
    row = backend.fetch_dicts("SELECT * FROM raw.store_sales_line_items WHERE _source_line = 2")[0]
    assert (row["invoiceno"], row["customerid"], row["invoicedate"], row["unitprice"], row["description"]) == (
        "536365", "17850.0", "12/1/2010 8:26", "2.55", "WHITE HANGING HEART T-LIGHT HOLDER")
    assert (row["transaction_id"], row["line_item_amount"], row["_source_file"]) == (
        "536365", "15.30", "online_retail_2010-12.csv")  # 6 * 2.55
    header = backend.fetch_dicts("SELECT customer_id, store_id, transaction_date FROM raw.store_sales_header "
                                 "WHERE transaction_id = '536365'")
    assert header == [{"customer_id": "17850", "store_id": "ONLINE", "transaction_date": "2010-12-01 08:26:00"}]


def test_raw_keeps_the_german_tills_cells_decoded_from_windows_1252(loads):
    backend = loads.export("pos").backend
    names = {row[0] for row in backend.fetch("SELECT DISTINCT bezeichnung FROM raw.store_sales_line_items")[1]}
    # The en dash and the curly apostrophe are the bytes 0x96 and 0x92, which latin-1 would misread.
    assert {"Apfelsaft – naturtrüb 1 l", "Bäcker’s Vollkornbrot 500 g", "Crème brûlée 2er"} <= names
    receipt = backend.fetch_dicts("SELECT bonnr, datum, uhrzeit, summe, total_amount, transaction_date "
                                  "FROM raw.store_sales_header WHERE bonnr = '100231'")
    assert receipt == [{"bonnr": "100231", "datum": "02.12.2024", "uhrzeit": "09:14", "summe": "17,48",
                        "total_amount": "17.48", "transaction_date": "2024-12-02 09:14:00"}]
    assert backend.scalar("SELECT product_name FROM staging.products WHERE product_id = '2002'") == (
        "Apfelsaft – naturtrüb 1 l")


#: Per export: the batches of its first load, in order, as (entity, source, mode).
BATCHES = {
    "online_shop": [("store_sales_header", "online_retail", "append"),
                    ("store_sales_line_items", "online_retail", "append"),
                    ("products", "online_retail", "derived"),
                    ("customer_details", "online_retail", "derived")],
    "pos": [("store_sales_header", "kasse_bons", "append"),
            ("customer_details", "kasse_bons", "derived"),
            ("stores", "kasse_bons", "derived"),
            ("store_sales_line_items", "kasse_positionen", "append"),
            ("products", "kasse_positionen", "derived")],
    "grocery": [("store_sales_header", "transaction_data", "append"),
                ("store_sales_line_items", "transaction_data", "append"),
                ("products", "transaction_data", "derived"),
                ("customer_details", "transaction_data", "derived")],
}


@pytest.mark.parametrize("export", list(WRITERS))
def test_audit_says_each_batchs_source_drift_and_mode(loads, export):
    loaded = loads.export(export)
    batches = loaded.backend.fetch_dicts("SELECT entity, source, mode, drift, source_file, columns FROM audit.batches "
                                         "ORDER BY batch_id")
    assert [(batch["entity"], batch["source"], batch["mode"]) for batch in batches] == BATCHES[export]
    assert {batch["drift"] for batch in batches} == {None}
    # Each file's header as it stands in the file, lower-cased and comma-separated.
    headers = {str(path): path.read_text(encoding="cp1252" if export == "pos" else "utf-8").splitlines()[0]
               for path in loaded.fixture.files}
    for batch in batches:
        assert batch["columns"] == headers[batch["source_file"]].lower().replace(";", ",")


@pytest.mark.parametrize("export", list(WRITERS))
def test_the_same_export_again_is_skipped_for_every_entity_it_feeds(loads, export):
    loaded = loads.export(export)
    assert [result.entity for result in loaded.again] == [result.entity for result in loaded.first]
    assert {result.status for result in loaded.first} == {"loaded"}
    assert {result.status for result in loaded.again} == {"skipped"}
    assert [result.batch_id for result in loaded.again] == [result.batch_id for result in loaded.first]
    assert loaded.backend.scalar("SELECT count(*) FROM audit.batches") == len(BATCHES[export])


# A later month of the online shop: 100 nesting boxes sold and the whole invoice cancelled the same morning.
# Counted gross, 22752 would lead with 2 + 100 = 102 units; net of the cancellation it keeps its 2.
CANCELLED_MONTH = """
InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country
537200,22752,SET 7 BABUSHKA NESTING BOXES,100,1/6/2011 9:00,7.65,12583.0,France
C537201,22752,SET 7 BABUSHKA NESTING BOXES,-100,1/6/2011 9:30,7.65,12583.0,France
"""


def test_the_whole_loop_through_the_command_line_ranks_products_net_of_cancellations(tmp_path):
    fixture = write_online_shop(tmp_path)
    write_csv(fixture.export, "online_retail_2011-01.csv", CANCELLED_MONTH)
    write_csv(tmp_path, "sources.yaml", fixture.mapping)
    environment = {**os.environ, "RETAILFLOW_QUIET": "1"}

    def retailflow(*arguments: str) -> subprocess.CompletedProcess:
        return subprocess.run([RETAILFLOW, "--db", "duckdb:///shop.duckdb", *arguments], cwd=tmp_path, env=environment,
                              capture_output=True, text=True, timeout=120)

    run = retailflow("--sources", "sources.yaml", "run", "export")
    assert run.returncode == 0, run.stderr
    inventory = retailflow("inventory", "--format", "json")
    assert inventory.returncode == 0, inventory.stderr
    top = [(row["rank"], row["product_id"], row["units"]) for row in [{**row, "table": name} for name, listed in json.loads(inventory.stdout).items() for row in listed]
           if row["table"] == "top_products"]
    # Net units over both months (tests/exports.py): 84879 32 + 3; 22086 1 + 12; 85123A 6 + 2 + 1; 84406B 8;
    # 22728 3 + 4. 22752 (2 + 100 - 100 = 2) and the cancelled 71053 (6 - 2) and 22633 (6 - 1) are not among them.
    assert top == [(1, "84879", 35), (2, "22086", 13), (3, "85123A", 9), (4, "84406B", 8), (5, "22728", 7)]
