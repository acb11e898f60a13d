"""Synthetic retail data with planted ground truth and labelled data-quality problems.

`generate_dataset(out_dir, GeneratorOptions(...))` writes the input files in the CSV contract
(sales and inventory one file per day; sales, returns and cancellations together, anonymous
sales with an empty customer_id, free lines at 0.00) and `_truth/`: anomalies.csv, sales.csv
(net, sold and returned units and revenue per product), returns.csv (one row per return),
promotions.csv, lost_demand.csv, customers.csv, points.csv (each customer's net loyalty points,
returns clawed back, see points.py) and manifest.json (net, gross and returned revenue,
transaction counts, anonymous share). Without inventory there are no inventory files and no
lost_demand.csv; without promotions no promotion file, no promoted line and no promotions.csv.
Same options, same bytes. Days are simulated one at a time and formatted and written in the
background, so memory holds a few days, not the dataset.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from retailflow import __version__
from retailflow.generate import columns
from retailflow.generate.anomalies import Planter, bad_emails, break_emails, labels
from retailflow.generate.incidents import IncidentPlan
from retailflow.generate.masters import ARCHETYPES, Catalog, Customers, make_masters
from retailflow.generate.options import GeneratorOptions
from retailflow.generate.points import LoyaltyRules, PointsTruth
from retailflow.generate.returns import CANCELLED_SHARE, CATEGORY_RETURN_MULTIPLE
from retailflow.generate.sales import Simulator
from retailflow.generate.sizing import customer_count
from retailflow.generate.tables import LOST_DEMAND_SCHEMA, RETURNS_SCHEMA, DayTables
from retailflow.generate.truth import SalesTruth

__all__ = ["GeneratorOptions", "generate_dataset"]

OVERLAP_RULE = ("when several promotions cover a category on a day, the one with the largest discount "
                "applies to its lines (ties: lowest promotion id) and only its uplift is planted")
LAPSED_DAYS = 60
CUSTOMER_CHUNK = 1 << 18  # customers formatted and written at a time


class _Writer:
    """Writes tables as CSV or Parquet on a background thread and counts rows per file.

    Arrow formats and writes without holding the GIL, so a day's bulk (line items, inventory) is
    formatted and written while the next day is simulated; at most `MAX_PENDING` files wait,
    which bounds memory.
    """

    MAX_PENDING = 3

    def __init__(self, out_dir: Path, file_format: str) -> None:
        self.out_dir, self.format, self.rows = out_dir, file_format, {}
        self.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="retailflow-writer")
        self.pending: deque[Future] = deque()

    def __enter__(self) -> "_Writer":
        return self

    def __exit__(self, error_type, *_) -> None:
        try:
            while self.pending and error_type is None:
                self.pending.popleft().result()
        finally:
            self.thread.shutdown(cancel_futures=True)

    def write(self, stem: str, content: pa.Table | Iterable[pa.Table] | Callable[[], pa.Table]) -> None:
        """Write a table, tables in turn into one file, or the table a function builds (built in the background)."""
        self._submit(f"{stem}.{self.format}", self.format, content, counted=True)

    def write_truth(self, stem: str, content: pa.Table | Iterable[pa.Table]) -> None:
        """Write a ground-truth table (or tables in turn) as _truth/<stem>.csv, not counted in the manifest's rows."""
        self._submit(f"_truth/{stem}.csv", "csv", content, counted=False)

    def write_table(self, name: str, content: pa.Table) -> None:
        """Write a CSV file beside the inputs that is no input (its name starts with _), not counted either."""
        self._submit(name, "csv", content, counted=False)

    def _submit(self, name: str, file_format: str, content, counted: bool) -> None:
        self.pending.append(self.thread.submit(self._write, name, file_format, content, counted))
        while len(self.pending) > self.MAX_PENDING:
            self.pending.popleft().result()

    def _write(self, name: str, file_format: str, content, counted: bool) -> None:
        content = content() if callable(content) else content
        rows, file = 0, None
        try:
            for table in [content] if isinstance(content, pa.Table) else content:
                if file is None:
                    opener = pq.ParquetWriter if file_format == "parquet" else pacsv.CSVWriter
                    file = opener(self.out_dir / name, table.schema)
                file.write_table(table)
                rows += table.num_rows
        finally:
            if file is not None:
                file.close()
        if counted:
            self.rows[name] = rows


