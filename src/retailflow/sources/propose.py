"""The proposer behind `retailflow map`: a source mapping guessed from the export files themselves.

It holds the decisions, made over the column profiles of each file's sample (profiles): file columns are given
roles by their names (synonyms in several languages), the values confirm or refuse each role, and what follows
from the file as a whole is written in: the entity it feeds, a constant store for a one-channel export, the
amount as quantity × price, returns from C-prefixed invoice numbers, masters derived from the facts. The result
is rendered as a commented mapping file: every choice carries its reason and every column left out says why, so
a user edits a proposal instead of writing a mapping (docs/reference/sources.md).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import sqlglot
import sqlglot.expressions as sge
import yaml

from retailflow.model import ENTITIES, Entity, entity_for_file
from retailflow.sources.expressions import quote
from retailflow.sources.mapping import DERIVABLE, HEADER, LINES, SALES_LINES
from retailflow.sources.profiles import DateShape, Profile, Sniffed, load_sample, profile_columns, sniff

#: The placeholder of a start date the file does not give (a day-number column): it must be edited.
START_PLACEHOLDER = "YYYY-MM-DD"

#: Column names (lower case, letters and digits only) that say what a column holds, by role.
ROLE_NAMES: dict[str, tuple[str, ...]] = {
    "transaction": ("invoiceno", "invoice", "invoiceid", "invoicenumber", "invoicenr", "basketid", "basket",
                    "receipt", "receiptid", "receiptno", "receiptnumber", "bonnr", "bon", "bonid", "bonnummer",
                    "belegnr", "beleg", "belegnummer", "ticket", "ticketid", "ticketno", "orderid", "order",
                    "orderno", "ordernumber", "transactionid", "transaction", "transid", "txn", "txnid", "saleid"),
    "line_id": ("lineid", "lineitemid", "orderlineid", "invoicelineid"),
    "line_position": ("posnr", "position", "pos", "lineno", "linenumber", "linenr", "line", "zeile", "zeilennr"),
    "product": ("stockcode", "productid", "product", "productcode", "productno", "sku", "article", "articleid",
                "articleno", "artikelnr", "artikelnummer", "artnr", "itemid", "item", "itemcode", "itemno", "ean",
                "upc", "gtin", "barcode", "plu", "artikel"),
    "product_name": ("description", "productname", "productdescription", "itemname", "itemdescription",
                     "bezeichnung", "artikelbezeichnung", "artikelname", "articlename", "designation", "libelle"),
    "quantity": ("quantity", "qty", "menge", "anzahl", "units", "quantite", "quantité", "cantidad", "pieces",
                 "stück", "stk"),
    "date": ("invoicedate", "date", "transactiondate", "orderdate", "datum", "saledate", "salesdate", "timestamp",
             "datetime", "belegdatum", "bondatum", "purchasedate", "createdat"),
    "time": ("time", "uhrzeit", "zeit", "transtime", "transactiontime", "heure", "hora", "ordertime"),
    "day_number": ("day", "dayno", "daynr", "daynumber"),
    "unit_price": ("unitprice", "price", "einzelpreis", "preis", "listprice", "retailprice", "prixunitaire",
                   "precio", "priceeach", "vkpreis"),
    "amount": ("salesvalue", "amount", "netamount", "lineamount", "lineitemamount", "linetotal", "betrag", "value",
               "revenue", "sales", "montant", "importe", "extendedprice", "umsatz", "gesamtpreis"),
    "total": ("summe", "total", "totalamount", "receipttotal", "invoicetotal", "bontotal", "gesamt",
              "gesamtbetrag", "grandtotal", "ordertotal"),
    "customer": ("customerid", "customer", "customerno", "customernumber", "householdkey", "householdid",
                 "household", "kundennr", "kunde", "kundenid", "kundennummer", "client", "clientid", "memberid",
                 "member", "loyaltyid", "cardno", "cardid", "cardnumber", "loyaltycard"),
    "first_name": ("firstname", "vorname", "prenom", "prénom", "givenname", "forename"),
    "email": ("email", "mail", "emailaddress"),
    "store": ("storeid", "store", "storeno", "storenumber", "storecode", "shop", "shopid", "filiale", "filialnr",
              "filialid", "markt", "branch", "branchid", "location", "locationid", "outlet", "outletid", "site",
              "siteid", "magasin"),
    "store_name": ("storename", "filialname", "shopname", "branchname", "locationname"),
    "store_city": ("city", "storecity", "stadt", "ort", "ville"),
    "store_region": ("region", "state", "storeregion", "bundesland"),
    "transaction_type": ("transactiontype", "type", "belegart", "bonart"),
    "promotion": ("promotionid", "promotion", "promoid", "promo", "aktion", "aktionsnr"),
    "category": ("category", "productcategory", "kategorie", "warengruppe", "department", "categorie"),
    "stock": ("stock", "stocklevel", "currentstocklevel", "onhand", "stockonhand", "bestand"),
    "discount": ("retaildisc", "coupondisc", "couponmatchdisc", "discount", "rabatt", "remise", "descuento"),
    "week": ("weekno", "week", "weeknr", "kw", "woche"),
    "country": ("country", "land", "pays", "pais"),
}
#: Roles that are keys: a name ending in an id word (StoreNr, Customer_Key) also matches their stems.
ID_ROLES = ("transaction", "product", "customer", "store", "promotion")
ID_SUFFIXES = ("id", "no", "nr", "number", "num", "code", "key")
#: Roles no column of ours holds, and why.
UNPLACED_ROLES = {
    "discount": "a discount: our line_item_amount is the amount after discounts; the discount itself has no "
                "column of ours",
    "week": "a week number: weeks follow from the date",
    "country": "a country: no column of ours holds one",
}
#: The value shapes each role accepts (a role not listed accepts any).
ROLE_SHAPES: dict[str, frozenset[str]] = {
    **{role: frozenset({"whole", "float_id", "code", "empty"}) for role in (*ID_ROLES, "line_id")},
    "quantity": frozenset({"whole", "empty"}),
    "stock": frozenset({"whole", "empty"}),
    "line_position": frozenset({"whole"}),
    "day_number": frozenset({"whole"}),
    **{role: frozenset({"whole", "float_id", "decimal", "empty"}) for role in ("amount", "total", "unit_price")},
    "date": frozenset({"date", "empty"}),
    "time": frozenset({"time", "hhmm"}),
}
#: Per entity fed, the role each of its columns comes from.
FEED_TARGETS: dict[str, dict[str, str]] = {
    HEADER: {"transaction": "transaction_id", "customer": "customer_id", "store": "store_id",
             "date": "transaction_date", "total": "total_amount", "amount": "total_amount",
             "transaction_type": "transaction_type"},
    LINES: {"line_id": "line_item_id", "transaction": "transaction_id", "product": "product_id",
            "promotion": "promotion_id", "quantity": "quantity", "amount": "line_item_amount"},
    "products": {"product": "product_id", "product_name": "product_name", "category": "product_category",
                 "unit_price": "unit_price", "stock": "current_stock_level"},
    "customer_details": {"customer": "customer_id", "first_name": "first_name", "email": "email"},
    "stores": {"store": "store_id", "store_name": "store_name", "store_city": "store_city",
               "store_region": "store_region"},
    "inventory_daily": {"date": "snapshot_date", "store": "store_id", "product": "product_id",
                        "stock": "stock_on_hand"},
    "promotion_details": {"promotion": "promotion_id"},
}
# A row of both: an amount is the line's, the transaction's total comes from a total column (else its lines).
FEED_TARGETS[SALES_LINES] = {**FEED_TARGETS[HEADER], **FEED_TARGETS[LINES]}
#: Masters a fact source may derive: the role of their key and the roles of their other columns.
DERIVE_KEYS = {"products": "product", "customers": "customer", "stores": "store"}
DERIVE_TARGETS = {
    "products": {"product_name": "product_name", "unit_price": "unit_price", "category": "product_category"},
    "customers": {"first_name": "first_name", "email": "email"},
    "stores": {"store_name": "store_name", "store_city": "store_city", "store_region": "store_region"},
}
#: Entities whose rows name products, customers and stores: the sources masters may be derived from.
FACTS = (HEADER, LINES, SALES_LINES, "inventory_daily")
#: Every column name of ours: a file column named so is taken as it is when its entity is fed.
OUR_COLUMNS = frozenset(column.name for entity in ENTITIES.values() for column in entity.columns)


@dataclass(frozen=True)
class Choice:
    """One line of a proposal: our column, where it comes from (as YAML), and why."""

    target: str
    spec: str
    why: str
    reads: tuple[str, ...] = ()


@dataclass
class SourceProposal:
    """The proposed source of one kind of file, and what it could not place."""

    name: str
    files: str
    paths: tuple[Path, ...]
    rows: int
    feeds: str | None
    feeds_why: str
    read: list[Choice] = field(default_factory=list)
    columns: list[Choice] = field(default_factory=list)
    #: Remarks on our columns the file does not have (derived, implied), written as comments.
    remarks: list[str] = field(default_factory=list)
    derive: dict[str, list[Choice]] = field(default_factory=dict)
    derive_why: dict[str, str] = field(default_factory=dict)
    #: (file column or our column, why) for what it could not place or decide.
    unplaced: list[tuple[str, str]] = field(default_factory=list)
    #: The file column playing each role.
    roles: dict[str, Profile] = field(default_factory=dict)
    #: Columns whose names say no role: placed only when named exactly as a column of the entity fed.
    unknown: list[Profile] = field(default_factory=list)
    #: Every file column's profile, by name, in the file's order.
    profiles: dict[str, Profile] = field(default_factory=dict)
    #: Whether the files are in our contract already (named and shaped as an entity): no source needed.
    contract: bool = False


def propose(paths: Sequence[Path]) -> list[SourceProposal]:
    """A proposed source per kind of file (files whose names differ by a date or number share one)."""
    groups: dict[str, list[Path]] = {}
    for path in paths:
        groups.setdefault(file_pattern(path), []).append(path)
    proposals = [_propose_source(pattern, tuple(group)) for pattern, group in groups.items()]
    _name_apart(proposals)
    _derive_masters(proposals)
    for proposal in proposals:
        _report_unused(proposal)
    return proposals


def file_pattern(path: Path) -> str:
    """The glob a file's source reads: its name without a trailing date or number (sales_2024-12.csv -> sales*.csv)."""
    stem = re.sub(r"[\s_.-]*[0-9][0-9\s_.-]*$", "", path.stem) or path.stem
    return f"{stem.lower()}*{path.suffix.lower()}"


