"""Small helpers shared by tests: write CSV files, run the pipeline, read tables."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

from retailflow.backends import Backend
from retailflow.ingest import discover, ingest
from retailflow.quality.engine import RouteOutcome, route_all
from retailflow.quality.rules import load_rules

POSTGRES_ADMIN = os.environ.get("RETAILFLOW_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
SAMPLE_DIR = Path(str(resources.files("retailflow").joinpath("sample_data")))


def _postgres_available() -> str | None:
    try:
        with psycopg.connect(POSTGRES_ADMIN, connect_timeout=3):
            return None
    except psycopg.OperationalError as error:
        return f"PostgreSQL not reachable at {POSTGRES_ADMIN}: {str(error).strip().splitlines()[0]}"


POSTGRES_SKIP = _postgres_available()

MYSQL_ADMIN = os.environ.get("RETAILFLOW_TEST_MYSQL", "mysql://root@127.0.0.1:3306")


def _mysql_connection():
    import MySQLdb

    parts = urlsplit(MYSQL_ADMIN)
    return MySQLdb.connect(host=parts.hostname or "127.0.0.1", port=parts.port or 3306, user=parts.username or "root",
                           password=parts.password or "", connect_timeout=3)


def _mysql_available() -> str | None:
    try:
        _mysql_connection().close()
        return None
    except Exception as error:  # noqa: BLE001 - the driver missing or the server down: both mean skip
        return f"MySQL/MariaDB not reachable at {MYSQL_ADMIN}: {error}"


MYSQL_SKIP = _mysql_available()


def drop_mysql_database(name: str) -> None:
    """Drop a retailflow MySQL database: the URL's database and one database per schema (name_schema)."""
    from retailflow.backends.mysql import drop_database

    connection = _mysql_connection()
    try:
        drop_database(connection.cursor(), name)
    finally:
        connection.close()


def write_csv(folder: Path, name: str, text: str) -> Path:
    """Write `text` (leading/trailing blank lines removed) as folder/name."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text.strip("\n") + "\n", encoding="utf-8")
    return path


def write_small_shop(folder: Path, products: list[str], headers: list[str], lines: list[str],
                     snapshots: list[str]) -> None:
    """Input files of two stores (ST1, ST2) and one customer (C1) with the given rows (no header lines) of
    products, sales headers, line items and inventory snapshots."""
    write_csv(folder, "stores.csv", "store_id,store_name,store_city,store_region,opening_date\n"
              "ST1,One,Town,North,2020-01-01\nST2,Two,Town,North,2020-01-01")
    write_csv(folder, "customer_details.csv", "customer_id,first_name,email,loyalty_status,total_loyalty_points,"
              "last_purchase_date,segment_id\nC1,Al,al@example.com,Gold,0,,")
    for name, columns, rows in (
            ("products.csv", "product_id,product_name,product_category,unit_price,current_stock_level", products),
            ("store_sales_header.csv", "transaction_id,customer_id,store_id,transaction_date,total_amount", headers),
            ("store_sales_line_items.csv",
             "line_item_id,transaction_id,product_id,promotion_id,quantity,line_item_amount", lines),
            ("inventory_daily.csv", "snapshot_date,store_id,product_id,stock_on_hand", snapshots)):
        write_csv(folder, name, "\n".join([columns, *rows]))


def load_and_validate(backend: Backend, *paths: Path, rules_path: Path | None = None) -> RouteOutcome:
    ingest(backend, discover(list(paths)))
    return route_all(backend, load_rules(rules_path), "validate")


def column(backend: Backend, sql: str) -> list:
    """The first column of a query, as a list."""
    return [row[0] for row in backend.fetch(sql)[1]]
