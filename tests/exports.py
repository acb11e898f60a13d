"""Exports shaped like real ones, written by hand: each writer puts a retailer's files in `folder/export`, the same
data in our contract in `folder/contract`, and returns both with the mapping (YAML) that reads the export.

Loading the export with its mapping must stage exactly what loading the contract folder stages. Where an export
has no line ids or no transaction totals, the contract files leave them out too, so both sides derive them the
same way (`<transaction_id>-<n>`, the sum of the lines). A contract folder has a stores file only when its
mapping derives stores; otherwise the stores are implied by the sales on both sides.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from helpers import write_csv


@dataclass(frozen=True)
class ExportFixture:
    """An export as a retailer sends it, the same data in our contract, and the mapping between them."""

    #: The export's files, as sent (folder/export/...).
    files: tuple[Path, ...]
    #: The folder holding the same data in our contract's files.
    contract: Path
    #: The mapping file's text that reads `files` (docs/reference/sources.md).
    mapping: str

    @property
    def export(self) -> Path:
        """The folder holding the export's files."""
        return self.files[0].parent


def _export(folder: Path, name: str, text: str, *, encoding: str = "utf-8", newline: str = "\n") -> Path:
    """Write an export file byte for byte: the given encoding and line ends (write_csv is UTF-8 and LF only)."""
    path = folder / "export" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(newline.join(text.strip("\n").split("\n")).encode(encoding) + newline.encode(encoding))
    return path


# --- a) An online shop's order lines (the shape of the public "Online Retail" export) --------------------------
#
# One file, one row per invoice line; every line repeats its invoice's date and customer. No totals, no line ids,
# no store (one channel: ONLINE), no product or customer master. Month-first dates without seconds (12/13/2010
# proves month first). Invoices starting with C are cancellations, with negative quantities. Customer ids are
# written as floats (17850.0); an invoice without a customer is an anonymous sale. Product 85123A is on three
# invoices, 21786 is a free line (UnitPrice 0), and 22086's description holds a comma (a quoted field).
#
# Amounts = round(Quantity * UnitPrice, 2), by invoice:
#   536365   6*2.55 + 6*3.39 + 8*2.75        = 15.30 + 20.34 + 22.00 = 57.64
#   536366   6*1.85 + 2*2.55                 = 11.10 + 5.10          = 16.20
#   536367   32*1.69 + 2*7.65 + 1*0          = 54.08 + 15.30 + 0.00  = 69.38
#   C536379  -1*1.85                                                 = -1.85   (return)
#   536544   1*2.55 + 3*3.75 + 1*2.95        = 2.55 + 11.25 + 2.95   = 16.75   (anonymous)
#   536592   4*4.25 + 3*1.69                 = 17.00 + 5.07          = 22.07   (anonymous)
#   C536825  -2*3.39                                                 = -6.78   (return)
#   537126   4*3.75 + 12*2.95                = 15.00 + 35.40         = 50.40
# Net 223.81 over 8 transactions (2 returns, 2 anonymous), 17 lines, 10 products, 4 customers.

