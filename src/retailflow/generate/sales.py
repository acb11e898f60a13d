"""Day-by-day simulation of baskets, promotions and store inventory (vectorised over rows).

Demand: each customer buys on a day with a Poisson rate (their archetype × weekday × a mild
trend); a basket has 1-8 lines, products drawn by Zipf-like popularity, quantities mostly 1-3.
Promotions: if several promotions cover a category on a day, the one with the largest discount
applies (ties: lowest id) and only its uplift: each line of a promoted category brings on
average `uplift` extra lines of that category, so the category's units rise by that factor
while other categories are untouched. Inventory: the snapshot is the stock at opening, after
overnight deliveries; sales are capped at the stock on hand in time order, the rest is unmet
demand (truth). An order-up-to policy with random lead times replenishes, so stock-outs happen.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from retailflow.generate.masters import Masters
from retailflow.generate.options import GeneratorOptions

#: Relative demand by weekday, Monday first: weekends peak.
WEEKDAY_FACTOR = np.array([0.90, 0.88, 0.93, 0.98, 1.12, 1.38, 1.26])
TREND_PER_DAY = 0.0005
OPEN_SECONDS, CLOSE_SECONDS = 8 * 3600, 21 * 3600


@dataclass
class DaySales:
    """One simulated day: transactions, their lines, the opening stock and the unmet demand."""

    day: dt.date
    txn_number: np.ndarray
    txn_customer: np.ndarray
    txn_store: np.ndarray
    txn_seconds: np.ndarray
    txn_total_cents: np.ndarray
    line_number: np.ndarray
    line_txn: np.ndarray  # index into the day's transactions
    line_product: np.ndarray
    line_promotion: np.ndarray  # -1 when not promoted
    line_quantity: np.ndarray
    line_cents: np.ndarray
    opening_stock: np.ndarray | None  # stores × products
    unmet_units: np.ndarray | None  # stores × products
    promoted_categories: dict[str, int]


class Simulator:
    """Carries stock and id counters from day to day."""

    def __init__(self, options: GeneratorOptions, masters: Masters, rng: np.random.Generator) -> None:
        self.options, self.masters, self.rng = options, masters, rng
        self.categories = sorted(set(masters.product_category))
        self.product_category_index = np.array([self.categories.index(c) for c in masters.product_category])
        self.products_by_category = [np.flatnonzero(self.product_category_index == c) for c in range(len(self.categories))]
        self.next_txn, self.next_line = 1, 1
        stores, products = len(masters.store_weight), len(masters.product_weight)
        # Expected units per store-product-day under normal trading drive the order-up-to policy.
        home = np.bincount(masters.customer_store, weights=masters.customer_rate, minlength=stores)
        store_share = 0.85 * home / max(home.sum(), 1e-9) + 0.15 * masters.store_weight
        daily = masters.customer_rate.sum() * 2.3 * 1.4
        expected = daily * np.outer(store_share, masters.product_weight)
        self.reorder_point = np.ceil(expected * 1.5).astype(np.int64) + 1
        self.order_up_to = np.ceil(expected * 5.0).astype(np.int64) + 2
        self.stock = np.floor(self.order_up_to * rng.uniform(0.6, 1.0, (stores, products))).astype(np.int64)
        self.on_order = np.zeros((stores, products), dtype=np.int64)
        self.arrival_day = np.full((stores, products), -1, dtype=np.int64)

    def _promotions_on(self, day_index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per category: the applying promotion index (-1 none), its discount and its uplift."""
        masters = self.masters
        promotion = np.full(len(self.categories), -1)
        for index in np.argsort(-masters.promotion_discount, kind="stable"):
            if not masters.promotion_start[index] <= day_index <= masters.promotion_end[index]:
                continue
            category = masters.promotion_category[index]
            covered = range(len(self.categories)) if category == "ALL" else [self.categories.index(category)]
            for covered_index in covered:
                if promotion[covered_index] < 0:
                    promotion[covered_index] = index
        discount = np.where(promotion >= 0, masters.promotion_discount[promotion], 0.0)
        uplift = np.where(promotion >= 0, masters.promotion_uplift[promotion], 0.0)
        return promotion, discount, uplift

    def simulate(self, day_index: int) -> DaySales:
        options, masters, rng = self.options, self.masters, self.rng
        day = options.start + dt.timedelta(days=day_index)
        factor = WEEKDAY_FACTOR[day.weekday()] * (1.0 + TREND_PER_DAY * day_index)

        # Transactions: customers buying today, mostly at their home store.
        counts = rng.poisson(masters.customer_rate * factor)
        customer = np.repeat(np.arange(len(counts)), counts)
        elsewhere = rng.random(len(customer)) < 0.15
        store = np.where(elsewhere, rng.choice(len(masters.store_weight), len(customer), p=masters.store_weight),
                         masters.customer_store[customer])
        seconds = rng.integers(OPEN_SECONDS, CLOSE_SECONDS, len(customer))

        # Lines: base basket, then the promotions' extra lines in promoted categories.
        lines_per_txn = np.minimum(1 + rng.poisson(1.1, len(customer)), 8)
        line_txn = np.repeat(np.arange(len(customer)), lines_per_txn)
        line_product = rng.choice(len(masters.product_weight), len(line_txn), p=masters.product_weight)
        promotion, discount, uplift = self._promotions_on(day_index)
        extra = rng.poisson(uplift[self.product_category_index[line_product]])
        extra_txn = np.repeat(line_txn, extra)
        extra_category = np.repeat(self.product_category_index[line_product], extra)
        extra_product = np.empty(len(extra_txn), dtype=np.int64)
        for category, members in enumerate(self.products_by_category):
            chosen = extra_category == category
            if chosen.any():
                weights = masters.product_weight[members] / masters.product_weight[members].sum()
                extra_product[chosen] = rng.choice(members, int(chosen.sum()), p=weights)
        line_txn = np.concatenate([line_txn, extra_txn])
        line_product = np.concatenate([line_product, extra_product])
        quantity = np.minimum(1 + rng.poisson(0.45, len(line_txn)), 6)

        # Inventory: deliveries arrive overnight; the snapshot is the opening stock.
        arriving = self.arrival_day == day_index
        self.stock[arriving] += self.on_order[arriving]
        self.on_order[arriving] = 0
        self.arrival_day[arriving] = -1
        opening = self.stock.copy()
        line_store = store[line_txn]
        order = np.lexsort((seconds[line_txn], line_product, line_store))
        group = line_store[order] * len(masters.product_weight) + line_product[order]
        cumulative = np.cumsum(quantity[order])
        starts = np.r_[0, np.flatnonzero(np.diff(group)) + 1]
        before = cumulative - quantity[order]
        group_start = np.repeat(before[starts], np.diff(np.r_[starts, len(order)]))
        taken_before = before - group_start
        available = opening.ravel()[group]
        sold_sorted = np.clip(available - taken_before, 0, quantity[order])
        sold = np.empty_like(quantity)
        sold[order] = sold_sorted
        demand = np.zeros(opening.size, dtype=np.int64)
        np.add.at(demand, line_store * len(masters.product_weight) + line_product, quantity)
        sold_units = np.zeros(opening.size, dtype=np.int64)
        np.add.at(sold_units, line_store * len(masters.product_weight) + line_product, sold)
        unmet = (demand - sold_units).reshape(opening.shape)
        self.stock -= sold_units.reshape(opening.shape)
        self._reorder(day_index, self._planned_uplift(day_index))

        kept = sold > 0
        line_txn, line_product, quantity = line_txn[kept], line_product[kept], sold[kept]
        line_promotion = promotion[self.product_category_index[line_product]]
        percent_off = np.round(discount[self.product_category_index[line_product]] * 100).astype(np.int64)
        price_cents = np.round(masters.product_price[line_product] * 100).astype(np.int64)
        line_cents = (price_cents * quantity * (100 - percent_off) + 50) // 100

        # Transactions whose every line was out of stock never happened.
        has_lines = np.bincount(line_txn, minlength=len(customer)) > 0
        new_index = np.cumsum(has_lines) - 1
        txn_order = np.argsort(seconds[has_lines], kind="stable")
        position = np.empty(int(has_lines.sum()), dtype=np.int64)
        position[txn_order] = np.arange(len(position))
        line_txn = position[new_index[line_txn]]
        line_order = np.lexsort((line_product, line_txn))
        txn_count = len(position)
        txn_customer = customer[has_lines][txn_order]
        txn_store = store[has_lines][txn_order]
        txn_seconds = seconds[has_lines][txn_order]
        line_txn, line_product = line_txn[line_order], line_product[line_order]
        line_promotion, quantity, line_cents = line_promotion[line_order], quantity[line_order], line_cents[line_order]
        totals = np.bincount(line_txn, weights=line_cents, minlength=txn_count).astype(np.int64)

        txn_number = np.arange(self.next_txn, self.next_txn + txn_count)
        line_number = np.arange(self.next_line, self.next_line + len(line_txn))
        self.next_txn += txn_count
        self.next_line += len(line_txn)
        promoted = {self.categories[c]: int(p) for c, p in enumerate(promotion) if p >= 0}
        return DaySales(day, txn_number, txn_customer, txn_store, txn_seconds, totals, line_number, line_txn,
                        line_product, line_promotion, quantity, line_cents, opening, unmet, promoted)

    def _planned_uplift(self, day_index: int) -> np.ndarray:
        """Per product: the largest promotion uplift planned over the next week (stores stock up for it)."""
        upcoming = [self._promotions_on(day)[2] for day in range(day_index + 1, day_index + 8)]
        return 1.0 + np.max(upcoming, axis=0)[self.product_category_index]

    def _reorder(self, day_index: int, planned: np.ndarray) -> None:
        """Order up to the target (raised for planned promotions) when stock falls to the reorder point."""
        position = self.stock + self.on_order
        reorder_point = np.ceil(self.reorder_point * planned).astype(np.int64)
        order_up_to = np.ceil(self.order_up_to * planned).astype(np.int64)
        needs = (position <= reorder_point) & (self.arrival_day < 0)
        lead = self.rng.integers(1, 6, self.stock.shape)
        self.on_order[needs] = (order_up_to - position)[needs]
        self.arrival_day[needs] = day_index + lead[needs]
