"""Loyalty points: rules applied per transaction into an append-only ledger, balances and tiers.

A rule applies to a transaction when total_amount >= min_spend_threshold and its optional
conditions hold: valid_days (e.g. "Sat,Sun"), start_date/end_date, applicable_category (a line
of that category). Earning = floor(total × points_per_unit_spend) + bonus_points, combined by policy:
`best` (default) — the base rate once (the highest applicable rate) plus the largest applicable
bonus; `stack` — the base rate once plus every applicable bonus. Ties go to the lowest rule id.

Returns take points back (reason 'returned', negative rows; see points_ledger).

Tables: loyalty.points_ledger (one row per transaction × rule whose points changed a balance:
earned, returned, or restated; a re-run adds nothing, so it never double-counts),
loyalty.opening_balances (one row per customer: the balance and last purchase date from the first
staged export), loyalty.balances (one row per customer), loyalty.runs (one row per run that
credited points).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid

import ibis
import ibis.expr.types as ir

from retailflow import catalog, incremental
from retailflow.analytics.purchases import PURCHASES
from retailflow.analytics.purchases import update as update_purchases
from retailflow.analytics.transactions import counted, counted_transactions
from retailflow.backends import NOW, Backend
from retailflow.backends.run_values import run_value
from retailflow.config import env
from retailflow.errors import UserError
from retailflow.tables import Store, as_is, indexed_store, matching, staging_table

POLICIES = ("best", "stack")
DEFAULT_TIERS = (("Bronze", 0), ("Silver", 500), ("Gold", 1500), ("Platinum", 4000))
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

EARNED, RESTATED, RETURNED = "earned", "restated", "returned"
#: The stage's name in audit.stage_marks.
STAGE = "loyalty"
#: What ledger_changes compares booked and expected points by.
LEDGER_KEY = ("transaction_id", "rule_id", "customer_id")
#: The temporary table holding the expected ledger of a run (see run_loyalty).
EXPECTED = "rf_loyalty_expected"
#: The temporary table holding the headers a run judges, where the engine needs it (see _affected).
AFFECTED = "rf_loyalty_affected"
#: The returns naming a staged sale that earned, with their net so far (points_ledger), where the engine keeps them.
LINKED = "rf_loyalty_linked"


def tiers_from_env() -> tuple[tuple[str, int], ...]:
    """Tier thresholds from RETAILFLOW_LOYALTY_TIERS ("Bronze:0,Silver:500,Gold:1500,Platinum:4000")."""
    text = env("RETAILFLOW_LOYALTY_TIERS")
    if not text:
        return DEFAULT_TIERS
    try:
        tiers = tuple((name.strip(), int(points)) for name, points in (part.split(":") for part in text.split(",")))
    except ValueError:
        raise UserError("RETAILFLOW_LOYALTY_TIERS must look like Bronze:0,Silver:500,Gold:1500") from None
    return tuple(sorted(tiers, key=lambda tier: tier[1]))


def applicable_rules(headers: ir.Table, line_items: ir.Table, products: ir.Table, loyalty_rules: ir.Table) -> ir.Table:
    """One row per transaction × rule with every condition evaluated (applies = all of them hold)."""
    # Only categories some rule asks for: with no category rule this is empty and costs one scan,
    # not a distinct (transaction, category) list as long as the line items.
    wanted = loyalty_rules.filter(loyalty_rules.applicable_category.notnull()).select(
        product_category=loyalty_rules.applicable_category)
    categories = (line_items.join(products, "product_id").semi_join(wanted, "product_category")
                  .select("transaction_id", "product_category").distinct())
    pairs = headers.cross_join(loyalty_rules)
    pairs = pairs.left_join(categories, [pairs.transaction_id == categories.transaction_id,
                                         pairs.applicable_category == categories.product_category]).select(
        pairs, has_category=categories.product_category.notnull())
    weekday = ibis.cases(*[(pairs.transaction_date.day_of_week.index() == index, name)
                           for index, name in enumerate(WEEKDAYS)])
    day = pairs.transaction_date.date()
    checks = pairs.mutate(
        weekday=weekday,
        meets_threshold=pairs.total_amount >= pairs.min_spend_threshold,
        right_day=pairs.valid_days.isnull() | pairs.valid_days.lower().contains(weekday),
        in_period=(pairs.start_date.isnull() | (day >= pairs.start_date)) & (pairs.end_date.isnull() | (day <= pairs.end_date)),
        right_category=pairs.applicable_category.isnull() | pairs.has_category,
    )
    return checks.mutate(applies=checks.meets_threshold & checks.right_day & checks.in_period & checks.right_category)


def _earnings(priced: ir.Table, line_items: ir.Table, products: ir.Table, loyalty_rules: ir.Table, key: list[str],
              policy: str) -> ir.Table:
    """One row per `key` × rule that earns points on `priced` (transaction_id, transaction_date and total_amount:
    the transaction whose day and basket the rules judge, and the total they judge): base and bonus points."""
    if policy not in POLICIES:
        raise UserError(f"unknown loyalty policy {policy!r}; use best or stack")
    rules = applicable_rules(priced, line_items, products, loyalty_rules)
    rules = rules.filter(rules.applies)
    group = [rules[name] for name in key]
    by_rate = ibis.window(group_by=group, order_by=[rules.points_per_unit_spend.desc(), rules.rule_id])
    by_bonus = ibis.window(group_by=group, order_by=[rules.bonus_points.desc(), rules.rule_id])
    ranked = rules.mutate(rate_rank=ibis.row_number().over(by_rate), bonus_rank=ibis.row_number().over(by_bonus))
    base = ibis.ifelse(ranked.rate_rank == 0, (ranked.total_amount * ranked.points_per_unit_spend).floor(), 0)
    bonus = ranked.bonus_points if policy == "stack" else ibis.ifelse(ranked.bonus_rank == 0, ranked.bonus_points, 0)
    return ranked.select(*key, "rule_id", base_points=base.cast("int64"), bonus_points=bonus.cast("int64"))


def _ledger_rows(earned: ir.Table, headers: ir.Table, reason: str) -> ir.Table:
    """Ledger rows of `earned` (transaction_id, rule_id, customer_id, base and bonus points), dated as `headers`
    and with the sale a return names (NULL for a purchase)."""
    earned = earned.filter((earned.base_points != 0) | (earned.bonus_points != 0))
    rows = earned.join(headers.select("transaction_id", "transaction_date", "total_amount", "original_transaction_id"),
                       "transaction_id")
    return rows.select("transaction_id", "rule_id", "customer_id", "transaction_date", "total_amount",
                       "base_points", "bonus_points", points=rows.base_points + rows.bonus_points,
                       reason=ibis.literal(reason),
                       original_transaction_id=rows.original_transaction_id if reason == RETURNED
                       else ibis.null("string"))


def points_ledger(headers: ir.Table, line_items: ir.Table, products: ir.Table, loyalty_rules: ir.Table, *,
                  policy: str = "best", originals: ir.Table | None = None, returns: bool = True,
                  exists_per_row: bool = False, store: Store = as_is) -> ir.Table:
    """One row per transaction × rule whose points change a loyalty customer's balance: base, bonus, total, reason.

    A purchase (net total above 0) earns (reason 'earned'). A return (net total below 0) claws back (reason
    'returned', negative points). When it names a staged sale (original_transaction_id, found in `originals`:
    the staged headers, every one by default) and that sale earned (a loyalty customer's, not a void), the sale
    is judged again on its day and basket at its net total after this return and the ones before it (by date,
    then id; 0 or less earns nothing): the return takes back the difference from the sale's customer, so base
    points follow the amount and a bonus goes once the net falls below its threshold; a sale returned in full
    leaves its customer's points where they were before it. A return naming a staged sale that earned nothing
    takes nothing back. A return naming no sale, or one not staged, takes back from its own customer the base
    points of the returned amount at the rate the rules give on its own day and basket (no bonus: nothing says
    which sale's threshold it breaks). Anonymous sales and voids earn nothing.

    `returns=False` says `headers` hold no return: the purchases' rows alone, without the joins returns need.
    `exists_per_row`: the engine runs NOT EXISTS as a subquery per row (`Capabilities.joins_exists_per_row`), so
    the returns naming no staged sale are found by a LEFT JOIN instead (the same rows). `store`
    (tables.indexed_store) keeps the linked returns as an indexed table where the engine needs it.
    """
    originals = headers if originals is None else originals
    kept = counted_transactions(headers)
    sales = kept.filter(kept.customer_id.notnull() & (kept.total_amount > 0))
    earned = _earnings(sales, line_items, products, loyalty_rules, ["transaction_id", "customer_id"], policy)
    if not returns:
        return _ledger_rows(earned, headers, EARNED)
    return_rows = kept.filter(kept.total_amount < 0)
    known = originals.select(
        _original=originals.transaction_id, _original_date=originals.transaction_date,
        _original_total=originals.total_amount, _original_customer=originals.customer_id,
        _original_type=originals.transaction_type)
    named = return_rows.join(known, return_rows.original_transaction_id == known._original)
    linked = named.filter(named._original_customer.notnull() & (named._original_total > 0)
                          & counted(named._original_type))
    # Every staged return of the same sale, in order, gives this one's net before and after.
    all_returns = counted_transactions(originals).filter(originals.total_amount < 0)
    mine = linked.select("transaction_id", "_original")
    others = all_returns.select(_sibling=all_returns.transaction_id, _sibling_date=all_returns.transaction_date,
                                _sibling_total=all_returns.total_amount,
                                _sibling_original=all_returns.original_transaction_id)
    siblings = mine.join(others, mine._original == others._sibling_original)
    this = linked.select(_this=linked.transaction_id, _this_date=linked.transaction_date)
    siblings = siblings.join(this, siblings.transaction_id == this._this)
    siblings = siblings.filter((siblings._sibling_date < siblings._this_date)
                               | ((siblings._sibling_date == siblings._this_date)
                                  & (siblings._sibling <= siblings._this)))
    returned = siblings.group_by("transaction_id").aggregate(_returned_so_far=siblings._sibling_total.sum())
    linked = store(LINKED, linked.join(returned, "transaction_id"), ("transaction_id",))
    net_after = linked._original_total + linked._returned_so_far
    net_before = net_after - linked.total_amount

    def judged(total: ir.NumericValue, moment: str) -> ir.Table:
        """Per return × rule, what its sale earns at `total` (nothing at 0 or less, as a sale would not earn)."""
        priced = linked.filter(total > 0).select(
            _return=linked.transaction_id, transaction_id=linked._original, transaction_date=linked._original_date,
            customer_id=linked._original_customer, total_amount=total.cast("decimal(12, 2)"))
        found = _earnings(priced, line_items, products, loyalty_rules, ["_return", "customer_id"], policy)
        return found.rename({f"{moment}_base": "base_points", f"{moment}_bonus": "bonus_points",
                             f"{moment}_return": "_return", f"{moment}_customer": "customer_id",
                             f"{moment}_rule": "rule_id"})

    # Per return and rule, after minus before: the rows of both moments in one UNION ALL, summed per key (a
    # return's customer is its sale's at both), not a FULL JOIN. MariaDB has none: Ibis writes LEFT JOIN UNION
    # RIGHT JOIN with NOT EXISTS, which judged each moment twice (a 30-day backfill of 20k line items: 1.7 s of
    # the 4.5 s statement); this judges each once, on every engine.
    after, before = judged(net_after, "after"), judged(net_before, "before")
    moments = after.select(transaction_id="after_return", rule_id="after_rule", customer_id="after_customer",
                           base_points="after_base", bonus_points="after_bonus").union(
        before.select(transaction_id="before_return", rule_id="before_rule", customer_id="before_customer",
                      base_points=-before.before_base, bonus_points=-before.before_bonus), distinct=False)
    delta = moments.group_by("transaction_id", "rule_id", "customer_id").aggregate(
        base_points=moments.base_points.sum(), bonus_points=moments.bonus_points.sum())
    sold = named.select(_named=named.transaction_id)
    carded = return_rows.filter(return_rows.customer_id.notnull())
    if exists_per_row:
        # NOT EXISTS would scan `named` again for every staged transaction (MariaDB tests it before the return
        # filter): 4.7k headers took 21 s, 26k over 4 minutes. The returns without a sale, by a LEFT JOIN it hashes.
        marked = sold.distinct().mutate(_sold=ibis.literal(True))
        unlinked = carded.left_join(marked, carded.transaction_id == marked._named).select(*carded.columns, "_sold")
        unlinked = unlinked.filter(unlinked._sold.isnull()).drop("_sold")
    else:
        unlinked = carded.anti_join(sold, carded.transaction_id == sold._named)
    unlinked = unlinked.mutate(total_amount=(-unlinked.total_amount).cast("decimal(12, 2)"))
    base_only = _earnings(unlinked, line_items, products, loyalty_rules, ["transaction_id", "customer_id"], policy)
    base_only = base_only.select("transaction_id", "rule_id", "customer_id", base_points=-base_only.base_points,
                                 bonus_points=ibis.literal(0, "int64"))
    return _ledger_rows(earned, headers, EARNED).union(
        _ledger_rows(delta.union(base_only), headers, RETURNED), distinct=False)


def ledger_changes(expected: ir.Table, booked: ir.Table, *, policy: str) -> ir.Table:
    """The ledger rows that make `booked` (ledger rows of some transactions) sum to `expected` (points_ledger of the
    same transactions as staged now), per transaction, rule and customer.

    Where they differ, the booked net is reversed (a negative row, reason 'restated') and the expected points
    credited (reason 'earned'); where they agree nothing is written, so a re-run adds nothing. Reversals negate
    every numeric column, so the ledger's sums per transaction stay those of what is staged.
    """
    key = list(LEDGER_KEY)
    net = booked.group_by(key).aggregate(
        _base=booked.base_points.sum(), _bonus=booked.bonus_points.sum(), _points=booked.points.sum(),
        _total=booked.total_amount.sum(), _date=booked.transaction_date.max(), _policy=booked.policy.max(),
        _original=booked.original_transaction_id.max())
    net = net.filter((net._points != 0) | (net._base != 0) | (net._bonus != 0))
    net = net.rename({f"_{name}": name for name in key})
    joined = expected.outer_join(net, [expected[name] == net[f"_{name}"] for name in key])
    differ = (joined.points.isnull() | joined._points.isnull() | (joined.points != joined._points)
              | (joined.base_points != joined._base) | (joined.bonus_points != joined._bonus))
    reversals = joined.filter(differ & joined._points.notnull())
    reversals = reversals.select(
        transaction_id=reversals._transaction_id, rule_id=reversals._rule_id, customer_id=reversals._customer_id,
        transaction_date=reversals._date, total_amount=(-reversals._total).cast("decimal(10, 2)"),
        base_points=-reversals._base, bonus_points=-reversals._bonus, points=-reversals._points,
        policy=reversals._policy, reason=ibis.literal(RESTATED), original_transaction_id=reversals._original)
    credits = joined.filter(differ & joined.points.notnull())
    credits = credits.select(*[name for name in expected.columns if name not in ("reason", "original_transaction_id")],
                             policy=ibis.literal(policy), reason=credits.reason,
                             original_transaction_id=credits.original_transaction_id)
    return reversals.union(credits)


def balances(customers: ir.Table, opening: ir.Table, ledger: ir.Table, purchases: ir.Table,
             tiers: tuple[tuple[str, int], ...] = DEFAULT_TIERS, run_id: str | None = None) -> ir.Table:
    """One row per customer: opening points, points earned, balance, tier, last purchase, points this run.

    The last staged purchase comes from `purchases` (analytics.customer_purchases)."""
    earned = ledger.group_by("customer_id").aggregate(
        earned_points=ledger.points.sum(),
        run_points=(ledger.run_id == run_value("run", run_id or "", "string")).ifelse(ledger.points, 0).sum())
    bought = purchases.select("customer_id", last_transaction=purchases.last_day)
    # The export's own last purchase date as first staged (opening), not the staged one: that is this stage's
    # write-back, which would keep a sale a restated day removed.
    rows = customers.select("customer_id", "last_purchase_date").left_join(opening, "customer_id").select(
        "customer_id", last_purchase_date=ibis.ifelse(opening.customer_id.isnull(), customers.last_purchase_date,
                                                      opening.last_purchase_date),
        opening_points=opening.opening_points.fill_null(0))
    rows = rows.left_join(earned, "customer_id").select(rows, earned.earned_points, earned.run_points)
    rows = rows.left_join(bought, "customer_id").select(rows, bought.last_transaction)
    balance = rows.opening_points + rows.earned_points.fill_null(0)
    tier = ibis.cases(*[(balance >= threshold, name) for name, threshold in reversed(tiers)], else_=tiers[0][0])
    last = ibis.cases((rows.last_transaction.isnull(), rows.last_purchase_date),
                      (rows.last_purchase_date.isnull(), rows.last_transaction),
                      (rows.last_transaction > rows.last_purchase_date, rows.last_transaction),
                      else_=rows.last_purchase_date)
    return rows.select("customer_id", "opening_points", earned_points=rows.earned_points.fill_null(0),
                       balance=balance, tier=tier, last_purchase_date=last,
                       run_points=rows.run_points.fill_null(0))


#: The tables the stage writes row by row (balances is replaced from its expression).
DECLARED = tuple(catalog.stored(f"loyalty.{name}") for name in ("points_ledger", "opening_balances", "runs"))
LEDGER, OPENING, RUNS = (declared.table() for declared in DECLARED)
BALANCES = catalog.table("loyalty.balances")


def _ensure_tables(backend: Backend) -> None:
    # A ledger from before restatement lacks reason and original_transaction_id, opening balances from the first
    # release last_purchase_date: ensure_tables adds them.
    with backend.transaction():
        backend.ensure_tables(DECLARED)


def _affected(backend: Backend, headers: ir.Table, changed: incremental.Days) -> tuple[ir.Table, ir.Table, ir.Table]:
    """The staged headers whose ledger rows a change of `changed` days may alter, their booked ledger rows, and the
    line items the rules read (those transactions' and their sales').

    Besides the changed days' transactions: every return of a sale those days touch — a sale on them, a sale a
    return on them names, and the sale or the named sale of a ledger row booked on them (a restated day may have
    removed the sale or one of its returns): a return's points depend on its sale and on the returns before it.
    """
    lines = staging_table("store_sales_line_items")
    if changed is incremental.EVERY_DAY:
        return headers, LEDGER, lines
    on_days = incremental.on_days(headers, headers.transaction_date, changed)
    booked_on_days = incremental.on_days(LEDGER, LEDGER.transaction_date, changed)
    # The ledger's ids typed as keys (TEXT on MySQL / MariaDB, hashed there on a 3-byte prefix; see run_loyalty).
    sales = booked_on_days.select(**{name: backend.parse(booked_on_days[name], "text", name)
                                     for name in ("transaction_id", "original_transaction_id")})
    touched = (on_days.select(_sale=on_days.transaction_id)
               .union(on_days.select(_sale=on_days.original_transaction_id))
               .union(sales.select(_sale=sales.transaction_id))
               .union(sales.select(_sale=sales.original_transaction_id)))
    touched = touched.filter(touched._sale.notnull())
    returns = headers.join(touched, headers.original_transaction_id == touched._sale).select(*headers.columns)
    affected = on_days.union(returns, distinct=True)
    on_id = [("transaction_id", "transaction_id")]
    if backend.capabilities.keeps_shared_pieces:
        # MariaDB estimates this UNION of a join at the product of its sides (10k headers: 380M rows), so points_ledger
        # joined it last, after a join of headers without a condition: a 30-day backfill of 20k line items took 88 s
        # for the expected ledger, growing with the square of the headers. Stored, the rows are counted as they are,
        # computed once (not at each of the UNION's ~40 readings) and indexed for the ledger rows' join, which hashed
        # staged headers (no key on MariaDB) in a buffer sized for the 2 rows it expected, one scan per 25 returns
        # (50k line items: 5 s). Headers matching the ids: a UNION's NOT NULL DATETIME makes CREATE … AS SELECT fail.
        # Spark, which computes the UNION again at each reading, keeps it for the same reason.
        ids = affected.select("transaction_id").distinct()
        affected = backend.create_temp_table(AFFECTED, matching(backend, headers, ids, on_id),
                                             indexed=[("transaction_id",), ("original_transaction_id",)])
    # Semi-joins by tables.matching: MariaDB ran EXISTS once per line item, each a scan of `read` (a 30-day backfill
    # of 200k line items had not finished in 7 minutes).
    booked = booked_on_days.union(matching(backend, LEDGER, affected.select("transaction_id").distinct(), on_id),
                                  distinct=True)
    read = affected.select("transaction_id").union(affected.filter(affected.original_transaction_id.notnull())
                                                   .select(transaction_id=affected.original_transaction_id))
    return affected, booked, matching(backend, lines, read.distinct(), on_id)


def run_loyalty(backend: Backend, *, policy: str = "best", tiers: tuple[tuple[str, int], ...] | None = None,
                days: incremental.DateRange | None = None, rebuild: bool = False) -> dict:
    """Bring the ledger in line with the staged transactions of the changed days, refresh balances, write them back.

    The days are those of the changes validated since the last run (audit.batch_dates), `days` when given (a
    backfill), or every day on the first run and with `rebuild`.
    """
    tiers = tiers or tiers_from_env()
    _ensure_tables(backend)
    headers, customers = staging_table("store_sales_header"), staging_table("customer_details")
    run_id = f"{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    run = run_value("run", run_id, "string")
    with incremental.window(backend, STAGE, days=days, rebuild=rebuild) as changed:
        # Opening balances are the first staged export's points, kept so re-runs never compound,
        # and its last purchase date, which the write-back below replaces (the churn model needs it).
        new_customers = customers.anti_join(OPENING, "customer_id")
        backend.insert("loyalty", "opening_balances", new_customers.select(
            "customer_id", opening_points=new_customers.total_loyalty_points.fill_null(0),
            recorded_at=ibis.now().cast("timestamp"), last_purchase_date=new_customers.last_purchase_date))
        affected, booked, lines = _affected(backend, headers, changed)
        # A night without a return skips the joins returns need (its reversals come from `booked` either way).
        returns = bool(backend.scalar(backend.compile(affected.filter(affected.total_amount < 0).count())))
        with contextlib.ExitStack() as scratch:
            # MariaDB kept: the linked returns, read by each moment's judgement (a rebuild at 200k line items: 25 s
            # for the expected ledger, 6 s with them kept).
            expected = points_ledger(affected, lines, staging_table("products"), staging_table("loyalty_rules"),
                                     policy=policy, originals=headers, returns=returns,
                                     exists_per_row=backend.capabilities.joins_exists_per_row,
                                     store=indexed_store(backend, scratch))
            # Computed once: ledger_changes reads it in an outer join, for its reversals and again for its credits,
            # and an engine without FULL JOIN (MariaDB: LEFT JOIN, RIGHT JOIN and NOT EXISTS) computes every reading
            # again: six times the rules, and the returns' judgement in each (a full run of 50k line items: over 4
            # minutes for this insert).
            expected = backend.create_temp_table(EXPECTED, expected, indexed=[LEDGER_KEY])
        # The ledger's ids are TEXT on MySQL / MariaDB, which hashes a TEXT join key on its first bytes: every booked
        # row met every expected one (a re-run of 4.7k transactions: 19 s). Typed as keys they hash whole.
        booked = booked.mutate(**{name: backend.parse(booked[name], "text", name) for name in LEDGER_KEY})
        new = ledger_changes(expected, booked, policy=policy)
        inserted = backend.insert("loyalty", "points_ledger", new.mutate(
            run_id=run, recorded_at=ibis.now().cast("timestamp")))
        backend.drop_temp_tables(EXPECTED, AFFECTED)
        summary = backend.fetch_dicts(LEDGER.filter(LEDGER.run_id == run).aggregate(
            transactions=ibis._.transaction_id.nunique(), points=ibis._.points.sum()))[0]
        # A run that credits nothing (a re-run, or one after a crash that had committed) leaves no
        # trace: runs and run_points keep pointing at the latest run that credited points, the one
        # `notify` announces, so re-running converges to the state of a single run.
        if inserted:
            backend.append_values(RUNS, [(run_id, policy, NOW, int(summary["transactions"] or 0),
                                          int(summary["points"] or 0))])
        latest = backend.scalar("SELECT run_id FROM loyalty.runs ORDER BY started_at DESC, run_id DESC LIMIT 1")
        update_purchases(backend, days, rebuild)
        # Its customer_id typed as a key too: summed per customer from TEXT, MariaDB hashed the sums on a 3-byte
        # prefix (200k line items: over 3 minutes).
        ledger = LEDGER.mutate(customer_id=backend.parse(LEDGER.customer_id, "text", "customer_id"))
        backend.replace_table("loyalty", "balances", balances(customers, OPENING, ledger, PURCHASES, tiers, latest))
        backend.update_from(customers, BALANCES, [("customer_id", "customer_id")], lambda _, balance: {
            "total_loyalty_points": balance.balance, "loyalty_status": balance.tier,
            "last_purchase_date": balance.last_purchase_date})
    return {"run_id": run_id if inserted else None, "policy": policy, "ledger_rows": inserted,
            "transactions": int(summary["transactions"] or 0), "points": int(summary["points"] or 0)}


def explain(backend: Backend, transaction_id: str) -> list[dict]:
    """Every loyalty rule against one staged transaction: whether it applied, why not, points credited."""
    headers = staging_table("store_sales_header")
    header = headers.filter(headers.transaction_id == transaction_id)
    checks = applicable_rules(header, staging_table("store_sales_line_items"), staging_table("products"),
                              staging_table("loyalty_rules"))
    rows = backend.fetch_dicts(checks.order_by("rule_id"))
    if not rows:
        raise UserError(f"transaction {transaction_id!r} is not staged; see `retailflow quarantine` for rejected ones")
    credited = {}
    if backend.has_table("loyalty", "points_ledger"):
        credited = {row["rule_id"]: row for row in backend.fetch_dicts(
            LEDGER.filter(LEDGER.transaction_id == transaction_id))}
    explained = []
    for row in rows:
        why = [] if row["applies"] else [reason for ok, reason in (
            (row["meets_threshold"], f"total {row['total_amount']} is below {row['min_spend_threshold']}"),
            (row["right_day"], f"{row['weekday'].title()} is not in {row['valid_days']}"),
            (row["in_period"], f"outside {row['start_date'] or '…'} to {row['end_date'] or '…'}"),
            (row["right_category"], f"no {row['applicable_category']} product in the basket"),
        ) if not ok]
        ledger = credited.get(row["rule_id"])
        explained.append({
            "rule_id": row["rule_id"], "rule_name": row["rule_name"], "applies": row["applies"],
            "why": "; ".join(why) or "all conditions hold",
            "base_points": ledger["base_points"] if ledger else 0, "bonus_points": ledger["bonus_points"] if ledger else 0,
            "points": ledger["points"] if ledger else 0, "run_id": ledger["run_id"] if ledger else None,
        })
    return explained
