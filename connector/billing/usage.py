"""Metered usage: billable metrics, and what a window of hourly aggregates adds up to.

A **metric** turns the properties of a usage event into a *reading*: the group it is charged
in (the value of its ``group_by`` property, ``""`` without one), the number it aggregates (its
``field``) and, for a unique count, the value counted. An event whose properties do not match
the metric's filters gives no reading: it is kept but counts for nothing.

Readings are folded into **hourly aggregates** as events arrive (:func:`fold`): per customer,
metric, group and UTC hour, the number of events, the sum, the maximum, the latest value with
its time, Σ value × time (seconds since 1970: the time weighting of a weighted sum is exact)
and the distinct values. Merging aggregates is associative and commutative, so a window's
usage is the same whatever the order, batching or duplication of the arrival (duplicates are
dropped before folding, by transaction id).

Aggregations (Lago's semantics):

- ``count``: the number of events;
- ``sum``: the sum of the field;
- ``max``: the largest value of the field (0 without events);
- ``unique_count``: the number of distinct values of the field;
- ``latest``: the value of the latest event (ties on the timestamp: the larger value);
- ``weighted_sum``: a gauge. Each event adds its value (negative to decrease) to a level that
  holds until the next event; the quantity is the level integrated over time, divided by the
  billing period's length: 10 GB for half a period is 5. The level starts at 0 at each period
  (or, ``recurring``, carries over from every earlier event).

**Cuts.** Billing periods and the changes that split them (upgrades, cancellations) are dated
by days in UTC, so every window begins and ends on an hour: the parts of a split period are
sums of whole hourly aggregates, exact with no raw event read. A cut inside an hour is refused
(events keep their exact timestamps, so a finer cut could be recomputed from them).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from connector.errors import InvalidInputError

ZERO = Decimal(0)
HOUR = timedelta(hours=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


class Aggregation(StrEnum):
    COUNT = "count"
    SUM = "sum"
    MAX = "max"
    UNIQUE_COUNT = "unique_count"
    LATEST = "latest"
    WEIGHTED_SUM = "weighted_sum"


NUMERIC = frozenset(
    {Aggregation.SUM, Aggregation.MAX, Aggregation.LATEST, Aggregation.WEIGHTED_SUM}
)

# A reading: (group, number aggregated or None, distinct value or None).
Reading = tuple[str, Decimal | None, str | None]


def text_of(value: Any) -> str | None:
    """A property as text, for filters, groups and distinct values: ``true``/``false`` for
    booleans, a number as written; None for a missing value, a list or an object."""
    if value is None or isinstance(value, (dict, list)):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def number_of(value: Any, what: str) -> Decimal:
    """A property as an exact decimal: integers, decimal strings, and JSON numbers by their
    shortest representation (0.1 is 0.1)."""
    kind = type(value)
    if kind is bool or value is None or kind is dict or kind is list:
        raise InvalidInputError(f"{what} must be a number, not {value!r}")
    try:
        number = Decimal(repr(value) if kind is float else value if kind is str else str(value))
    except InvalidOperation:
        raise InvalidInputError(f"{what} {value!r} is not a number") from None
    if not number.is_finite():
        raise InvalidInputError(f"{what} {value!r} is not a finite number")
    return number


@dataclass(frozen=True, slots=True)
class Metric:
    """A billable metric (``mappings/usage.yaml``)."""

    code: str
    aggregation: Aggregation
    field: str | None = None
    filters: tuple[tuple[str, frozenset[str]], ...] = ()
    group_by: str | None = None
    recurring: bool = False
    name: str = ""

    def __post_init__(self) -> None:
        where = f"metric {self.code}"
        if self.aggregation is Aggregation.COUNT and self.field:
            raise InvalidInputError("a count aggregates no field", where=where)
        if self.aggregation is not Aggregation.COUNT and not self.field:
            raise InvalidInputError(f"a {self.aggregation} needs a field", where=where)
        if self.recurring and self.aggregation is not Aggregation.WEIGHTED_SUM:
            raise InvalidInputError("only a weighted_sum can be recurring", where=where)

    @property
    def label(self) -> str:
        return self.name or self.code

    def read(self, properties: Mapping[str, Any]) -> Reading | None:
        """The reading of an event's properties; None when they do not match the filters. An
        event the metric cannot read (its field or group missing, not a number) is refused
        with the reason."""
        for key, allowed in self.filters:
            if text_of(properties.get(key)) not in allowed:
                return None
        group = ""
        if self.group_by is not None:
            found = text_of(properties.get(self.group_by))
            if found is None or found == "":
                raise InvalidInputError(
                    f"property {self.group_by!r} (the metric's group) is missing"
                )
            group = found
        if self.field is None:
            return (group, None, None)
        raw = properties.get(self.field)
        if raw is None or raw == "":
            raise InvalidInputError(f"property {self.field!r} (the metric's field) is missing")
        if self.aggregation is Aggregation.UNIQUE_COUNT:
            distinct = text_of(raw)
            if distinct is None:
                raise InvalidInputError(f"property {self.field!r} must be a text or a number")
            return (group, None, distinct)
        return (group, number_of(raw, f"property {self.field!r}"), None)


def hour_of(at: datetime) -> datetime:
    return at.replace(minute=0, second=0, microsecond=0)


def seconds_of(at: datetime) -> Decimal:
    """Seconds since 1970 (UTC), exact to the microsecond."""
    return Decimal((at - EPOCH) // MICROSECOND).scaleb(-6)


@dataclass(frozen=True, slots=True)
class Usage:
    """What a set of events of one group adds up to (an hour's aggregate, or a window's)."""

    events: int = 0
    total: Decimal = ZERO  # Σ value
    maximum: Decimal | None = None
    latest_at: datetime | None = None
    latest_value: Decimal | None = None
    weighted: Decimal = ZERO  # Σ value × seconds since 1970
    distinct: frozenset[str] = field(default_factory=frozenset)

    def merge(self, other: Usage) -> Usage:
        maximum = self.maximum
        if other.maximum is not None and (maximum is None or other.maximum > maximum):
            maximum = other.maximum
        latest_at, latest_value = self.latest_at, self.latest_value
        if other.latest_at is not None and (
            latest_at is None
            or (other.latest_at, other.latest_value or ZERO) > (latest_at, latest_value or ZERO)
        ):
            latest_at, latest_value = other.latest_at, other.latest_value
        return Usage(
            self.events + other.events,
            self.total + other.total,
            maximum,
            latest_at,
            latest_value,
            self.weighted + other.weighted,
            self.distinct | other.distinct,
        )


@dataclass(frozen=True, slots=True)
class HourlyUsage:
    """The aggregate of one group's events in the hour starting at ``hour``."""

    group: str
    hour: datetime
    usage: Usage