def _role_of(name: str) -> str | None:
    """The role a column name says (case, spaces and punctuation aside), or None."""
    key = re.sub(r"[\W_]", "", name.lower())
    for role, names in ROLE_NAMES.items():
        if key in names:
            return role
    for suffix in ID_SUFFIXES:
        stem = key.removesuffix(suffix)
        if stem != key:
            for role in ID_ROLES:
                if stem in ROLE_NAMES[role]:
                    return role
    return None


def _place_roles(proposal: SourceProposal) -> None:
    """Give each file column a role by its name (the values may refuse it) or, for dates, by its values."""
    for name, profile in proposal.profiles.items():
        role = _role_of(name)
        if role in UNPLACED_ROLES:
            proposal.unplaced.append((name, UNPLACED_ROLES[role]))
            continue
        # A date column nobody named is the date, unless its name is one of ours (a promotion's start_date).
        if (role is None and profile.shape == "date" and "date" not in proposal.roles
                and name.lower() not in OUR_COLUMNS):
            role = "date"
        if role is None:
            proposal.unknown.append(profile)
            continue
        accepted = ROLE_SHAPES.get(role)
        if accepted is not None and profile.shape not in accepted:
            proposal.unplaced.append((name, f"named like {_with_article(role)}, but {profile.describe()}"))
            continue
        if role in proposal.roles:
            proposal.unplaced.append((name, f"also {_with_article(role)}: {proposal.roles[role].name} is used"))
            continue
        proposal.roles[role] = profile


