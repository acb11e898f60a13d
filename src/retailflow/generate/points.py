"""Each loyalty customer's net points, as the pipeline books them under the `best` policy: the truth of points.csv.

A rule applies to a transaction when its total reaches the rule's threshold, its weekday is one the
rule names (`valid_days` read as the pipeline reads it: the day's three-letter name found in the
lower-cased text; empty = every day), its day is within start_date/end_date and, for a category
rule, its basket has a line of that category. A purchase (total above 0, customer known) earns
floor(total × the highest applicable rate) plus the largest applicable bonus. A return (total below
0) of a sale that earned (customer known, total above 0) judges the sale again on the sale's day and
basket at its net total before and after this return (earlier returns of the sale deducted, by time
then number): the customer of the sale loses the difference, whoever returns it (a card or none). A
net total of 0 or less earns nothing (a full return takes every point back, threshold-0 bonuses
included). A return of a sale that earned nothing (an anonymous one) takes nothing back; a return
naming no sale loses, for its own customer, floor(|total| × the highest rate applicable on its own
day and basket at |total|), no bonus. Anonymous transactions earn nothing. Money is integer cents
and rates integer ten-thousandths, so every floor is exact.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields
from decimal import Decimal

import numpy as np
import pyarrow as pa

from retailflow.generate import columns
from retailflow.generate.sales import DaySales

#: Weekday names as the pipeline matches them against valid_days, Monday first (date.weekday()).
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: Rates are kept in ten-thousandths (the contract's rates have at most 4 decimals), money in cents:
#: cents × rate / CENT_RATE_UNIT is the amount × the rate.
RATE_SCALE = 10_000
CENT_RATE_UNIT = 100 * RATE_SCALE
#: Below any rate or bonus: what the maximum over a row sees where a rule does not apply.
NOT_APPLIED = np.iinfo(np.int64).min


def _scaled(text: str, scale: int) -> int:
    """A decimal text × scale as an exact integer."""
    value = Decimal(text) * scale
    if value != value.to_integral_value():
        raise ValueError(f"{text} has more than {len(str(scale)) - 1} decimals")
    return int(value)


@dataclass(frozen=True)
class LoyaltyRules:
    """The earning rules in integers (rate in ten-thousandths, threshold in cents, bonus points) with their
    conditions, one entry per rule."""

    rate: np.ndarray
    threshold: np.ndarray
    bonus: np.ndarray
    valid_days: list[str | None]
    start: list[dt.date | None]
    end: list[dt.date | None]
    category: list[str | None]

    @classmethod
    def from_table(cls, rules: pa.Table) -> "LoyaltyRules":
        """The rules of a loyalty_rules table in the contract's text columns."""
        rows = rules.to_pylist()

        def date(text: str | None) -> dt.date | None:
            return dt.date.fromisoformat(text) if text else None

        return cls(np.array([_scaled(row["points_per_unit_spend"], RATE_SCALE) for row in rows], dtype=np.int64),
                   np.array([_scaled(row["min_spend_threshold"], 100) for row in rows], dtype=np.int64),
                   np.array([int(row["bonus_points"]) for row in rows], dtype=np.int64),
                   [row.get("valid_days") or None for row in rows], [date(row.get("start_date")) for row in rows],
                   [date(row.get("end_date")) for row in rows],
                   [row.get("applicable_category") or None for row in rows])

    def on_day(self, day: dt.date) -> np.ndarray:
        """Per rule: whether its weekday and period conditions hold on `day`."""
        weekday = WEEKDAYS[day.weekday()]
        return np.array([(days is None or weekday in days.lower()) and (start is None or day >= start)
                         and (end is None or day <= end)
                         for days, start, end in zip(self.valid_days, self.start, self.end)], dtype=bool)

    def points(self, total_cents: np.ndarray, eligible: np.ndarray, with_bonus: bool = True) -> np.ndarray:
        """Points of transactions of these totals (cents ≥ 0) whose rules' conditions other than the threshold
        hold where `eligible` (transactions × rules): the best rate's base, plus the largest bonus."""
        applies = eligible & (total_cents[:, None] >= self.threshold)
        any_rule = applies.any(axis=1)
        rate = np.where(any_rule, np.where(applies, self.rate, NOT_APPLIED).max(axis=1, initial=NOT_APPLIED), 0)
        points = total_cents * rate // CENT_RATE_UNIT
        if with_bonus:
            points += np.where(any_rule, np.where(applies, self.bonus, NOT_APPLIED).max(axis=1, initial=NOT_APPLIED), 0)
        return points