class Tally:
    """Usage being added up event by event (mutable: folding a batch of events creates no
    object per event). Its :meth:`usage` is the aggregate of the events added."""

    __slots__ = (
        "aggregation",
        "distinct",
        "events",
        "latest_at",
        "latest_value",
        "maximum",
        "total",
        "weighted",
    )

    def __init__(self, aggregation: Aggregation) -> None:
        self.aggregation = aggregation
        self.events = 0
        self.total = ZERO
        self.maximum: Decimal | None = None
        self.latest_at: datetime | None = None
        self.latest_value: Decimal | None = None
        self.weighted = ZERO
        self.distinct: set[str] = set()

    def add(self, reading: Reading, at: datetime) -> None:
        self.events += 1
        aggregation, value = self.aggregation, reading[1]
        if aggregation is Aggregation.COUNT:
            return
        if aggregation is Aggregation.UNIQUE_COUNT:
            self.distinct.add(reading[2])  # type: ignore[arg-type]
            return
        assert value is not None
        if aggregation is Aggregation.SUM:
            self.total += value
        elif aggregation is Aggregation.WEIGHTED_SUM:
            self.total += value
            self.weighted += value * seconds_of(at)
        elif aggregation is Aggregation.MAX:
            if self.maximum is None or value > self.maximum:
                self.maximum = value
        elif self.latest_at is None or (at, value) > (self.latest_at, self.latest_value):
            self.latest_at, self.latest_value = at, value

    def usage(self) -> Usage:
        return Usage(
            self.events,
            self.total,
            self.maximum,
            self.latest_at,
            self.latest_value,
            self.weighted,
            frozenset(self.distinct),
        )


