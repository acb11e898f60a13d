"""Planted, labelled data-quality problems: extra noisy rows copied from clean ones, then broken.

Clean rows are never modified: every problem is an additional transaction (or line, or header
copy) so the clean data, the inventory and the ground truth stay exactly consistent, and no
return ever refers to a copy. A copy may be of a sale or of a return; each kind is an error on
either (a return, a free line, a 0 total and an anonymous sale are valid, so no kind relies on
them). Each affected transaction has exactly one kind; a line-level problem is on the copy's
first line.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from retailflow.generate import columns
from retailflow.generate.sales import DaySales, Numbering
from retailflow.generate.tables import DayTables, header_table, line_table

TRANSACTION_KINDS = (
    "missing_product_id", "unknown_product", "unknown_store", "unknown_customer", "amount_sign_mismatch",
    "zero_quantity", "invalid_date", "empty_date", "total_mismatch", "duplicate_transaction", "orphan_line",
    "multi_valued_product", "unknown_promotion",
)
LINE_KINDS = {"missing_product_id", "unknown_product", "amount_sign_mismatch", "zero_quantity",
              "multi_valued_product", "unknown_promotion"}
#: Kinds that need the promotion master (without it a promotion id cannot be checked).
PROMOTION_KINDS = {"unknown_promotion"}
LABEL_COLUMNS = ("entity", "key", "transaction_id", "kind", "severity")
KIND = {name: code for code, name in enumerate(TRANSACTION_KINDS)}


@dataclass
class Planted:
    """A day's noisy rows (all text) to append to its files, duplicate headers for a later file, and their labels."""

    headers: pa.Table
    lines: pa.Table
    duplicates: pa.Table
    labels: pa.Table


def labels(entity: str | pa.Array, key: pa.Array, transaction_id: pa.Array | None, kind: str | pa.Array,
           severity: str) -> pa.Table:
    """Truth rows (anomalies.csv); a string stands for the same value on every row."""
    count = len(key)
    transaction_id = pa.nulls(count, pa.string()) if transaction_id is None else transaction_id
    return pa.Table.from_arrays([columns.constant(value, count) if isinstance(value, str) else value
                                 for value in (entity, key, transaction_id, kind, severity)], names=LABEL_COLUMNS)