ONLINE_SHOP_EXPORT = """
InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country
536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,12/1/2010 8:26,2.55,17850.0,United Kingdom
536365,71053,WHITE METAL LANTERN,6,12/1/2010 8:26,3.39,17850.0,United Kingdom
536365,84406B,CREAM CUPID HEARTS COAT HANGER,8,12/1/2010 8:26,2.75,17850.0,United Kingdom
536366,22633,HAND WARMER UNION JACK,6,12/1/2010 8:28,1.85,17850.0,United Kingdom
536366,85123A,WHITE HANGING HEART T-LIGHT HOLDER,2,12/1/2010 8:28,2.55,17850.0,United Kingdom
536367,84879,ASSORTED COLOUR BIRD ORNAMENT,32,12/1/2010 8:34,1.69,13047.0,United Kingdom
536367,22752,SET 7 BABUSHKA NESTING BOXES,2,12/1/2010 8:34,7.65,13047.0,United Kingdom
536367,21786,POLKADOT RAIN HAT,1,12/1/2010 8:34,0,13047.0,United Kingdom
C536379,22633,HAND WARMER UNION JACK,-1,12/1/2010 9:41,1.85,14527.0,United Kingdom
536544,85123A,WHITE HANGING HEART T-LIGHT HOLDER,1,12/1/2010 14:32,2.55,,United Kingdom
536544,22728,ALARM CLOCK BAKELIKE PINK,3,12/1/2010 14:32,3.75,,United Kingdom
536544,22086,"PAPER CHAIN KIT, 50'S CHRISTMAS",1,12/1/2010 14:32,2.95,,United Kingdom
536592,21730,GLASS STAR FROSTED T-LIGHT HOLDER,4,12/13/2010 17:06,4.25,,United Kingdom
536592,84879,ASSORTED COLOUR BIRD ORNAMENT,3,12/13/2010 17:06,1.69,,United Kingdom
C536825,71053,WHITE METAL LANTERN,-2,12/13/2010 17:42,3.39,17850.0,United Kingdom
537126,22728,ALARM CLOCK BAKELIKE PINK,4,1/5/2011 10:03,3.75,12583.0,France
537126,22086,"PAPER CHAIN KIT, 50'S CHRISTMAS",12,1/5/2011 10:03,2.95,12583.0,France
"""

ONLINE_SHOP_MAPPING = r"""
sources:
  online_retail:
    files: "online_retail*.csv"
    feeds: sales_lines
    read:
      timestamp_format: "%m/%d/%Y %H:%M"
    columns:
      transaction_id: InvoiceNo
      transaction_date: InvoiceDate
      transaction_type: CASE WHEN InvoiceNo LIKE 'C%' THEN 'return' ELSE 'sale' END
      customer_id: regexp_replace(CustomerID, '\.0$', '')
      store_id: {value: ONLINE}
      product_id: StockCode
      quantity: Quantity
      line_item_amount: round(Quantity * UnitPrice, 2)
    derive:
      products: {product_name: Description, unit_price: UnitPrice}
      customers: {}
"""


def write_online_shop(folder: Path) -> ExportFixture:
    """The online shop's order lines (online_retail_2010-12.csv) and the same sales in our contract."""
    export = _export(folder, "online_retail_2010-12.csv", ONLINE_SHOP_EXPORT)
    contract = folder / "contract"
    write_csv(contract, "store_sales_header.csv", """
transaction_id,customer_id,store_id,transaction_date,transaction_type
536365,17850,ONLINE,2010-12-01 08:26:00,sale
536366,17850,ONLINE,2010-12-01 08:28:00,sale
536367,13047,ONLINE,2010-12-01 08:34:00,sale
C536379,14527,ONLINE,2010-12-01 09:41:00,return
536544,,ONLINE,2010-12-01 14:32:00,sale
536592,,ONLINE,2010-12-13 17:06:00,sale
C536825,17850,ONLINE,2010-12-13 17:42:00,return
537126,12583,ONLINE,2011-01-05 10:03:00,sale
""")
    write_csv(contract, "store_sales_line_items.csv", """
transaction_id,product_id,quantity,line_item_amount
536365,85123A,6,15.30
536365,71053,6,20.34
536365,84406B,8,22.00
536366,22633,6,11.10
536366,85123A,2,5.10
536367,84879,32,54.08
536367,22752,2,15.30
536367,21786,1,0.00
C536379,22633,-1,-1.85
536544,85123A,1,2.55
536544,22728,3,11.25
536544,22086,1,2.95
536592,21730,4,17.00
536592,84879,3,5.07
C536825,71053,-2,-6.78
537126,22728,4,15.00
537126,22086,12,35.40
""")
    write_csv(contract, "products.csv", """
product_id,product_name,unit_price
85123A,WHITE HANGING HEART T-LIGHT HOLDER,2.55
71053,WHITE METAL LANTERN,3.39
84406B,CREAM CUPID HEARTS COAT HANGER,2.75
22633,HAND WARMER UNION JACK,1.85
84879,ASSORTED COLOUR BIRD ORNAMENT,1.69
22752,SET 7 BABUSHKA NESTING BOXES,7.65
21786,POLKADOT RAIN HAT,0.00
22728,ALARM CLOCK BAKELIKE PINK,3.75
22086,"PAPER CHAIN KIT, 50'S CHRISTMAS",2.95
21730,GLASS STAR FROSTED T-LIGHT HOLDER,4.25
""")
    write_csv(contract, "customer_details.csv", """
customer_id
17850
13047
14527
12583
""")
    return ExportFixture((export,), contract, ONLINE_SHOP_MAPPING)


