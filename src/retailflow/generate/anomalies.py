"""Planted, labelled data-quality problems: extra noisy rows copied from clean ones, then broken.

Clean rows are never modified: every problem is an additional transaction (or line, or header
copy) so the clean data, the inventory and the ground truth stay exactly consistent. Each
affected transaction has exactly one kind.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from retailflow.generate.sales import DaySales

TRANSACTION_KINDS = (
    "missing_product_id", "unknown_product", "unknown_store", "unknown_customer", "negative_amount",
    "zero_amount", "invalid_date", "empty_date", "total_mismatch", "duplicate_transaction", "orphan_line",
    "multi_valued_product", "unknown_promotion",
)
LINE_KINDS = {"missing_product_id", "unknown_product", "negative_amount", "zero_amount", "multi_valued_product",
              "unknown_promotion"}


@dataclass
class NoisyRows:
    """Rows to append to a day's files (all values already text), and their labels."""

    headers: list[tuple] = field(default_factory=list)
    lines: list[tuple] = field(default_factory=list)
    labels: list[tuple] = field(default_factory=list)


def plant(sales: DaySales, rate: float, rng: np.random.Generator, ids: dict, next_numbers: list[int],
          txn_text, money_text, time_text) -> tuple[NoisyRows, list[tuple]]:
    """Noisy copies of a sample of the day's transactions; returns them and duplicate headers for a later file."""
    noisy = NoisyRows()
    duplicates: list[tuple] = []
    count = int(rng.binomial(len(sales.txn_number), rate)) if len(sales.txn_number) else 0
    if count == 0:
        return noisy, duplicates
    sources = rng.choice(len(sales.txn_number), count, replace=False)
    # Kinds in rotation (continuing across days), so even a small dataset has every kind.
    kinds = [TRANSACTION_KINDS[(next_numbers[2] + index) % len(TRANSACTION_KINDS)] for index in range(count)]
    next_numbers[2] += count
    line_start = np.searchsorted(sales.line_txn, np.arange(len(sales.txn_number)))
    line_end = np.searchsorted(sales.line_txn, np.arange(len(sales.txn_number)), side="right")
    products, stores, customers, promotions = ids["products"], ids["stores"], ids["customers"], ids["promotions"]
    for source, kind in zip(sources.tolist(), kinds):
        original = (txn_text(sales.txn_number[source]), customers[sales.txn_customer[source]],
                    stores[sales.txn_store[source]], time_text(sales.txn_seconds[source]),
                    money_text(sales.txn_total_cents[source]))
        if kind == "duplicate_transaction":
            duplicates.append(original)
            noisy.labels.append(("store_sales_header", original[0], original[0], kind, "reject"))
            continue
        number = next_numbers[0]
        next_numbers[0] += 1
        txn_id = txn_text(number)
        span = range(line_start[source], line_end[source])
        lines = []
        for line in span:
            line_id = str(next_numbers[1])
            next_numbers[1] += 1
            promotion = sales.line_promotion[line]
            lines.append([line_id, txn_id, products[sales.line_product[line]],
                          promotions[promotion] if promotion >= 0 else None, str(sales.line_quantity[line]),
                          int(sales.line_cents[line])])
        header = [txn_id, original[1], original[2], original[3], None]
        first = lines[0]
        if kind == "orphan_line":
            first[1] = txn_text(number) + "X"
            noisy.lines.append(tuple(first[:5]) + (money_text(first[5]),))
            noisy.labels.append(("store_sales_line_items", first[0], first[1], kind, "reject"))
            continue
        if kind == "missing_product_id":
            first[2] = None
        elif kind == "unknown_product":
            first[2] = "P" + "9" * (len(first[2]) - 1) + "X"
        elif kind == "multi_valued_product":
            first[2] = f"{first[2]},{products[(sales.line_product[line_start[source]] + 1) % len(products)]}"
        elif kind == "unknown_promotion":
            first[3] = "PR999"
        elif kind == "negative_amount":
            first[5] = -first[5]
        elif kind == "zero_amount":
            first[5] = 0
        elif kind == "unknown_store":
            header[2] = "ST999X"
        elif kind == "unknown_customer":
            header[1] = "C999999X"
        elif kind == "invalid_date":
            header[3] = header[3][:5] + "13" + header[3][7:]
        elif kind == "empty_date":
            header[3] = None
        total = sum(line[5] for line in lines)
        if kind == "total_mismatch":
            total += int(rng.integers(100, 5000))
        header[4] = money_text(total)
        noisy.headers.append(tuple(header))
        noisy.lines.extend(tuple(line[:5]) + (money_text(line[5]),) for line in lines)
        entity, key = ("store_sales_line_items", first[0]) if kind in LINE_KINDS else ("store_sales_header", txn_id)
        noisy.labels.append((entity, key, txn_id, kind, "reject"))
    return noisy, duplicates


def break_emails(emails: pa.Array, rate: float, rng: np.random.Generator) -> tuple[pa.Array, np.ndarray]:
    """E-mails with a sample made invalid (name.domain, no @: a warn-level problem), and that sample's indices."""
    count = int(round(len(emails) * rate))
    chosen = np.sort(rng.choice(len(emails), count, replace=False)) if count else np.array([], dtype=np.int64)
    mask = np.zeros(len(emails), dtype=bool)
    mask[chosen] = True
    broken = pc.if_else(pa.array(mask), pc.replace_substring(emails, "@", "."), emails)
    return broken, chosen
