"""Volume and shape anomalies: each metric of a store's day against the same store's same weekday in the weeks
before it.

The baseline of a day is the median of the metric over the same weekday of the `baseline_weeks` weeks before
it (the day itself never in it), leaving out the days of the holiday calendar and the days that were anomalous
themselves. The spread is 1.4826 × the median absolute deviation of those days (what the standard deviation
of normal noise would be, but unmoved by one odd day), held within the metric's bounds (settings.MetricCheck).
score = (value − baseline) / spread; a day is judged only with at least `min_baseline_days` baseline days.

Which baseline days were anomalous themselves is decided in a first pass, where every day is scored against
all its baseline days (holidays aside): a day flagged there on any checked metric is left out of the others'
baselines in the second pass, whose scores are the findings. Two passes, not a chain through every earlier
week, so each is one set-based query.

Explained anomalies are kept (severity info) but are no findings:
- any anomaly on a day of the holiday calendar (for every store, or the store it names): its low sales, and
  what low sales do to the shares (the returns customers bring back make a higher return rate);
- a high volume (lines, transactions, revenue, products) on a day whose extra lines are mostly promoted: the
  promoted lines' excess over their own baseline is at least `promotion_share` (0.5) of the lines' excess.
"""

from __future__ import annotations

from collections.abc import Callable

import ibis
import ibis.expr.types as ir

from retailflow.analytics.sales import shifted
from retailflow.catalog import ANOMALIES
from retailflow.checks.settings import VOLUME_METRICS, ChecksSettings, Holiday

#: Materialises a table a query reads more than once: (name, table) -> a table over the result.
Keep = Callable[[str, ir.Table], ir.Table]
#: The temporary tables `anomalies` keeps through its `keep`.
KEPT = ("rf_checks_values", "rf_checks_pairs_first", "rf_checks_pairs_first_medians", "rf_checks_odd_days",
        "rf_checks_pairs_second", "rf_checks_pairs_second_medians", "rf_checks_scored")


def computed(name: str, table: ir.Table) -> ir.Table:
    """Keep nothing: the table stays an expression (for tests and for one-off reads)."""
    return table


#: Not judged, but scored beside the lines: what a promotion explains.
PROMOTED = "promoted_lines"
#: 1.4826 × MAD estimates the standard deviation of normally distributed values.
MAD_TO_SD = 1.4826


def _weight(metrics: ir.Table, name: str, settings: ChecksSettings) -> ir.FloatingValue:
    """The day's n of a metric's sampling noise (MetricCheck.weight); NULL where it has none."""
    check = settings.metrics.get(name)
    if check is None or check.weight is None:
        return ibis.null("float64")
    if check.weight == "checked_headers":
        return (metrics.staged_headers + metrics.quarantined_headers).cast("float64")
    return metrics[check.weight].cast("float64")


def metric_values(metrics: ir.Table, names: list[str], settings: ChecksSettings) -> ir.Table:
    """One row per store × day × metric of `names` with a value: store_id, business_date, metric, value, the n of
    its sampling noise (`weight`) and a row number (`_row`, in key order: the same however often it is read)."""
    values = ibis.union(*(metrics.select("store_id", "business_date", metric=ibis.literal(name),
                                         value=metrics[name].cast("float64"), weight=_weight(metrics, name, settings))
                          for name in names)).filter(ibis._.value.notnull())
    return values.mutate(_row=ibis.row_number().over(order_by=[values.store_id, values.business_date,
                                                                values.metric]))


def holiday_days(table: ir.Table, holidays: tuple[Holiday, ...], *, closed_only: bool = False) -> ir.BooleanValue:
    """Whether a row (store_id, business_date) falls on a day of the calendar (only the closed ones)."""
    chosen = [holiday for holiday in holidays if holiday.closed or not closed_only]
    everywhere = sorted({holiday.day for holiday in chosen if holiday.store_id is None})
    at_store = sorted({f"{holiday.store_id}|{holiday.day.isoformat()}" for holiday in chosen if holiday.store_id})
    found = ibis.literal(False)
    if everywhere:
        found |= table.business_date.isin(everywhere)
    if at_store:
        found |= (table.store_id + "|" + table.business_date.cast("string")).isin(at_store)
    return found


def _per_metric(metric: ir.StringValue, values: dict[str, object], default: object) -> ir.Value:
    """A CASE over the metric's name."""
    return ibis.cases(*((metric == name, value) for name, value in values.items()), else_=default)


