"""What the hourly aggregates of a billing period measure, whole or split into parts.

**Cuts.** Billing periods and the changes that split them (upgrades, cancellations) are dated
by days in UTC, so every window begins and ends on an hour: the parts of a split period are
sums of whole hourly aggregates, exact with no raw event read. A cut inside an hour is refused
(events keep their exact timestamps, so a finer cut could be recomputed from them).

A weighted sum's level runs through the whole period, across parts, and each part's quantity
is its integral divided by the whole period's length: the parts add up to the period's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from operator import attrgetter

from connector.billing.usage import (
    ZERO,
    Aggregation,
    HourlyUsage,
    Metric,
    Usage,
    seconds_of,
)
from connector.errors import InvalidInputError


@dataclass(frozen=True, slots=True)
class Window:
    """The instants ``start`` (included) to ``end`` (excluded), on whole UTC hours."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        for at in (self.start, self.end):
            if at.tzinfo is None:
                raise InvalidInputError(f"usage window {at} has no time zone")
            if at.minute or at.second or at.microsecond:
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


_hour = attrgetter("hour")


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
    start, end = period.start, period.end
    inside = sorted((item for item in hours if start <= item.hour < end), key=_hour)
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
