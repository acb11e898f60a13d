"""Returns and same-day cancellations of generated sales, and the baskets they are made of.

At each sale the generator decides whether it comes back: a transaction is cancelled the same day
(every line, full quantity) with probability return_rate × CANCELLED_SHARE; otherwise each line
is returned with probability return_rate × its category's multiple (CATEGORY_RETURN_MULTIPLE), in
full or in part (PARTIAL_UNITS_SHARE of the lines of more than one unit return 1 to n - 1 units),
all of a sale's returned lines in one return transaction RETURN_DELAY_DAYS (exponential) after it,
at the same store, by the same customer (anonymous when the sale was). A return due after the
window is never made. Returns are decided at the sale and held until due, so the buffer holds only
returns not due yet (a few days of them), never past sales. A returned line's amount is the sale
line's amount × returned units / sold units, rounded half up to the cent, negated; a returned
line carries no promotion.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from retailflow.generate.options import CLOSE_SECONDS, OPEN_SECONDS, GeneratorOptions

#: What a return is, in the truth (returns.csv): every line in full on the sale's day, every line in full later,
#: or some lines or units.
RETURN_KINDS = ("full_same_day", "full", "partial")
SALE = -1  # the return kind of a sale
FULL_SAME_DAY, FULL, PARTIAL = range(len(RETURN_KINDS))
#: A category's line return probability as a multiple of return_rate; the multiples average 1 over the categories.
#: Apparel (fit) and electronics (faults, remorse) come back most, consumables hardly ever.
CATEGORY_RETURN_MULTIPLE = {"Apparel": 2.6, "Electronics": 1.6, "Home": 1.0, "Sports": 1.0, "Toys": 0.8,
                            "Beauty": 0.4, "Books": 0.4, "Grocery": 0.2}
CANCELLED_SHARE = 0.1
#: Mean delay of a later return; with it about 96 % come back within 30 days.
RETURN_DELAY_DAYS = 9.0
MAX_RETURN_DELAY_DAYS = 90
PARTIAL_UNITS_SHARE = 0.4
#: A cancellation comes 1 to 60 minutes after its sale (at the latest at closing time).
CANCEL_AFTER_SECONDS = (60, 3600)


@dataclass
class Basket:
    """Transactions (not numbered yet) and their lines, lines grouped by transaction in ascending order."""

    customer: np.ndarray  # -1 = anonymous
    store: np.ndarray
    seconds: np.ndarray
    original: np.ndarray  # number of the sale a return refers to; 0 for a sale
    kind: np.ndarray  # SALE or an index into RETURN_KINDS
    line_txn: np.ndarray
    line_product: np.ndarray
    line_promotion: np.ndarray
    line_quantity: np.ndarray
    line_cents: np.ndarray

    @classmethod
    def empty(cls) -> "Basket":
        return cls(*(np.zeros(0, dtype=np.int64) for _ in fields(cls)))

    def take(self, txns: np.ndarray, lines: np.ndarray | None = None) -> "Basket":
        """The transactions `txns` (ascending) with all their lines, or only the `lines` given (ascending)."""
        if lines is None:
            chosen = np.zeros(len(self.customer), dtype=bool)
            chosen[txns] = True
            lines = np.flatnonzero(chosen[self.line_txn])
        line_txn = np.searchsorted(txns, self.line_txn[lines])
        return Basket(*(getattr(self, name)[txns] for name in _TXN_FIELDS), line_txn,
                      *(getattr(self, name)[lines] for name in _LINE_VALUES))

    @staticmethod
    def concatenated(baskets: list["Basket"]) -> "Basket":
        """The baskets one after the other."""
        offsets = np.cumsum([0, *(len(basket.customer) for basket in baskets[:-1])])
        joined = {name: np.concatenate([getattr(basket, name) for basket in baskets]) for name in _TXN_FIELDS}
        lines = {name: np.concatenate([getattr(basket, name) for basket in baskets]) for name in _LINE_VALUES}
        line_txn = np.concatenate([basket.line_txn + offset for basket, offset in zip(baskets, offsets)])
        return Basket(**joined, line_txn=line_txn, **lines)

    def in_time_order(self) -> tuple["Basket", np.ndarray]:
        """The transactions in time order, and each transaction's position in it."""
        # Ties keep the current order: a stable sort gives the same order on every platform.
        order = np.argsort(self.seconds, kind="stable")
        position = np.empty_like(order)
        position[order] = np.arange(len(order))
        line_txn = position[self.line_txn]
        line_order = np.argsort(line_txn, kind="stable")
        return Basket(*(getattr(self, name)[order] for name in _TXN_FIELDS), line_txn[line_order],
                      *(getattr(self, name)[line_order] for name in _LINE_VALUES)), position


