"""A hand-made chain of four stores over five weeks, written as a till system exports it: one header file and one
line file per day for every store, the masters, a stock file, and a late file apart. Every incident is planted
by hand and its figures worked out below; the tests load it in nightly steps.

Days run from Monday 2025-01-06 to Sunday 2025-02-09 (35 days). A normal day:

- ST1, 40 transactions. Every tenth (k % 10 == 9) is a return of one P1 (-1 × 10.00 = -10.00); the other 36 are
  sales of two lines, P1 1 × 10.00 and P2 2 × 5.00 = 20.00. Transactions k % 5 in (0, 1) have no loyalty card:
  16 of 40. So: lines 36 × 2 + 4 = 76, revenue 36 × 20.00 - 4 × 10.00 = 680.00, products 2, anonymous share
  16 / 40 = 0.4, units sold 36 × 3 = 108, returned 4, return rate 4 / 108 = 0.037037. ST1 also counts its stock
  of P1 every day.
- ST2, 20 sales of one line P3 1 × 4.50 by customer C2: lines 20, revenue 90.00, no card missing, no return.
  ST2 is shut on Sundays (it never sells on one).
- ST3 is ST2's twin; it sells for the last time on Saturday 2025-01-25 and is closed from Sunday 2025-01-26.
- ST4 is ST2's twin too, and opens on Monday 2025-01-20 (stores.csv says so).

Planted:
- ST2's sales for Wednesday 2025-01-29 never come (missing).
- ST4's sales for Tuesday 2025-02-04 come a night late, in late/ (late).
- Monday 2025-02-03: ST2 sends 6 more sales of an unknown customer, C999: quarantined, 6 of 26 headers
  (quarantine rate 0.2308).
- Wednesday 2025-02-05: ST1's file stops after its first 4 transactions (0-3: four sales, 8 lines, 80.00; 0 and
  1 anonymous): lines 8 against 76, transactions 4 against 40.
- Friday 2025-02-07 is a holiday (holidays.csv): every store sells 30 % (ST1 12 transactions, k 0-11, one of
  them, k 9, a return; the others 6).
- Saturday 2025-02-08: ST1 runs promotion PR1 (every category, at ST1): 80 transactions, every sold line
  promoted. Lines 72 × 2 + 8 = 152.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

FIRST = dt.date(2025, 1, 6)
DAYS = 35
MISSING = ("ST2", dt.date(2025, 1, 29))
LATE = ("ST4", dt.date(2025, 2, 4))
QUARANTINE_DAY = dt.date(2025, 2, 3)
TRUNCATED = ("ST1", dt.date(2025, 2, 5))
HOLIDAY = dt.date(2025, 2, 7)
PROMOTION = ("ST1", dt.date(2025, 2, 8))
ST3_CLOSED = dt.date(2025, 1, 26)
ST4_OPENED = dt.date(2025, 1, 20)
HEADER_COLUMNS = "transaction_id,customer_id,store_id,transaction_date,total_amount"
LINE_COLUMNS = "line_item_id,transaction_id,product_id,promotion_id,quantity,line_item_amount"


def days() -> list[dt.date]:
    return [FIRST + dt.timedelta(days=offset) for offset in range(DAYS)]


def _st1(day: dt.date) -> tuple[list[str], list[str]]:
    """ST1's headers and lines of the day (module docstring)."""
    count = {TRUNCATED[1]: 4, HOLIDAY: 12, PROMOTION[1]: 80}.get(day, 40)
    promotion = "PR1" if day == PROMOTION[1] else ""
    headers, lines = [], []
    for k in range(count):
        txn = f"T1-{day:%m%d}-{k:03d}"
        customer = "" if k % 5 in (0, 1) else "C1"
        stamp = f"{day} {9 + k // 10:02d}:{k % 10 * 5:02d}:00"
        if k % 10 == 9:
            headers.append(f"{txn},{customer},ST1,{stamp},-10.00")
            lines.append(f"{txn}-1,{txn},P1,,-1,-10.00")
        else:
            headers.append(f"{txn},{customer},ST1,{stamp},20.00")
            lines += [f"{txn}-1,{txn},P1,{promotion},1,10.00", f"{txn}-2,{txn},P2,{promotion},2,10.00"]
    return headers, lines


