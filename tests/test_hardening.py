"""Hostile input: malformed files fail cleanly, odd values stay data, nothing is lost (property-based)."""

from __future__ import annotations

import shutil

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import SAMPLE_DIR, column, load_and_validate, write_csv
from retailflow import audit
from retailflow.backends import connect
from retailflow.errors import UserError
from retailflow.ingest import discover, ingest
from retailflow.quality.engine import route_all
from retailflow.quality.rules import load_rules

HOSTILE = ["'; DROP TABLE staging.stores; --", "$$", "$body$", "\\", '"quoted"', "<script>alert(1)</script>",
           "x" * 5000, "Robert'); DROP TABLE customer_details;--", "\u00e9\u00e8\u4e2d\U0001f600"]


def test_hostile_values_stay_data(backend, tmp_path):
    rows = "\n".join(f'ST{index:02d},"{value.replace(chr(34), chr(34) * 2)}",city,{value[:10].replace(",", "")},'
                     for index, value in enumerate(HOSTILE))
    folder = tmp_path / "it's here"
    write_csv(folder, "stores.csv", "store_id,store_name,store_city,store_region,opening_date\n" + rows)
    load_and_validate(backend, folder)
    assert column(backend, "SELECT store_name FROM staging.stores ORDER BY store_id") == HOSTILE
    assert backend.scalar("SELECT source_file FROM audit.batches").endswith("it's here/stores.csv")
    assert backend.has_table("staging", "stores") and backend.has_table("staging", "customer_details")


def test_hostile_values_in_keys_are_quarantined_with_readable_reasons(backend, tmp_path):
    write_csv(tmp_path, "stores.csv", "store_id,store_name,store_city,store_region,opening_date\nST01,a,b,c,")
    write_csv(tmp_path, "inventory_daily.csv", "snapshot_date,store_id,product_id,stock_on_hand\n"
              "2024-12-01,\"'; DROP TABLE staging.stores; --\",P1,3")
    load_and_validate(backend, tmp_path)
    reasons = backend.scalar("SELECT _reasons FROM quarantine.inventory_daily")
    assert "store_id ''; DROP TABLE staging.stores; --' not found in stores" in reasons
    assert backend.scalar("SELECT count(*) FROM staging.stores") == 1


def test_nul_bytes_are_refused_with_the_line(backend, tmp_path):
    path = tmp_path / "stores.csv"
    path.write_bytes(b"store_id,store_name,store_city,store_region,opening_date\nST01,a,b,c,\nST02,a\x00b,c,d,\n")
    with pytest.raises(UserError, match=r"stores.csv:3: contains a NUL byte"):
        ingest(backend, discover([path]))
    assert backend.scalar("SELECT count(*) FROM audit.batches") == 0


# DuckDB's file itself is locked by the first process; inside one process the connection is shared, so the lock
# is the engine's, checked in test_cli.
@pytest.mark.engines("postgres", "mysql")
def test_a_second_writer_is_refused(db_url):
    first = connect(db_url)
    try:
        first.lock_for_writing()
        second = connect(db_url)
        with pytest.raises(UserError, match="another retailflow process is writing"):
            second.lock_for_writing()
        second.close()
    finally:
        first.close()


# -- property-based: mutate valid files, expect a clean error or a balanced load -------------

def _rows(text: str) -> list[str]:
    return text.splitlines()