def _decide_feeds(roles: dict[str, Profile], names: Sequence[str]) -> tuple[str | None, str]:
    """The entity a file's rows are, from the roles its columns play (else from columns named as ours), and why."""
    def named(*wanted: str) -> str:
        return ", ".join(roles[role].name for role in wanted if role in roles)

    line_roles = ("product", "quantity")
    header_roles = ("customer", "store", "date", "day_number", "total")
    if "transaction" in roles and any(role in roles for role in line_roles):
        if any(role in roles for role in header_roles):
            return SALES_LINES, (f"lines ({named('transaction', *line_roles)}) that repeat their transaction's "
                                 f"{named(*header_roles)}: headers and line items at once")
        return LINES, f"lines ({named('transaction', *line_roles)}) without a date, customer or store"
    if "transaction" in roles:
        return HEADER, f"transactions ({named('transaction', *header_roles)}) without products"
    if all(role in roles for role in ("product", "store", "date", "stock")):
        return "inventory_daily", f"stock by {named('date', 'store', 'product')}"
    for role, entity in (("promotion", "promotion_details"), ("product", "products"),
                         ("customer", "customer_details"), ("store", "stores")):
        if role in roles:
            return entity, f"{roles[role].name} without transactions: the {entity} master"
    lowered = {name.lower() for name in names}
    for entity in ENTITIES.values():
        if set(entity.primary_key) <= lowered:
            return entity.name, (f"{len(lowered & set(entity.column_names))} columns named as {entity.name}'s, its "
                                 f"key {', '.join(entity.primary_key)} among them")
    return None, "could not tell: no transaction, product, customer or store column recognised; write the entity"


