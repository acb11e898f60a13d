"""On Spark, plain CSV and Parquet files are read by Spark itself, all files of an entity in one read, and raw
holds exactly what the DuckDB path gives: every cell, NULL and empty, quoting, line endings, BOM, batch ids, file
names and line numbers. Files Spark would read otherwise (a short row, a row with too many values) are read by
DuckDB, row by row as before, so that the padding and the error are DuckDB's.

The process's local Spark warehouse, shared with test_pyspark.py (spark_cluster.local_spark: a session start costs
8 to 35 s here; a module-scoped one was started again whenever pytest-xdist ran another module's test between two of
these, 8 to 9.6 s a test's setup under `make test`); each test empties the tables it loads.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from retailflow.backends import Backend, connect
from retailflow.backends.pyspark import PySparkBackend, file_reads
from retailflow.errors import UserError
from retailflow.ingest import discover, ingest
from retailflow.sources.mapping import load_sources

pytestmark = [pytest.mark.slow, pytest.mark.engines("pyspark")]

#: The process's local Spark warehouse: local_spark.
pytest_plugins = ["spark_cluster"]

LINES = "store_sales_line_items"
HEADER = "line_item_id,transaction_id,product_id,promotion_id,quantity,line_item_amount"

#: A day exported on Windows: BOM, CRLF, an empty cell, a quoted empty string, a quoted comma, a quoted quote,
#: spaces kept, a backslash, non-ASCII text, an extra column kept in raw, a short row (padded with NULL), no final
#: line break.
DAY_1 = ("\ufeff" + HEADER + ",note\r\n"
         "1,T001,P01,,1,50.00,plain\r\n"
         '2,T001,P04,"",2,20.00,"two, with comma"\r\n'
         '3,T002,P02,PR1,1, 9.50 ,"said ""hi"""\r\n'
         "5,T003,P05,,3,1.00,back\\slash é ü ✓ 'single'\r\n"
         "51,T003,P07,,1\r\n"
         "6,T003,P06,,1,2.00,")
#: A Unix export of the next day: LF, a blank line between rows (skipped by both), a row of empty cells, a row of
#: one value.
DAY_2 = (HEADER + "\n"
         "7,T004,P01,,1,50.00\n"
         "\n"
         '8,T004,"P02",,1,9.50\n'
         ",,,,,\n"
         "9,T005,P03,PR2,2,10.00\n"
         "10\n")
#: Line breaks inside quoted values, kept as written (CRLF in a CRLF file, LF in an LF file).
QUOTED_BREAKS = {f"{LINES}_2024-12-05.csv": HEADER + ',note\r\n1,T001,P01,,1,50.00,"two\r\nlines"\r\n2,T001,P02,,1,1.00,x\r\n',
                 f"{LINES}_2024-12-06.csv": HEADER + ',note\n3,T002,P01,,1,50.00,"a\nb\n"\n4,T002,P02,,1,1.00,\n'}
#: Only a header.
DAY_3 = HEADER + "\n"
STORES = "store_id,store_name,store_city,store_region,opening_date\nST01,Harbour Mall,Portland,Oregon,2019-04-01\n"
#: A semicolon export read through a source mapping whose columns are the file's own, renamed.
SEMICOLON = ("id;name;city\r\n"
             "ST07;\"Quai; Nord\";Lyon\r\n"
             "ST08;;\r\n")
MAPPING = """
sources:
  french_stores:
    files: "magasins*.csv"
    feeds: stores
    read:
      delimiter: ";"
    columns:
      store_id: id
      store_name: name
      store_city: city
"""


@pytest.fixture
def fresh_spark(engine, local_spark) -> PySparkBackend:
    """The process's Spark database with nothing loaded (see the module's docstring)."""
    spark = local_spark.backend()
    for table in (LINES, "stores"):
        spark.execute(f"TRUNCATE TABLE raw.{table}")
    spark.execute("TRUNCATE TABLE audit.batches")
    return spark