# --- b) A German till system's export: receipts and receipt lines in two files ----------------------------------
#
# Windows-1252 with CRLF line ends, `;` between fields, a decimal comma, dates DD.MM.YYYY and the time in a
# column of its own. Names carry umlauts and accents, and two product names carry characters that Windows-1252
# and latin-1 write differently (the en dash in "Apfelsaft – naturtrüb", the curly apostrophe in "Bäcker’s").
# Receipts (kasse_bons) have a total (Summe), a branch (Filiale, Filialname) and, for loyalty customers, a
# customer number and first name; 100232 is anonymous. Lines (kasse_positionen) number their positions within a
# receipt (PosNr), so a line id is BonNr-PosNr, the same as the id our contract derives from the position. No
# master file: products come from the lines (name, list price Einzelpreis), customers and branches from the
# receipts.
#
# Sums of the lines (Betrag; the Gruyère is 10 % off: 14,60 - 1,46 = 13,14):
#   100231  12,49 + 4,99         = 17,48
#   100232  4,99                 =  4,99   (anonymous)
#   100233  9,87 + 5,50 + 13,14  = 28,51   (3 * 3,29 = 9,87; 2 * 2,75 = 5,50)
#   100234  6,58 + 5,92          = 12,50   (2 * 3,29 = 6,58)
#   100235  -4,99                = -4,99   (a return on 31.12.)
# Net 58,49 over 5 receipts, 9 lines, 6 products, 3 customers, 2 branches.

POS_RECEIPTS_EXPORT = """
BonNr;Datum;Uhrzeit;Filiale;Filialname;KundenNr;Vorname;Summe
100231;02.12.2024;09:14;F01;Köln Süd;K1001;Jürgen;17,48
100232;02.12.2024;10:02;F01;Köln Süd;;;4,99
100233;13.12.2024;16:45;F02;Düsseldorf Altstadt;K1002;Hélène;28,51
100234;13.12.2024;17:30;F02;Düsseldorf Altstadt;K1003;Zoë;12,50
100235;31.12.2024;11:05;F01;Köln Süd;K1001;Jürgen;-4,99
"""

POS_LINES_EXPORT = """
BonNr;PosNr;ArtikelNr;Bezeichnung;Menge;Einzelpreis;Betrag
100231;1;4711;Kölnisch Wasser 100 ml;1;12,49;12,49
100231;2;2002;Apfelsaft – naturtrüb 1 l;1;4,99;4,99
100232;1;2002;Apfelsaft – naturtrüb 1 l;1;4,99;4,99
100233;1;3105;Crème brûlée 2er;3;3,29;9,87
100233;2;5120;Bäcker’s Vollkornbrot 500 g;2;2,75;5,50
100233;3;6001;Käse Gruyère 250 g;1;14,60;13,14
100234;1;3105;Crème brûlée 2er;2;3,29;6,58
100234;2;7007;Café crème Bohnen 500 g;1;5,92;5,92
100235;1;2002;Apfelsaft – naturtrüb 1 l;-1;4,99;-4,99
"""

