"""How values read in the report: e-mails masked, never "None"/"nan"/"NaT", money and counts formatted.

Every piece of text that reaches the page (table cells, KPIs, chart labels, hover text) goes
through `shown`, `label` or `mask_emails`, so one place decides what a shared report may show.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import re

MISSING = "–"

# An address-shaped token, and a value quoted right after the word "email" (a data-quality
# reason quoting a malformed address such as 'finn.example.com' has no @ to recognise).
_ADDRESS = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_QUOTED_EMAIL = re.compile(r"(\be-?mail\s+')([^']*)(')", re.IGNORECASE)


def mask_email(address: object) -> str:
    """j***@example.com: the first character of the local part, then ***, then the domain."""
    text = "" if is_missing(address) else str(address)
    if not text:
        return ""
    local, at, domain = text.partition("@")
    return f"{local[:1]}***{at}{domain}"


def mask_emails(text: str) -> str:
    """`text` with every e-mail address in it masked (addresses in free text such as reasons, too)."""
    text = _ADDRESS.sub(lambda match: mask_email(match.group(0)), text)
    return _QUOTED_EMAIL.sub(lambda match: match.group(1) + mask_email(match.group(2)) + match.group(3), text)


def is_missing(value: object) -> bool:
    """None, NaN and infinity (float or Decimal) and NaT all count as "no value" in a report."""
    if value is None:
        return True
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, decimal.Decimal):
        return not value.is_finite()
    return not isinstance(value, str) and str(value) == "NaT"  # pandas' missing timestamp


def number(value: object) -> float | None:
    """A value for a chart axis: a float, or None (a gap) when missing or not finite."""
    return None if is_missing(value) else float(value)


def shown(value: object) -> str:
    """A table cell or KPI: formatted, masked, and a dash for a missing value."""
    if is_missing(value):
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    # PostgreSQL sums integers to NUMERIC: a Decimal without decimal places is a count.
    if isinstance(value, int) or isinstance(value, decimal.Decimal) and value.as_tuple().exponent >= 0:
        return f"{int(value):,}"
    if isinstance(value, (float, decimal.Decimal)):
        return f"{float(value):,.2f}"
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, dt.date):
        return value.isoformat()
    return mask_emails(str(value))


def label(value: object) -> str:
    """A chart category (axis tick, legend entry): plain text, masked, a dash when missing."""
    if is_missing(value):
        return MISSING
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value.isoformat()
    return mask_emails(str(value))


def money(value: object) -> str:
    return shown(number(value) or 0.0)


def count(value: object) -> str:
    return f"{int(number(value) or 0):,}"


def percent(value: object) -> str:
    return MISSING if number(value) is None else f"{number(value):,.1f}%"
