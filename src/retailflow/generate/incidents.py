"""Planted delivery and volume incidents (`--incidents`), with their ground truth: what the completeness and
volume checks (retailflow.checks) must find, and two days they must not flag.

Each incident is on one store's day (or on every store's), chosen from the stores that sell at least the median:

- missing_file: the store's sales (headers and lines) for a day never arrive;
- late_file: they arrive late, in `_late/` (load it in a later run than the rest);
- truncated_file: the store's sales file for a day stops after its first 10 % of transactions;
- store_closed: the store sells nothing (and sends no stock) from a day to the end;
- store_opened: a new store, opening (stores.csv says so) a third of the way in;
- holiday: every store sells 30 % of a normal day; `_holidays.csv` lists the day (not an anomaly);
- promotion_day: a one-day promotion of every category at 35 % doubles the lines (not an anomaly either: the
  promotion explains it).

Rows an incident withholds (missing, truncated, closed, before opening) are left out of the files with every
planted problem copied from them (and their labels), so a withheld store-day has no row at all. The sales
truths (sales.csv, returns.csv, points.csv, the manifest's revenue) describe what the stores sold, withheld rows
included. `_truth/incidents.csv` lists the incidents: kind, store (empty: every store), day, and the finding
the checks must report (none for the holiday and the promotion day).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from retailflow.generate.masters import Catalog

#: What the checks must report for each kind ("none": nothing on that day).
FINDINGS = {"missing_file": "missing", "late_file": "late", "truncated_file": "anomaly", "store_closed": "closed",
            "store_opened": "opened", "holiday": "none", "promotion_day": "none"}
TRUNCATED_SHARE = 0.10
HOLIDAY_DEMAND = 0.30
FLASH_DISCOUNT, FLASH_UPLIFT = 0.35, 1.0
#: Days the incidents need: six weeks, so that the late ones have four weeks of baseline.
MIN_DAYS, MIN_STORES = 42, 5
HOLIDAY_NAME = "Generated holiday"
INCIDENTS_SCHEMA = pa.schema([("kind", pa.string()), ("store_id", pa.string()), ("business_date", pa.string()),
                              ("finding", pa.string())])


@dataclass(frozen=True)
class StoreDay:
    store: int
    day: int


@dataclass
class IncidentPlan:
    """Where the incidents are (store indices, day indices from the first day) and what they withheld so far."""

    start: dt.date
    store_ids: list[str]
    missing: StoreDay
    late: StoreDay
    truncated: StoreDay
    closed: StoreDay
    opened: StoreDay
    holiday: int
    promotion: int
    #: The truncated day's transactions kept (known once that day is written).
    truncated_kept: pa.Array = field(default_factory=lambda: pa.array([], pa.string()))

    @classmethod
    def plan(cls, days: int, start: dt.date, store_ids: list[str], store_weight: np.ndarray,
             rng: np.random.Generator) -> "IncidentPlan":
        """Incidents on five stores of at least median sales, late in the window (each day's baseline is full)."""
        ranked = np.argsort(-store_weight, kind="stable")
        chosen = rng.permutation(ranked[:max(MIN_STORES, len(ranked) // 2)])[:MIN_STORES]
        missing, late, truncated, closed, opened = (int(store) for store in chosen)
        return cls(start, store_ids, StoreDay(missing, days - 13), StoreDay(late, days - 3),
                   StoreDay(truncated, days - 8), StoreDay(closed, days - 20), StoreDay(opened, days // 3),
                   holiday=days - 10, promotion=days - 5)

    def day(self, index: int) -> str:
        return (self.start + dt.timedelta(days=index)).isoformat()

    def demand(self, day_index: int) -> float:
        """The day's demand relative to a normal one."""
        return HOLIDAY_DEMAND if day_index == self.holiday else 1.0

    def with_flash_promotion(self, catalog: Catalog) -> Catalog:
        """The catalog with the one-day promotion added and the new store's opening date."""
        promotions = catalog.promotions
        number = len(promotions) + 1
        row = pa.table({"promotion_id": [f"PR{number:03d}"], "promotion_name": ["Flash Sale Day"],
                        "start_date": [self.day(self.promotion)], "end_date": [self.day(self.promotion)],
                        "discount_percentage": [f"{FLASH_DISCOUNT * 100:.2f}"], "applicable_category": ["ALL"]})
        opening = catalog.stores.column("opening_date").to_pylist()
        opening[self.opened.store] = self.day(self.opened.day)
        stores = catalog.stores.set_column(catalog.stores.schema.get_field_index("opening_date"), "opening_date",
                                           pa.array(opening))
        return _catalog(catalog, stores, pa.concat_tables([promotions, row.cast(promotions.schema)]), self.promotion)

    def _withheld(self, stores: pa.Array, days: pa.Array, *, sales: bool = True) -> pa.Array:
        """Whether rows of these stores and days (YYYY-MM-DD text, NULL when unreadable) are withheld whole: the
        closed store's and the unopened store's, and for `sales` the missing file's."""
        closed = pc.and_(pc.equal(stores, self.store_ids[self.closed.store]),
                         pc.greater_equal(days, self.day(self.closed.day)))
        unopened = pc.and_(pc.equal(stores, self.store_ids[self.opened.store]),
                           pc.less(days, self.day(self.opened.day)))
        withheld = pc.or_(closed, unopened)
        if sales:
            withheld = pc.or_(withheld, pc.and_(pc.equal(stores, self.store_ids[self.missing.store]),
                                                pc.equal(days, self.day(self.missing.day))))
        return pc.fill_null(withheld, False)

    def split_headers(self, headers: pa.Table, day_index: int, clean_rows: int) -> tuple[pa.Table, pa.Table, pa.Array]:
        """A day's header file as kept and as arriving late, and the transaction ids left out of both.

        On the truncated day, its store's first TRUNCATED_SHARE of clean transactions are kept (the first
        `clean_rows` rows are the day's clean ones, in time order); later rows of that store-day are cut, copies
        in later files included.
        """
        stores, days = headers.column("store_id"), pc.utf8_slice_codeunits(headers.column("transaction_date"), 0, 10)
        withheld = self._withheld(stores, days)
        target = pc.fill_null(pc.and_(pc.equal(stores, self.store_ids[self.truncated.store]),
                                      pc.equal(days, self.day(self.truncated.day))), False)
        if day_index == self.truncated.day:
            rows = np.flatnonzero(target.to_numpy(zero_copy_only=False)[:clean_rows])
            self.truncated_kept = headers.column("transaction_id").take(
                pa.array(rows[:math.ceil(TRUNCATED_SHARE * len(rows))])).combine_chunks()
        cut = pc.and_(target, pc.invert(pc.is_in(headers.column("transaction_id"), self.truncated_kept)))
        dropped = pc.or_(withheld, cut)
        late = pc.fill_null(pc.and_(pc.equal(stores, self.store_ids[self.late.store]),
                                    pc.equal(days, self.day(self.late.day))), False)
        return (headers.filter(pc.invert(pc.or_(dropped, late))), headers.filter(late),
                headers.column("transaction_id").filter(dropped).combine_chunks())

    @staticmethod
    def split_lines(lines: pa.Table, dropped: pa.Array, late_ids: pa.Array) -> tuple[pa.Table, pa.Table]:
        """A day's line file as kept and as arriving late: the lines of dropped transactions left out."""
        ids = lines.column("transaction_id")
        late = pc.is_in(ids, late_ids)
        return lines.filter(pc.invert(pc.or_(pc.is_in(ids, dropped), late))), lines.filter(late)

    def inventory(self, snapshots: pa.Table) -> pa.Table:
        """A day's snapshots without the closed store's and the unopened store's (the missing file is a sales file:
        the store's stock count still comes)."""
        return snapshots.filter(pc.invert(self._withheld(snapshots.column("store_id"),
                                                         snapshots.column("snapshot_date"), sales=False)))

    def truth(self) -> pa.Table:
        """incidents.csv: one row per incident."""
        rows = [("missing_file", self.missing), ("late_file", self.late), ("truncated_file", self.truncated),
                ("store_closed", self.closed), ("store_opened", self.opened)]
        kinds = [kind for kind, _ in rows] + ["holiday", "promotion_day"]
        return pa.table({"kind": kinds,
                         "store_id": [self.store_ids[store_day.store] for _, store_day in rows] + [None, None],
                         "business_date": [self.day(store_day.day) for _, store_day in rows]
                         + [self.day(self.holiday), self.day(self.promotion)],
                         "finding": [FINDINGS[kind] for kind in kinds]}, schema=INCIDENTS_SCHEMA)

    def calendar(self) -> pa.Table:
        """_holidays.csv: the holiday calendar the checks read (checks.holidays in the rules file)."""
        return pa.table({"date": [self.day(self.holiday)], "name": [HOLIDAY_NAME]})


def _catalog(catalog: Catalog, stores: pa.Table, promotions: pa.Table, day: int) -> Catalog:
    """`catalog` with these stores and promotions, the last promotion being the flash one on `day`."""
    return replace(catalog, stores=stores, promotions=promotions,
                   promotion_category=[*catalog.promotion_category, "ALL"],
                   promotion_start=np.append(catalog.promotion_start, day),
                   promotion_end=np.append(catalog.promotion_end, day),
                   promotion_discount=np.append(catalog.promotion_discount, FLASH_DISCOUNT),
                   promotion_uplift=np.append(catalog.promotion_uplift, FLASH_UPLIFT))


def evaluate(found: Iterable[tuple[str, str, str]], truth: Iterable[dict]) -> dict:
    """Precision and recall of findings against incidents.csv rows: `found` holds (check, store_id, business_date
    as YYYY-MM-DD) of each finding, counted once per check, store and day; a truth row is found when a finding has
    its `finding`, store and day. Findings on the holiday or the promotion day are false."""
    expected = {(row["finding"], row["store_id"], row["business_date"]) for row in truth if row["finding"] != "none"}
    reported = set(found)
    hits = reported & expected
    return {"precision": round(len(hits) / len(reported), 4) if reported else 1.0,
            "recall": round(len(hits) / len(expected), 4) if expected else 1.0,
            "findings": len(reported), "incidents": len(expected),
            "missed": sorted(expected - reported), "false": sorted(reported - expected)}