def _twin(store: str, day: dt.date, count: int, customer: str = "C2") -> tuple[list[str], list[str]]:
    """`count` sales of one P3 at 4.50 at `store`."""
    headers, lines = [], []
    for k in range(count):
        txn = f"T{store[-1]}-{day:%m%d}-{customer}-{k:03d}"
        headers.append(f"{txn},{customer},{store},{day} 10:{k:02d}:00,4.50")
        lines.append(f"{txn}-1,{txn},P3,,1,4.50")
    return headers, lines


def sales(day: dt.date) -> dict[str, tuple[list[str], list[str]]]:
    """Per store, the headers and lines it sold on `day` (what the tills recorded, incidents aside)."""
    twins = 6 if day == HOLIDAY else 20
    found = {"ST1": _st1(day)}
    if day.weekday() != 6:
        found["ST2"] = _twin("ST2", day, twins)
        if day == QUARANTINE_DAY:
            extra = _twin("ST2", day, 6, customer="C999")
            found["ST2"] = (found["ST2"][0] + extra[0], found["ST2"][1] + extra[1])
    if day < ST3_CLOSED:
        found["ST3"] = _twin("ST3", day, twins)
    if day >= ST4_OPENED:
        found["ST4"] = _twin("ST4", day, twins)
    return found


def write(folder: Path) -> dict[str, list[Path]]:
    """Write the export into `folder`: masters, one header and one line file per day (the missing file left out,
    the late one apart in late/), the stock file and the holiday calendar. Returns the files by what they are:
    masters, days (one list per day, in order, as `day:YYYY-MM-DD`), late, holidays."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "stores.csv").write_text(
        "store_id,store_name,store_city,store_region,opening_date\n"
        "ST1,Market Street,Leeds,North,2015-03-01\nST2,Station Road,York,North,2018-06-01\n"
        "ST3,High Street,Hull,North,2019-09-01\nST4,Canal Wharf,Leeds,North,2025-01-20\n")
    (folder / "products.csv").write_text(
        "product_id,product_name,product_category,unit_price,current_stock_level\n"
        "P1,Mug,Home,10.00,50\nP2,Tea,Grocery,5.00,80\nP3,Biscuits,Grocery,4.50,120\n")
    (folder / "customer_details.csv").write_text(
        "customer_id,first_name,email,loyalty_status,total_loyalty_points,last_purchase_date,segment_id\n"
        "C1,Ada,ada@example.com,Gold,100,2024-12-30,\nC2,Ben,ben@example.com,Silver,40,2024-12-30,\n")
    (folder / "promotion_details.csv").write_text(
        "promotion_id,promotion_name,start_date,end_date,discount_percentage,applicable_category,applicable_stores\n"
        f"PR1,Saturday special,{PROMOTION[1]},{PROMOTION[1]},,ALL,ST1\n")
    (folder / "inventory_daily.csv").write_text("snapshot_date,store_id,product_id,stock_on_hand\n" + "".join(
        f"{day},ST1,P1,40\n" for day in days()))
    (folder / "holidays.csv").write_text(f"date,name\n{HOLIDAY},Founders' day\n")
    files: dict[str, list[Path]] = {"masters": [folder / name for name in (
        "stores.csv", "products.csv", "customer_details.csv", "promotion_details.csv", "inventory_daily.csv")]}
    late = folder / "late"
    late.mkdir(exist_ok=True)
    for day in days():
        headers, lines = [HEADER_COLUMNS], [LINE_COLUMNS]
        for store, (store_headers, store_lines) in sales(day).items():
            if (store, day) == MISSING:
                continue
            if (store, day) == LATE:
                (late / f"store_sales_header_{day}_{store}.csv").write_text(
                    "\n".join([HEADER_COLUMNS, *store_headers]) + "\n")
                (late / f"store_sales_line_items_{day}_{store}.csv").write_text(
                    "\n".join([LINE_COLUMNS, *store_lines]) + "\n")
                continue
            headers += store_headers
            lines += store_lines
        pair = [folder / f"store_sales_header_{day}.csv", folder / f"store_sales_line_items_{day}.csv"]
        pair[0].write_text("\n".join(headers) + "\n")
        pair[1].write_text("\n".join(lines) + "\n")
        files[f"day:{day}"] = pair
    files["late"] = sorted(late.iterdir())
    files["holidays"] = [folder / "holidays.csv"]
    return files