def _name_apart(proposals: list[SourceProposal]) -> None:
    """Number the sources whose patterns give one name (sales*.csv, sales*.txt): a mapping names each once, and
    YAML would keep only the last of two."""
    taken: set[str] = set()
    for proposal in proposals:
        if proposal.contract:
            continue
        name, number = proposal.name, 1
        while name in taken:
            number += 1
            name = f"{proposal.name}_{number}"
        proposal.name = name
        taken.add(name)


def _propose_source(pattern: str, paths: tuple[Path, ...]) -> SourceProposal:
    """The source of files sharing a name pattern, from the first file's sample."""
    sniffed = sniff(paths[0])
    connection = duckdb.connect()
    try:
        names = load_sample(connection, sniffed)
        rows = connection.execute("SELECT count(*) FROM sample").fetchone()[0]
        proposal = SourceProposal(re.sub(r"\W+", "_", pattern.split("*")[0]).strip("_") or "export", pattern,
                                  paths, rows, None, "")
        entity = entity_for_file(paths[0])
        if entity and set(entity.required_columns) <= {name.lower() for name in names}:
            proposal.feeds, proposal.contract = entity.name, True
            proposal.feeds_why = f"named and shaped as our {entity.name} file: read as it is, without a source"
            return proposal
        proposal.profiles = profile_columns(connection, names)
        _place_roles(proposal)
        proposal.feeds, proposal.feeds_why = _decide_feeds(proposal.roles, names)
        _read_options(proposal, sniffed)
        if proposal.feeds:
            _choose_columns(proposal, connection)
    finally:
        connection.close()
    return proposal


def _read_options(proposal: SourceProposal, sniffed: Sniffed) -> None:
    """`read:` as the text is written: what differs from the contract's CSV only."""
    read = proposal.read
    if sniffed.delimiter != ",":
        read.append(Choice("delimiter", json.dumps(sniffed.delimiter), sniffed.delimiter_why))
    if sniffed.encoding != "utf-8":
        read.append(Choice("encoding", sniffed.encoding, sniffed.encoding_why))
    if sniffed.skip:
        read.append(Choice("skip", str(sniffed.skip), sniffed.delimiter_why))
    numbers = [profile for profile in proposal.roles.values() if profile.shape == "decimal"]
    comma = next((profile for profile in numbers if profile.decimal_comma), None)
    if comma:
        read.append(Choice("decimal", '","', f"{comma.name}: {comma.high!r}, a decimal comma"))
    thousands = next((profile for profile in numbers if profile.thousands), None)
    if thousands:
        read.append(Choice("thousands", json.dumps(thousands.thousands),
                           f"{thousands.name}: {thousands.grouped!r} groups thousands"))


def _choose_columns(proposal: SourceProposal, connection: duckdb.DuckDBPyConnection) -> None:
    """Our columns of the entity fed, from the roles and what follows from them."""
    roles, feeds = proposal.roles, proposal.feeds
    targets = FEED_TARGETS.get(feeds, {})
    chosen: dict[str, Choice] = {}
    for role, target in targets.items():
        if role in roles and target not in chosen:
            chosen[target] = _from_column(roles[role], role, target)
    if "date" in roles and "date" in targets:
        _date_column(proposal, chosen, targets["date"])
    if "day_number" in roles and "date" in targets and targets["date"] not in chosen:
        chosen[targets["date"]] = _day_number_date(proposal)
    if feeds in (LINES, SALES_LINES):
        _line_columns(proposal, chosen)
    if feeds in (HEADER, SALES_LINES):
        _header_columns(proposal, chosen, connection)
    order = [column.name for entity in _entities_fed(feeds) for column in entity.columns]
    for profile in proposal.unknown:
        if profile.name.lower() in order and profile.name.lower() not in chosen:
            chosen[profile.name.lower()] = Choice(profile.name.lower(), column_reference(profile.name),
                                                  f"our own column name; {profile.describe()}", (profile.name,))
    proposal.columns = sorted(chosen.values(), key=lambda choice: order.index(choice.target))
    for entity in _entities_fed(feeds):
        for column in entity.required_columns:
            # Line ids and totals the load derives when absent: _line_columns and _header_columns said so.
            if column not in chosen and column not in ("line_item_id", "total_amount"):
                proposal.unplaced.append((column, f"no column of the file gives {column}; map one"))


