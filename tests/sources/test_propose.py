"""`retailflow map`: the proposal for each export fixture loads it after at most two recorded edits, what the
values cannot decide is said with its reason, and odd files (empty, UTF-16 past the sample, names SQL cannot read,
two kinds of file with one stem) get a proposal that reads them or a message."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer
import yaml
from typer.testing import CliRunner

from exports import write_grocery, write_online_shop, write_pos
from retailflow.commands.map import map_command
from retailflow.errors import UserError
from retailflow.sources.mapping import Source, SourceMap, load_sources
from retailflow.sources.profiles import SAMPLE_BYTES, sniff
from retailflow.sources.propose import propose, render_yaml

WRITERS = {"online_shop": write_online_shop, "pos": write_pos, "grocery": write_grocery}
#: The edits each proposal needs (text replacements), as a user would make them.
EDITS = {
    "online_shop": [],
    "pos": [],
    # The loyalty-card export counts days (DAY 1, 2, …) from a start it does not give: only the user knows it.
    "grocery": [("DATE 'YYYY-MM-DD'", "DATE '2024-01-01'")],
}


def _spec(spec) -> tuple:
    sql = spec.expression.sql(dialect="duckdb").lower() if spec.expression is not None else None
    return sql, spec.value, spec.formats


def _meaning(sources: SourceMap) -> list[tuple]:
    """What a mapping says, without its layout: line numbers, comments, key order and the case of names."""
    def source(item: Source) -> tuple:
        return (item.name, item.files, item.feeds, item.schema, item.read,
                {target: _spec(spec) for target, spec in (item.columns or {}).items()},
                {master: {target: _spec(spec) for target, spec in specs.items()}
                 for master, specs in item.derive.items()})
    return [source(item) for item in sources.sources]


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("export", list(WRITERS))
def test_proposal_loads_each_export_with_the_recorded_edits(tmp_path, export):
    fixture = WRITERS[export](tmp_path)
    proposal = render_yaml(propose(fixture.files))
    for old, new in EDITS[export]:
        assert old in proposal
        proposal = proposal.replace(old, new)
    assert len(EDITS[export]) <= 2
    edited, written = _write(tmp_path, "proposed.yaml", proposal), _write(tmp_path, "fixture.yaml", fixture.mapping)
    assert _meaning(load_sources(edited)) == _meaning(load_sources(written))


def test_what_the_values_cannot_decide_is_reported_with_its_reason(tmp_path):
    # No day or month above 12: 01/02/2024 is 1 February or 2 January. Colour is no column of ours.
    path = _write(tmp_path, "sales.csv", "receipt,date,sku,qty,amount,Colour\n"
                                         "R1,01/02/2024 10:00,A1,1,2.50,red\n"
                                         "R2,03/04/2024 11:30,A2,2,5.00,blue\n")
    [source] = propose([path])
    reasons = dict(source.unplaced)
    assert "cannot be told from the values" in reasons["date"]
    assert reasons["Colour"].startswith("name not recognised")
    assert source.feeds == "sales_lines"
    text = render_yaml([source])
    assert "#   date: day or month first cannot be told" in text and "#   Colour: name not recognised" in text


@pytest.mark.parametrize(("dates", "expected"), [
    (("13/01/2024", "02/03/2024"), "%d/%m/%Y"),     # 13 cannot be a month: day first
    (("01/13/2024", "02/03/2024"), "%m/%d/%Y"),     # 13 in the middle: month first
    (("31.12.24", "01.02.24"), "%d.%m.%y"),          # two-digit years
    (("12/1/2010 8:26", "12/13/2010 17:06"), "%m/%d/%Y %H:%M"),
])
def test_day_or_month_first_is_decided_from_the_values(tmp_path, dates, expected):
    rows = "".join(f"T{number},{date},P1,1,1.00\n" for number, date in enumerate(dates))
    [source] = propose([_write(tmp_path, "export_2024.csv", "order_id,order_date,sku,qty,amount\n" + rows)])
    formats = {choice.target: choice.spec for choice in source.read}
    assert formats["timestamp_format"] == f'"{expected}"'
    assert "order_date" not in dict(source.unplaced)


def test_a_banner_line_is_skipped_and_a_tab_delimiter_found(tmp_path):
    path = _write(tmp_path, "products.txt", "Export 2024-12-01\n"
                                            "sku\tdescription\tprice\n"
                                            "A1\tBlue mug\t4.50\n"
                                            "A2\tRed mug\t4.75\n")
    [source] = propose([path])
    read = {choice.target: choice.spec for choice in source.read}
    assert (read["delimiter"], read["skip"], source.feeds) == ('"\\t"', "1", "products")
    assert {choice.target: choice.spec for choice in source.columns} == {
        "product_id": "sku", "product_name": "description", "unit_price": "price"}


def test_map_writes_a_mapping_that_parses_as_yaml(tmp_path):
    fixture = write_online_shop(tmp_path)
    app = typer.Typer()
    app.callback()(lambda: None)
    app.command("map")(map_command)
    out = tmp_path / "sources.yaml"
    result = CliRunner().invoke(app, ["map", *map(str, fixture.files), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(out.read_text(encoding="utf-8"))["sources"]["online_retail"]["feeds"] == "sales_lines"
    assert "proposed mapping" in result.stdout and "wrote " in result.stdout
    # Without --out the mapping alone is on standard output (the summary on standard error).
    result = CliRunner().invoke(app, ["map", *map(str, fixture.files)])
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(result.stdout) == yaml.safe_load(out.read_text(encoding="utf-8"))


def test_an_iso_timestamp_beside_a_time_column_keeps_its_own_time(tmp_path):
    # The dates carry their time already: joining the time column would read '2024-01-02 10:00 10:00'.
    path = _write(tmp_path, "sales.csv", "receipt,date,time,sku,qty,amount\n"
                                         "R1,2024-01-02 10:00,10:00,A1,1,2.50\n"
                                         "R2,2024-01-03 11:30,11:30,A2,1,2.50\n")
    [source] = propose([path])
    columns = {choice.target: choice.spec for choice in source.columns}
    assert columns["transaction_date"] == "date"
    assert not [choice for choice in source.read if choice.target.endswith("_format")]
    assert dict(source.unplaced)["time"] == "a time, but date has its own"


def test_a_utf16_export_larger_than_the_sample_is_cut_at_a_whole_line(tmp_path):
    # 40,000 rows of 'R<n>,A<n>,1,2.50\n' (16-20 characters, 2 bytes each) pass the 1 MiB sample: the cut falls
    # after a newline's first byte, which UTF-16LE cannot decode on its own.
    rows = "".join(f"R{number},A{number},1,2.50\n" for number in range(40_000))
    path = tmp_path / "sales.csv"
    path.write_bytes(b"\xff\xfe" + ("receipt,sku,qty,amount\n" + rows).encode("utf-16-le"))
    assert path.stat().st_size > SAMPLE_BYTES
    sniffed = sniff(path)
    assert (sniffed.encoding, sniffed.delimiter) == ("utf-16", ",")
    assert re.fullmatch(r"R([0-9]+),A\1,1,2\.50", sniffed.text.splitlines()[-1])


def test_an_empty_export_is_a_user_error_naming_the_file(tmp_path):
    with pytest.raises(UserError, match=r"empty\.csv: empty"):
        propose([_write(tmp_path, "empty.csv", "\n")])


def test_two_kinds_of_file_with_one_stem_are_two_sources(tmp_path):
    # sales*.csv and sales*.txt would both be named sales: YAML keeps the last of two equal keys.
    lines = _write(tmp_path, "sales.csv", "receipt,sku,qty,amount,date\nR1,A1,1,2.50,2024-01-02\n")
    products = _write(tmp_path, "sales.txt", "sku,description\nA1,Blue mug\n")
    mapped = yaml.safe_load(render_yaml(propose([lines, products])))["sources"]
    assert {name: source["feeds"] for name, source in mapped.items()} == {"sales": "sales_lines",
                                                                          "sales_2": "products"}


def test_a_column_name_sql_cannot_tokenize_is_taken_by_name(tmp_path):
    # Order'ID says a transaction once its punctuation is set aside; as SQL its quote opens a string.
    [source] = propose([_write(tmp_path, "orders.csv", "Order'ID,sku,qty,amount\nO1,A1,1,2.50\n")])
    columns = {choice.target: choice.spec for choice in source.columns}
    assert columns["transaction_id"] == '{column: "Order\'ID"}'