POS_MAPPING = """
sources:
  kasse_bons:
    files: "kasse_bons*.csv"
    feeds: store_sales_header
    read: {delimiter: ";", encoding: cp1252, decimal: ",", timestamp_format: "%d.%m.%Y %H:%M"}
    columns:
      transaction_id: BonNr
      transaction_date: Datum || ' ' || Uhrzeit
      store_id: Filiale
      customer_id: KundenNr
      total_amount: Summe
    derive: {customers: {first_name: Vorname}, stores: {store_name: Filialname}}
  kasse_positionen:
    files: "kasse_positionen*.csv"
    feeds: store_sales_line_items
    read: {delimiter: ";", encoding: cp1252, decimal: ","}
    columns:
      line_item_id: BonNr || '-' || PosNr
      transaction_id: BonNr
      product_id: ArtikelNr
      quantity: Menge
      line_item_amount: Betrag
    derive:
      products: {product_name: Bezeichnung, unit_price: Einzelpreis}
"""


def write_pos(folder: Path) -> ExportFixture:
    """The till export (kasse_bons_2024-12.csv, kasse_positionen_2024-12.csv) and the same sales in our contract."""
    receipts = _export(folder, "kasse_bons_2024-12.csv", POS_RECEIPTS_EXPORT, encoding="cp1252", newline="\r\n")
    lines = _export(folder, "kasse_positionen_2024-12.csv", POS_LINES_EXPORT, encoding="cp1252", newline="\r\n")
    contract = folder / "contract"
    write_csv(contract, "store_sales_header.csv", """
transaction_id,customer_id,store_id,transaction_date,total_amount
100231,K1001,F01,2024-12-02 09:14:00,17.48
100232,,F01,2024-12-02 10:02:00,4.99
100233,K1002,F02,2024-12-13 16:45:00,28.51
100234,K1003,F02,2024-12-13 17:30:00,12.50
100235,K1001,F01,2024-12-31 11:05:00,-4.99
""")
    write_csv(contract, "store_sales_line_items.csv", """
line_item_id,transaction_id,product_id,quantity,line_item_amount
100231-1,100231,4711,1,12.49
100231-2,100231,2002,1,4.99
100232-1,100232,2002,1,4.99
100233-1,100233,3105,3,9.87
100233-2,100233,5120,2,5.50
100233-3,100233,6001,1,13.14
100234-1,100234,3105,2,6.58
100234-2,100234,7007,1,5.92
100235-1,100235,2002,-1,-4.99
""")
    write_csv(contract, "products.csv", """
product_id,product_name,unit_price
4711,Kölnisch Wasser 100 ml,12.49
2002,Apfelsaft – naturtrüb 1 l,4.99
3105,Crème brûlée 2er,3.29
5120,Bäcker’s Vollkornbrot 500 g,2.75
6001,Käse Gruyère 250 g,14.60
7007,Café crème Bohnen 500 g,5.92
""")
    write_csv(contract, "stores.csv", """
store_id,store_name
F01,Köln Süd
F02,Düsseldorf Altstadt
""")
    write_csv(contract, "customer_details.csv", """
customer_id,first_name
K1001,Jürgen
K1002,Hélène
K1003,Zoë
""")
    return ExportFixture((receipts, lines), contract, POS_MAPPING)


# --- c) A grocery chain's loyalty-card transactions (the shape of the public "Complete Journey" export) ---------
#
# One file, one row per basket line, every shopper a card holder (household_key). DAY counts days from a start
# the file does not give (here day 1 = 2024-01-01, so day 12 = 2024-01-12 and day 33 = 2024-02-02); TRANS_TIME is
# the time as a number HHMM without leading zeros (1631 = 16:31, 905 = 09:05, 12 = 00:12). SALES_VALUE is what the
# line cost; RETAIL_DISC (loyalty) and COUPON_DISC are discounts as extra columns (negative or 0), WEEK_NO the
# week of DAY: neither is one of our columns. Numbers are written as the export does (1.5, -0.6, 0.0). No
# product, customer or store master: products and customers are derived from the lines (ids only), the stores
# are implied by the ids the sales name.
#
# Sums of SALES_VALUE by basket:
#   26984851472  1.39 + 0.82 + 0.99 + 1.21 + 1.50 = 5.91   household 2375, store 364,   day 1 16:31
#   26984851516  1.98 + 1.57                      = 3.55   household 2375, store 364,   day 1 16:42
#   26984896261  1.19 + 2.99 + 3.09               = 7.27   household 1364, store 31742, day 1 15:20
#   26985025264  2.78 + 2.50                      = 5.28   household 98,   store 337,   day 12 09:05
#   27008841742  1.39 + 3.63                      = 5.02   household 1364, store 31742, day 33 00:12
# Net 27.03 over 5 baskets, 14 lines, 11 products, 3 households, 3 stores.