MUTATIONS = {
    "truncate_row": lambda rows, i: rows[:i] + [rows[i].rsplit(",", 2)[0]] + rows[i + 1:],
    "extra_value": lambda rows, i: rows[:i] + [rows[i] + ",surplus"] + rows[i + 1:],
    "drop_column_from_header": lambda rows, i: [rows[0].rsplit(",", 1)[0]] + rows[1:],
    "reordered_header": lambda rows, i: [",".join(reversed(rows[0].split(",")))] + rows[1:],
    "duplicated_header": lambda rows, i: rows[:i] + [rows[0]] + rows[i:],
    "semicolons": lambda rows, i: [row.replace(",", ";") for row in rows],
    "open_quote": lambda rows, i: rows[:i] + ['"' + rows[i]] + rows[i + 1:],
    "embedded_newline": lambda rows, i: rows[:i] + [rows[i].replace(",", ',"a\nb",', 1).rsplit(",", 1)[0]] + rows[i + 1:],
    "bom_in_middle": lambda rows, i: rows[:i] + ["\ufeff" + rows[i]] + rows[i + 1:],
    "huge_field": lambda rows, i: rows[:i] + [rows[i].replace(",", "," + "x" * 1_000_000 + ",", 1).rsplit(",", 1)[0]]
    + rows[i + 1:],
    "header_only": lambda rows, i: rows[:1],
    "thousands_separator": lambda rows, i: rows[:i] + [rows[i].rsplit(",", 1)[0] + ',"1,000.00"'] + rows[i + 1:],
    "currency_sign": lambda rows, i: rows[:i] + [rows[i].rsplit(",", 1)[0] + ",$12.00"] + rows[i + 1:],
    "other_date_format": lambda rows, i: [row.replace("2024-12-0", "12/0") for row in rows],
    "spaces_around_keys": lambda rows, i: rows[:i] + [" " + rows[i].replace(",", " , ")] + rows[i + 1:],
    "lower_case_ids": lambda rows, i: rows[:i] + [rows[i].lower()] + rows[i + 1:],
}
ENCODINGS = {"utf-8": "utf-8", "latin-1": "latin-1", "utf-16": "utf-16"}


#: Examples per sales file in CI: two files, so 50 cases on the two workers together.
#: `pytest --hypothesis-profile=long` multiplies them (see conftest.py).
FUZZ_EXAMPLES = settings.default.max_examples
SALES_FILES = ["store_sales_header.csv", "store_sales_line_items.csv"]


@st.composite
def mutated_file(draw):
    mutation = draw(st.sampled_from(sorted(MUTATIONS)))
    row = draw(st.integers(min_value=1, max_value=10))
    encoding = draw(st.sampled_from(["utf-8"] * 8 + ["latin-1", "utf-16"]))
    accent = draw(st.booleans())
    return mutation, row, encoding, accent


def _check_outcome(backend, run) -> None:
    """Either a one-line UserError with nothing loaded from that ingest, or a balanced load."""
    batches_before = backend.scalar("SELECT count(*) FROM audit.batches")
    try:
        run()
    except UserError as error:
        assert "\n" not in str(error) and ".csv" in str(error)
        assert backend.scalar("SELECT count(*) FROM audit.batches") == batches_before
        return
    balances = audit.reconcile(backend)
    assert balances and all(balance.balanced for balance in balances), balances


@pytest.fixture(scope="module")
def validated_masters(tmp_path_factory):
    """A DuckDB file with the sample's masters and inventory validated: each example starts from a copy."""
    folder = tmp_path_factory.mktemp("masters")
    backend = connect(f"duckdb:///{folder}/masters.duckdb")
    masters = [path for path in sorted(SAMPLE_DIR.glob("*.csv")) if path.name not in SALES_FILES]
    ingest(backend, discover(masters))
    route_all(backend, load_rules(), "validate")
    backend.close()
    return folder / "masters.duckdb"


@pytest.mark.slow
@pytest.mark.parametrize("name", SALES_FILES)
@settings(deadline=None, max_examples=FUZZ_EXAMPLES, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=mutated_file())
def test_mutated_sales_files_fail_cleanly_or_balance(tmp_path_factory, sample_dir, validated_masters, name, case):
    mutation, row, encoding, accent = case
    folder = tmp_path_factory.mktemp("fuzz")
    (folder / "data").mkdir()
    for sales_file in SALES_FILES:
        shutil.copy(sample_dir / sales_file, folder / "data" / sales_file)
    path = folder / "data" / name
    rows = _rows(path.read_text(encoding="utf-8-sig"))
    mutated = MUTATIONS[mutation](rows, min(row, len(rows) - 1))
    text = "\n".join(mutated) + "\n"
    if accent:
        text = text.replace("Portland", "Portl\u00e0nd")
    path.write_bytes(text.encode(ENCODINGS[encoding], errors="replace"))  # a BOM has no Latin-1 form
    shutil.copy(validated_masters, folder / "fuzz.duckdb")
    backend = connect(f"duckdb:///{folder}/fuzz.duckdb")
    try:
        _check_outcome(backend, lambda: (ingest(backend, discover([folder / "data"])),
                                         route_all(backend, load_rules(), "validate")))
    finally:
        backend.close()
