"""Synthetic retail data with planted ground truth and labelled data-quality problems.

`generate_dataset(out_dir, GeneratorOptions(...))` writes the input files in the CSV contract
(sales and inventory one file per day) and `_truth/`: anomalies.csv, promotions.csv,
lost_demand.csv, customers.csv and manifest.json. Same options, same bytes.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from retailflow import __version__
from retailflow.generate import columns
from retailflow.generate.anomalies import break_emails, plant
from retailflow.generate.masters import make_masters
from retailflow.generate.options import GeneratorOptions
from retailflow.generate.sales import Simulator

__all__ = ["GeneratorOptions", "generate_dataset"]

OVERLAP_RULE = ("when several promotions cover a category on a day, the one with the largest discount "
                "applies to its lines (ties: lowest promotion id) and only its uplift is planted")
HEADER_COLUMNS = ("transaction_id", "customer_id", "store_id", "transaction_date", "total_amount")
LINE_COLUMNS = ("line_item_id", "transaction_id", "product_id", "promotion_id", "quantity", "line_item_amount")
LAPSED_DAYS = 60


class _Writer:
    """Writes tables as CSV or Parquet and counts rows per file."""

    def __init__(self, out_dir: Path, file_format: str) -> None:
        self.out_dir, self.format, self.rows = out_dir, file_format, {}

    def write(self, stem: str, table: pa.Table) -> None:
        name = f"{stem}.{self.format}"
        if self.format == "parquet":
            pq.write_table(table, self.out_dir / name)
        else:
            pacsv.write_csv(table, self.out_dir / name)
        self.rows[name] = table.num_rows


def _text_table(names, rows: list[tuple]) -> pa.Table:
    return pa.table({name: pa.array([row[index] for row in rows], type=pa.string()) for index, name in enumerate(names)})


def generate_dataset(out_dir: Path, options: GeneratorOptions,
                     progress: Callable[[str, int, int], None] | None = None) -> dict:
    """Write a dataset to out_dir and return its manifest."""
    options = options.validated()
    report = progress or (lambda stage, done, total: None)
    out_dir.mkdir(parents=True, exist_ok=True)
    truth_dir = out_dir / "_truth"
    truth_dir.mkdir(exist_ok=True)
    rng = np.random.default_rng(options.seed)
    masters = make_masters(options, rng)
    writer = _Writer(out_dir, options.format)

    emails, bad_email = break_emails(masters.customers.column("email").combine_chunks(), options.anomaly_rate, rng)
    customers = masters.customers.set_column(masters.customers.schema.get_field_index("email"), "email", emails)
    for stem, table in (("stores", masters.stores), ("products", masters.products), ("customer_details", customers),
                        ("promotion_details", masters.promotions), ("loyalty_rules", masters.loyalty_rules)):
        writer.write(stem, table)
    ids = {name: masters_table.column(key).combine_chunks() for name, masters_table, key in (
        ("stores", masters.stores, "store_id"), ("products", masters.products, "product_id"),
        ("customers", masters.customers, "customer_id"), ("promotions", masters.promotions, "promotion_id"))}
    labels = [("customer_details", customer_id, None, "bad_email", "warn")
              for customer_id in ids["customers"].take(pa.array(bad_email, type=pa.int64())).to_pylist()]
    id_text = {name: values.to_numpy(zero_copy_only=False) for name, values in ids.items()}

    simulator = Simulator(options, masters, rng)
    total_txns = max(1, int(masters.customer_rate.sum() * options.days * 1.4))
    txn_width = max(8, len(str(total_txns * 2)))
    last_purchase_day = np.full(len(masters.customer_rate), -1)
    lost_demand: list[pa.Table] = []
    pending_duplicates: list[tuple] = []
    next_numbers = [0, 0, 0]  # next transaction number, next line number, next anomaly kind
    for day_index in range(options.days):
        sales = simulator.simulate(day_index)
        day, stamp = sales.day, sales.day.isoformat()
        np.maximum.at(last_purchase_day, sales.txn_customer, day_index)
        next_numbers[:2] = [simulator.next_txn, simulator.next_line]
        noisy, duplicates = plant(
            sales, options.anomaly_rate, rng, id_text, next_numbers,
            txn_text=lambda number: f"TXN{int(number):0{txn_width}d}", money_text=_money_text,
            time_text=lambda seconds: f"{stamp} {int(seconds) // 3600:02d}:{int(seconds) % 3600 // 60:02d}:"
                                      f"{int(seconds) % 60:02d}")
        simulator.next_txn, simulator.next_line = next_numbers[:2]
        labels += noisy.labels
        headers = pa.table({
            "transaction_id": columns.numbered("TXN", sales.txn_number, txn_width),
            "customer_id": columns.pick(sales.txn_customer, ids["customers"]),
            "store_id": columns.pick(sales.txn_store, ids["stores"]),
            "transaction_date": columns.timestamps(day, sales.txn_seconds),
            "total_amount": columns.money(sales.txn_total_cents),
        })
        extra_headers = noisy.headers + pending_duplicates
        pending_duplicates = duplicates if day_index + 1 < options.days else []
        if day_index + 1 == options.days:
            extra_headers += duplicates
        if extra_headers:
            headers = pa.concat_tables([headers, _text_table(HEADER_COLUMNS, extra_headers)])
        lines = pa.table({
            "line_item_id": columns.integers(sales.line_number),
            "transaction_id": columns.numbered("TXN", sales.txn_number[sales.line_txn], txn_width),
            "product_id": columns.pick(sales.line_product, ids["products"]),
            "promotion_id": columns.pick(sales.line_promotion, ids["promotions"]),
            "quantity": columns.integers(sales.line_quantity),
            "line_item_amount": columns.money(sales.line_cents),
        })
        if noisy.lines:
            lines = pa.concat_tables([lines, _text_table(LINE_COLUMNS, noisy.lines)])
        writer.write(f"store_sales_header_{stamp}", headers)
        writer.write(f"store_sales_line_items_{stamp}", lines)
        if options.inventory:
            stores_count, products_count = sales.opening_stock.shape
            store_index = np.repeat(np.arange(stores_count), products_count)
            product_index = np.tile(np.arange(products_count), stores_count)
            writer.write(f"inventory_daily_{stamp}", pa.table({
                "snapshot_date": columns.constant(stamp, stores_count * products_count),
                "store_id": columns.pick(store_index, ids["stores"]),
                "product_id": columns.pick(product_index, ids["products"]),
                "stock_on_hand": columns.integers(sales.opening_stock.ravel()),
            }))
            unmet = np.flatnonzero(sales.unmet_units.ravel())
            lost_demand.append(pa.table({
                "snapshot_date": columns.constant(stamp, len(unmet)),
                "store_id": columns.pick(unmet // products_count, ids["stores"]),
                "product_id": columns.pick(unmet % products_count, ids["products"]),
                "unmet_units": columns.integers(sales.unmet_units.ravel()[unmet]),
                "whole_day": pa.array(sales.opening_stock.ravel()[unmet] == 0),
            }))
        report("days", day_index + 1, options.days)

    _write_truth(truth_dir, options, masters, ids, labels, lost_demand, last_purchase_day)
    manifest = {
        "generator": f"retailflow {__version__}", "options": options.as_dict(), "seed": options.seed,
        "promotion_overlap_rule": OVERLAP_RULE, "inventory_snapshot": "stock on hand at opening, after deliveries",
        "rows": writer.rows, "line_items": sum(n for name, n in writer.rows.items() if name.startswith("store_sales_line")),
        "anomalies": len(labels),
    }
    (truth_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def _money_text(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"


def _write_truth(truth_dir: Path, options: GeneratorOptions, masters, ids: dict, labels: list[tuple],
                 lost_demand: list[pa.Table], last_purchase_day: np.ndarray) -> None:
    pacsv.write_csv(_text_table(("entity", "key", "transaction_id", "kind", "severity"), labels),
                    truth_dir / "anomalies.csv")
    pacsv.write_csv(pa.table({
        "promotion_id": ids["promotions"], "applicable_category": masters.promotion_category,
        "discount_percentage": [f"{value * 100:.2f}" for value in masters.promotion_discount],
        "true_uplift": [f"{value:.4f}" for value in masters.promotion_uplift],
        "start_date": masters.promotions.column("start_date"), "end_date": masters.promotions.column("end_date"),
    }), truth_dir / "promotions.csv")
    if lost_demand:
        pacsv.write_csv(pa.concat_tables(lost_demand), truth_dir / "lost_demand.csv")
    as_of_index = int(last_purchase_day.max())
    as_of = np.datetime64(options.start.isoformat(), "D") + max(as_of_index, 0)
    history = (as_of - masters.customer_last_purchase).astype(np.int64)
    days_since = np.where(last_purchase_day >= 0, as_of_index - last_purchase_day, history)
    lapsed = days_since >= LAPSED_DAYS
    pacsv.write_csv(pa.table({
        "customer_id": ids["customers"], "archetype": masters.customer_archetype.astype(str),
        "days_since_purchase": days_since, "lapsed": lapsed,
        "lapsed_with_points": lapsed & (masters.customer_points > 0),
    }), truth_dir / "customers.csv")