def medians(table: ir.Table, by: str, value: str, *, windowed: bool = False) -> ir.Table:
    """Per `by` group of `table`: the median of `value` as `baseline`, and the group's size as `baseline_days`.

    `windowed` where the engine has no median aggregate (MySQL / MariaDB): the mean of the one or two middle values
    by row number, which is the median by definition."""
    if not windowed:
        return table.group_by(by).aggregate(baseline=table[value].median(), baseline_days=table.count())
    ranked = table.mutate(_rank=ibis.row_number().over(group_by=table[by], order_by=table[value]),
                          _size=table.count().over(group_by=table[by]))
    middle = ranked.filter((ranked._rank == (ranked._size - 1) // 2) | (ranked._rank == ranked._size // 2))
    return middle.group_by(by).aggregate(baseline=middle[value].mean(), baseline_days=middle._size.max())


def scored(targets: ir.Table, baseline_values: ir.Table, settings: ChecksSettings, keep: Keep = computed,
           name: str = "pairs", windowed_median: bool = False) -> ir.Table:
    """Per row of `targets` (metric_values rows): its baseline from `baseline_values` (the same weekday of the
    weeks before), spread, score, baseline days, direction and whether it is `flagged`.

    `keep` materialises the pairs of day and baseline day and their medians, each read twice (as rf_checks_`name`
    and rf_checks_`name`_medians). The pairs are joined back by the target's row number alone: PostgreSQL, taking
    the three key columns for independent, expected one row from such a join and nested loops over 2,500 (6.8 s
    for 90 days of 10 stores)."""
    expanded = ibis.union(*(targets.select("_row", "store_id", "metric",
                                           _base_date=shifted(targets.business_date, -7 * weeks))
                            for weeks in range(1, settings.baseline_weeks + 1)))
    source = baseline_values.select(_store=baseline_values.store_id, _day=baseline_values.business_date,
                                    _metric=baseline_values.metric, base_value=baseline_values.value)
    pairs = expanded.join(source, [expanded.store_id == source._store, expanded.metric == source._metric,
                                   expanded._base_date == source._day]).select("_row", "base_value")
    pairs = keep(f"rf_checks_{name}", pairs)
    middle = keep(f"rf_checks_{name}_medians", medians(pairs, "_row", "base_value", windowed=windowed_median))
    deviations = pairs.join(middle, "_row")
    deviations = deviations.mutate(_deviation=(deviations.base_value - deviations.baseline).abs())
    mad = medians(deviations, "_row", "_deviation", windowed=windowed_median).select(
        "_row", mad=ibis._.baseline)
    stats = middle.join(mad, "_row")
    rows = targets.join(stats, "_row")
    metrics = settings.metrics
    size = rows.baseline.abs()
    relative = {name: check.kind == "volume" for name, check in metrics.items()}
    lower = _per_metric(rows.metric, {name: check.min_spread for name, check in metrics.items()}, 0.0) * ibis.ifelse(
        _per_metric(rows.metric, relative, False), size, 1.0)
    noise = _per_metric(rows.metric, {name: check.noise for name, check in metrics.items()}, "none")
    n = rows.weight.nullif(0)
    share = ibis.greatest(ibis.least(rows.baseline, 1 - 1 / n), 1 / n)
    dispersion = _per_metric(rows.metric, {name: check.dispersion for name, check in metrics.items()}, 1.0)
    sampled = ibis.cases((noise == "events", (size * dispersion).sqrt()),
                         ((noise == "amount") & n.notnull(), size * (2 / n).sqrt()),
                         ((noise == "share") & n.notnull(), (share * (1 - share) / n).sqrt()), else_=0.0)
    lower = ibis.greatest(lower, sampled)
    upper = _per_metric(rows.metric, {name: check.max_spread for name, check in metrics.items()
                                      if check.max_spread is not None}, ibis.null("float64")) * size
    raw = rows.mad * MAD_TO_SD
    bounded = ibis.greatest(ibis.ifelse(upper.notnull() & (raw > upper), upper, raw), lower)
    rows = rows.mutate(spread=bounded)
    rows = rows.mutate(score=ibis.ifelse(rows.spread > 0, (rows.value - rows.baseline) / rows.spread,
                                         ibis.null("float64")),
                       direction=ibis.ifelse(rows.value < rows.baseline, "low", "high"))
    threshold = _per_metric(rows.metric, {name: check.threshold for name, check in metrics.items()},
                            ibis.null("float64"))
    low = _per_metric(rows.metric, {name: "low" in check.directions for name, check in metrics.items()}, False)
    high = _per_metric(rows.metric, {name: "high" in check.directions for name, check in metrics.items()}, False)
    flagged = (rows.baseline_days >= settings.min_baseline_days) & rows.score.notnull() & (
        (low & (rows.score <= -threshold)) | (high & (rows.score >= threshold)))
    return rows.mutate(flagged=flagged.fill_null(False))


def _weeks_back(days: ir.Table, weeks: int) -> ir.Table:
    """The dates 0 to `weeks` weeks before one of `days` (business_date)."""
    return ibis.union(*(days.select(business_date=shifted(days.business_date, -7 * back))
                        for back in range(weeks + 1)), distinct=True)


def anomalies(metrics: ir.Table, days: ir.Table | None, settings: ChecksSettings, keep: Keep = computed,
              windowed_median: bool = False) -> ir.Table:
    """The anomalies (ANOMALIES) of the days in `days` (business_date; None: every day) from `metrics`
    (analytics.store_day_metrics: only the same weekdays of the 2 × baseline_weeks weeks before are read).

    `keep(name, table)` may materialise the intermediate tables a query reads more than once (the run makes
    them temporary tables: DuckDB computed the whole chain again at each use, 0.65 s a night on 1M lines)."""
    checked = list(settings.checked_metrics)
    weeks = settings.baseline_weeks
    if days is not None:
        metrics = metrics.semi_join(_weeks_back(days, 2 * weeks), "business_date")
    values = keep("rf_checks_values", metric_values(metrics, sorted({*checked, "line_count", PROMOTED}), settings))
    usable = values.filter(~holiday_days(values, settings.holidays))
    if days is None:
        first_targets, targets = values, values
    else:
        # The first pass judges the days the second pass's baselines read: the same weekday, up to `weeks` back.
        first_targets = values.semi_join(_weeks_back(days, weeks), "business_date")
        targets = values.semi_join(days, "business_date")
    first = scored(first_targets.filter(first_targets.metric.isin(checked)), usable, settings, keep, "pairs_first",
                   windowed_median)
    odd_days = keep("rf_checks_odd_days", first.filter(first.flagged).select("store_id", "business_date").distinct())
    kept = usable.anti_join(odd_days, ["store_id", "business_date"])
    second = keep("rf_checks_scored", scored(targets, kept, settings, keep, "pairs_second", windowed_median))
    excess = second.filter(second.metric.isin(["line_count", PROMOTED]))
    excess = excess.group_by(["store_id", "business_date"]).aggregate(
        _lines_excess=(excess.metric == "line_count").ifelse(excess.value - excess.baseline, None).max(),
        _promoted_excess=(excess.metric == PROMOTED).ifelse(excess.value - excess.baseline, None).max())
    found = second.filter(second.flagged & second.metric.isin(checked))
    found = found.left_join(excess, ["store_id", "business_date"]).select(found, excess._lines_excess,
                                                                           excess._promoted_excess)
    on_holiday = holiday_days(found, settings.holidays)
    by_promotion = ((found.direction == "high") & found.metric.isin(list(VOLUME_METRICS))
                    & (found._lines_excess > 0)
                    & (found._promoted_excess >= settings.promotion_share * found._lines_excess)).fill_null(False)
    names = _holiday_names(found, settings.holidays)
    explanation = ibis.cases(
        (on_holiday, "holiday: " + names),
        (by_promotion, "promotion: " + found._promoted_excess.round(0).cast("int64").cast("string") + " of "
         + found._lines_excess.round(0).cast("int64").cast("string") + " extra lines promoted"),
        else_=ibis.null("string"))
    severity = ibis.ifelse(on_holiday | by_promotion, "info",
                           _per_metric(found.metric, {name: check.severity for name, check in settings.metrics.items()},
                                       "warn"))
    return ANOMALIES.cast(found.mutate(severity=severity, explanation=explanation))


def _holiday_names(table: ir.Table, holidays: tuple[Holiday, ...]) -> ir.StringValue:
    """The calendar's name of a row's day (its store's entry first)."""
    cases = [((table.store_id == holiday.store_id) & (table.business_date == holiday.day), holiday.name)
             for holiday in holidays if holiday.store_id]
    cases += [(table.business_date == holiday.day, holiday.name) for holiday in holidays if not holiday.store_id]
    return ibis.cases(*cases, else_="holiday") if cases else ibis.literal("holiday")