def _entities_fed(feeds: str) -> tuple[Entity, ...]:
    """The entities a source feeds, parents first."""
    return (ENTITIES[HEADER], ENTITIES[LINES]) if feeds == SALES_LINES else (ENTITIES[feeds],)


def column_reference(name: str) -> str:
    """A file column as SQL: bare when SQL reads it as that column, else in double quotes."""
    # Only a plain identifier is parsed: sqlglot cannot even tokenize some names (Order'ID).
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        return quote(name)
    try:
        parsed = sqlglot.parse_one(name, read="duckdb")
    except sqlglot.errors.ParseError:
        return quote(name)
    return name if isinstance(parsed, sge.Column) and parsed.name == name else quote(name)


def _from_column(profile: Profile, role: str, target: str) -> Choice:
    """Our column `target` as the file column `profile` (ids written as 17850.0 without their .0)."""
    reference = column_reference(profile.name)
    if profile.shape == "float_id":
        return Choice(target, f"regexp_replace({reference}, '\\.0$', '')",
                      f"ids written as {profile.low}: the .0 removed", (profile.name,))
    spec = reference if reference == profile.name else f"{{column: {json.dumps(profile.name, ensure_ascii=False)}}}"
    return Choice(target, spec, f"named like {_with_article(role)}; {profile.describe()}", (profile.name,))


def _with_article(role: str) -> str:
    """A role in words with its article, for reasons: 'a unit price', 'an amount'."""
    words = role.replace("_", " ")
    return f"{'an' if words[0] in 'aeio' else 'a'} {words}"


def _date_column(proposal: SourceProposal, chosen: dict[str, Choice], target: str) -> None:
    """The date column, joined with a separate time column, and its format in `read`."""
    date = proposal.roles["date"]
    shape = date.date or DateShape((), True, "empty in the sample")
    formats, why = shape.formats, f"{date.name}: {shape.why}"
    time = proposal.roles.get("time")
    if time and not shape.has_time:
        base = formats[0] if formats else "%Y-%m-%d"
        if time.shape == "hhmm":
            spec = f"{column_reference(date.name)} || ' ' || lpad({column_reference(time.name)}, 4, '0')"
            formats = (f"{base} %H%M",)
        else:
            spec = f"{column_reference(date.name)} || ' ' || {column_reference(time.name)}"
            formats = (f"{base} %H:%M" + (":%S" if time.high and time.high.count(":") == 2 else ""),)
        chosen[target] = Choice(target, spec, f"the date {date.name} and the time {time.name} joined",
                                (date.name, time.name))
        why += f"; with the time {time.name}"
    elif time:
        proposal.unplaced.append((time.name, f"a time, but {date.name} has its own"))
    if formats:
        column_type = next(entity.column(target).type for entity in _entities_fed(proposal.feeds)
                           if target in entity.column_names)
        value = json.dumps(formats[0]) if len(formats) == 1 else json.dumps(list(formats))
        proposal.read.append(Choice(f"{column_type}_format", value, why))
    if not shape.decided:
        proposal.unplaced.append((date.name, shape.why + "; check the format in read"))


