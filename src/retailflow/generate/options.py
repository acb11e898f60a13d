"""Generator options: sizes, window, anomaly rate, output format."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass

from retailflow.errors import UserError

#: Transactions per customer-day of a "regular" customer.
TRANSACTIONS_PER_CUSTOMER_DAY = 0.06


@dataclass(frozen=True)
class GeneratorOptions:
    """What to generate; the same options and seed always give byte-identical files."""

    seed: int = 7
    stores: int = 20
    products: int = 300
    customers: int = 5000
    days: int = 30
    start: dt.date = dt.date(2024, 12, 1)
    anomaly_rate: float = 0.02
    format: str = "csv"
    #: When set, the number of customers is chosen to give about this many line items (see sizing.py).
    line_items: int | None = None
    inventory: bool = True

    def validated(self) -> "GeneratorOptions":
        problems = []
        if self.stores < 1 or self.products < 8 or self.customers < 10:
            problems.append("need at least 1 store, 8 products and 10 customers")
        if not 7 <= self.days <= 3660:
            problems.append("--days must be between 7 and 3660")
        if not 0 <= self.anomaly_rate <= 0.5:
            problems.append("--anomaly-rate must be between 0 and 0.5")
        if self.format not in ("csv", "parquet"):
            problems.append("--file-format must be csv or parquet")
        if self.line_items is not None and self.line_items < 100:
            problems.append("--line-items must be at least 100")
        if problems:
            raise UserError("; ".join(problems))
        return self

    def as_dict(self) -> dict:
        return {**asdict(self), "start": self.start.isoformat()}
