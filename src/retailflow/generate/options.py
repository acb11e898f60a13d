"""Generator options: sizes, window, retail behaviour (returns, anonymous sales, free lines), anomaly rate,
optional inputs and output format."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass

from retailflow.errors import UserError

#: Transactions per customer-day of a "regular" customer.
TRANSACTIONS_PER_CUSTOMER_DAY = 0.06
#: Store opening hours, in seconds after midnight.
OPEN_SECONDS, CLOSE_SECONDS = 8 * 3600, 21 * 3600
#: Inputs a dataset may be generated without (`retailflow generate --without inventory,promotions`).
OPTIONAL_INPUTS = ("inventory", "promotions")


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
    #: Daily inventory snapshots (inventory_daily_*) and the lost-demand truth; False = no inventory files.
    inventory: bool = True
    #: The promotion master and promoted sales; False = no promotion file, no promotion on any line.
    promotions: bool = True
    #: Share of sold lines returned, averaged over the categories (each category has its own multiple, see
    #: returns.py); a tenth of it is the share of transactions cancelled the same day.
    return_rate: float = 0.04
    #: Mean share of a store's sales made without a loyalty card (each store draws its own, up to ±0.20 around it).
    anonymous_share: float = 0.4
    #: Share of sold lines given free (amount 0.00: a gift or sample).
    free_line_rate: float = 0.01
    #: Plant delivery and volume incidents (incidents.py) with their truth in _truth/incidents.csv.
    incidents: bool = False

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
        if not 0 <= self.return_rate <= 0.3:
            problems.append("--return-rate must be between 0 and 0.3")
        if not 0 <= self.anonymous_share <= 1:
            problems.append("--anonymous-share must be between 0 and 1")
        if not 0 <= self.free_line_rate <= 0.5:
            problems.append("--free-line-rate must be between 0 and 0.5")
        if self.incidents and (self.days < 42 or self.stores < 5 or not self.promotions):
            problems.append("--incidents needs at least 42 days, 5 stores and promotions")
        if problems:
            raise UserError("; ".join(problems))
        return self

    def as_dict(self) -> dict:
        return {**asdict(self), "start": self.start.isoformat()}