def _day_number_date(proposal: SourceProposal) -> Choice:
    """A date from a day number counted from a start the file does not give (plus the time of day, if any)."""
    day = proposal.roles["day_number"]
    spec = f"DATE '{START_PLACEHOLDER}' + CAST({column_reference(day.name)} AS INTEGER) - 1"
    reads = [day.name]
    time = proposal.roles.get("time")
    if time:
        reference = column_reference(time.name)
        spec += (f" + make_time(CAST({reference} AS INTEGER) // 100, CAST({reference} AS INTEGER) % 100, 0)"
                 if time.shape == "hhmm" else f" + CAST({reference} AS TIME)")
        reads.append(time.name)
    proposal.unplaced.append((day.name, f"a day number ({day.low} … {day.high}) counted from a start the file does "
                                        f"not give: write the date of day 1 for {START_PLACEHOLDER}"))
    return Choice("transaction_date", spec, f"EDIT the start date: {day.name} counts days"
                  + (f", {time.name} is the time HHMM" if time and time.shape == "hhmm" else ""), tuple(reads))


def _line_columns(proposal: SourceProposal, chosen: dict[str, Choice]) -> None:
    """Line ids from a position within the transaction, and the amount as quantity × price when none is sent."""
    roles = proposal.roles
    transaction, position = roles.get("transaction"), roles.get("line_position")
    if "line_item_id" not in chosen and transaction and position:
        chosen["line_item_id"] = Choice(
            "line_item_id", f"{column_reference(transaction.name)} || '-' || {column_reference(position.name)}",
            f"{position.name} numbers the lines of each {transaction.name}: unique together",
            (transaction.name, position.name))
    elif "line_item_id" not in chosen:
        proposal.remarks.append("line_item_id: not in the file: <transaction_id>-<n>, n the line's position")
    price, quantity = roles.get("unit_price"), roles.get("quantity")
    if "line_item_amount" not in chosen and price and quantity:
        chosen["line_item_amount"] = Choice(
            "line_item_amount", f"round({column_reference(quantity.name)} * {column_reference(price.name)}, 2)",
            f"no amount column: {quantity.name} × {price.name}, signed like the quantity",
            (quantity.name, price.name))


def _header_columns(proposal: SourceProposal, chosen: dict[str, Choice],
                    connection: duckdb.DuckDBPyConnection) -> None:
    """A constant store when the file has none, and returns from C-prefixed transaction ids with negative signs."""
    roles = proposal.roles
    if "store_id" not in chosen:
        chosen["store_id"] = Choice("store_id", "{value: ONLINE}",
                                    "no store column: one channel (name it as you like)")
    if "total_amount" not in chosen:
        proposal.remarks.append("total_amount: not in the file: each transaction totals its lines")
    transaction = roles.get("transaction")
    signed = roles.get("quantity") or roles.get("total") or roles.get("amount")
    if "transaction_type" not in chosen and transaction and signed:
        c_prefixed = f"{quote(transaction.name)} LIKE 'C%'"
        signed_value = f"TRY_CAST(replace({quote(signed.name)}, ',', '.') AS DOUBLE)"
        prefixed, negative, others = connection.execute(
            f"SELECT count(*) FILTER (WHERE {c_prefixed}), "
            f"count(*) FILTER (WHERE {c_prefixed} AND {signed_value} < 0), "
            f"count(*) FILTER (WHERE NOT {c_prefixed}) FROM sample").fetchone()
        if prefixed and prefixed == negative and others:
            reference = column_reference(transaction.name)
            chosen["transaction_type"] = Choice(
                "transaction_type", f"CASE WHEN {reference} LIKE 'C%' THEN 'return' ELSE 'sale' END",
                f"cancellations: the {prefixed} line(s) whose {transaction.name} starts with C have a negative "
                f"{signed.name}", (transaction.name,))


def _derive_masters(proposals: list[SourceProposal]) -> None:
    """Masters no given file feeds, derived from the first fact source that names their keys."""
    fed = {proposal.feeds for proposal in proposals}
    for master, key_role in DERIVE_KEYS.items():
        entity = DERIVABLE[master]
        sources = [proposal for proposal in proposals if proposal.feeds in FACTS and key_role in proposal.roles]
        if not sources:
            continue
        if entity in fed:
            for proposal in sources:
                for role in DERIVE_TARGETS[master]:
                    if role in proposal.roles:
                        proposal.unplaced.append((proposal.roles[role].name, f"{entity} come from their own file"))
            continue
        source = sources[0]
        choices = [_from_column(source.roles[role], role, target)
                   for role, target in DERIVE_TARGETS[master].items() if role in source.roles]
        key = source.roles[key_role].name
        if master == "stores" and not choices:
            source.remarks.append(f"stores: no stores file; the stores are those {key} names")
            continue
        source.derive[master] = choices
        source.derive_why[master] = f"no {entity} file among the files: {master} from these rows, keyed by {key}"


