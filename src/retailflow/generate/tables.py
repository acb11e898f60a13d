"""The day files' tables in the contract's columns, every value as text."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from retailflow.generate import columns
from retailflow.generate.returns import RETURN_KINDS
from retailflow.generate.sales import DaySales

HEADER_COLUMNS = ("transaction_id", "customer_id", "store_id", "transaction_date", "total_amount", "transaction_type",
                  "original_transaction_id")
LINE_COLUMNS = ("line_item_id", "transaction_id", "product_id", "promotion_id", "quantity", "line_item_amount")
LOST_DEMAND_SCHEMA = pa.schema([("snapshot_date", pa.string()), ("store_id", pa.string()), ("product_id", pa.string()),
                                ("unmet_units", pa.string()), ("whole_day", pa.bool_())])
RETURNS_SCHEMA = pa.schema([("transaction_id", pa.string()), ("original_transaction_id", pa.string()),
                            ("customer_id", pa.string()), ("kind", pa.string()), ("return_date", pa.string())])
TRANSACTION_TYPES = pa.array(["sale", "return"])


def header_table(transaction_ids: pa.Array, customer_ids: pa.Array, store_ids: pa.Array, dates: pa.Array,
                 total_cents: np.ndarray, types: pa.Array, original_ids: pa.Array) -> pa.Table:
    """One row per sales transaction (store_sales_header)."""
    return pa.Table.from_arrays([transaction_ids, customer_ids, store_ids, dates, columns.money(total_cents), types,
                                 original_ids], names=HEADER_COLUMNS)


def line_table(line_numbers: np.ndarray, transaction_ids: pa.Array, product_ids: pa.Array, promotion_ids: pa.Array,
               quantity: np.ndarray, cents: np.ndarray) -> pa.Table:
    """One row per sales line (store_sales_line_items)."""
    return pa.Table.from_arrays([columns.integers(line_numbers), transaction_ids, product_ids, promotion_ids,
                                 columns.integers(quantity), columns.money(cents)], names=LINE_COLUMNS)


class DayTables:
    """Formats a simulated day's clean rows; the store × product grid of the inventory is formatted once."""

    def __init__(self, ids: dict[str, pa.Array], txn_width: int) -> None:
        self.ids, self.txn_width = ids, txn_width
        stores, products = len(ids["stores"]), len(ids["products"])
        self.grid_stores = columns.pick(np.repeat(np.arange(stores), products), ids["stores"])
        self.grid_products = columns.pick(np.tile(np.arange(products), stores), ids["products"])

    def transaction_ids(self, numbers: np.ndarray) -> pa.Array:
        return columns.numbered("TXN", numbers, self.txn_width)

    def original_ids(self, original: np.ndarray) -> pa.Array:
        """The ids of the sales returns refer to; NULL for a sale (number 0)."""
        is_return = original > 0
        if not is_return.any():
            return pa.nulls(len(original), pa.string())
        return pc.replace_with_mask(pa.nulls(len(original), pa.string()), pa.array(is_return),
                                    self.transaction_ids(original[is_return]))

    def headers(self, sales: DaySales, rows: np.ndarray | slice = slice(None)) -> pa.Table:
        """Header rows of the day's transactions (or of some of them)."""
        original = sales.txn_original[rows]
        return header_table(self.transaction_ids(sales.txn_number[rows]),
                            columns.pick(sales.txn_customer[rows], self.ids["customers"]),
                            columns.pick(sales.txn_store[rows], self.ids["stores"]),
                            columns.timestamps(sales.day, sales.txn_seconds[rows]), sales.txn_total_cents[rows],
                            columns.pick((original > 0).astype(np.int64), TRANSACTION_TYPES),
                            self.original_ids(original))

    def header_file(self, sales: DaySales, noisy: list[pa.Table]) -> pa.Table:
        """The day's header rows, then noisy ones (planted copies, duplicates)."""
        return pa.concat_tables([self.headers(sales), *noisy])

    def line_file(self, sales: DaySales, noisy: pa.Table) -> pa.Table:
        """The day's line items, then the planted ones."""
        clean = line_table(sales.line_number, self.transaction_ids(sales.txn_number).take(sales.line_txn),
                           columns.pick(sales.line_product, self.ids["products"]),
                           columns.pick(sales.line_promotion, self.ids["promotions"]),
                           sales.line_quantity, sales.line_cents)
        return pa.concat_tables([clean, noisy])

    def inventory(self, sales: DaySales) -> pa.Table:
        """One row per store, product and day: the opening stock (inventory_daily)."""
        return pa.table({
            "snapshot_date": columns.constant(sales.day.isoformat(), len(self.grid_stores)),
            "store_id": self.grid_stores, "product_id": self.grid_products,
            "stock_on_hand": columns.integers(sales.opening_stock.ravel()),
        })

    def returns(self, sales: DaySales) -> pa.Table:
        """Truth: one row per return transaction of the day."""
        rows = np.flatnonzero(sales.txn_original > 0)
        # One formatting call for both id columns: on a few returns a day, the call is most of the cost.
        ids = self.transaction_ids(np.concatenate([sales.txn_number[rows], sales.txn_original[rows]]))
        return pa.Table.from_arrays([
            ids.slice(0, len(rows)), ids.slice(len(rows)),
            columns.pick(sales.txn_customer[rows], self.ids["customers"]),
            columns.pick(sales.txn_return_kind[rows], pa.array(RETURN_KINDS)),
            columns.constant(sales.day.isoformat(), len(rows)),
        ], schema=RETURNS_SCHEMA)

    def lost_demand(self, sales: DaySales) -> pa.Table:
        """Truth: one row per store, product and day with unmet demand."""
        unmet = np.flatnonzero(sales.unmet_units.ravel())
        return pa.Table.from_arrays([
            columns.constant(sales.day.isoformat(), len(unmet)), self.grid_stores.take(unmet),
            self.grid_products.take(unmet), columns.integers(sales.unmet_units.ravel()[unmet]),
            pa.array(sales.opening_stock.ravel()[unmet] == 0),
        ], schema=LOST_DEMAND_SCHEMA)
