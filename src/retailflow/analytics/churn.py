"""Churn probability per customer from a BG/NBD-family model, beside the rule-based At-Risk flag.

The model (Fader, Hardie & Lee 2005): while alive, a customer buys at a Poisson rate λ
(Gamma(r, α) across customers) and may drop out for good with probability p (Beta(a, b) across
customers) at each chance to do so. Plain BG/NBD gives that chance only after a repeat purchase,
so a customer seen buying once can never have left: P(alive) = 1, whatever the silence since.
Customers who lapsed before the staged history look just like that (one purchase on record,
their `last_purchase_date`), so the default is the modified BG/NBD (Batislam, Denizel &
Filiztekin 2007), which also gives the chance at the first purchase. Both share the four parameters and
differ by that one chance, `MODELS` below; P(alive) with n dropout chances so far:

    P(alive) = 1 / (1 + [n > 0] · a / (b + n - 1) · ((α + T) / (α + t_x))^(r + x)),  n = x (+ 1)

Inputs per customer, computed in the engine: purchase days are the distinct days of their staged
transactions plus the export's last_purchase_date (the only trace of purchases before the
staged history; `retailflow loyalty` replaces it in staging by the last sale, so its first value is
read from loyalty.opening_balances), up to the as-of date. x = purchase days - 1 (several tills on one day are one
visit, and the clock ticks in days), t_x = days from the first to the last purchase day, T = days
from the first purchase day to the as-of date. The fit (maximum likelihood on the log-parameters)
runs in Python on the summary grouped by (x, t_x, T) with a count, a few thousand rows at most;
P(alive) is computed back in the engine with the parameters as literals.

A fit is "not estimable" (with the reason as its status, and no probability for anyone) when the data
cannot carry it: too few customers or days, too little repeat buying (MIN_REPEAT_BUYERS and
MIN_REPEAT_SHARE), no convergence, a parameter held by the search bound on its own, or no separation:
customers silent for more than LAPSED_GAPS typical gaps between purchases not at least MIN_SEPARATION
more likely to have churned than those silent for at most one. The maximum likelihood can be degenerate
on real data (a year of a real retailer's sales: a = 0.0003, b = 583, churn 0.0004 for customers gone
280 days); a number like that must not read as an estimate.

Outputs: analytics.customer_churn, one row per customer (the model's inputs, P(alive), churn
probability, status), and analytics.churn_model, one row (model, status, parameters, fit size,
log-likelihood, as-of date, fitted_at). A table of its own rather than columns of customer_rfm: it
keeps the model's inputs next to its output for inspection, a fit that cannot be estimated leaves
the RFM rows alone, and customer_rfm keeps the schema its readers derive from `customer_rfm()`.
Expected purchases over the next days are left out: their closed form needs Gauss's
hypergeometric function, which neither DuckDB nor PostgreSQL has.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from dataclasses import dataclass, replace

import ibis
import ibis.expr.types as ir
import numpy as np

from retailflow import catalog
from retailflow.analytics.loyalty import OPENING
from retailflow.analytics.purchases import DAILY, PURCHASES, purchases
from retailflow.analytics.purchases import update as update_purchases
from retailflow.backends import NOW, Backend
from retailflow.backends.run_values import run_value
from retailflow.tables import Store, as_is, indexed_store, matching_rows, staging_table

CHURN = catalog.table("analytics.customer_churn")
MODEL = catalog.stored("analytics.churn_model")
#: Model name -> dropout chances before the first repeat purchase (0: BG/NBD, 1: MBG/NBD).
MODELS = {"BG/NBD": 0, "MBG/NBD": 1}
DEFAULT_MODEL = "MBG/NBD"
#: Four parameters need a few dozen customers, and dropout needs a few weeks to show.
MIN_CUSTOMERS = 30
MIN_HISTORY_DAYS = 14
#: The purchase rate is learned from customers with 2+ purchase days: a handful, or a sliver of a large base,
#: leaves the fit to the one-time buyers, whose silence the model can read as anything.
MIN_REPEAT_BUYERS = 10
MIN_REPEAT_SHARE = 0.05
#: A fit is trusted only when it tells who left: customers silent for more than LAPSED_GAPS times the typical
#: days between purchases must have a mean churn probability at least MIN_SEPARATION above those silent for at
#: most one typical gap. Judged only when each group has SEPARATION_MIN_CUSTOMERS customers.
LAPSED_GAPS = 2
MIN_SEPARATION = 0.05
SEPARATION_MIN_CUSTOMERS = 5
ESTIMATED = "estimated"
NOT_ESTIMABLE = "not estimable"
NO_PURCHASE = "no purchase by the as-of date"
#: log(P(dead) / P(alive)) is clamped here: exp() beyond ±700 overflows on PostgreSQL, and ±50
#: already gives a probability within 1e-21 of 0 or 1.
LOG_ODDS_LIMIT = 50.0
#: Bounds on the log-parameters keep a flat likelihood (no dropout evidence) from running off to inf; a parameter
#: within LOG_BOUND_MARGIN of them was stopped by the bound, not by the data.
LOG_PARAMETER_BOUND = 20.0
LOG_BOUND_MARGIN = 1.0


@dataclass(frozen=True)
class ChurnFit:
    """The fitted parameters, the status, and what the fit saw.

    The parameters are None when no fit was tried; a fit found not estimable keeps them for inspection, but scores
    nobody.
    """

    model: str
    status: str
    customers: int
    repeat_buyers: int
    history_days: int
    r: float | None = None
    alpha: float | None = None
    a: float | None = None
    b: float | None = None
    log_likelihood: float | None = None

    @property
    def estimated(self) -> bool:
        """Whether the parameters (and so the probabilities) exist."""
        return self.status == ESTIMATED

    def describe(self) -> str:
        """One line for people: the parameters, or why there are none."""
        seen = f"{self.customers} customers, {self.repeat_buyers} repeat buyers"
        if not self.estimated:
            return f"Churn probability ({self.model}) not estimated, {self.status} ({seen})."
        return (f"Churn probability from {self.model}: r={self.r:.3g}, alpha={self.alpha:.3g} days, a={self.a:.3g}, "
                f"b={self.b:.3g} ({seen}, log-likelihood {self.log_likelihood:.1f}).")


def purchase_summary(headers: ir.Table, daily: ir.Table, customers: ir.Table, *, as_of: dt.date | None = None,
                     opening: ir.Table | None = None, staged: ir.Table | None = None,
                     exists_per_row: bool = False, store: Store = as_is) -> ir.Table:
    """One row per customer with a purchase by the as-of date: repeat purchase days x, t_x and T in days.

    The purchase days are the staged ones (`daily`: analytics.customer_daily) and the last purchase date each
    export recorded; `headers` give the latest day. `staged` (analytics.customer_purchases) holds the staged
    days' count and bounds per customer, when every staged day is by the as-of date: then only the recorded
    days are looked up among the staged ones, instead of every staged day being counted again.

    `opening` (loyalty.opening_balances) keeps the export's own last purchase date, which the loyalty
    write-back replaces by the last staged sale once a customer buys again. `exists_per_row`: the engine's
    Capabilities.joins_exists_per_row (tables.matching says why); `store` (tables.indexed_store) keeps the joined
    pieces as indexed tables there.
    """
    reference = (run_value("asof", as_of, "date") if as_of else headers.transaction_date.max().date().as_scalar()
                 ).cast("date")
    if staged is None:
        staged = purchases(daily.filter(daily.sale_date <= reference))
    recorded = None
    for source in [customers] + ([opening] if opening is not None else []):
        days = source.filter(source.last_purchase_date.notnull()).select(
            "customer_id", day=source.last_purchase_date.cast("date"))
        recorded = days if recorded is None else recorded.union(days, distinct=True)
    # Distinct: the customers' days by their key, and the union of the sources.
    recorded = store("rf_churn_recorded", recorded.filter(recorded.day <= reference), ("customer_id", "day"))
    # A day of returns only is no purchase day: a recorded date on it still counts.
    bought = daily.filter(daily.transactions > 0)
    bought = store("rf_churn_bought", bought.select("customer_id", "sale_date").distinct(), ("customer_id", "sale_date"))
    # MariaDB ran this NOT EXISTS once per recorded day, each a scan of the staged days (50k line items: 322 s).
    unstaged = matching_rows(recorded, bought, [("customer_id", "customer_id"), ("day", "sale_date")], keep=False,
                             exists_per_row=exists_per_row)
    added = store("rf_churn_added", unstaged.group_by("customer_id").aggregate(
        added_days=unstaged.count(), added_first=unstaged.day.min(), added_last=unstaged.day.max()), ("customer_id",))
    staged = store("rf_churn_staged", staged.select("customer_id", "purchase_days", "first_day", "last_day"),
                   ("customer_id",))
    joined = staged.outer_join(added, staged.customer_id == added.customer_id)
    first = joined.first_day.fill_null(joined.added_first)
    last = joined.last_day.fill_null(joined.added_last)
    spans = joined.select(
        customer_id=joined.customer_id.fill_null(joined.customer_id_right),
        purchase_days=joined.purchase_days.fill_null(0) + joined.added_days.fill_null(0),
        first_day=ibis.least(first, joined.added_first.fill_null(first)),
        last_day=ibis.greatest(last, joined.added_last.fill_null(last)))
    spans = spans.filter(spans.purchase_days > 0)
    return spans.select(
        "customer_id", repeat_purchases=spans.purchase_days - 1,
        first_to_last_days=(spans.last_day - spans.first_day).cast("int64"),
        first_to_as_of_days=(reference - spans.first_day).cast("int64"))


def summary_counts(summary: ir.Table) -> ir.Table:
    """The summary grouped by (x, t_x, T) with the number of customers: all the fit needs."""
    keys = ["repeat_purchases", "first_to_last_days", "first_to_as_of_days"]
    # Ordered, so the optimiser sees the same sum in the same order and every run gives the same fit.
    return summary.group_by(keys).aggregate(customers=summary.count()).order_by(keys)


def log_likelihood(log_parameters: np.ndarray, repeat_purchases: np.ndarray, first_to_last: np.ndarray,
                   first_to_as_of: np.ndarray, model: str = DEFAULT_MODEL) -> np.ndarray:
    """Log-likelihood of each (x, t_x, T) under the model with parameters exp(log_parameters) = (r, α, a, b)."""
    from scipy.special import betaln, gammaln  # here, not at the top: see fit_parameters

    r, alpha, a, b = np.exp(log_parameters)
    x = repeat_purchases
    chances = x + MODELS[model]
    # Common factor: x purchases from a Gamma-Poisson rate, the last one at t_x.
    rate = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    survived = betaln(a, b + chances) - betaln(a, b) - (r + x) * np.log(alpha + first_to_as_of)
    with np.errstate(invalid="ignore", divide="ignore"):
        # Dropped out at the last chance; impossible without one (BG/NBD's one-time buyers).
        dropped = betaln(a + 1, b + np.maximum(chances - 1, 0)) - betaln(a, b) - (r + x) * np.log(alpha + first_to_last)
    dropped = np.where(chances > 0, dropped, -np.inf)
    return rate + np.logaddexp(survived, dropped)


def fit_parameters(repeat_purchases: np.ndarray, first_to_last: np.ndarray, first_to_as_of: np.ndarray,
                   customers: np.ndarray, model: str = DEFAULT_MODEL, *, min_customers: int = MIN_CUSTOMERS,
                   min_history_days: float = MIN_HISTORY_DAYS) -> ChurnFit:
    """Maximum-likelihood (r, α, a, b) from grouped (x, t_x, T, customers), or a status saying why not."""
    # Imported when a fit runs, not with the module: scipy.optimize took 17 % of a night with nothing new
    # (py-spy, `retailflow run` of the loaded 8-day test shop again), which never fits.
    from scipy.optimize import minimize

    x, t_x, age, weight = (np.asarray(values, dtype=float) for values in (
        repeat_purchases, first_to_last, first_to_as_of, customers))
    seen = {"model": model, "customers": int(weight.sum()), "repeat_buyers": int(weight[x > 0].sum()),
            "history_days": int(age.max()) if len(age) else 0}
    reason = _unfit_reason(seen, min_customers, min_history_days)
    if reason:
        return ChurnFit(status=f"{NOT_ESTIMABLE}: {reason}", **seen)
    # Time in units of a tenth of the longest history keeps α near 1 for the optimiser; only α scales.
    scale = age.max() / 10.0

    def negative(log_parameters: np.ndarray) -> float:
        return -float(np.dot(weight, log_likelihood(log_parameters, x, t_x / scale, age / scale, model)))

    bounds = [(-LOG_PARAMETER_BOUND, LOG_PARAMETER_BOUND)] * 4
    result = minimize(negative, np.zeros(4), method="L-BFGS-B", bounds=bounds)
    r, alpha, a, b = np.exp(result.x)
    alpha *= scale
    fitted = np.log([r, alpha, a, b])
    total = float(np.dot(weight, log_likelihood(fitted, x, t_x, age, model)))
    if not (result.success and np.isfinite(total)):
        return ChurnFit(status=f"{NOT_ESTIMABLE}: the fit did not converge ({result.message})", **seen)
    fit = ChurnFit(status=ESTIMATED, r=float(r), alpha=float(alpha), a=float(a), b=float(b),
                   log_likelihood=total, **seen)
    reason = _at_bound(fit, result.x) or _no_separation(fit, x, t_x, age, weight)
    return replace(fit, status=f"{NOT_ESTIMABLE}: {reason}") if reason else fit


def _unfit_reason(seen: dict, min_customers: int, min_history_days: float) -> str:
    """Why the data cannot hold the model's four parameters, or "" when they may."""
    customers, repeat_buyers = seen["customers"], seen["repeat_buyers"]
    if customers == 0:
        return "no customer has a purchase by the as-of date"
    if customers < min_customers:
        return f"{customers} customers with purchases, the model needs at least {min_customers}"
    if repeat_buyers == 0:
        return "no customer bought on two different days, so there is no purchase rate to learn"
    if repeat_buyers < max(MIN_REPEAT_BUYERS, MIN_REPEAT_SHARE * customers):
        return (f"too little repeat buying: {repeat_buyers} of {customers} customers bought on two different days; "
                f"the model needs at least {MIN_REPEAT_BUYERS} such customers and {MIN_REPEAT_SHARE:.0%} of all")
    if seen["history_days"] < min_history_days:
        return f"{seen['history_days']} days of history, the model needs at least {min_history_days}"
    return ""


