"""Lost sales: exact units and revenue on a hand-made store whose zero-stock days still sold."""

from __future__ import annotations

import datetime as dt

import pytest

from helpers import load_and_validate, write_small_shop
from retailflow.analytics.inventory import inputs, lost_sales

DAYS = [dt.date(2024, 12, 2) + dt.timedelta(days=offset) for offset in range(21)]  # Mon Dec 2 .. Sun Dec 22
UNIT_PRICES = {("ST1", "P1"): 10, ("ST2", "P1"): 12, ("ST1", "P2"): 2}  # realised price a unit
# Units sold a day, Mon..Sun. ST1 reports closing stock: it sells P1 out on Tue Dec 17 (its full Tuesday
# demand, 2), is empty Wed-Fri, and the deliveries of Sat and Sun sell out the same day.
SALES = {
    ("ST1", "P1"): [4, 2, 5, 3, 5, 7, 1,
                    4, 2, 7, 3, 5, 9, 1,
                    4, 2, 0, 0, 0, 3, 4],
    # ST2 reports opening stock for the third week only: out of stock all weekend, a delivery sells 1 on Saturday.
    ("ST2", "P1"): [0] * 14 + [3, 3, 3, 3, 3, 1, 0],
    ("ST1", "P2"): [1] * 21,  # no snapshots: nothing can be said about its stock
}
STOCK = {
    ("ST1", "P1"): [64 - sum(SALES[("ST1", "P1")][:day + 1]) for day in range(16)] + [0] * 5,
    ("ST2", "P1"): [None] * 14 + [20, 17, 14, 11, 8, 0, 0],
}

# Hand-computed. Demand is learned from in-stock days (snapshot above 0) only.
#   ST1/P1: same-weekday means of weeks 1-2 and Mon Dec 16: Mon 4, Tue 2, Wed (5 + 7) / 2 = 6, Thu 3, Fri 5,
#     Sat (7 + 9) / 2 = 8, Sun 1. Stock-out days lost max(0, demand - sold): Tue 2 - 2 = 0 (sold in full),
#     Wed 6, Thu 3, Fri 5 (empty), Sat 8 - 3 = 5 (partial), Sun max(0, 1 - 4) = 0 (sold beyond its demand):
#     19 units at 10.00 = 190.00. Adding a full day's demand per zero day would have said 25 units.
#   ST2/P1: Saturday and Sunday were never in stock, so the mean of all in-stock days, 3 a day:
#     Sat 3 - 1 = 2, Sun 3: 5 units at 12.00 = 60.00.
EXPECTED = [
    {"rank": 1, "product_id": "P1", "store_id": "ST1", "stockout_days": 6, "lost_units": 19.0,
     "lost_revenue": 190.0},
    {"rank": 1, "product_id": "P1", "store_id": "ST2", "stockout_days": 2, "lost_units": 5.0,
     "lost_revenue": 60.0},
]


def load_store(backend, folder) -> None:
    """Write the hand-made stores as input files and run them through ingest and validation."""
    headers, lines = [], []
    for (store, product), daily in SALES.items():
        for day, units in zip(DAYS, daily):
            if units:
                transaction = f"{store}-{product}-{day:%m%d}"
                amount = UNIT_PRICES[(store, product)] * units
                headers.append(f"{transaction},C1,{store},{day} 10:00:00,{amount}.00")
                lines.append(f"{len(lines) + 1},{transaction},{product},,{units},{amount}.00")
    write_small_shop(folder, ["P1,Kettle,Home,12.00,0", "P2,Matches,Home,2.00,0"], headers, lines,
                     [f"{day},{store},{product},{stock}" for (store, product), daily in STOCK.items()
                      for day, stock in zip(DAYS, daily) if stock is not None])
    load_and_validate(backend, folder)
    assert backend.scalar("SELECT count(*) FROM quarantine.store_sales_header") == 0
    assert backend.scalar("SELECT count(*) FROM staging.inventory_daily") == 21 + 7


def test_zero_stock_days_lose_only_the_demand_they_did_not_sell(backend, tmp_path):
    load_store(backend, tmp_path / "data")
    rows = backend.fetch_dicts(lost_sales(**inputs()))
    assert [{name: row[name] for name in EXPECTED[0]} for row in rows] == [
        {**row, "lost_units": pytest.approx(row["lost_units"]), "lost_revenue": pytest.approx(row["lost_revenue"])}
        for row in EXPECTED]
    assert {row["method"] for row in rows} == {
        "mean of in-stock days (same weekday where available) less that day's sales"}
