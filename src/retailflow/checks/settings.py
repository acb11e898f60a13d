"""What the checks expect and how they judge: the defaults, and the `expectations:` and `checks:` sections of
the rules file that change them (docs/explanation/checks.md documents every field).

```yaml
expectations:
  stores: [ST001, ST002]        # the stores that send (default: every store that has sent)
  entities: [store_sales_header, store_sales_line_items]   # per store-day (default: what each store has sent)
  cutoff: "06:00"               # a day's files are due by this time the next day (default: midnight)
  closed_after_days: 7          # no sales for this many days: the store closed
  store_end_dates: {ST009: 2025-01-31}   # last trading day of a store
checks:
  baseline_weeks: 8
  min_baseline_days: 4
  holidays: holidays.csv        # relative to the rules file
  promotion_share: 0.5
  severity: {missing: block, restated: off}
  metrics:
    line_count: {threshold: 5, severity: block}
    quarantine_rate: {severity: off}
```
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from retailflow.errors import UserError
from retailflow.incremental import is_fact
from retailflow.model import ENTITIES
from retailflow.quality.rules import checks_sections
from retailflow.yaml_file import YamlFile

#: What a finding does: info is listed only; warn is recorded (listed, counted, e-mailed); block also holds back
#: the analytics of its business date; off is not recorded at all.
SEVERITIES = ("info", "warn", "block", "off")
#: The fact entities a store delivers per day.
FACT_ENTITIES = tuple(name for name, entity in ENTITIES.items() if is_fact(entity))
SALES_ENTITY = "store_sales_header"


@dataclass(frozen=True)
class MetricCheck:
    """How one metric of analytics.store_day_metrics is judged against its baseline.

    The spread is 1.4826 × the baseline days' median absolute deviation (a standard deviation for normal
    noise), held between `min_spread` and `max_spread` (relative to the baseline for a `volume`; in
    absolute terms for a `share`) and never below the sampling noise of the day's size (`noise`). A value is
    anomalous when |value − baseline| ≥ `threshold` × spread in one of its `directions`. The lower bounds keep a
    store whose past weeks happened to agree closely, or that sells little, from being flagged for ordinary
    noise; the upper bound makes a large enough change (threshold × max_spread: 80 % for lines) a finding
    however erratic the store.
    """

    name: str
    description: str
    kind: Literal["volume", "share"]
    min_spread: float
    max_spread: float | None = None
    threshold: float = 4.0
    directions: tuple[str, ...] = ("low", "high")
    severity: str = "warn"
    #: The sampling noise the spread is never below: `events`, a count's √(dispersion × baseline); `amount`, a sum
    #: of n line amounts' |baseline| × √(2 / n) (a line's amount varies about as much as its mean); `share`, a
    #: proportion's √(p (1 − p) / n) at the baseline p (at least 1 / n from 0 and 1). n is the day's own lines,
    #: transactions, units sold or headers (`weight`).
    noise: Literal["events", "amount", "share"] = "events"
    #: The column of analytics.store_day_metrics that is n for `amount` and `share` noise.
    weight: str | None = None
    #: For `events` noise, the variance of the count over its mean: lines come in baskets of 1-8, so a day's lines
    #: vary about three times as much as a count of single events would.
    dispersion: float = 1.0


#: The metrics and their defaults. Measured on generated data (benchmarks/checks.py, 90 days × 50 stores of 30 to
#: 700 lines a day), the same weekday's day-to-day noise of a store is 14-23 % of its lines, 8-20 % of its
#: transactions, 20-27 % of its revenue (one basket of dear goods moves it), 9-17 % of its products, 4.5-9 points
#: of its anonymous share and 1.6-4 of its return rate (a return brings several units back at once). The lower
#: bounds sit at the noisier end of those, so a finding is a change of four times a noisy store's noise: with
#: them no ordinary day of those 4,500 was flagged, and every planted incident was.
METRICS: dict[str, MetricCheck] = {metric.name: metric for metric in (
    MetricCheck("line_count", "Sales lines of the store's day.", "volume", 0.20, 0.22, dispersion=3.0),
    MetricCheck("transactions", "Transactions (sales, returns; not voids).", "volume", 0.16, 0.20),
    MetricCheck("revenue", "Net revenue.", "volume", 0.30, 0.45, noise="amount", weight="line_count"),
    MetricCheck("distinct_products", "Products sold.", "volume", 0.16, 0.20),
    MetricCheck("anonymous_share", "Share of transactions without a loyalty card.", "share", 0.06, noise="share",
                weight="transactions"),
    MetricCheck("return_rate", "Units returned per unit sold.", "share", 0.06, noise="share", weight="sold_units"),
    MetricCheck("quarantine_rate", "Share of the day's sales headers quarantined.", "share", 0.05,
                directions=("high",), noise="share", weight="checked_headers"),
)}
#: Metrics whose high values a promotion can explain (they measure volume).
VOLUME_METRICS = tuple(name for name, metric in METRICS.items() if metric.kind == "volume")
#: Checked on deliveries, with their default severity.
DELIVERY_CHECKS = {"missing": "warn", "late": "warn", "restated": "info", "closed": "warn", "opened": "warn"}


@dataclass(frozen=True)
class Holiday:
    """A day of the holiday calendar: its low values are no finding; `closed`: no delivery is expected."""

    day: dt.date
    name: str
    store_id: str | None = None
    closed: bool = False


@dataclass(frozen=True)
class ChecksSettings:
    """Everything the checks run with."""

    #: Only these stores are expected (None: every store that has delivered).
    stores: tuple[str, ...] | None = None
    #: These fact entities are expected of every store each day (None: the ones each store has delivered).
    entities: tuple[str, ...] | None = None
    #: Minutes after midnight, the day after the business date, by which its files are due (None: midnight).
    cutoff_minutes: int | None = None
    #: A store with no sales for this many days has closed (and is no longer expected).
    closed_after_days: int = 7
    #: A store's last trading day.
    store_end_dates: dict[str, dt.date] = field(default_factory=dict)
    #: The same weekday over this many weeks before the day is its baseline.
    baseline_weeks: int = 8
    #: Fewer baseline days than this: the day is not judged.
    min_baseline_days: int = 4
    #: A high volume is explained by a promotion when promoted lines make at least this share of the extra lines.
    promotion_share: float = 0.5
    metrics: dict[str, MetricCheck] = field(default_factory=lambda: dict(METRICS))
    deliveries: dict[str, str] = field(default_factory=lambda: dict(DELIVERY_CHECKS))
    holidays: tuple[Holiday, ...] = ()

    @property
    def checked_metrics(self) -> dict[str, MetricCheck]:
        """The metrics not switched off."""
        return {name: metric for name, metric in self.metrics.items() if metric.severity != "off"}

    def digest(self) -> str:
        """A digest of everything that decides an anomaly: a change recomputes every day's anomalies."""
        text = json.dumps(asdict(self), sort_keys=True, default=str)
        return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