def _at_bound(fit: ChurnFit, log_parameters: np.ndarray) -> str:
    """A degenerate fit's reason when a parameter stopped at the optimiser's bound on its own, else "".

    Both parameters of a pair near the same bound is a proper limit the data can ask for: a, b → 0 with a / (a + b)
    steady makes each customer leave at once or never, r, α → ∞ with r / α steady gives everyone the same rate.
    A parameter at the bound whose partner did not follow sends the pair's mean (dropout chance a / (a + b),
    purchase rate r / α) beyond e^±(LOG_PARAMETER_BOUND / 2) as well: a value set by the bound, not by the data.
    """
    pairs = {("r", "alpha"): log_parameters[0:2], ("a", "b"): log_parameters[2:4]}
    stopped = [f"{first} = {getattr(fit, first):.3g}, {second} = {getattr(fit, second):.3g}"
               for (first, second), pair in pairs.items()
               if np.abs(pair).max() >= LOG_PARAMETER_BOUND - LOG_BOUND_MARGIN
               and abs(pair[0] - pair[1]) >= LOG_PARAMETER_BOUND / 2]
    if not stopped:
        return ""
    return (f"degenerate fit ({'; '.join(stopped)}): a parameter ran to the bound of the search "
            f"(e^±{LOG_PARAMETER_BOUND:.0f}), the purchase history does not pin it down")