def _write(folder: Path, files: dict[str, str | bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_bytes(text if isinstance(text, bytes) else text.encode())
    return folder


def _raw(backend: Backend, table: str, like: list[dict] | None = None) -> list[dict]:
    """The raw table's rows by batch and line; with `like`, only the columns those rows have (the process's Spark
    database keeps the extra columns an earlier test added)."""
    columns, rows = backend.fetch(f"SELECT * FROM raw.{table}")
    if like:
        kept = [index for index, name in enumerate(columns) if name in like[0]]
        columns, rows = [columns[index] for index in kept], [[row[index] for index in kept] for row in rows]
    return sorted((dict(zip(columns, row)) for row in rows), key=lambda row: (row["_batch_id"], row["_source_line"]))


def _on_duckdb(tmp_path: Path, folder: Path, tables: tuple[str, ...], sources=None) -> dict[str, list[dict]]:
    backend = connect(f"duckdb:///{tmp_path}/reference.duckdb")
    try:
        ingest(backend, discover([folder], **({"sources": sources} if sources else {})))
        return {table: _raw(backend, table) for table in tables}
    finally:
        backend.close()


@pytest.fixture
def spark_reads_only(monkeypatch):
    """Fail the test if a file is read through DuckDB on the client (bulk_load) rather than by Spark."""
    def refuse(*args, **kwargs):
        raise AssertionError("a file went through the client path")

    monkeypatch.setattr(PySparkBackend, "_parsed_here", refuse)


def test_csv_and_parquet_files_read_by_spark_equal_duckdbs_raw(fresh_spark, spark_reads_only, tmp_path):
    folder = _write(tmp_path / "in", {f"{LINES}_2024-12-01.csv": DAY_1, f"{LINES}_2024-12-02.csv": DAY_2,
                                      f"{LINES}_2024-12-03.csv": DAY_3, "stores.csv": STORES})
    pq.write_table(pa.table({
        "Line_Item_ID": pa.array([10, 11], pa.int64()), "transaction_id": ["T009", None],
        "product_id": ["P01", ""], "quantity": pa.array([1, None], pa.int32()),
        "line_item_amount": ["3.00", "4.00"], "gift": [True, False],
        "sold_on": pa.array([dt.date(2024, 12, 4), None], pa.date32())}), folder / f"{LINES}_2024-12-04.parquet")
    expected = _on_duckdb(tmp_path, folder, (LINES, "stores"))
    results = ingest(fresh_spark, discover([folder]))
    assert [result.status for result in results] == ["loaded"] * 5
    assert [result.rows for result in results] == [6, 5, 0, 2, 1]
    assert {table: _raw(fresh_spark, table, expected[table]) for table in (LINES, "stores")} == expected
    assert expected[LINES][1]["promotion_id"] is None and expected[LINES][2]["line_item_amount"] == " 9.50 "
    assert expected[LINES][4]["line_item_amount"] is None and expected[LINES][10]["transaction_id"] is None
    assert [row["_source_line"] for row in expected[LINES][6:11]] == [2, 3, 4, 5, 6]


def test_line_breaks_inside_quoted_values_are_kept_as_written(fresh_spark, spark_reads_only, tmp_path):
    # DuckDB's parallel reader refuses these files ("does not support null_padding in conjunction with quoted new
    # lines"); Spark reads them, each value as written.
    folder = _write(tmp_path / "in", QUOTED_BREAKS)
    assert [result.rows for result in ingest(fresh_spark, discover([folder]))] == [2, 2]
    assert [(row["note"], row["_source_line"]) for row in _raw(fresh_spark, LINES)] == [
        ("two\r\nlines", 2), ("x", 3), ("a\nb\n", 2), (None, 3)]


def test_a_mapped_semicolon_file_of_plain_columns_is_read_by_spark(fresh_spark, spark_reads_only, tmp_path):
    folder = _write(tmp_path / "in", {"magasins_lyon.csv": SEMICOLON})
    (tmp_path / "sources.yaml").write_text(MAPPING)
    sources = load_sources(tmp_path / "sources.yaml")
    expected = _on_duckdb(tmp_path, folder, ("stores",), sources)
    ingest(fresh_spark, discover([folder], sources=sources))
    assert _raw(fresh_spark, "stores", expected["stores"]) == expected["stores"]
    assert [row["store_name"] for row in expected["stores"]] == ["Quai; Nord", None]


def test_what_spark_would_read_otherwise_is_read_by_duckdb(fresh_spark, tmp_path):
    # A stray quote (an odd count, as a quote left open would leave: Spark could take the rest of the file as one
    # value) and an LF inside a quoted value of a CRLF file (line endings mixed): as DuckDB reads them.
    folder = _write(tmp_path / "in", {f"{LINES}_2024-12-01.csv": HEADER + "\n1,T001,P01,,1,50.00\n2,T001,P02\n",
                                      f"{LINES}_2024-12-02.csv": HEADER + '\r\n3,T002,P"01,,1,1.00\r\n',
                                      f"{LINES}_2024-12-03.csv": HEADER + '\r\n4,T002,P01,,1,"1.\n00"\r\n'})
    loads = [(rows, index, rows.path.name) for index, (path, source) in enumerate(discover([folder]))
             for rows in [_file_rows(path, source)]]
    assert file_reads(loads[:1]) is not None
    assert file_reads(loads[1:2]) is None and file_reads(loads[2:]) is None
    (folder / f"{LINES}_2024-12-03.csv").unlink()  # DuckDB's parallel reader refuses quoted line breaks
    expected = _on_duckdb(tmp_path, folder, (LINES,))
    ingest(fresh_spark, discover([folder]))
    assert _raw(fresh_spark, LINES, expected[LINES]) == expected[LINES]
    assert expected[LINES][1]["quantity"] is None and expected[LINES][2]["product_id"] == 'P"01'


def test_a_row_with_too_many_values_fails_naming_file_and_line_and_writes_nothing(fresh_spark, tmp_path):
    good = _write(tmp_path / "good", {f"{LINES}_2024-12-01.csv": HEADER + "\n1,T001,P01,,1,50.00\n"})
    ingest(fresh_spark, discover([good]))
    before = _raw(fresh_spark, LINES)
    bad = _write(tmp_path / "bad", {f"{LINES}_2024-12-02.csv": HEADER + "\n2,T002,P01,,1,5.00\n",
                                    f"{LINES}_2024-12-03.csv": HEADER + "\n3,T003,P01,,1,5.00\n4,T003,P02,,1,5.00,9\n"})
    with pytest.raises(UserError) as raised:
        ingest(fresh_spark, discover([bad]))
    message = str(raised.value)
    assert "\n" not in message and f"{LINES}_2024-12-03.csv:3: the row has 7 values but the header has 6" in message
    assert _raw(fresh_spark, LINES) == before


def _file_rows(path: Path, source):
    """The rows ingest would hand a backend for the file."""
    from retailflow.sources.parsing import sha256_of
    from retailflow.sources.reading import plan_file

    with plan_file(path, source, sha256_of(path), None).rows() as feeds:
        return feeds[0][1]
