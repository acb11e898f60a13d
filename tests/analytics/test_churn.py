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
from retailflow.analytics.churn import (
    MODELS,
    NO_PURCHASE,
    ChurnFit,
    _at_bound,
    churn_probabilities,
    fit_parameters,
    run_churn,
    stored_fit,
)
from retailflow.analytics.loyalty import run_loyalty
from retailflow.analytics.segmentation import run_segments
from retailflow.backends import connect
from retailflow.cli import app
from retailflow.generate import GeneratorOptions, generate_dataset
from retailflow.report.dashboard import build_report

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
    return lamp_sales(folder, [(c, dt.date(2024, 12, 1 + index % 20)) for index, c in enumerate(ids)])


def lamp_sales(folder: Path, sales: list[tuple[str, dt.date]]) -> Path:
    """Input files of one store and one 10.00 lamp: a sale of one lamp per (customer, day) of `sales`, and the
    customers who bought."""
    customers = dict.fromkeys(customer for customer, _ in sales)
    write_csv(folder, "stores.csv", "store_id,store_name,store_city,store_region,opening_date\nS1,A,B,C,")
    write_csv(folder, "products.csv", "product_id,product_name,product_category,unit_price,current_stock_level\n"
              "P1,Lamp,Home,10.00,5")
    write_csv(folder, "customer_details.csv", "customer_id,first_name,email,loyalty_status,total_loyalty_points,"
              "last_purchase_date,segment_id\n" + "\n".join(f"{c},Al,{c.lower()}@example.com,,0,," for c in customers))
    write_csv(folder, "store_sales_header.csv", "transaction_id,customer_id,store_id,transaction_date,total_amount\n"
              + "\n".join(f"T{c}-{day:%m%d},{c},S1,{day} 10:00,10.00" for c, day in sales))
    write_csv(folder, "store_sales_line_items.csv", "line_item_id,transaction_id,product_id,promotion_id,quantity,"
              "line_item_amount\n" + "\n".join(f"{index},T{c}-{day:%m%d},P1,,1,10.00"
                                                for index, (c, day) in enumerate(sales, 1)))
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


# Hand-made purchase histories, grouped as run_churn fetches them: (x repeat purchase days, t_x, T, customers).
# Regular buyers who stopped: 20 bought every 10 days and still do, 20 bought every 10 days for 100 days and went
# silent 260 days ago, 20 every 20 days still, 20 every 20 days for 120 days then silent 240; 10 one-time buyers 300
# days ago, 10 twenty days ago. The typical gap is 10 days (the customer-weighted median of t_x / x: 10, 10, 20,
# 20): 20 customers are recent (silent 10 days), the 50 silent for more than 20 days are the lapsed ones.
STOPPED = ([35, 10, 17, 6, 0, 0], [350, 100, 340, 120, 0, 0], [360, 360, 360, 360, 300, 20], [20, 20, 20, 20, 10, 10])
# Nobody visibly stopped: 5 customers each buying every 6, 12, 24 and 48 days from day 0 to the as-of day 96
# (x = 96 / gap - 1, t_x = 96 - gap), 10 one-time buyers on day 6 and 10 on day 66. Rates that differ this much
# explain every silence as a slow buyer, so the fit puts the dropout chance near 0 (a ≈ 6e-6, b ≈ 400).
NOBODY_STOPPED = ([15, 7, 3, 1, 0, 0], [90, 84, 72, 48, 0, 0], [96, 96, 96, 96, 90, 30], [5, 5, 5, 5, 10, 10])


def test_a_history_where_customers_stopped_fits():
    fit = fit_parameters(*STOPPED)
    assert fit.estimated and fit.status == "estimated", fit.status
    assert (fit.customers, fit.repeat_buyers, fit.history_days) == (100, 80, 360)
    churn = churn_probabilities(fit, *STOPPED[:3])
    # Those still buying every 10 or 20 days are kept; those gone 240+ days and the old one-time buyers are lost.
    assert churn[0] < 0.1 and churn[2] < 0.5 and churn[1] > 0.99 and churn[3] > 0.99 and churn[4] > 0.9


@pytest.mark.parametrize("histories, reason", [
    # 40 customers, each on one day: nothing to learn a purchase rate from.
    (([0], [0], [30], [40]), "not estimable: no customer bought on two different days"),
    # 3 of 100 customers came back (3 % < 5 %, 3 < 10).
    (([1, 0], [10, 0], [60, 60], [3, 97]),
     "not estimable: too little repeat buying: 3 of 100 customers bought on two different days; the model needs at "
     "least 10 such customers and 5% of all"),
    # 12 of 400 came back: 12 passes the 10, not the 5 % (20 customers).
    (([1, 0], [10, 0], [60, 60], [12, 388]), "not estimable: too little repeat buying: 12 of 400 customers"),
])
def test_too_little_repeat_buying_is_not_estimable(histories, reason):
    fit = fit_parameters(*histories)
    assert fit.status.startswith(reason) and not fit.estimated and fit.r is None, fit.status


