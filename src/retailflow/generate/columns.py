"""Vectorised formatting of generated values into the CSV contract's text columns."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def pick(indices: np.ndarray, dictionary: pa.Array) -> pa.Array:
    """dictionary[indices] as strings; a negative index gives NULL."""
    mask = indices < 0
    codes = pa.array(np.where(mask, 0, indices).astype(np.int32), mask=mask if mask.any() else None)
    return pa.DictionaryArray.from_arrays(codes, dictionary).cast(pa.string())


def money(cents: np.ndarray) -> pa.Array:
    """Integer cents as text with two decimals (e.g. 1250 -> 12.50)."""
    negative = cents < 0
    magnitude = np.abs(cents)
    whole = pc.cast(pa.array(magnitude // 100), pa.string())
    fraction = pc.utf8_lpad(pc.cast(pa.array(magnitude % 100), pa.string()), 2, "0")
    text = pc.binary_join_element_wise(whole, fraction, ".")
    if negative.any():
        text = pc.if_else(pa.array(negative), pc.binary_join_element_wise("-", text, ""), text)
    return text


def numbered(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """prefix + zero-padded numbers, e.g. TXN00000042."""
    digits = pc.utf8_lpad(pc.cast(pa.array(numbers), pa.string()), width, "0")
    return pc.binary_join_element_wise(prefix, digits, "")


def constant(value: str, count: int) -> pa.Array:
    return pick(np.zeros(count, dtype=np.int32), pa.array([value], type=pa.string()))


def dates(days: np.ndarray) -> pa.Array:
    """numpy datetime64[D] values as YYYY-MM-DD text."""
    return pc.strftime(pa.array(days.astype("datetime64[s]")), format="%Y-%m-%d")


def timestamps(day: dt.date, seconds: np.ndarray) -> pa.Array:
    base = np.datetime64(day.isoformat(), "s")
    return pc.strftime(pa.array(base + seconds.astype("timedelta64[s]")), format="%Y-%m-%d %H:%M:%S")


def integers(values: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(values), pa.string())