# A basket's fields in their order: the transactions', then line_txn, then the lines' values.
_TXN_FIELDS = ("customer", "store", "seconds", "original", "kind")
_LINE_VALUES = ("line_product", "line_promotion", "line_quantity", "line_cents")


def returned_cents(cents: np.ndarray, units: np.ndarray, quantity: np.ndarray) -> np.ndarray:
    """The (negative) amount of `units` of a sale line of `quantity` units charged `cents` (cents ≥ 0): the
    pro-rata amount rounded half up to the cent."""
    return -((2 * cents * units + quantity) // (2 * quantity))


class Returns:
    """Decides which sales come back and when, and holds the later returns until their day."""

    def __init__(self, options: GeneratorOptions, product_categories: list[str], rng: np.random.Generator) -> None:
        self.rng, self.days = rng, options.days
        multiple = np.array([CATEGORY_RETURN_MULTIPLE.get(category, 1.0) for category in product_categories])
        self.line_rate = options.return_rate * multiple  # per product
        self.cancel_rate = options.return_rate * CANCELLED_SHARE
        self.held, self.held_due = Basket.empty(), np.zeros(0, dtype=np.int64)

    def cancellations(self, sales: Basket) -> tuple[Basket, np.ndarray]:
        """The day's same-day cancellations (original not numbered yet) and the mask of the sales they cancel."""
        count = len(sales.customer)
        cancelled = self.rng.random(count) < self.cancel_rate
        after = self.rng.integers(*CANCEL_AFTER_SECONDS, count)
        txns = np.flatnonzero(cancelled)
        basket = sales.take(txns)
        basket.seconds = np.minimum(basket.seconds + after[txns], CLOSE_SECONDS)
        basket.kind = np.full(len(txns), FULL_SAME_DAY)
        basket.line_promotion = np.full(len(basket.line_txn), -1)
        basket.line_quantity, basket.line_cents = -basket.line_quantity, -basket.line_cents
        return basket, cancelled

    def hold_later(self, sales: Basket, numbers: np.ndarray, eligible: np.ndarray, day_index: int) -> None:
        """Decide the later returns of the day's sales (numbered `numbers`; only `eligible` ones) and hold those
        due within the window."""
        rng, count, quantity = self.rng, len(sales.customer), sales.line_quantity
        line_draw = rng.random(len(quantity))
        whole = (rng.random(len(quantity)) >= PARTIAL_UNITS_SHARE) | (quantity == 1)
        some_units = rng.integers(1, np.maximum(quantity, 2))  # 1 .. quantity - 1
        delay = np.minimum(1 + np.floor(rng.exponential(RETURN_DELAY_DAYS, count)).astype(np.int64),
                           MAX_RETURN_DELAY_DAYS)
        seconds = rng.integers(OPEN_SECONDS, CLOSE_SECONDS, count)
        due = day_index + delay
        returned = (line_draw < self.line_rate[sales.line_product]) & (eligible & (due < self.days))[sales.line_txn]
        lines = np.flatnonzero(returned)
        txns = np.unique(sales.line_txn[lines])
        basket = sales.take(txns, lines)
        units = np.where(whole[lines], quantity[lines], some_units[lines])
        lines_returned_whole = np.bincount(basket.line_txn, weights=(units == quantity[lines]).astype(np.float64),
                                           minlength=len(txns))
        in_full = lines_returned_whole == np.bincount(sales.line_txn, minlength=count)[txns]
        basket.seconds, basket.original = seconds[txns], numbers[txns]
        basket.kind = np.where(in_full, FULL, PARTIAL)
        basket.line_promotion = np.full(len(lines), -1)
        basket.line_cents = returned_cents(basket.line_cents, units, quantity[lines])
        basket.line_quantity = -units
        self.held = Basket.concatenated([self.held, basket])
        self.held_due = np.concatenate([self.held_due, due[txns]])

    def pending_sales(self) -> np.ndarray:
        """The numbers of the sales the held returns refer to (ascending)."""
        return np.unique(self.held.original)

    def take_due(self, day_index: int) -> Basket:
        """The returns due on this day (taken out of the buffer)."""
        due_now = self.held_due == day_index
        today = self.held.take(np.flatnonzero(due_now))
        kept = np.flatnonzero(~due_now)
        self.held, self.held_due = self.held.take(kept), self.held_due[kept]
        return today
