"""Day-by-day simulation of baskets, promotions, returns and store inventory (vectorised over rows).

Demand: each customer buys on a day with a Poisson rate (their archetype × weekday × a mild
trend); a basket has 1-8 lines, products drawn by Zipf-like popularity, quantities mostly 1-3.
Promotions: if several promotions cover a category on a day, the one with the largest discount
applies (ties: lowest id) and only its uplift: each line of a promoted category brings on
average `uplift` extra lines of that category, so the category's units rise by that factor
while other categories are untouched. Inventory: the snapshot is the stock at opening, after
overnight deliveries; sales are capped at the stock on hand in time order, the rest is unmet
demand (truth). An order-up-to policy with random lead times replenishes, so stock-outs happen.
Each store has its share of sales made without a loyalty card (anonymous), and a few lines are
given free (amount 0). Returns (returns.py) come back to the store of the sale, by the sale's
customer, and are merged into their day in time order; returned goods do not go back on the
shelf (they go back to the supplier), so returns leave the stock and the unmet demand alone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from retailflow.generate.masters import Catalog
from retailflow.generate.options import CLOSE_SECONDS, OPEN_SECONDS, GeneratorOptions
from retailflow.generate.returns import SALE, Basket, Returns

#: Relative demand by weekday, Monday first: weekends peak.
WEEKDAY_FACTOR = np.array([0.90, 0.88, 0.93, 0.98, 1.12, 1.38, 1.26])
TREND_PER_DAY = 0.0005
ELSEWHERE_SHARE = 0.15  # transactions at a store other than the customer's home store
#: How far a store's anonymous share may be from the mean share (store formats differ).
ANONYMOUS_SPREAD = 0.20


@dataclass
class DaySales:
    """One simulated day: transactions (sales and returns) in time order, their lines, the opening stock and the
    unmet demand."""

    day: dt.date
    txn_number: np.ndarray
    txn_customer: np.ndarray  # -1 for an anonymous transaction
    txn_store: np.ndarray
    txn_seconds: np.ndarray
    txn_total_cents: np.ndarray
    txn_original: np.ndarray  # the number of the sale a return refers to; 0 for a sale
    txn_return_kind: np.ndarray  # index into returns.RETURN_KINDS; SALE (-1) for a sale
    line_number: np.ndarray
    line_txn: np.ndarray  # index into the day's transactions, ascending
    line_product: np.ndarray
    line_promotion: np.ndarray  # -1 when not promoted
    line_quantity: np.ndarray  # negative on a returned line
    line_cents: np.ndarray  # negative on a returned line, 0 on a free line
    opening_stock: np.ndarray  # stores × products
    unmet_units: np.ndarray  # stores × products


@dataclass
class Numbering:
    """The next transaction and line numbers, shared by clean and noisy rows so that no id repeats."""

    txn: int = 1
    line: int = 1

    def take(self, txns: int, lines: int) -> tuple[np.ndarray, np.ndarray]:
        """Consecutive numbers for this many transactions and lines."""
        txn_numbers, line_numbers = np.arange(self.txn, self.txn + txns), np.arange(self.line, self.line + lines)
        self.txn, self.line = self.txn + txns, self.line + lines
        return txn_numbers, line_numbers


class Categorical:
    """Independent draws of indices with probabilities proportional to non-negative weights (zero: never)."""

    def __init__(self, weights: np.ndarray) -> None:
        self.weights = weights
        cumulative = np.cumsum(weights, dtype=np.float64)
        self.cumulative = cumulative / cumulative[-1]  # ends at exactly 1

    def draw(self, rng: np.random.Generator, size: int) -> np.ndarray:
        # Both ways draw sorted indices, then shuffle them: counting per category is linear in the
        # draws, and searching sorted uniforms is several times faster than unsorted (locality).
        if size > 4 * len(self.weights):
            drawn = np.repeat(np.arange(len(self.weights)), rng.multinomial(size, self.weights / self.weights.sum()))
        else:
            drawn = np.searchsorted(self.cumulative, np.sort(rng.random(size)), side="right")
        return rng.permutation(drawn)


class Simulator:
    """Carries stock, the returns not due yet and the numbering from day to day."""

    def __init__(self, options: GeneratorOptions, catalog: Catalog, customer_rate: np.ndarray,
                 customer_store: np.ndarray, rng: np.random.Generator,
                 demand: Callable[[int], float] | None = None) -> None:
        self.options, self.catalog, self.rng = options, catalog, rng
        #: The day's demand relative to a normal one (a holiday's is lower); None: every day normal.
        self.demand = demand
        # Own streams for each behaviour, so that changing its rate leaves the baskets and the stock alone.
        self.anonymous_rng, self.free_rng, returns_rng = rng.spawn(3)
        self.rate, self.customer_store = float(customer_rate.sum()), customer_store
        self.categories = sorted(set(catalog.product_category))
        self.product_category_index = np.array([self.categories.index(c) for c in catalog.product_category])
        self.products_by_category = [np.flatnonzero(self.product_category_index == c) for c in range(len(self.categories))]
        self.category_products = [Categorical(catalog.product_weight[members]) for members in self.products_by_category]
        # A customer's daily purchases are Poisson: the day's total is Poisson and each purchase
        # belongs to a customer with probability proportional to their rate (the same distribution).
        self.customers = Categorical(customer_rate)
        self.stores = Categorical(catalog.store_weight)
        self.products = Categorical(catalog.product_weight)
        self.price_cents = np.round(catalog.product_price * 100).astype(np.int64)
        self.numbering = Numbering()
        stores, products = len(catalog.store_weight), len(catalog.product_weight)
        spread = min(ANONYMOUS_SPREAD, options.anonymous_share, 1 - options.anonymous_share)
        self.anonymous_share_by_store = options.anonymous_share + self.anonymous_rng.uniform(-spread, spread, stores)
        self.returns = Returns(options, [self.categories[c] for c in self.product_category_index], returns_rng)
        # Expected units per store-product-day under normal trading drive the order-up-to policy.
        home = np.bincount(customer_store, weights=customer_rate, minlength=stores)
        store_share = (1 - ELSEWHERE_SHARE) * home / max(home.sum(), 1e-9) + ELSEWHERE_SHARE * catalog.store_weight
        expected = self.rate * 2.3 * 1.4 * np.outer(store_share, catalog.product_weight)
        self.reorder_point = np.ceil(expected * 1.5).astype(np.int64) + 1
        self.order_up_to = np.ceil(expected * 5.0).astype(np.int64) + 2
        self.stock = np.floor(self.order_up_to * rng.uniform(0.6, 1.0, (stores, products))).astype(np.int64)
        self.on_order = np.zeros((stores, products), dtype=np.int64)
        self.arrival_day = np.full((stores, products), -1, dtype=np.int64)
        self._planned = None  # the last planned uplift by category, with the targets it gives
        # Per day (and a week beyond the window, for stocking up): promotion, discount and uplift by category.
        self.promotions_by_day = [self._promotions_on(day) for day in range(options.days + 7)]

    def _promotions_on(self, day_index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per category: the applying promotion index (-1 none), its discount and its uplift."""
        catalog = self.catalog
        promotion = np.full(len(self.categories), -1)
        for index in np.argsort(-catalog.promotion_discount, kind="stable") if self.options.promotions else ():
            if not catalog.promotion_start[index] <= day_index <= catalog.promotion_end[index]:
                continue
            category = catalog.promotion_category[index]
            covered = range(len(self.categories)) if category == "ALL" else [self.categories.index(category)]
            for covered_index in covered:
                if promotion[covered_index] < 0:
                    promotion[covered_index] = index
        discount = np.where(promotion >= 0, catalog.promotion_discount[promotion], 0.0)
        uplift = np.where(promotion >= 0, catalog.promotion_uplift[promotion], 0.0)
        return promotion, discount, uplift

    def simulate(self, day_index: int) -> DaySales:
        """The day's sales; the stock and the numbering move on to the next day."""
        options, rng = self.options, self.rng
        day = options.start + dt.timedelta(days=day_index)
        factor = WEEKDAY_FACTOR[day.weekday()] * (1.0 + TREND_PER_DAY * day_index)
        if self.demand is not None:
            factor *= self.demand(day_index)
        promotion, discount, uplift = self.promotions_by_day[day_index]

        # Transactions in time order: customers buying today, mostly at their home store.
        txn_count = rng.poisson(self.rate * factor)
        customer = self.customers.draw(rng, txn_count)
        store = self.customer_store[customer]
        elsewhere = np.flatnonzero(rng.random(txn_count) < ELSEWHERE_SHARE)
        store[elsewhere] = self.stores.draw(rng, len(elsewhere))
        seconds = np.sort(rng.integers(OPEN_SECONDS, CLOSE_SECONDS, txn_count))

        line_txn, line_product = self._baskets(txn_count, uplift)
        quantity = np.minimum(1 + rng.poisson(0.45, len(line_txn)), 6)
        sold, opening, unmet = self._sell(store[line_txn], line_product, quantity, day_index)

        kept = sold > 0
        line_txn, line_product, quantity = line_txn[kept], line_product[kept], sold[kept]
        category = self.product_category_index[line_product]
        percent_off = np.round(discount * 100).astype(np.int64)[category]
        line_cents = (self.price_cents[line_product] * quantity * (100 - percent_off) + 50) // 100

        # Transactions whose every line was out of stock never happened.
        has_lines = np.bincount(line_txn, minlength=txn_count) > 0
        line_txn = (np.cumsum(has_lines) - 1)[line_txn]
        txn_count = int(has_lines.sum())
        store = store[has_lines]
        anonymous = self.anonymous_rng.random(txn_count) < self.anonymous_share_by_store[store]
        line_cents[self.free_rng.random(len(line_cents)) < options.free_line_rate] = 0
        sales = Basket(np.where(anonymous, -1, customer[has_lines]), store, seconds[has_lines],
                       np.zeros(txn_count, dtype=np.int64), np.full(txn_count, SALE), line_txn, line_product,
                       promotion[category], quantity, line_cents)
        return self._with_returns(day, day_index, sales, opening, unmet)

    def _with_returns(self, day: dt.date, day_index: int, sales: Basket, opening: np.ndarray,
                      unmet: np.ndarray) -> DaySales:
        """The day's sales, the returns due today and today's same-day cancellations, numbered in time order."""
        due = self.returns.take_due(day_index)
        cancelled, is_cancelled = self.returns.cancellations(sales)
        day_txns, position = Basket.concatenated([sales, due, cancelled]).in_time_order()
        txn_number, line_number = self.numbering.take(len(day_txns.customer), len(day_txns.line_txn))
        # A cancellation's sale is numbered only now, with the rest of the day.
        sale_number = txn_number[position[:len(sales.customer)]]
        day_txns.original[position[len(sales.customer) + len(due.customer):]] = sale_number[is_cancelled]
        self.returns.hold_later(sales, sale_number, ~is_cancelled, day_index)
        totals = np.bincount(day_txns.line_txn, weights=day_txns.line_cents,
                             minlength=len(day_txns.customer)).astype(np.int64)
        return DaySales(day, txn_number, day_txns.customer, day_txns.store, day_txns.seconds, totals,
                        day_txns.original, day_txns.kind, line_number, day_txns.line_txn, day_txns.line_product,
                        day_txns.line_promotion, day_txns.line_quantity, day_txns.line_cents, opening, unmet)

    def _baskets(self, txn_count: int, uplift: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Lines (transaction, product) ordered by transaction then product: base basket plus promoted extras."""
        rng, products = self.rng, len(self.catalog.product_weight)
        lines_per_txn = np.minimum(1 + rng.poisson(1.1, txn_count), 8)
        line_txn = np.repeat(np.arange(txn_count), lines_per_txn)
        line_product = self.products.draw(rng, len(line_txn))
        line_category = self.product_category_index[line_product]
        extra = rng.poisson(uplift[line_category])
        extra_txn = np.repeat(line_txn, extra)
        extra_category = np.repeat(line_category, extra)
        extra_product = np.empty(len(extra_txn), dtype=np.int64)
        for category, members in enumerate(self.products_by_category):
            chosen = np.flatnonzero(extra_category == category)
            extra_product[chosen] = members[self.category_products[category].draw(rng, len(chosen))]
        # Sorting the values (not an argsort) gives the same order whatever the sort algorithm.
        key = np.sort(np.concatenate([line_txn, extra_txn]) * products + np.concatenate([line_product, extra_product]))
        return key // products, key % products

    def _sell(self, line_store: np.ndarray, line_product: np.ndarray, quantity: np.ndarray,
              day_index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Units sold per line (lines in time order, capped by the opening stock), the opening stock and unmet units."""
        arriving = np.flatnonzero(self.arrival_day == day_index)
        self.stock.flat[arriving] += self.on_order.flat[arriving]
        self.on_order.flat[arriving] = 0
        self.arrival_day.flat[arriving] = -1
        opening = self.stock.copy()
        cell = line_store * opening.shape[1] + line_product
        # Lines grouped by store-product, in time order within a group (a unique key: any sort agrees).
        order = np.argsort(cell * len(cell) + np.arange(len(cell)))
        cell_sorted, quantity_sorted = cell[order], quantity[order]
        before = np.cumsum(quantity_sorted) - quantity_sorted
        # A day may sell nothing (a few hundred line items over a month): no group starts then.
        starts = np.flatnonzero(np.r_[len(cell_sorted) > 0, np.diff(cell_sorted) != 0])
        taken_before = before - np.repeat(before[starts], np.diff(np.r_[starts, len(order)]))
        sold = np.empty_like(quantity)
        sold[order] = np.clip(opening.ravel()[cell_sorted] - taken_before, 0, quantity_sorted)
        demand = np.bincount(cell, weights=quantity, minlength=opening.size).astype(np.int64)
        sold_units = np.bincount(cell, weights=sold, minlength=opening.size).astype(np.int64)
        self.stock -= sold_units.reshape(opening.shape)
        self._reorder(day_index)
        return sold, opening, (demand - sold_units).reshape(opening.shape)

    def _targets(self, day_index: int) -> tuple[np.ndarray, np.ndarray]:
        """Reorder points and order-up-to levels, raised by the largest promotion uplift planned over the next week."""
        upcoming = np.max([uplift for _, _, uplift in self.promotions_by_day[day_index + 1:day_index + 8]], axis=0)
        if self._planned is None or not np.array_equal(self._planned[0], upcoming):
            planned = 1.0 + upcoming[self.product_category_index]
            self._planned = (upcoming, np.ceil(self.reorder_point * planned).astype(np.int64),
                             np.ceil(self.order_up_to * planned).astype(np.int64))
        return self._planned[1:]

    def _reorder(self, day_index: int) -> None:
        """Order up to the target when stock falls to the reorder point and nothing is on order (stores stock up)."""
        reorder_point, order_up_to = self._targets(day_index)
        position = self.stock + self.on_order
        needs = np.flatnonzero((position <= reorder_point) & (self.arrival_day < 0))
        lead = self.rng.integers(1, 6, len(needs))
        self.on_order.flat[needs] = order_up_to.flat[needs] - position.flat[needs]
        self.arrival_day.flat[needs] = day_index + lead
