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

What a window of aggregates measures: :mod:`connector.billing.usage_periods`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from functools import lru_cache
from operator import itemgetter
from typing import Any, TypeVar

from connector.errors import InvalidInputError

ZERO = Decimal(0)
HOUR = timedelta(hours=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
MAX_DIGITS = 18  # before the decimal point, in a number an event measures


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
Reader = Callable[[Mapping[str, Any]], Reading | None]


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
    if number and number.adjusted() >= MAX_DIGITS:  # 9e999999 would overflow once summed
        raise InvalidInputError(
            f"{what} {value!r} is too large (at most {MAX_DIGITS} digits before the point)"
        )
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
        return reader_of(self)(properties)


@lru_cache(maxsize=256)
def reader_of(metric: Metric) -> Reader:
    """:meth:`Metric.read` of ``metric``, as a function made for it once (the hot path of
    ingestion: what the metric does not need is not looked at, a text is taken as it is)."""
    filters, group_by, name = metric.filters, metric.group_by, metric.field
    unique = metric.aggregation is Aggregation.UNIQUE_COUNT
    what = f"property {name!r}"
    if name is None and group_by is None and not filters:
        counted: Reading = ("", None, None)
        return lambda properties: counted

    def read(properties: Mapping[str, Any]) -> Reading | None:
        get = properties.get
        for key, allowed in filters:
            value = get(key)
            if (value if type(value) is str else text_of(value)) not in allowed:
                return None
        group = ""
        if group_by is not None:
            found = get(group_by)
            if type(found) is not str:
                found = text_of(found)
            if not found:
                raise InvalidInputError(f"property {group_by!r} (the metric's group) is missing")
            group = found
        if name is None:
            return (group, None, None)
        raw = get(name)
        if raw is None or raw == "":
            raise InvalidInputError(f"{what} (the metric's field) is missing")
        if unique:
            distinct = raw if type(raw) is str else text_of(raw)
            if distinct is None:
                raise InvalidInputError(f"{what} must be a text or a number")
            return (group, None, distinct)
        return (group, number_of(raw, what), None)

    return read


def hour_of(at: datetime) -> datetime:
    """The start of the hour ``at`` is in: ``at.replace(minute=0, second=0, microsecond=0)``,
    at half the cost for a UTC time (a time of another zone keeps its ``fold`` so)."""
    if at.tzinfo is UTC:
        return at - timedelta(0, at.minute * 60 + at.second, at.microsecond)
    return at.replace(minute=0, second=0, microsecond=0)


@lru_cache(maxsize=4096)  # events come in bursts of the same second
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


K = TypeVar("K")  # the key of a tally


class Tallies(dict[K, Tally]):
    """Tallies by key, each made at its key's first reading with the aggregation
    ``aggregation_of(key)`` gives: ``tallies[key].add(reading, at)``."""

    __slots__ = ("_aggregation_of",)

    def __init__(self, aggregation_of: Callable[[K], Aggregation]) -> None:
        super().__init__()
        self._aggregation_of = aggregation_of

    def __missing__(self, key: K) -> Tally:
        tally = self[key] = Tally(self._aggregation_of(key))
        return tally

    def add_all(
        self, keys: Sequence[K], readings: Sequence[Reading], times: Sequence[datetime]
    ) -> None:
        """Many events whose keys have one aggregation (those of one metric) at once: the same
        as ``self[key].add(reading, at)`` for each event in turn (the same values in the same
        order, so the same sums), with less work per event: they are counted in one pass, a
        count reads nothing more."""
        if not keys:
            return
        aggregation = self._aggregation_of(keys[0])
        for key, events in Counter(keys).items():
            self[key].events += events
        if aggregation is Aggregation.COUNT:
            return
        if aggregation is Aggregation.UNIQUE_COUNT:
            for key, reading in zip(keys, readings, strict=True):
                self[key].distinct.add(reading[2])  # type: ignore[arg-type]
            return
        values: Iterator[Decimal] = map(itemgetter(1), readings)
        if aggregation is Aggregation.SUM:
            for key, value in zip(keys, values, strict=True):
                self[key].total += value
        elif aggregation is Aggregation.WEIGHTED_SUM:
            seconds = {at: seconds_of(at) for at in set(times)}
            for key, value, at in zip(keys, values, times, strict=True):
                tally = self[key]
                tally.total += value
                tally.weighted += value * seconds[at]
        elif aggregation is Aggregation.MAX:
            for key, value in zip(keys, values, strict=True):
                tally = self[key]
                if tally.maximum is None or value > tally.maximum:
                    tally.maximum = value
        else:
            for key, value, at in zip(keys, values, times, strict=True):
                tally = self[key]
                if tally.latest_at is None or (at, value) > (tally.latest_at, tally.latest_value):
                    tally.latest_at, tally.latest_value = at, value


def fold(
    metric: Metric, readings: Iterable[tuple[Reading, datetime]]
) -> dict[tuple[str, datetime], Usage]:
    """Readings (with their events' times) folded into aggregates by (group, hour)."""
    tallies: Tallies[tuple[str, datetime]] = Tallies(lambda _: metric.aggregation)
    for reading, at in readings:
        tallies[(reading[0], hour_of(at))].add(reading, at)
    return {key: tally.usage() for key, tally in tallies.items()}