class _MetricSection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    threshold: float | None = Field(None, gt=0)
    severity: Literal["info", "warn", "block", "off"] | None = None
    min_spread: float | None = Field(None, gt=0)
    max_spread: float | None = Field(None, gt=0)
    directions: list[Literal["low", "high"]] | None = Field(None, min_length=1)


class _ChecksSection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    baseline_weeks: int | None = Field(None, ge=1, le=52)
    min_baseline_days: int | None = Field(None, ge=1, le=52)
    holidays: str | None = None
    promotion_share: float | None = Field(None, gt=0, le=1)
    severity: dict[Literal["missing", "late", "restated", "closed", "opened"],
                   Literal["info", "warn", "block", "off"]] = Field(default_factory=dict)
    metrics: dict[Literal[tuple(METRICS)], _MetricSection] = Field(default_factory=dict)


class _ExpectationsSection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stores: list[str] | None = Field(None, min_length=1)
    entities: list[str] | None = Field(None, min_length=1)
    cutoff: str | None = None
    closed_after_days: int | None = Field(None, ge=2, le=365)
    store_end_dates: dict[str, dt.date] = Field(default_factory=dict)

    @field_validator("entities")
    @classmethod
    def _fact_entities(cls, value: list[str] | None) -> list[str] | None:
        for name in value or []:
            if name not in FACT_ENTITIES:
                raise ValueError(f"{name!r} is not delivered per day; one of {', '.join(FACT_ENTITIES)}")
        return value

    @field_validator("cutoff")
    @classmethod
    def _clock_time(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                dt.time.fromisoformat(value)
            except ValueError:
                raise ValueError(f"{value!r} is not a time of day HH:MM") from None
        return value


def _validated(document: YamlFile, section: str, model: type[BaseModel]) -> BaseModel:
    data = document.data.get(section)
    if data is None:
        return model()
    if not isinstance(data, dict):
        raise document.error((section,), f"{section}: expected a mapping of settings (see docs/explanation/checks.md)")
    try:
        return model.model_validate(data)
    except ValidationError as error:
        problem = error.errors()[0]
        # A mapping's key that is not allowed comes as (…, key, "[key]"): the key names it.
        keys = (section, *(str(part) for part in problem["loc"] if part != "[key]"))
        raise document.error(keys, f"{'.'.join(keys)}: {problem['msg']}") from None


def load_checks(path: Path | None = None) -> ChecksSettings:
    """The defaults, changed by the `expectations:` and `checks:` sections of the rules file at `path`.

    A problem stops with one line naming the file and line (of the calendar, for a holiday).
    """
    document = checks_sections(path)
    if document is None:
        return ChecksSettings()
    expectations = _validated(document, "expectations", _ExpectationsSection)
    checks = _validated(document, "checks", _ChecksSection)
    metrics = dict(METRICS)
    for name, section in checks.metrics.items():
        metrics[name] = replace(metrics[name], **{key: tuple(value) if key == "directions" else value
                                                  for key, value in section.model_dump().items() if value is not None})
    settings = ChecksSettings(metrics=metrics, deliveries={**DELIVERY_CHECKS, **checks.severity})
    if expectations.stores:
        settings = replace(settings, stores=tuple(expectations.stores))
    if expectations.entities:
        settings = replace(settings, entities=tuple(expectations.entities))
    if expectations.cutoff:
        clock = dt.time.fromisoformat(expectations.cutoff)
        settings = replace(settings, cutoff_minutes=clock.hour * 60 + clock.minute)
    for key in ("closed_after_days",):
        if getattr(expectations, key) is not None:
            settings = replace(settings, **{key: getattr(expectations, key)})
    for key in ("baseline_weeks", "min_baseline_days", "promotion_share"):
        if getattr(checks, key) is not None:
            settings = replace(settings, **{key: getattr(checks, key)})
    if settings.min_baseline_days > settings.baseline_weeks:
        raise document.error(("checks", "min_baseline_days"), "checks.min_baseline_days: at most baseline_weeks "
                             f"({settings.baseline_weeks}) days can be in a baseline")
    holidays = ()
    if checks.holidays:
        holidays = read_holidays(Path(document.name).parent / checks.holidays)
    return replace(settings, store_end_dates=dict(expectations.store_end_dates), holidays=holidays)


HOLIDAY_COLUMNS = ("date", "name", "store_id", "closed")
_YES, _NO = ("yes", "true", "1", "y"), ("no", "false", "0", "n", "")


def read_holidays(path: Path) -> tuple[Holiday, ...]:
    """The holiday calendar: a CSV file with a `date` column (YYYY-MM-DD) and optionally `name`, `store_id`
    (empty: every store) and `closed` (yes: stores are shut, nothing is expected that day)."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.reader(handle))
    except OSError as error:
        raise UserError(f"{path}: cannot read the holiday calendar ({error.strerror}); fix checks.holidays "
                        "in the rules file") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}:1: not UTF-8 text; save the holiday calendar as UTF-8") from None
    if not rows:
        raise UserError(f"{path}:1: empty; the holiday calendar needs a header line with a date column")
    header = [name.strip().lower() for name in rows[0]]
    if "date" not in header:
        raise UserError(f"{path}:1: no 'date' column; the holiday calendar's columns are {', '.join(HOLIDAY_COLUMNS)}")
    unknown = [name for name in header if name not in HOLIDAY_COLUMNS]
    if unknown:
        raise UserError(f"{path}:1: unknown column {unknown[0]!r}; the holiday calendar's columns are "
                        f"{', '.join(HOLIDAY_COLUMNS)}")
    holidays = []
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        cells = dict(zip(header, (cell.strip() for cell in row)))
        try:
            day = dt.date.fromisoformat(cells.get("date", ""))
        except ValueError:
            column = header.index("date") + 1
            raise UserError(f"{path}:{number}: column {column} (date): {cells.get('date', '')!r} is not a date "
                            "YYYY-MM-DD; fix the holiday calendar") from None
        closed = cells.get("closed", "").lower()
        if closed not in _YES + _NO:
            column = header.index("closed") + 1
            raise UserError(f"{path}:{number}: column {column} (closed): {cells['closed']!r} is not yes or no; "
                            "fix the holiday calendar")
        holidays.append(Holiday(day, cells.get("name") or "holiday", cells.get("store_id") or None, closed in _YES))
    return tuple(holidays)
