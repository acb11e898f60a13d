"""Reader options a real export needs, one file exercising them together, with values worked out by hand."""

from __future__ import annotations

from retailflow.backends import connect
from retailflow.ingest import discover
from retailflow.quality.rules import load_rules
from retailflow.running import load_and_validate
from retailflow.sources.mapping import load_sources

# A product list from an ERP: a banner line, no header row, '|' between fields, Latin-1 text, prices with a
# thousands point and a decimal comma, 'N/A' and '-' for "no value", stock written with thousands too.
PRODUCTS = (
    "Artikelstamm Export 2024-12-31 (c) ERP\n"
    "A1|Espressomaschine Café|Küche|1.299,00|1.204\n"
    "A2|Milchschäumer|N/A|49,90|-\n"
    "A3|Entkalker|Pflege|-|12\n"
)
MAPPING = """
sources:
  erp_products:
    files: "artikel*.txt"
    feeds: products
    read:
      delimiter: "|"
      encoding: latin-1
      header: false
      names: [nr, name, gruppe, preis, bestand]
      skip: 1
      decimal: ","
      thousands: "."
      null_values: ["N/A", "-"]
    columns:
      product_id: nr
      product_name: name
      product_category: gruppe
      unit_price: preis
      current_stock_level: bestand
"""


def test_banner_no_header_pipe_latin1_separators_and_null_markers(tmp_path):
    (tmp_path / "export").mkdir()
    (tmp_path / "export" / "artikel_2024-12-31.txt").write_bytes(PRODUCTS.encode("latin-1"))
    (tmp_path / "sources.yaml").write_text(MAPPING)
    backend = connect(f"duckdb:///{tmp_path}/options.duckdb")
    try:
        files = discover([tmp_path / "export"], sources=load_sources(tmp_path / "sources.yaml"))
        ingested, outcome = load_and_validate(backend, files, load_rules())
        assert outcome.quarantined == 0 and ingested[0].rows == 3
        staged = backend.fetch("SELECT product_id, product_name, product_category, CAST(unit_price AS VARCHAR), "
                               "current_stock_level FROM staging.products ORDER BY product_id")[1]
        # 1.299,00 -> 1299.00 and 1.204 -> 1204; N/A and '-' are empty: no category -> (uncategorised).
        assert [tuple(row) for row in staged] == [
            ("A1", "Espressomaschine Café", "Küche", "1299.00", 1204),
            ("A2", "Milchschäumer", "(uncategorised)", "49.90", None),
            ("A3", "Entkalker", "Pflege", None, 12)]
        # Raw keeps the cells as sent, markers included; lines count from the file's first line (the banner is 1).
        raw = backend.fetch("SELECT preis, gruppe, _source_line FROM raw.products ORDER BY _source_line")[1]
        assert [tuple(row) for row in raw] == [("1.299,00", "Küche", 2), ("49,90", "N/A", 3), ("-", "Pflege", 4)]
    finally:
        backend.close()