def fold(
    metric: Metric, readings: Iterable[tuple[Reading, datetime]]
) -> dict[tuple[str, datetime], Usage]:
    """Readings (with their events' times) folded into aggregates by (group, hour)."""
    tallies: dict[tuple[str, datetime], Tally] = {}
    for reading, at in readings:
        key = (reading[0], hour_of(at))
        tally = tallies.get(key)
        if tally is None:
            tally = tallies[key] = Tally(metric.aggregation)
        tally.add(reading, at)
    return {key: tally.usage() for key, tally in tallies.items()}


@dataclass(frozen=True, slots=True)
class Window:
    """The instants ``start`` (included) to ``end`` (excluded), on whole UTC hours."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        for at in (self.start, self.end):
            if at.tzinfo is None:
                raise InvalidInputError(f"usage window {at} has no time zone")
            if hour_of(at) != at:
                raise InvalidInputError(
                    f"usage can be cut on whole UTC hours only, not at {at.isoformat()}"
                )
        if self.end <= self.start:
            raise InvalidInputError(f"usage window ends ({self.end}) before it starts")

    def __contains__(self, at: datetime) -> bool:
        return self.start <= at < self.end

    @property
    def seconds(self) -> Decimal:
        return seconds_of(self.end) - seconds_of(self.start)


def quantity(
    metric: Metric, usage: Usage, window: Window, period: Window, opening: Decimal = ZERO
) -> Decimal:
    """The quantity ``usage`` (the events of ``window``) measures. For a weighted sum,
    ``opening`` is the level at the window's start, and the integral is divided by the length
    of the billing ``period`` (so the parts of a split period add up to the whole's)."""
    aggregation = metric.aggregation
    if aggregation is Aggregation.COUNT:
        return Decimal(usage.events)
    if aggregation is Aggregation.SUM:
        return usage.total
    if aggregation is Aggregation.MAX:
        return usage.maximum if usage.maximum is not None else ZERO
    if aggregation is Aggregation.UNIQUE_COUNT:
        return Decimal(len(usage.distinct))
    if aggregation is Aggregation.LATEST:
        return usage.latest_value if usage.latest_value is not None else ZERO
    # ∫ level dt = opening × (B − A) + Σ v × (B − t) = opening × (B − A) + B × Σv − Σ v × t
    integral = opening * window.seconds + seconds_of(window.end) * usage.total - usage.weighted
    return integral / period.seconds


def measure(
    metric: Metric,
    hours: Iterable[HourlyUsage],
    period: Window,
    parts: Sequence[Window] | None = None,
    carried: Mapping[str, Decimal] | None = None,
) -> list[dict[str, Decimal]]:
    """The quantity of each group in each part of ``period`` (default: the whole period).

    ``hours`` are the hourly aggregates of the period (others are ignored). Parts lie within
    the period, in order, without overlapping (a cancelled subscription bills the part before
    its end only). ``carried`` is the level of a recurring weighted sum before the period, per
    group. A weighted sum's level runs through the whole period, across parts: a group whose
    level is not zero has a quantity in a part without events."""
    windows = list(parts) if parts is not None else [period]
    for index, window in enumerate(windows):
        if window.start < period.start or window.end > period.end:
            raise InvalidInputError(f"usage part {window} is outside the period {period}")
        if index and window.start < windows[index - 1].end:
            raise InvalidInputError("usage parts overlap or are out of order")
    inside = sorted((item for item in hours if item.hour in period), key=lambda item: item.hour)
    level: dict[str, Decimal] = dict(carried or {}) if metric.recurring else {}
    weighted = metric.aggregation is Aggregation.WEIGHTED_SUM
    results: list[dict[str, Decimal]] = []
    position = 0
    for window in windows:
        while position < len(inside) and inside[position].hour < window.start:
            item = inside[position]  # before the part: moves a weighted sum's level only
            level[item.group] = level.get(item.group, ZERO) + item.usage.total
            position += 1
        usage: dict[str, Usage] = {}
        while position < len(inside) and inside[position].hour < window.end:
            item = inside[position]
            before = usage.get(item.group)
            usage[item.group] = item.usage if before is None else before.merge(item.usage)
            position += 1
        groups = set(usage) | ({g for g, v in level.items() if v} if weighted else set())
        results.append(
            {
                group: quantity(
                    metric, usage.get(group, Usage()), window, period, level.get(group, ZERO)
                )
                for group in sorted(groups)
            }
        )
        for group, found in usage.items():
            level[group] = level.get(group, ZERO) + found.total
    return results
