"""Lists of ids in one cell (a promotion's products or stores), as Ibis expressions any stage or rule may use."""

from __future__ import annotations

import ibis.expr.types as ir

from retailflow.model import LIST_SEPARATORS

#: A list cell's separators with the spaces around them, and the one they are all rewritten to.
SEPARATOR, JOINED = r"\s*[" + "".join(LIST_SEPARATORS) + r"]\s*", LIST_SEPARATORS[0]


def normalised(listed: ir.StringValue) -> ir.StringValue:
    """A list cell (ids between LIST_SEPARATORS) with every separator, and the spaces around it, written as one."""
    return listed.re_replace(SEPARATOR, JOINED)


def holds(normalised_list: ir.StringValue, identifier: ir.StringValue) -> ir.BooleanValue:
    """Whether a normalised list holds `identifier` (a whole id: P1 is not in P10|P2)."""
    return (JOINED + normalised_list + JOINED).contains(JOINED + identifier + JOINED)


def names(listed: ir.StringValue, identifier: ir.StringValue) -> ir.BooleanValue:
    """Whether the list cell `listed` (applicable_products or applicable_stores) names `identifier`."""
    return holds(normalised(listed), identifier)
