"""Churn model: parameters recovered from simulated customers, lapsed customers on generated data, edge cases."""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import statistics
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from helpers import load_and_validate, write_csv
from retailflow.analytics.churn import MODELS, NO_PURCHASE, fit_parameters, run_churn, stored_fit
from retailflow.analytics.loyalty import run_loyalty
from retailflow.analytics.segmentation import run_segments
from retailflow.backends import connect
from retailflow.cli import app
from retailflow.generate import GeneratorOptions, generate_dataset

TRUE_PARAMETERS = {"r": 0.5, "alpha": 12.0, "a": 0.8, "b": 2.5}


def simulate(rng: np.random.Generator, customers: int, model: str, r: float, alpha: float, a: float,
             b: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, t_x, T) in whole days for customers drawn from the model, each seen 60-360 days after a first purchase."""
    rate = rng.gamma(r, 1 / alpha, customers)
    dropout = rng.beta(a, b, customers)
    # Repeat purchases made before dropping out: geometric over the dropout chances (BG/NBD has none at the first).
    allowed = rng.geometric(dropout) - MODELS[model]
    age = rng.integers(60, 361, customers).astype(float)
    arrivals = rng.poisson(rate * age)
    x = np.minimum(arrivals, allowed)
    # The x-th of `arrivals` uniform purchase times in [0, T] is T × Beta(x, arrivals - x + 1).
    t_x = np.where(x > 0, np.round(age * rng.beta(np.maximum(x, 1), arrivals - x + 1)), 0.0)
    return x.astype(float), t_x, age


@pytest.mark.parametrize("model", list(MODELS))
def test_parameters_are_recovered_from_simulated_customers(model):
    x, t_x, age = simulate(np.random.default_rng(11), 8000, model, **TRUE_PARAMETERS)
    # Grouped by (x, t_x, T) with counts, as run_churn fetches it from the engine.
    groups, counts = np.unique(np.column_stack([x, t_x, age]), axis=0, return_counts=True)
    fit = fit_parameters(*groups.T, counts, model)
    assert fit.estimated and fit.customers == 8000
    fitted = {"r": fit.r, "alpha": fit.alpha, "a": fit.a, "b": fit.b}
    for name, true in TRUE_PARAMETERS.items():
        assert fitted[name] == pytest.approx(true, rel=0.25), name


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    """Four weeks of sales for 400 customers, about 90 of whom lapsed before them."""
    data = tmp_path_factory.mktemp("churn") / "data"
    generate_dataset(data, GeneratorOptions(seed=9, stores=3, products=24, customers=400, days=28, inventory=False))
    return data


def _model_inputs(backend) -> dict[str, tuple]:
    rows = backend.fetch_dicts("SELECT customer_id, repeat_purchases, first_to_last_days, first_to_as_of_days "
                               "FROM analytics.customer_churn")
    return {row.pop("customer_id"): tuple(row.values()) for row in rows}


def test_the_loyalty_write_back_keeps_the_purchase_history(backend, generated):
    """`loyalty` replaces last_purchase_date by the last sale; the export's date still counts as a purchase day."""
    load_and_validate(backend, generated)
    run_churn(backend)
    before = _model_inputs(backend)
    run_loyalty(backend)
    run_churn(backend)
    assert _model_inputs(backend) == before
    assert sum(inputs[0] > 0 for inputs in before.values()) > 50


def test_lapsed_customers_have_a_higher_churn_probability(backend, generated):
    load_and_validate(backend, generated)
    run_loyalty(backend)
    segments = run_segments(backend)
    fit = stored_fit(backend)
    assert fit.estimated and fit.model == "MBG/NBD", fit.describe()
    rows = backend.fetch_dicts("SELECT * FROM analytics.customer_churn")
    lapsed = {row["customer_id"] for row in csv.DictReader((generated / "_truth" / "customers.csv").open())
              if row["lapsed"] == "true"}
    churn = {row["customer_id"]: row["churn_probability"] for row in rows}
    assert all(value is not None and 0 <= value <= 1 and not math.isnan(value) for value in churn.values())
    lapsed_mean = statistics.mean(churn[customer] for customer in lapsed)
    others_mean = statistics.mean(value for customer, value in churn.items() if customer not in lapsed)
    assert lapsed_mean - others_mean > 0.2, (lapsed_mean, others_mean)
    # The engine's P(alive) is MBG/NBD's closed form with the fitted parameters.
    for row in rows:
        x, t_x, age = row["repeat_purchases"], row["first_to_last_days"], row["first_to_as_of_days"]
        odds = fit.a / (fit.b + x) * ((fit.alpha + age) / (fit.alpha + t_x)) ** (fit.r + x)
        assert row["p_alive"] == pytest.approx(1 / (1 + odds), rel=1e-9, abs=1e-12)
    # Beside the rule: the At-Risk customers' mean churn probability is above everyone's.
    at_risk = backend.fetch_dicts("SELECT avg(c.churn_probability) AS at_risk, (SELECT avg(churn_probability) "
                                  "FROM analytics.customer_churn) AS everyone FROM analytics.customer_rfm r "
                                  "JOIN analytics.customer_churn c USING (customer_id) WHERE r.is_at_risk")[0]
    assert at_risk["at_risk"] > at_risk["everyone"]
    assert all(row["churn_probability"] is not None for row in segments)
    # Plain BG/NBD, its closed form in the engine too: a one-time buyer cannot have left, so no lapsed one churns.
    plain = run_churn(backend, model="BG/NBD")
    for row in backend.fetch_dicts("SELECT * FROM analytics.customer_churn"):
        x, t_x, age = row["repeat_purchases"], row["first_to_last_days"], row["first_to_as_of_days"]
        odds = (x > 0) * plain.a / (plain.b + x - 1) * ((plain.alpha + age) / (plain.alpha + t_x)) ** (plain.r + x)
        assert row["p_alive"] == pytest.approx(1 / (1 + odds), rel=1e-9, abs=1e-12)
        assert row["customer_id"] not in lapsed or row["churn_probability"] == 0