def churn_probabilities(fit: ChurnFit, repeat_purchases: np.ndarray, first_to_last: np.ndarray,
                        first_to_as_of: np.ndarray) -> np.ndarray:
    """1 - P(alive) for each (x, t_x, T) under the fit's parameters: customer_churn's formula, on grouped inputs."""
    x, t_x, age = (np.asarray(values, dtype=float) for values in (repeat_purchases, first_to_last, first_to_as_of))
    chances = x + MODELS[fit.model]
    log_odds = (np.log(fit.a) - np.log(np.maximum(fit.b + (chances - 1), 1e-12))
                + (fit.r + x) * (np.log(fit.alpha + age) - np.log(fit.alpha + t_x)))
    log_odds = np.clip(log_odds, -LOG_ODDS_LIMIT, LOG_ODDS_LIMIT)
    return np.where(chances > 0, 1.0 - 1.0 / (1.0 + np.exp(log_odds)), 0.0)


def _no_separation(fit: ChurnFit, x: np.ndarray, t_x: np.ndarray, age: np.ndarray, weight: np.ndarray) -> str:
    """A degenerate fit's reason when it gives long-lapsed customers no higher churn than recent ones, else "".

    The typical gap is the customer-weighted median of t_x / x over repeat buyers (days between purchase days).
    Only customers the model lets leave are compared: plain BG/NBD's one-time buyers have P(alive) = 1 by
    construction, which says nothing about the fit.
    """
    repeat = x > 0
    gaps = t_x[repeat] / x[repeat]
    order = np.argsort(gaps, kind="stable")
    cumulative = np.cumsum(weight[repeat][order])
    typical_gap = max(float(gaps[order][np.searchsorted(cumulative, cumulative[-1] / 2)]), 1.0)
    silent = age - t_x
    can_leave = x + MODELS[fit.model] > 0
    recent, lapsed = can_leave & (silent <= typical_gap), can_leave & (silent > LAPSED_GAPS * typical_gap)
    if min(weight[recent].sum(), weight[lapsed].sum()) < SEPARATION_MIN_CUSTOMERS:
        return ""
    churn = churn_probabilities(fit, x, t_x, age)
    recent_mean, lapsed_mean = (float(np.average(churn[group], weights=weight[group])) for group in (recent, lapsed))
    if lapsed_mean - recent_mean >= MIN_SEPARATION:
        return ""
    return (f"degenerate fit (r={fit.r:.3g}, alpha={fit.alpha:.3g}, a={fit.a:.3g}, b={fit.b:.3g}): customers silent "
            f"for more than {LAPSED_GAPS}x the typical {typical_gap:.3g} days between purchases get a mean churn "
            f"probability of {lapsed_mean:.2g}, recent ones {recent_mean:.2g}; it must be at least "
            f"{MIN_SEPARATION} higher to tell who left")