GROCERY_EXPORT = """
household_key,BASKET_ID,DAY,PRODUCT_ID,QUANTITY,SALES_VALUE,STORE_ID,RETAIL_DISC,TRANS_TIME,WEEK_NO,COUPON_DISC
2375,26984851472,1,1004906,1,1.39,364,-0.6,1631,1,0.0
2375,26984851472,1,1033142,1,0.82,364,0.0,1631,1,0.0
2375,26984851472,1,1036325,1,0.99,364,-0.3,1631,1,0.0
2375,26984851472,1,1082185,1,1.21,364,0.0,1631,1,0.0
2375,26984851472,1,8160430,1,1.5,364,-0.39,1631,1,0.0
2375,26984851516,1,826249,2,1.98,364,-0.6,1642,1,0.0
2375,26984851516,1,1043142,1,1.57,364,-0.68,1642,1,0.0
1364,26984896261,1,842930,1,1.19,31742,-0.5,1520,1,0.0
1364,26984896261,1,897044,1,2.99,31742,-0.4,1520,1,0.0
1364,26984896261,1,920955,1,3.09,31742,0.0,1520,1,0.0
98,26985025264,12,1004906,2,2.78,337,-1.2,905,2,0.0
98,26985025264,12,9527290,1,2.5,337,0.0,905,2,-0.55
1364,27008841742,33,1004906,1,1.39,31742,0.0,12,5,0.0
1364,27008841742,33,1082185,3,3.63,31742,0.0,12,5,0.0
"""

GROCERY_MAPPING = """
sources:
  transaction_data:
    files: "transaction_data*.csv"
    feeds: sales_lines
    columns:
      transaction_id: BASKET_ID
      transaction_date: >-
        DATE '2024-01-01' + CAST(DAY AS INTEGER) - 1
        + make_time(CAST(TRANS_TIME AS INTEGER) // 100, CAST(TRANS_TIME AS INTEGER) % 100, 0)
      customer_id: household_key
      store_id: STORE_ID
      product_id: PRODUCT_ID
      quantity: QUANTITY
      line_item_amount: SALES_VALUE
    derive:
      products: {}
      customers: {}
"""


def write_grocery(folder: Path) -> ExportFixture:
    """The loyalty-card transactions (transaction_data.csv) and the same sales in our contract."""
    export = _export(folder, "transaction_data.csv", GROCERY_EXPORT)
    contract = folder / "contract"
    write_csv(contract, "store_sales_header.csv", """
transaction_id,customer_id,store_id,transaction_date
26984851472,2375,364,2024-01-01 16:31:00
26984851516,2375,364,2024-01-01 16:42:00
26984896261,1364,31742,2024-01-01 15:20:00
26985025264,98,337,2024-01-12 09:05:00
27008841742,1364,31742,2024-02-02 00:12:00
""")
    write_csv(contract, "store_sales_line_items.csv", """
transaction_id,product_id,quantity,line_item_amount
26984851472,1004906,1,1.39
26984851472,1033142,1,0.82
26984851472,1036325,1,0.99
26984851472,1082185,1,1.21
26984851472,8160430,1,1.50
26984851516,826249,2,1.98
26984851516,1043142,1,1.57
26984896261,842930,1,1.19
26984896261,897044,1,2.99
26984896261,920955,1,3.09
26985025264,1004906,2,2.78
26985025264,9527290,1,2.50
27008841742,1004906,1,1.39
27008841742,1082185,3,3.63
""")
    write_csv(contract, "products.csv", """
product_id
1004906
1033142
1036325
1082185
8160430
826249
1043142
842930
897044
920955
9527290
""")
    write_csv(contract, "customer_details.csv", """
customer_id
2375
1364
98
""")
    return ExportFixture((export,), contract, GROCERY_MAPPING)