def one_time_buyers(folder: Path, customers: int) -> Path:
    """A valid dataset where each customer bought once, on one of a few December days."""
    ids = [f"C{number:03d}" for number in range(1, customers + 1)]
    write_csv(folder, "stores.csv", "store_id,store_name,store_city,store_region,opening_date\nS1,A,B,C,")
    write_csv(folder, "products.csv", "product_id,product_name,product_category,unit_price,current_stock_level\n"
              "P1,Lamp,Home,10.00,5")
    write_csv(folder, "customer_details.csv", "customer_id,first_name,email,loyalty_status,total_loyalty_points,"
              "last_purchase_date,segment_id\n" + "\n".join(f"{c},Al,{c.lower()}@example.com,,0,," for c in ids))
    write_csv(folder, "store_sales_header.csv", "transaction_id,customer_id,store_id,transaction_date,total_amount\n"
              + "\n".join(f"T{c},{c},S1,2024-12-{1 + index % 20:02d} 10:00,10.00" for index, c in enumerate(ids)))
    write_csv(folder, "store_sales_line_items.csv", "line_item_id,transaction_id,product_id,promotion_id,quantity,"
              "line_item_amount\n" + "\n".join(f"{index},T{c},P1,,1,10.00" for index, c in enumerate(ids, 1)))
    return folder


def test_no_repeat_buyers_gives_a_status_and_no_numbers(db_url, tmp_path):
    backend = connect(db_url)
    load_and_validate(backend, one_time_buyers(tmp_path / "data", 40))
    backend.close()
    runner = CliRunner()
    table = runner.invoke(app, ["--db", db_url, "segments"])
    assert table.exit_code == 0, table.output
    # The Rich console's width is fixed when it is first imported: read the words, not the layout.
    assert "no customer bought on two different days" in " ".join(table.stdout.split())
    machine = runner.invoke(app, ["--db", db_url, "segments", "--format", "json"])
    assert machine.exit_code == 0, machine.output
    assert json.loads(machine.stdout)[0]["churn_probability"] is None and "not estimated" in machine.stderr
    csv_output = runner.invoke(app, ["--db", db_url, "segments", "--format", "csv"])
    assert csv_output.stdout.splitlines()[0].endswith("at_risk,at_risk_churn_probability,churn_probability")
    backend = connect(db_url)
    fit = stored_fit(backend)
    assert not fit.estimated and fit.customers == 40 and fit.r is None
    rows = backend.fetch_dicts("SELECT churn_probability, p_alive, churn_status FROM analytics.customer_churn")
    backend.close()
    assert len(rows) == 40
    assert all(row["churn_probability"] is None and row["p_alive"] is None and row["churn_status"] == fit.status
               for row in rows)


def test_too_few_customers_or_no_purchase_by_the_as_of_date_give_a_status(staged_sample):
    run_loyalty(staged_sample)
    rows = run_segments(staged_sample)
    fit = stored_fit(staged_sample)
    assert not fit.estimated and "the model needs at least 30" in fit.status
    assert all(row["churn_probability"] is None for row in rows)
    statuses = dict(staged_sample.fetch("SELECT customer_id, churn_status FROM analytics.customer_churn")[1])
    assert set(statuses.values()) == {fit.status}
    run_segments(staged_sample, as_of=dt.date(2024, 1, 1))
    assert "no customer has a purchase" in stored_fit(staged_sample).status
    assert set(dict(staged_sample.fetch("SELECT customer_id, churn_status FROM analytics.customer_churn")[1])
               .values()) == {NO_PURCHASE}