def customer_churn(customers: ir.Table, summary: ir.Table, fit: ChurnFit) -> ir.Table:
    """One row per customer: the model's inputs, P(alive), churn probability (NULL unless estimated), status."""
    rows = customers.select("customer_id").left_join(summary, "customer_id").select(
        "customer_id", summary.repeat_purchases, summary.first_to_last_days, summary.first_to_as_of_days)
    bought = rows.repeat_purchases.notnull()
    if fit.estimated:
        r, alpha, a, b = (ibis.literal(value, "float64") for value in (fit.r, fit.alpha, fit.a, fit.b))
        x = rows.repeat_purchases.cast("float64")
        chances = x + MODELS[fit.model]
        # log of a / (b + n - 1) · ((α + T) / (α + t_x))^(r + x). n - 1 is summed first: b can be tiny
        # (1e-8), and (b + n) - 1 would cancel its digits away. The guard only matters where n = 0.
        log_odds = (a.ln() - ibis.greatest(b + (chances - 1), 1e-12).ln()
                    + (r + x) * ((alpha + rows.first_to_as_of_days).ln() - (alpha + rows.first_to_last_days).ln()))
        log_odds = ibis.greatest(ibis.least(log_odds, LOG_ODDS_LIMIT), -LOG_ODDS_LIMIT)
        p_alive = ibis.cases((~bought, ibis.null("float64")), (chances > 0, 1.0 / (1.0 + log_odds.exp())),
                             else_=ibis.literal(1.0, "float64"))
    else:
        p_alive = ibis.null("float64")
    return rows.mutate(p_alive=p_alive, churn_probability=1.0 - p_alive,
                       churn_status=ibis.ifelse(bought, fit.status, NO_PURCHASE))