def _report_unused(proposal: SourceProposal) -> None:
    """Every column nothing reads, with why: its name says no role, or its role is not used (a price beside an
    amount when products come from their own file)."""
    derived = [choice for choices in proposal.derive.values() for choice in choices]
    read = {name for choice in [*proposal.columns, *derived] for name in choice.reads}
    told = {column for column, _ in proposal.unplaced}
    proposal.unplaced += [(profile.name, f"name not recognised; {profile.describe()}")
                          for profile in proposal.unknown if profile.name not in read]
    for role, profile in proposal.roles.items():
        if profile.name not in read and profile.name not in told:
            proposal.unplaced.append((profile.name, f"{_with_article(role)}: not used by "
                                                    f"{proposal.feeds or 'an unknown entity'}"))


def _yaml_scalar(text: str) -> str:
    """`text` as a YAML scalar: plain when YAML reads it back unchanged, else double-quoted."""
    if text.startswith(("{", "[")):
        return text
    try:
        plain = yaml.safe_load(f"key: {text}") == {"key": text} and " #" not in text
    except yaml.YAMLError:
        plain = False
    return text if plain else json.dumps(text, ensure_ascii=False)


def _commented(line: str, why: str) -> str:
    """A YAML line with its reason as a comment, the comments aligned."""
    return f"{line:<46}  # {why}" if why else line


def render_yaml(proposals: Sequence[SourceProposal]) -> str:
    """The proposal as a commented mapping file: each line says why; what could not be placed is listed."""
    names = ", ".join(path.name for proposal in proposals for path in proposal.paths)
    lines = [f"# Proposed by `retailflow map` from {names}.",
             "# Each line says why it was chosen; edit what is marked, then run",
             "# `retailflow --sources THIS_FILE run FOLDER`. docs/reference/sources.md describes every key."]
    lines += [f"# {proposal.paths[0].name}: {proposal.feeds_why}" for proposal in proposals if proposal.contract]
    mapped = [proposal for proposal in proposals if not proposal.contract]
    lines.append("sources:" if mapped else "sources: {}")
    for proposal in mapped:
        lines.append(_commented(f"  {proposal.name}:", f"{proposal.rows} rows sampled from {proposal.paths[0].name}"))
        lines.append(f"    files: {json.dumps(proposal.files)}")
        lines.append(_commented(f"    feeds: {proposal.feeds or json.dumps('')}", proposal.feeds_why))
        if proposal.read:
            lines.append("    read:")
            lines += [_commented(f"      {choice.target}: {choice.spec}", choice.why) for choice in proposal.read]
        if proposal.columns:
            lines.append("    columns:")
            lines += [_commented(f"      {choice.target}: {_yaml_scalar(choice.spec)}", choice.why)
                      for choice in proposal.columns]
            lines += [f"      # {remark}" for remark in proposal.remarks]
        if proposal.derive:
            lines.append("    derive:")
            for master, choices in proposal.derive.items():
                why = proposal.derive_why[master]
                if not choices:
                    lines.append(_commented(f"      {master}: {{}}", why))
                    continue
                lines.append(_commented(f"      {master}:", why))
                lines += [_commented(f"        {choice.target}: {_yaml_scalar(choice.spec)}", choice.why)
                          for choice in choices]
        if proposal.unplaced:
            lines.append("    # Not placed or not decided:")
            lines += [f"    #   {column}: {why}" for column, why in proposal.unplaced]
    return "\n".join(lines) + "\n"


def summary_rows(proposals: Sequence[SourceProposal]) -> list[dict]:
    """One row per choice and per column left out, each reason cut to its first clause (the file has it whole)."""
    rows = []
    for proposal in proposals:
        rows.append({"source": proposal.name, "ours": "feeds", "from": proposal.feeds or "?",
                     "why": proposal.feeds_why.split(":")[0]})
        derived = [choice for choices in proposal.derive.values() for choice in choices]
        rows += [{"source": proposal.name, "ours": choice.target, "from": ", ".join(choice.reads) or choice.spec,
                  "why": choice.why.split(";")[0]} for choice in proposal.columns + derived]
        rows += [{"source": proposal.name, "ours": "—", "from": column, "why": why.split(";")[0]}
                 for column, why in proposal.unplaced]
    return rows
