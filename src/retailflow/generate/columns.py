"""Vectorised formatting of generated values into the CSV contract's text columns.

Each helper is one or two Arrow kernels over a whole column: per-value formatting such as
`strftime` costs far more than the rest of the generator.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

#: Precision of the decimal type used to format money; its scale is 2 (cents).
MONEY_PRECISION = 18


def pick(indices: np.ndarray, dictionary: pa.Array) -> pa.Array:
    """dictionary[indices] as strings; a negative index gives NULL."""
    mask = indices < 0
    return dictionary.take(pa.array(indices, mask=mask if mask.any() else None))


def money(cents: np.ndarray) -> pa.Array:
    """Integer cents as text with two decimals (e.g. 1250 -> 12.50, -5 -> -0.05)."""
    # The cents are the unscaled value of a decimal(18, 2): 128-bit little-endian words of
    # (low, sign extension), which Arrow formats with exactly two decimals.
    cents = np.asarray(cents, dtype=np.int64)
    words = np.column_stack([cents, cents >> 63])
    decimals = pa.Array.from_buffers(pa.decimal128(MONEY_PRECISION, 2), len(cents), [None, pa.py_buffer(words)])
    return decimals.cast(pa.string())


def numbered(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """prefix + zero-padded numbers, e.g. TXN00000042."""
    digits = pc.utf8_lpad(pc.cast(pa.array(numbers), pa.string()), width, "0")
    return pc.binary_join_element_wise(prefix, digits, "")


def constant(value: str, count: int) -> pa.Array:
    """The same text on every row."""
    encoded = value.encode()
    offsets = np.arange(count + 1, dtype=np.int32) * np.int32(len(encoded))
    return pa.StringArray.from_buffers(count, pa.py_buffer(offsets), pa.py_buffer(encoded * count))


def dates(days: np.ndarray) -> pa.Array:
    """numpy datetime64[D] values as YYYY-MM-DD text."""
    return pa.array(days.astype("datetime64[D]")).cast(pa.string())


def timestamps(day: dt.date, seconds: np.ndarray) -> pa.Array:
    """Seconds after midnight of `day` as YYYY-MM-DD HH:MM:SS text."""
    base = np.datetime64(day.isoformat(), "s")
    return pa.array(base + seconds.astype("timedelta64[s]")).cast(pa.string())


def integers(values: np.ndarray) -> pa.Array:
    """Integers as text; small non-negative ones (counts, stock) are looked up instead of formatted."""
    if len(values) and values.min() >= 0 and values.max() < len(values) // 4:
        return pick(values, pc.cast(pa.array(np.arange(values.max() + 1)), pa.string()))
    return pc.cast(pa.array(values), pa.string())