def as_of_day(backend: Backend, as_of: dt.date | None) -> dt.date | None:
    """The as-of date given, or the last staged sale day (what customer_rfm measures recency to)."""
    if as_of:
        return as_of
    headers = staging_table("store_sales_header")
    return backend.fetch_dicts(headers.aggregate(day=headers.transaction_date.max().date()))[0]["day"]


#: A stored fit younger than this many days of data (its as-of date to today's) is reused; `--refit` forces a fit.
REFIT_AFTER_DAYS = 7


def _reusable(fit: ChurnFit | None, fitted_as_of: dt.date | None, day: dt.date | None, model: str) -> bool:
    """Whether the stored fit may score today's customers: estimated, same model, under REFIT_AFTER_DAYS old."""
    if fit is None or not fit.estimated or fit.model != model or fitted_as_of is None or day is None:
        return False
    return 0 <= (day - fitted_as_of).days < REFIT_AFTER_DAYS


def run_churn(backend: Backend, *, as_of: dt.date | None = None, model: str = DEFAULT_MODEL,
              refit: bool = False) -> ChurnFit:
    """Score every customer's churn probability into analytics.customer_churn; returns the fit used.

    The parameters are fitted again (analytics.churn_model replaced) with `refit`, or when the stored fit is older
    than REFIT_AFTER_DAYS days of data, of another model or not estimated; otherwise the stored parameters score
    today's inputs (the fit is the one costly step, and a week of data barely moves it).
    """
    with backend.transaction():
        update_purchases(backend)
    day = as_of_day(backend, as_of)
    customers = staging_table("customer_details")
    opening = OPENING if "last_purchase_date" in backend.table_columns("loyalty", "opening_balances") else None
    with contextlib.ExitStack() as scratch:
        # MariaDB joins derived tables by scanning one for every row of the other: the summary at 200k line items
        # took 197 s, joining 116k recorded days to 61k staged ones twice over in its full-join emulation, whose
        # NOT EXISTS then scanned the 26k customers' spans once per customer. There each piece is an indexed table.
        store = indexed_store(backend, scratch)
        # Every staged day counts when the as-of date is the last one (the default): the kept per-customer spans serve.
        summary = purchase_summary(staging_table("store_sales_header"), DAILY, customers, as_of=day, opening=opening,
                                   staged=PURCHASES if as_of is None else None,
                                   exists_per_row=backend.capabilities.joins_exists_per_row, store=store)
        return _score(backend, customers, store("rf_churn_summary", summary, ("customer_id",)), day, model, refit)


