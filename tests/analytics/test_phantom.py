"""Phantom inventory: exact runs on a hand-made store where the answer is obvious."""

from __future__ import annotations

import datetime as dt
import json
import math

import pytest
from typer.testing import CliRunner

from helpers import load_and_validate, write_small_shop
from retailflow.analytics.inventory import inputs, phantom_inventory, run_inventory
from retailflow.cli import app
from retailflow.errors import UserError
from retailflow.tables import staging_table

DAYS = [dt.date(2024, 12, 1) + dt.timedelta(days=offset) for offset in range(20)]  # Dec 1 .. Dec 20
PRICES = {"P1": 10, "P2": 20, "P3": 5, "P4": 2, "P5": 3, "P6": 1, "P7": 1, "P8": 2}
UNITS_PER_SALE = {"P8": 6}  # every other product sells 1 unit a sale
# Sales (transactions) per day at ST1, which has a snapshot of every product every day. P4 sells
# every day, so ST1 trades on all 20 days.
ST1_SALES = {
    "P1": [5] * 14 + [0] * 6,  # 5 sales a day, then none on Dec 15-20 while showing 30 on hand
    "P2": [0, 0, 0, 1] + [0] * 9 + [1] + [0] * 6,  # a slow seller: 1 sale on Dec 4 and on Dec 14
    "P3": [5] * 14 + [0] * 6,  # sells until its stock is 0 on Dec 15: a true stock-out
    "P4": [2] * 20,  # never out of stock, never idle
    "P5": [0] * 20,  # shows 10 on hand but has never sold: no rate to judge by
    "P6": [40] * 9 + [0, 0] + [40] * 9,  # a fast seller idle for only two days, Dec 10-11
    "P7": [150] * 10 + [0] * 10,  # the best seller, then nothing on Dec 11-20 while showing 500 on hand
    "P8": [1, 0] * 7 + [0] * 6,  # 6 units at a time every other day until Dec 13, then idle Dec 14-20
}
ST1_STOCK = {
    "P1": [100 - 5 * day for day in range(14)] + [30] * 6,
    "P2": [10] * 4 + [9] * 10 + [8] * 6,
    "P3": [70 - 5 * day for day in range(14)] + [0] * 6,
    "P4": [50] * 20,
    "P5": [10] * 20,
    "P6": [1000] * 20,
    "P7": [2000 - 150 * day for day in range(10)] + [500] * 10,
    "P8": [60 - 6 * min((day + 1) // 2, 7) for day in range(20)],
}
# ST2 sells P1 every day but has no snapshots at all: nothing can be said about its stock.
ST2_SALES = {"P1": [5] * 20}

# Hand-computed. The rate is the mean number of sales on the store-product's in-stock trading days:
#   P1: 70 / 20 = 3.5 a day; Dec 15-20 is 6 days, 21 sales (21 units) expected, P = exp(-21) = 7.6e-10 -> flagged.
#   P2: 2 / 20 = 0.1 a day; its idle runs Dec 1-3, Dec 5-13 and Dec 15-20 have P = exp(-0.3), exp(-0.9) = 0.41
#       and exp(-0.6) = 0.55 -> not flagged.
#   P3: stock 0 on Dec 15-20 is out of stock, not phantom; while in stock it sold every day -> no run.
#   P5: no sales at all -> no rate -> never flagged, however long it sits.
#   P6: 720 / 20 = 36 a day; Dec 10-11 expects 72 sales, P = exp(-72), but 2 days are below the 3-day minimum.
#   P7: 1500 / 20 = 75 a day; Dec 11-20 expects 750 sales: exp(-750) is below the smallest double (an
#       underflow error on PostgreSQL), reported as exp(-700) -> flagged, first.
#   P8: 7 / 20 = 0.35 sales a day; Dec 14-20 (7 days) has P = exp(-2.45) = 0.086 -> not flagged, although its
#       units rate, 42 / 20 = 2.1 a day, would have said exp(-14.7): one sale of 6 is as likely as one of 1.
P1_RUN = {"store_id": "ST1", "product_id": "P1", "first_day": dt.date(2024, 12, 15),
          "last_day": dt.date(2024, 12, 20), "days": 6, "min_stock_on_hand": 30, "max_stock_on_hand": 30,
          "ongoing": True}
P6_RUN = {"store_id": "ST1", "product_id": "P6", "first_day": dt.date(2024, 12, 10),
          "last_day": dt.date(2024, 12, 11), "days": 2, "min_stock_on_hand": 1000, "max_stock_on_hand": 1000,
          "ongoing": False}
P7_RUN = {"store_id": "ST1", "product_id": "P7", "first_day": dt.date(2024, 12, 11),
          "last_day": dt.date(2024, 12, 20), "days": 10, "min_stock_on_hand": 500, "max_stock_on_hand": 500,
          "ongoing": True}


def load_store(backend, folder) -> None:
    """Write the hand-made stores as input files and run them through ingest and validation."""
    headers, lines = [], []
    for store, sales in (("ST1", ST1_SALES), ("ST2", ST2_SALES)):
        for index, day in enumerate(DAYS):
            # The n-th transaction of the day holds the n-th sale of every product that sold at least n times.
            for number in range(max(daily[index] for daily in sales.values())):
                transaction = f"{store}-{day:%m%d}-{number:03d}"
                basket = [(product, UNITS_PER_SALE.get(product, 1)) for product, daily in sales.items()
                          if daily[index] > number]
                headers.append(f"{transaction},C1,{store},{day} 10:00:00,"
                               f"{sum(PRICES[product] * units for product, units in basket)}.00")
                lines += [f"{len(lines) + line},{transaction},{product},,{units},{PRICES[product] * units}.00"
                          for line, (product, units) in enumerate(basket, start=1)]
    write_small_shop(folder, [f"{product},{product} name,Food,{price}.00,0" for product, price in PRICES.items()],
                     headers, lines, [f"{day},ST1,{product},{stock[index]}" for product, stock in ST1_STOCK.items()
                                      for index, day in enumerate(DAYS)])
    load_and_validate(backend, folder)
    assert backend.scalar("SELECT count(*) FROM quarantine.store_sales_header") == 0
    assert backend.scalar("SELECT count(*) FROM staging.inventory_daily") == 20 * len(ST1_STOCK)


@pytest.fixture
def store(backend, tmp_path):
    load_store(backend, tmp_path / "data")
    return backend


def runs(backend, **options) -> list[dict]:
    expr = phantom_inventory(inputs()["lines"], staging_table("inventory_daily"), **options)
    return backend.fetch_dicts(expr)


def without_numbers(row: dict) -> dict:
    return {name: value for name, value in row.items()
            if name not in ("daily_sales", "daily_units", "expected_units", "probability")}


def test_fast_sellers_that_stopped_selling_are_flagged(store):
    result = run_inventory(store)
    stored = store.fetch_dicts("SELECT * FROM analytics.phantom_inventory ORDER BY probability")
    assert [without_numbers(row) for row in stored] == [P7_RUN, P1_RUN]
    assert result["phantom_runs"] == stored
    p7, p1 = stored
    assert (p1["daily_sales"], p1["daily_units"], p1["expected_units"]) == (3.5, 3.5, 21.0)
    assert p1["probability"] == pytest.approx(math.exp(-21))
    assert (p7["daily_sales"], p7["expected_units"]) == (75.0, 750.0)
    assert p7["probability"] == pytest.approx(math.exp(-700))


def test_threshold_and_minimum_run_are_settings(store):
    # With a 2-day minimum P6's short idle spell counts too; the least likely run comes first.
    assert [without_numbers(row) for row in runs(store, min_days=2)] == [P7_RUN, P6_RUN, P1_RUN]
    assert [row["product_id"] for row in runs(store, threshold=1e-10)] == ["P7"]  # P1's 7.6e-10 is not below
    assert [row["product_id"] for row in runs(store, min_days=7)] == ["P7"]
    # Even when every idle day counts and almost any probability is improbable, P5 (never sold), P3 (stock 0),
    # P4 (never idle) and ST2 (no snapshots) stay out: only rated, in-stock, snapshotted days form runs.
    loose = runs(store, threshold=0.999, min_days=1)
    assert {(row["store_id"], row["product_id"]) for row in loose} == {
        ("ST1", product) for product in ("P1", "P2", "P6", "P7", "P8")}
    p8 = [row for row in loose if row["product_id"] == "P8" and row["days"] == 7]
    assert [(row["first_day"], row["daily_units"]) for row in p8] == [(dt.date(2024, 12, 14), 2.1)]
    assert p8[0]["probability"] == pytest.approx(math.exp(-2.45))


@pytest.mark.parametrize("options, message", [({"threshold": 0}, "between 0 and 1"),
                                              ({"threshold": 1.5}, "between 0 and 1"),
                                              ({"min_days": 0}, "at least 1 day")])
def test_settings_out_of_range_are_user_errors(options, message):
    with pytest.raises(UserError, match=message):
        phantom_inventory(inputs()["lines"], staging_table("inventory_daily"), **options)


def test_inventory_command_lists_the_runs(store):
    listing = CliRunner().invoke(app, ["--db", store.url, "inventory", "--format", "json"])
    assert listing.exit_code == 0, listing.output
    phantom = [row for row in [{**row, "table": name} for name, listed in json.loads(listing.stdout).items() for row in listed] if row["table"] == "phantom_runs"]
    assert [(row["product_id"], row["first_day"], row["last_day"], row["days"]) for row in phantom] == [
        ("P7", "2024-12-11", "2024-12-20", 10), ("P1", "2024-12-15", "2024-12-20", 6)]
    table = CliRunner().invoke(app, ["--db", store.url, "inventory", "--phantom-min-days", "2"])
    assert table.exit_code == 0, table.output
    assert "phantom stock: 3 run(s) of ≥ 2 in-stock days" in table.stdout and "2024-12-10" in table.stdout
    wrong = CliRunner().invoke(app, ["--db", store.url, "inventory", "--phantom-threshold", "2"])
    assert isinstance(wrong.exception, UserError) and "between 0 and 1" in str(wrong.exception)
