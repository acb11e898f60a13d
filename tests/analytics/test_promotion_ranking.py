"""The promotions' ranking, from their daily tables: ties, promotions without a lift, and expected units that round
to nothing.

Mondays only (weekday 0), min_baseline_days 2. Baselines, cells no promotion covered:
    Snacks  Jan 1 and Jan 8: 10 cells, 10 units, 20.00 each -> 1 unit a cell
    Drinks  Jan 1 and Jan 8: 1,000 cells, 1 unit, 1.00 each -> 0.001 unit a cell
Promotions (category promotions, every store):
    PA  Snacks, Jan 15: 4 cells, 8 units  -> expected 4 x 1 = 4: lift (8 / 4 - 1) x 100 = 100 %
    PB  Snacks, Jan 22: 2 cells, 4 units  -> expected 2: lift 100 %, the same as PA: the tie goes to the lower id
    PC  Drinks, Jan 15: 4 cells, 1 unit   -> expected 4 x 0.001 = 0.004, status ok (not 0), stored as 0.00: no lift
        can be computed from what is stored, so no rank (PostgreSQL divided by that zero before)
    PD  Snacks, Jan 29: no sales in its window -> no lift, no rank
"""

from __future__ import annotations

import datetime as dt

import ibis

from retailflow.analytics.promotions import promotion_effectiveness

MONDAYS = [dt.date(2024, 1, 1) + dt.timedelta(weeks=week) for week in range(5)]


def _days() -> ibis.Table:
    rows = [  # product_category, sale_date, cells, units, revenue, promotion_id
        ("Snacks", MONDAYS[0], 10, 10, 20.0, None), ("Snacks", MONDAYS[1], 10, 10, 20.0, None),
        ("Drinks", MONDAYS[0], 1000, 1, 1.0, None), ("Drinks", MONDAYS[1], 1000, 1, 1.0, None),
        ("Snacks", MONDAYS[2], 4, 8, 16.0, "PA"), ("Snacks", MONDAYS[3], 2, 4, 8.0, "PB"),
        ("Drinks", MONDAYS[2], 4, 1, 1.0, "PC"),
    ]
    return ibis.memtable({
        "product_category": [row[0] for row in rows], "sale_date": [row[1] for row in rows],
        "weekday": [0] * len(rows), "cells": [row[2] for row in rows], "units": [row[3] for row in rows],
        "revenue": [row[4] for row in rows], "promotion_id": [row[5] for row in rows],
        "covering_count": [0 if row[5] is None else 1 for row in rows], "product_id": [None] * len(rows)},
        schema={"product_category": "string", "sale_date": "date", "weekday": "int64", "cells": "int64",
                "units": "int64", "revenue": "float64", "promotion_id": "string", "covering_count": "int64",
                "product_id": "string"})


def _promotions() -> ibis.Table:
    ids, categories, days = ["PA", "PB", "PC", "PD"], ["Snacks", "Snacks", "Drinks", "Snacks"], MONDAYS[2:] + MONDAYS[4:]
    return ibis.memtable({
        "promotion_id": ids, "promotion_name": ids, "start_date": [days[0], days[1], days[0], days[2]],
        "end_date": [days[0], days[1], days[0], days[2]], "discount_percentage": [10.0] * 4,
        "applicable_category": categories, "applicable_products": [None] * 4, "applicable_stores": [None] * 4},
        schema={"promotion_id": "string", "promotion_name": "string", "start_date": "date", "end_date": "date",
                "discount_percentage": "float64", "applicable_category": "string",
                "applicable_products": "string", "applicable_stores": "string"})


def test_ties_go_to_the_lower_id_and_a_lift_that_cannot_be_computed_is_not_ranked():
    products = ibis.memtable({"product_id": ["P1", "P2"], "product_category": ["Snacks", "Drinks"]})
    discounts = ibis.memtable({"sale_date": [MONDAYS[2]], "promotion_id": ["PA"], "product_category": ["Snacks"],
                               "discount_cost": [1.6], "product_id": [None]},
                              schema={"sale_date": "date", "promotion_id": "string", "product_category": "string",
                                      "discount_cost": "float64", "product_id": "string"})
    table = promotion_effectiveness(_days(), discounts, products, _promotions(), min_baseline_days=2)
    rows = ibis.duckdb.connect().execute(table).to_dict("records")
    ranked = [(row["promotion_id"], row["status"], row["promotion_lift_pct"], row["rank"]) for row in rows]
    nothing = [(name, status) for name, status, lift, rank in ranked if rank != rank or rank is None]
    assert ranked[:2] == [("PA", "ok", 100.0, 1), ("PB", "ok", 100.0, 2)]
    assert nothing == [("PC", "ok"), ("PD", "no sales in window")]
    by_id = {row["promotion_id"]: row for row in rows}
    assert by_id["PC"]["expected_units"] == 0.0 and by_id["PC"]["promoted_units"] == 1