@dataclass
class _OpenSales:
    """Sales a later return may still refer to (purchases of known customers), numbers ascending."""

    number: np.ndarray
    customer: np.ndarray
    total_cents: np.ndarray
    returned_cents: np.ndarray  # the sum of the totals (negative) of the returns of it so far
    eligible: np.ndarray  # sales × rules: conditions other than the threshold, on the sale's day and basket

    def take(self, rows: np.ndarray) -> "_OpenSales":
        return _OpenSales(*(getattr(self, field.name)[rows] for field in fields(self)))

    def extended(self, other: "_OpenSales") -> "_OpenSales":
        return _OpenSales(*(np.concatenate([getattr(self, field.name), getattr(other, field.name)])
                            for field in fields(self)))

    def find(self, numbers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each number's row here, and whether it is here at all."""
        rows = np.minimum(np.searchsorted(self.number, numbers), max(len(self.number) - 1, 0))
        found = self.number[rows] == numbers if len(self.number) else np.zeros(len(numbers), dtype=bool)
        return rows, found


class PointsTruth:
    """Accumulates each customer's net points day by day, keeping only the sales later returns will refer to."""

    def __init__(self, rules: LoyaltyRules, product_category: np.ndarray, start: dt.date, customers: int) -> None:
        self.rules, self.start = rules, start
        # Per category rule, which products count for it (a category no product has: none).
        self.rule_products = {index: product_category == category for index, category in enumerate(rules.category)
                              if category is not None}
        self.points = np.zeros(customers, dtype=np.int64)
        rule_count = len(rules.rate)
        self.open = _OpenSales(*(np.zeros(0, dtype=np.int64) for _ in range(4)),
                               np.zeros((0, rule_count), dtype=bool))

    def _eligible(self, sales: DaySales, day: dt.date) -> np.ndarray:
        """Transactions × rules: whether every condition but the threshold holds on the day and own basket."""
        txns = len(sales.txn_number)
        eligible = np.repeat(self.rules.on_day(day)[None, :], txns, axis=0)
        for rule, products in self.rule_products.items():
            eligible[:, rule] &= np.bincount(sales.line_txn[products[sales.line_product]], minlength=txns) > 0
        return eligible

    def _credit(self, customers: np.ndarray, points: np.ndarray) -> None:
        self.points += np.bincount(customers, weights=points, minlength=len(self.points)).astype(np.int64)

    def add(self, sales: DaySales, day_index: int, pending_sales: np.ndarray) -> None:
        """Count one simulated day; afterwards keep only the open sales numbered in `pending_sales` (those returns
        not made yet refer to)."""
        rules, total = self.rules, sales.txn_total_cents
        eligible = self._eligible(sales, self.start + dt.timedelta(days=day_index))
        identified = sales.txn_customer >= 0
        bought = np.flatnonzero(identified & (total > 0))
        self._credit(sales.txn_customer[bought], rules.points(total[bought], eligible[bought]))
        # Today's purchases first: a same-day cancellation refers to one of them.
        self.open = self.open.extended(_OpenSales(sales.txn_number[bought], sales.txn_customer[bought], total[bought],
                                                  np.zeros(len(bought), dtype=np.int64), eligible[bought]))
        returns = np.flatnonzero(total < 0)
        rows, known = self.open.find(sales.txn_original[returns])
        self._claw_back(sales, returns[known], rows[known])
        # A return naming a sale that earned nothing (anonymous) takes nothing back; one naming none, base points.
        unlinked = returns[~known & identified[returns] & (sales.txn_original[returns] <= 0)]
        lost = rules.points(-total[unlinked], eligible[unlinked], with_bonus=False)
        self._credit(sales.txn_customer[unlinked], -lost)
        self.open = self.open.take(np.flatnonzero(np.isin(self.open.number, pending_sales)))

    def _claw_back(self, sales: DaySales, returns: np.ndarray, sale_rows: np.ndarray) -> None:
        """Returns of open sales: the difference of the sale's points at its net before and after each, in order.

        Every return counts in its sale's net and changes the sale's customer's points, with a card or without
        (as in the pipeline)."""
        order = np.lexsort((sales.txn_number[returns], sales.txn_seconds[returns], sale_rows))
        returns, sale_rows = returns[order], sale_rows[order]
        amounts = sales.txn_total_cents[returns]
        running = np.cumsum(amounts)
        first = np.flatnonzero(np.r_[len(sale_rows) > 0, sale_rows[1:] != sale_rows[:-1]])
        counts = np.diff(np.r_[first, len(sale_rows)])
        so_far = running - np.repeat(running[first] - amounts[first], counts)
        open_sales = self.open
        net_after = open_sales.total_cents[sale_rows] + open_sales.returned_cents[sale_rows] + so_far
        net_before = net_after - amounts
        eligible = open_sales.eligible[sale_rows]
        change = self._earned_at(net_after, eligible) - self._earned_at(net_before, eligible)
        self._credit(open_sales.customer[sale_rows], change)
        open_sales.returned_cents += np.bincount(sale_rows, weights=amounts,
                                                 minlength=len(open_sales.number)).astype(np.int64)

    def _earned_at(self, total_cents: np.ndarray, eligible: np.ndarray) -> np.ndarray:
        """What a sale earns at a net total: nothing at 0 or less (no sale of 0 earns)."""
        return np.where(total_cents > 0, self.rules.points(np.maximum(total_cents, 0), eligible), 0)

    def table(self, customer_ids: pa.Array, rows: slice) -> pa.Table:
        """points.csv rows of the customers in `rows`: customer_id, earned_points."""
        return pa.table({"customer_id": customer_ids[rows], "earned_points": columns.integers(self.points[rows])})