class Planter:
    """Plants problems into a sample of each day's transactions, rotating through the kinds across days.

    The number planted follows the rate exactly (to within one over the whole run), so that even
    a small dataset gets its share.
    """

    def __init__(self, rate: float, rng: np.random.Generator, ids: dict[str, pa.Array], numbering: Numbering,
                 tables: DayTables, promotions: bool = True) -> None:
        self.rate, self.rng, self.numbering, self.tables = rate, rng, numbering, tables
        self.kinds = np.array([KIND[kind] for kind in TRANSACTION_KINDS if promotions or kind not in PROMOTION_KINDS])
        self.next_kind = 0
        self.owed = 0.0  # problems due at the rate but not planted yet: fractions carry over to the next day
        products = ids["products"]
        following = products.take(pa.array((np.arange(len(products)) + 1) % len(products)))
        unknown = "P" + "9" * (len(products[0].as_py()) - 1) + "X"
        # Product texts by code: the ids, then "id,next id" (multi-valued, at + len(products)), then an unknown id.
        self.product_texts = pa.concat_arrays([products, pc.binary_join_element_wise(products, following, ","),
                                               pa.array([unknown])])
        self.promotion_texts = pa.concat_arrays([ids["promotions"], pa.array(["PR999"])])

    def plant(self, sales: DaySales) -> Planted:
        """Noisy copies of a sample of the day's transactions."""
        txn_count = len(sales.txn_number)
        self.owed += self.rate * txn_count
        count = min(int(self.owed), txn_count)
        self.owed -= count
        sources = self.rng.choice(txn_count, count, replace=False)
        # Kinds in rotation (continuing across days), so even a small dataset has every kind.
        kinds = self.kinds[(self.next_kind + np.arange(count)) % len(self.kinds)]
        self.next_kind += count
        duplicate = kinds == KIND["duplicate_transaction"]
        duplicates = self.tables.headers(sales, sources[duplicate])
        duplicate_ids = duplicates.column("transaction_id")
        sources, kinds = sources[~duplicate], kinds[~duplicate]

        txn_ids = self.tables.transaction_ids(self.numbering.take(len(sources), 0)[0])
        orphan = kinds == KIND["orphan_line"]
        line_txn_ids = _where(orphan, pc.binary_join_element_wise(txn_ids, "X", ""), txn_ids)  # matches no header
        lines, totals, first_line_ids = self._copy_lines(sales, sources, kinds, line_txn_ids)
        headers = self._copy_headers(sales, sources[~orphan], kinds[~orphan], txn_ids.filter(pa.array(~orphan)),
                                     totals[~orphan])
        on_line = np.isin(kinds, [KIND[kind] for kind in (*LINE_KINDS, "orphan_line")])
        found = pa.concat_tables([
            labels("store_sales_header", duplicate_ids, duplicate_ids, "duplicate_transaction", "reject"),
            labels(columns.pick(on_line.astype(np.int64), pa.array(["store_sales_header", "store_sales_line_items"])),
                   _where(on_line, first_line_ids, txn_ids), line_txn_ids,
                   columns.pick(kinds, pa.array(TRANSACTION_KINDS)), "reject")])
        return Planted(headers, lines, duplicates, found)

    def _copy_lines(self, sales: DaySales, sources: np.ndarray, kinds: np.ndarray,
                    txn_ids: pa.Array) -> tuple[pa.Table, np.ndarray, pa.Array]:
        """Each copy's lines (an orphan line only the first) with the first one broken; totals and first line ids."""
        line_start = np.searchsorted(sales.line_txn, sources)
        lengths = np.where(kinds == KIND["orphan_line"], 1,
                           np.searchsorted(sales.line_txn, sources, side="right") - line_start)
        copy = np.repeat(np.arange(len(sources)), lengths)
        first = np.cumsum(lengths) - lengths
        source_line = line_start[copy] + np.arange(len(copy)) - first[copy]
        line_numbers = self.numbering.take(0, len(copy))[1]

        def first_lines(kind: str) -> np.ndarray:
            return first[kinds == KIND[kind]]

        product, promotion = sales.line_product[source_line], sales.line_promotion[source_line]
        quantity, cents = sales.line_quantity[source_line], sales.line_cents[source_line]
        product[first_lines("multi_valued_product")] += len(self.product_texts) // 2
        product[first_lines("unknown_product")] = len(self.product_texts) - 1
        product[first_lines("missing_product_id")] = -1
        promotion[first_lines("unknown_promotion")] = len(self.promotion_texts) - 1
        # The amount takes the sign opposite to the quantity's (a free line gets 1.00 of it).
        mismatched = first_lines("amount_sign_mismatch")
        cents[mismatched] = -np.sign(quantity[mismatched]) * np.maximum(np.abs(cents[mismatched]), 100)
        quantity[first_lines("zero_quantity")] = 0
        lines = line_table(line_numbers, txn_ids.take(copy), columns.pick(product, self.product_texts),
                           columns.pick(promotion, self.promotion_texts), quantity, cents)
        totals = np.bincount(copy, weights=cents, minlength=len(sources)).astype(np.int64)
        return lines, totals, columns.integers(line_numbers[first])

    def _copy_headers(self, sales: DaySales, sources: np.ndarray, kinds: np.ndarray, txn_ids: pa.Array,
                      totals: np.ndarray) -> pa.Table:
        """The copies' headers, broken by header-level kinds; a total mismatch is off by 1.00-49.99."""
        originals = self.tables.headers(sales, sources)
        dates = originals.column("transaction_date").combine_chunks()
        dates = _where(kinds == KIND["invalid_date"], pc.utf8_replace_slice(dates, 5, 7, "13"), dates)
        mismatch = np.flatnonzero(kinds == KIND["total_mismatch"])
        totals[mismatch] += self.rng.integers(100, 5000, len(mismatch))
        return header_table(
            txn_ids, _where(kinds == KIND["unknown_customer"], "C999999X", originals.column("customer_id")),
            _where(kinds == KIND["unknown_store"], "ST999X", originals.column("store_id")),
            _where(kinds == KIND["empty_date"], None, dates), totals,
            originals.column("transaction_type").combine_chunks(),
            originals.column("original_transaction_id").combine_chunks())


def expected_planted_lines(rate: float, transactions: float, lines: float) -> float:
    """Planted line items expected for this many clean transactions and lines: a copy repeats its source's lines,
    an orphan line only the first, a duplicate is a header only."""
    whole_copies = len(TRANSACTION_KINDS) - 2
    return rate * (whole_copies * lines + transactions) / len(TRANSACTION_KINDS)


def _where(mask: np.ndarray, replacement, values) -> pa.Array:
    """values with the rows in mask replaced (a string or None replaces them all with that value)."""
    if not isinstance(replacement, pa.Array):
        replacement = pa.scalar(replacement, pa.string())
    return pc.if_else(pa.array(mask, pa.bool_()), replacement, values)


def bad_emails(customers: int, rate: float, rng: np.random.Generator) -> np.ndarray:
    """Customers (indices, ascending) whose e-mail is made invalid: name.domain, no @ (a warn-level problem)."""
    count = int(round(customers * rate))
    return np.sort(rng.choice(customers, count, replace=False)) if count else np.array([], dtype=np.int64)


def break_emails(details: pa.Table, broken: np.ndarray) -> pa.Table:
    """customer_details with the e-mails of the rows in the mask `broken` stripped of their @."""
    emails, mask = details.column("email").combine_chunks(), pa.array(broken)
    emails = pc.replace_with_mask(emails, mask, pc.replace_substring(emails.filter(mask), "@", "."))
    return details.set_column(details.schema.get_field_index("email"), "email", emails)