def _score(backend: Backend, customers: ir.Table, summary: ir.Table, day: dt.date | None, model: str,
           refit: bool) -> ChurnFit:
    """Fit (or reuse the stored fit) and write analytics.customer_churn from `summary`."""
    stored, fitted_as_of = _stored_model(backend)
    if not refit and _reusable(stored, fitted_as_of, day, model):
        with backend.transaction():
            backend.replace_table("analytics", "customer_churn", customer_churn(customers, summary, stored))
        return stored
    counts = backend.fetch_dicts(summary_counts(summary))
    fit = fit_parameters(*(np.array([row[name] for row in counts], dtype=float) for name in (
        "repeat_purchases", "first_to_last_days", "first_to_as_of_days", "customers")), model=model)
    with backend.transaction():
        _write_model(backend, fit, day)
        backend.replace_table("analytics", "customer_churn", customer_churn(customers, summary, fit))
    return fit


def _write_model(backend: Backend, fit: ChurnFit, as_of: dt.date | None) -> None:
    """Replace analytics.churn_model with this fit's one row."""
    backend.create_table(MODEL)
    backend.append_values(MODEL.table(), [(fit.model, fit.status, fit.customers, fit.repeat_buyers, fit.history_days,
                                           fit.r, fit.alpha, fit.a, fit.b, fit.log_likelihood, as_of, NOW)])


def stored_fit(backend: Backend) -> ChurnFit | None:
    """The fit the last run stored in analytics.churn_model, None before the first run."""
    return _stored_model(backend)[0]


def _stored_model(backend: Backend) -> tuple[ChurnFit | None, dt.date | None]:
    """The stored fit and the as-of date it was fitted to, (None, None) before the first run."""
    if not backend.has_table("analytics", "churn_model"):
        return None, None
    rows = backend.fetch_dicts("SELECT * FROM analytics.churn_model")
    if not rows:
        return None, None
    day = rows[0]["as_of"]
    day = day if isinstance(day, dt.date) or day is None else dt.date.fromisoformat(str(day)[:10])
    return ChurnFit(**{name: rows[0][name] for name in ChurnFit.__dataclass_fields__}), day
