"""What counts as a transaction in the figures: every staged sale, return and exchange, never a void."""

from __future__ import annotations

import ibis.expr.types as ir


def counted(transaction_type: ir.StringValue) -> ir.BooleanValue:
    """Whether a transaction of this type counts: every one but those the export marks as voids."""
    return transaction_type.isnull() | (transaction_type.lower() != "void")


def counted_transactions(headers: ir.Table) -> ir.Table:
    """The staged headers that count in figures (see counted)."""
    return headers.filter(counted(headers.transaction_type))