def test_a_fit_that_cannot_tell_who_left_is_not_estimable():
    fit = fit_parameters(*NOBODY_STOPPED)
    assert not fit.estimated and fit.status.startswith("not estimable: degenerate fit (r="), fit.status
    # Recent: the 10 buying every 6 or 12 days (silent 6 and 12 days). Lapsed, silent over 2 × 12 days: the five
    # every-48-days buyers (48 days) and the 20 one-time buyers (90 and 30 days).
    assert "more than 2x the typical 12 days between purchases" in fit.status
    churn = churn_probabilities(fit, *NOBODY_STOPPED[:3])
    assert churn.max() < 1e-4 and fit.a < 1e-3, (fit.a, churn)
    # The parameters stay on record for inspection; nobody is scored with them.
    assert fit.r is not None and "not estimated, not estimable: degenerate fit" in fit.describe()


def test_a_parameter_alone_at_its_bound_is_degenerate():
    log_bound = 20.0
    fit = ChurnFit(model="MBG/NBD", status="estimated", customers=40, repeat_buyers=20, history_days=96, r=0.5,
                   alpha=10.0, a=math.exp(-log_bound), b=2.0)
    assert _at_bound(fit, np.array([np.log(0.5), np.log(1.0), -log_bound, np.log(2.0)])).startswith(
        "degenerate fit (a = 2.06e-09, b = 2)")
    # a and b at the same bound: each customer leaves at once or never, a limit the data may ask for.
    assert _at_bound(fit, np.array([np.log(0.5), np.log(1.0), -log_bound, -log_bound + 0.5])) == ""


def nobody_stopped(folder: Path) -> Path:
    """NOBODY_STOPPED as input files: day 0 is 2024-01-01, so the as-of day 96 is 2024-04-06; one 10.00 line each."""
    start = dt.date(2024, 1, 1)
    days = {}
    number = 0
    for gap in (6, 12, 24, 48):
        for _ in range(5):
            number += 1
            days[f"C{number:02d}"] = range(0, 96, gap)
    for day in (6, 66):
        for _ in range(10):
            number += 1
            days[f"C{number:02d}"] = [day]
    return lamp_sales(folder, [(customer, start + dt.timedelta(days=day)) for customer, bought in days.items()
                               for day in bought])


def test_a_degenerate_fit_says_so_in_the_tables_the_cli_and_the_report(db_url, tmp_path):
    backend = connect(db_url)
    load_and_validate(backend, nobody_stopped(tmp_path / "data"))
    backend.close()
    runner = CliRunner()
    table = runner.invoke(app, ["--db", db_url, "segments", "--as-of", "2024-04-06"])
    assert table.exit_code == 0, table.output
    words = " ".join(table.stdout.split())
    assert "not estimated, not estimable: degenerate fit" in words and "typical 12 days between purchases" in words
    machine = runner.invoke(app, ["--db", db_url, "segments", "--as-of", "2024-04-06", "--format", "json"])
    assert machine.exit_code == 0, machine.output
    assert all(row["churn_probability"] is None for row in json.loads(machine.stdout))
    assert "not estimable: degenerate fit" in machine.stderr
    backend = connect(db_url)
    fit = stored_fit(backend)
    assert fit.status.startswith("not estimable: degenerate fit") and fit.a is not None and not fit.estimated
    assert backend.fetch_dicts("SELECT status FROM analytics.churn_model") == [{"status": fit.status}]
    rows = {row["customer_id"]: row for row in backend.fetch_dicts("SELECT * FROM analytics.customer_churn")}
    # The model's inputs, worked out above: C01 buys every 6 days, C16 every 48, C21 once on day 6, C31 on day 66.
    assert [(rows[c]["repeat_purchases"], rows[c]["first_to_last_days"], rows[c]["first_to_as_of_days"])
            for c in ("C01", "C16", "C21", "C31")] == [(15, 90, 96), (1, 48, 96), (0, 0, 90), (0, 0, 30)]
    assert len(rows) == 40 and all(row["churn_probability"] is None and row["p_alive"] is None
                                   and row["churn_status"] == fit.status for row in rows.values())
    build_report(backend, tmp_path / "report.html")
    backend.close()
    html = " ".join((tmp_path / "report.html").read_text(encoding="utf-8").split())
    assert '<b>not estimable</b><span>Churn model</span>' in html and "not estimable: degenerate fit" in html
