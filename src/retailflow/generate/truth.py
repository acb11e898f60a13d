"""What the clean transactions add up to, accumulated day by day for the ground truth.

Clean transactions are the simulated ones: every planted problem is an extra copy under a new id
(or a second header of a clean transaction, rejected alone), so the validated data stages exactly
these. Returned figures are magnitudes: net = sold − returned.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from retailflow.generate import columns
from retailflow.generate.sales import DaySales


def _cents_to_text(cents: int) -> str:
    return columns.money(np.array([cents]))[0].as_py()


class SalesTruth:
    """Per product sold and returned units and cents, per customer net spend and purchases, and counts."""

    def __init__(self, products: int, customers: int) -> None:
        self.customers = customers
        self.sold_units, self.sold_cents = np.zeros(products, np.int64), np.zeros(products, np.int64)
        self.returned_units, self.returned_cents = np.zeros(products, np.int64), np.zeros(products, np.int64)
        self.customer_cents, self.purchases = np.zeros(customers, np.int64), np.zeros(customers, np.int64)
        self.last_purchase_day = np.full(customers, -1)
        self.last_day = -1  # the last day with a transaction: the as-of day of customer figures
        self.sales = self.returns = self.anonymous = 0

    def add(self, sales: DaySales, day_index: int) -> None:
        """Count one simulated day."""
        is_return = sales.txn_return_kind >= 0
        line_is_return = is_return[sales.line_txn]
        products = len(self.sold_units)
        for lines, units, cents in ((~line_is_return, self.sold_units, self.sold_cents),
                                    (line_is_return, self.returned_units, self.returned_cents)):
            product = sales.line_product[lines]
            units += _sums(product, np.abs(sales.line_quantity[lines]), products)
            cents += _sums(product, np.abs(sales.line_cents[lines]), products)
        identified = sales.txn_customer >= 0
        self.customer_cents += _sums(sales.txn_customer[identified], sales.txn_total_cents[identified], self.customers)
        # A purchase costs the customer something: a sale of free lines alone is no purchase (as in the pipeline).
        purchased = sales.txn_customer[identified & ~is_return & (sales.txn_total_cents > 0)]
        self.purchases += np.bincount(purchased, minlength=self.customers)
        self.last_purchase_day[purchased] = day_index
        self.sales += int((~is_return).sum())
        self.returns += int(is_return.sum())
        self.anonymous += int((~identified).sum())
        if len(is_return):
            self.last_day = day_index

    def products_table(self, product_ids: pa.Array) -> pa.Table:
        """sales.csv: one row per product (every product of the catalogue)."""
        return pa.table({
            "product_id": product_ids,
            "net_units": columns.integers(self.sold_units - self.returned_units),
            "net_revenue": columns.money(self.sold_cents - self.returned_cents),
            "sold_units": columns.integers(self.sold_units),
            "returned_units": columns.integers(self.returned_units),
            "returned_revenue": columns.money(self.returned_cents),
        })

    def manifest(self) -> dict:
        """The dataset's totals, money as exact text."""
        gross, returned = int(self.sold_cents.sum()), int(self.returned_cents.sum())
        transactions = self.sales + self.returns
        return {
            "gross_revenue": _cents_to_text(gross), "returned_revenue": _cents_to_text(returned),
            "net_revenue": _cents_to_text(gross - returned),
            "transactions": {"sales": self.sales, "returns": self.returns, "anonymous": self.anonymous},
            "anonymous_share": round(self.anonymous / transactions, 6) if transactions else 0.0,
        }


def _sums(keys: np.ndarray, values: np.ndarray, length: int) -> np.ndarray:
    """Integer sums of values by key 0..length-1 (float64 sums are exact: a day's sums stay far below 2**53)."""
    return np.bincount(keys, weights=values, minlength=length).astype(np.int64)
