"""What the report may print: masked e-mails and no None/NaN/NaT, whatever the value."""

from __future__ import annotations

import datetime as dt
import decimal

import pytest

from retailflow.report.values import MISSING, label, mask_email, mask_emails, number, percent, shown


@pytest.mark.parametrize("address, masked", [
    ("john.smith@example.com", "j***@example.com"),
    ("ann@example.com", "a***@example.com"),
    ("finn.example.com", "f***"),
    ("", ""),
    (None, ""),
])
def test_mask_email(address, masked):
    assert mask_email(address) == masked


@pytest.mark.parametrize("text, masked", [
    ("write to ann@example.com today", "write to a***@example.com today"),
    ("email 'finn.example.com' does not have the expected format", "email 'f***' does not have the expected format"),
    ("E-mail 'bo@@x' is invalid", "E-mail 'b***@@x' is invalid"),
    ("postgresql://postgres@127.0.0.1:5432/retailflow", "postgresql://postgres@127.0.0.1:5432/retailflow"),
    ("a***@example.com", "a***@example.com"),
    ("product_id 'P99' not found", "product_id 'P99' not found"),
])
def test_mask_emails_in_free_text(text, masked):
    assert mask_emails(text) == masked


@pytest.mark.parametrize("value", [None, float("nan"), float("inf"), decimal.Decimal("NaN")])
def test_missing_values_read_as_a_dash(value):
    assert shown(value) == MISSING and label(value) == MISSING and number(value) is None and percent(value) == MISSING


@pytest.mark.parametrize("value, text", [
    (1234567, "1,234,567"), (decimal.Decimal("1234"), "1,234"), (decimal.Decimal("1234.5"), "1,234.50"),
    (decimal.Decimal("100.00"), "100.00"), (0.125, "0.12"), (True, "yes"),
    (dt.date(2024, 12, 1), "2024-12-01"), (dt.datetime(2024, 12, 1, 9, 30, 5), "2024-12-01 09:30"),
    ("C01", "C01"), ("Nan", "Nan"),
])
def test_values_are_formatted(value, text):
    assert shown(value) == text