def generate_dataset(out_dir: Path, options: GeneratorOptions,
                     progress: Callable[[str, int, int], None] | None = None) -> dict:
    """Write a dataset to out_dir and return its manifest."""
    options = options.validated()
    out_dir.mkdir(parents=True, exist_ok=True)
    truth_dir = out_dir / "_truth"
    truth_dir.mkdir(exist_ok=True)
    # Separate random streams, so that neither the planted problems nor the sizing pilot change the clean data.
    # The incidents' stream is spawned fifth: the first four are the same with or without it.
    sales_rng, masters_rng, anomalies_rng, pilot_rng, incidents_rng = np.random.default_rng(options.seed).spawn(5)
    catalog, customers = make_masters(options, masters_rng, lambda catalog: customer_count(options, catalog, pilot_rng))
    incidents = None
    if options.incidents:
        incidents = IncidentPlan.plan(options.days, options.start, catalog.stores.column("store_id").to_pylist(),
                                      catalog.store_weight, incidents_rng)
        catalog = incidents.with_flash_promotion(catalog)
    simulator = Simulator(options, catalog, customers.rate, customers.home_store, sales_rng,
                          demand=incidents.demand if incidents else None)
    truth = SalesTruth(len(catalog.product_weight), len(customers.ids))
    points = PointsTruth(LoyaltyRules.from_table(catalog.loyalty_rules), catalog.product_category, options.start,
                         len(customers.ids))
    with _Writer(out_dir, options.format) as writer:
        ids, found = _write_masters(writer, catalog, customers, options, anomalies_rng)
        _write_days(writer, truth_dir, options, simulator, ids, found, anomalies_rng, (truth, points),
                    progress or (lambda stage, done, total: None), incidents)
        writer.write_truth("anomalies", pa.concat_tables(found))
        if incidents:
            writer.write_truth("incidents", incidents.truth())
            writer.write_table("_holidays.csv", incidents.calendar())
        writer.write_truth("sales", truth.products_table(ids["products"]))
        _write_truth(writer, options, catalog, customers, ids, truth)
        writer.write_truth("points", (points.table(ids["customers"], slice(start, start + CUSTOMER_CHUNK))
                                      for start in range(0, len(customers.ids), CUSTOMER_CHUNK)))
    manifest = {
        "generator": f"retailflow {__version__}", "options": options.as_dict(), "seed": options.seed,
        "promotion_overlap_rule": OVERLAP_RULE, "inventory_snapshot": "stock on hand at opening, after deliveries",
        "rows": writer.rows,
        "line_items": sum(n for name, n in writer.rows.items() if Path(name).name.startswith("store_sales_line")),
        "anomalies": sum(table.num_rows for table in found),
        "anomaly_kinds": _kind_counts(found),
        **({"incidents": incidents.truth().to_pylist()} if incidents else {}),
        **truth.manifest(),
        "line_return_rate_by_category": {category: round(options.return_rate * multiple, 6)
                                         for category, multiple in sorted(CATEGORY_RETURN_MULTIPLE.items())},
        "same_day_cancellation_rate": round(options.return_rate * CANCELLED_SHARE, 6),
    }
    (truth_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def _kind_counts(found: list[pa.Table]) -> dict[str, int]:
    """How many problems of each kind were planted (the labels' `kind` column counted in Arrow)."""
    counts = pa.chunked_array([table.column("kind") for table in found], pa.string()).value_counts()
    return {str(kind): int(count) for kind, count in sorted(zip(counts.field(0).to_pylist(),
                                                                 counts.field(1).to_pylist()))}


def _write_masters(writer: _Writer, catalog: Catalog, customers: Customers, options: GeneratorOptions,
                   rng: np.random.Generator) -> tuple[dict[str, pa.Array], list[pa.Table]]:
    """Write the master files (some e-mails broken); return the ids by entity and the e-mail labels."""
    count = len(customers.ids)
    bad_email = bad_emails(count, options.anomaly_rate, rng)
    broken = np.zeros(count, dtype=bool)
    broken[bad_email] = True
    details = (break_emails(customers.details(start, min(start + CUSTOMER_CHUNK, count)),
                            broken[start:start + CUSTOMER_CHUNK]) for start in range(0, count, CUSTOMER_CHUNK))
    masters = [("stores", catalog.stores), ("products", catalog.products), ("customer_details", details),
               *([("promotion_details", catalog.promotions)] if options.promotions else []),
               ("loyalty_rules", catalog.loyalty_rules)]
    for stem, content in masters:
        writer.write(stem, content)
    ids = {name: table.column(key).combine_chunks() for name, table, key in (
        ("stores", catalog.stores, "store_id"), ("products", catalog.products, "product_id"),
        ("promotions", catalog.promotions, "promotion_id"))}
    ids["customers"] = customers.ids
    return ids, [labels("customer_details", customers.ids.take(pa.array(bad_email)), None, "bad_email", "warn")]


def _write_days(writer: _Writer, truth_dir: Path, options: GeneratorOptions, simulator: Simulator,
                ids: dict[str, pa.Array], found: list[pa.Table], anomalies_rng: np.random.Generator,
                truths: tuple[SalesTruth, PointsTruth], report: Callable[[str, int, int], None],
                incidents: IncidentPlan | None = None) -> None:
    """Simulate and write day after day (labels appended to `found`, clean sales counted in `truths`); with
    `incidents`, the rows they withhold are left out (their labels too) and the late ones go to _late/."""
    truth, points = truths
    total_txns = max(1, int(simulator.rate * options.days * 1.4))
    tables = DayTables(ids, txn_width=max(8, len(str(total_txns * 2))))
    planter = Planter(options.anomaly_rate, anomalies_rng, ids, simulator.numbering, tables, options.promotions)
    pending_duplicates = []
    withheld: list[pa.Array] = []
    with ExitStack() as stack:
        lost_demand = (stack.enter_context(pacsv.CSVWriter(truth_dir / "lost_demand.csv", LOST_DEMAND_SCHEMA))
                       if options.inventory else None)
        returns = stack.enter_context(pacsv.CSVWriter(truth_dir / "returns.csv", RETURNS_SCHEMA))
        for day_index in range(options.days):
            sales = simulator.simulate(day_index)
            stamp = sales.day.isoformat()
            truth.add(sales, day_index)
            points.add(sales, day_index, simulator.returns.pending_sales())
            returns.write_table(tables.returns(sales))
            planted = planter.plant(sales)
            found.append(planted.labels)
            # A duplicate header arrives in the next day's file (the last day's in its own file).
            last_day = day_index + 1 == options.days
            noisy_headers = [planted.headers, *pending_duplicates, *([planted.duplicates] if last_day else [])]
            pending_duplicates = [planted.duplicates]
            header_file = partial(tables.header_file, sales, noisy_headers)
            line_file = partial(tables.line_file, sales, planted.lines)
            if incidents:
                headers, late_headers, dropped = incidents.split_headers(header_file(), day_index,
                                                                         len(sales.txn_number))
                lines, late_lines = incidents.split_lines(line_file(), dropped,
                                                         late_headers.column("transaction_id").combine_chunks())
                header_file, line_file = (lambda table=headers: table), (lambda table=lines: table)
                withheld.append(dropped)
                if late_headers.num_rows:
                    (writer.out_dir / "_late").mkdir(exist_ok=True)
                    writer.write(f"_late/store_sales_header_{stamp}", late_headers)
                    writer.write(f"_late/store_sales_line_items_{stamp}", late_lines)
            writer.write(f"store_sales_header_{stamp}", header_file)
            writer.write(f"store_sales_line_items_{stamp}", line_file)
            if options.inventory:
                snapshots = partial(tables.inventory, sales)
                writer.write(f"inventory_daily_{stamp}",
                             (lambda snapshots=snapshots: incidents.inventory(snapshots())) if incidents else snapshots)
                lost_demand.write_table(tables.lost_demand(sales))
            report("days", day_index + 1, options.days)
    if withheld:
        # Problems planted on withheld rows never reach a file: their labels go too.
        left_out = pa.chunked_array(withheld, pa.string())
        found[:] = [table.filter(pc.invert(pc.fill_null(pc.is_in(table.column("transaction_id"), left_out), False)))
                    for table in found]


def _write_truth(writer: _Writer, options: GeneratorOptions, catalog: Catalog, customers: Customers,
                 ids: dict[str, pa.Array], truth: SalesTruth) -> None:
    """promotions.csv (planted uplift) and customers.csv (archetype, days since purchase, lapsed, net spend)."""
    if options.promotions:
        writer.write_truth("promotions", pa.table({
            "promotion_id": ids["promotions"], "applicable_category": catalog.promotion_category,
            "discount_percentage": [f"{value * 100:.2f}" for value in catalog.promotion_discount],
            "true_uplift": [f"{value:.4f}" for value in catalog.promotion_uplift],
            "start_date": catalog.promotions.column("start_date"), "end_date": catalog.promotions.column("end_date"),
        }))
    last_purchase_day, as_of_index = truth.last_purchase_day, truth.last_day
    as_of = np.datetime64(options.start.isoformat(), "D") + max(as_of_index, 0)
    history = (as_of - customers.last_purchase).astype(np.int64)
    days_since = np.where(last_purchase_day >= 0, as_of_index - last_purchase_day, history)
    lapsed = days_since >= LAPSED_DAYS
    with_points, archetypes = lapsed & (customers.points > 0), pa.array(list(ARCHETYPES))

    def chunk(start: int) -> pa.Table:
        rows = slice(start, start + CUSTOMER_CHUNK)
        return pa.table({
            "customer_id": ids["customers"][rows], "archetype": columns.pick(customers.archetype[rows], archetypes),
            "days_since_purchase": days_since[rows], "lapsed": lapsed[rows], "lapsed_with_points": with_points[rows],
            "purchases": truth.purchases[rows], "net_spend": columns.money(truth.customer_cents[rows]),
        })

    writer.write_truth("customers", (chunk(start) for start in range(0, len(days_since), CUSTOMER_CHUNK)))
