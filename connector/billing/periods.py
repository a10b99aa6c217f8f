"""Billing frequencies and periods.

A schedule is anchored on a date. Period *n* starts at ``anchor + n × step``; month-based steps
are always computed from the anchor, never from the previous period, so month-end anchors never
drift: a Jan 31 anchor gives Feb 28 (or 29), Mar 31, Apr 30, May 31. Periods are inclusive date
ranges: a period ends the day before the next one starts.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum
from fractions import Fraction
from functools import lru_cache

from connector.errors import InvalidInputError

ONE_DAY = timedelta(days=1)


class Frequency(StrEnum):
    WEEKLY = "weekly"
    BIWEEKLY = "biweekly"
    MONTHLY = "monthly"
    QUARTERLY = "quarterly"
    SEMI_ANNUAL = "semi_annual"
    ANNUAL = "annual"

    @classmethod
    def parse(cls, value: str) -> Frequency:
        """Accepts the value in any letter case with spaces, hyphens or underscores
        ("Semi-Annual", "semi annual", "SEMI_ANNUAL")."""
        key = str(value).strip().lower().replace("-", "_").replace(" ", "_")
        key = {"semiannual": "semi_annual", "bi_weekly": "biweekly", "yearly": "annual"}.get(
            key, key
        )
        try:
            return cls(key)
        except ValueError:
            names = ", ".join(f.label for f in cls)
            raise InvalidInputError(
                f"unsupported billing frequency {value!r} (expected one of {names})"
            ) from None

    @property
    def label(self) -> str:
        return _LABELS[self]

    @property
    def months(self) -> int | None:
        """Length in months for month-based frequencies, else None."""
        return _MONTHS.get(self)

    @property
    def days(self) -> int | None:
        """Length in days for week-based frequencies, else None."""
        return _DAYS.get(self)

    @property
    def per_year(self) -> int:
        return _PER_YEAR[self]

    @property
    def monthly_factor(self) -> Fraction:
        """Multiply an amount per period by this to normalize it to a month
        (weekly: 52/12, quarterly: 1/3)."""
        return Fraction(self.per_year, 12)


_LABELS = {
    Frequency.WEEKLY: "Weekly",
    Frequency.BIWEEKLY: "Biweekly",
    Frequency.MONTHLY: "Monthly",
    Frequency.QUARTERLY: "Quarterly",
    Frequency.SEMI_ANNUAL: "Semi-Annual",
    Frequency.ANNUAL: "Annual",
}
_MONTHS = {
    Frequency.MONTHLY: 1,
    Frequency.QUARTERLY: 3,
    Frequency.SEMI_ANNUAL: 6,
    Frequency.ANNUAL: 12,
}
_DAYS = {Frequency.WEEKLY: 7, Frequency.BIWEEKLY: 14}
_PER_YEAR = {
    Frequency.WEEKLY: 52,
    Frequency.BIWEEKLY: 26,
    Frequency.MONTHLY: 12,
    Frequency.QUARTERLY: 4,
    Frequency.SEMI_ANNUAL: 2,
    Frequency.ANNUAL: 1,
}


@lru_cache(maxsize=65_536)  # a billing run asks for the same few period bounds again and again
def add_months(anchor: date, months: int) -> date:
    """The date ``months`` after ``anchor`` on the anchor's day of month, clamped to the end of
    shorter months (Jan 31 + 1 month = Feb 28 or 29)."""
    month_index = anchor.year * 12 + anchor.month - 1 + months
    year, month = divmod(month_index, 12)
    month += 1
    day = min(anchor.day, calendar.monthrange(year, month)[1])
    return date(year, month, day)


def days_between(start: date, end: date) -> int:
    """Days from ``start`` through ``end``, both inclusive (0 when end is before start)."""
    return max(0, (end - start).days + 1)


@dataclass(frozen=True, slots=True)
class Period:
    """An inclusive date range: a billing period or a service period."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise InvalidInputError(f"period ends ({self.end}) before it starts ({self.start})")

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def days_from(self, day: date) -> int:
        """Days from ``day`` through the end of the period, inclusive."""
        return days_between(max(day, self.start), self.end)

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.start <= day <= self.end

    def intersect(self, start: date, end: date | None) -> Period | None:
        lo = max(self.start, start)
        hi = self.end if end is None else min(self.end, end)
        return Period(lo, hi) if lo <= hi else None

    def __str__(self) -> str:
        return f"{self.start.isoformat()}..{self.end.isoformat()}"


@dataclass(frozen=True, slots=True)
class Schedule:
    """Periods of one frequency anchored on a date: period 0 starts on the anchor."""

    anchor: date
    frequency: Frequency
    _months: int | None = field(init=False, repr=False, compare=False)
    _days: int | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_months", self.frequency.months)
        object.__setattr__(self, "_days", self.frequency.days)

    def start_of(self, index: int) -> date:
        months = self._months
        if months is not None:
            return add_months(self.anchor, index * months)
        return self.anchor + timedelta(days=index * self._days)  # type: ignore[operator]

    def period(self, index: int) -> Period:
        return _period(self.anchor, self._months, self._days, index)

    def index_of(self, day: date) -> int:
        """Index of the period that contains ``day`` (negative before the anchor)."""
        months = self._months
        if months is None:
            return (day - self.anchor).days // self._days  # type: ignore[operator]
        elapsed = (day.year - self.anchor.year) * 12 + day.month - self.anchor.month
        index = elapsed // months
        if self.start_of(index) > day:
            index -= 1
        elif self.start_of(index + 1) <= day:
            index += 1
        return index

    def periods_from(self, index: int) -> Iterator[tuple[int, Period]]:
        while True:
            yield index, self.period(index)
            index += 1


@lru_cache(maxsize=65_536)  # a billing run's subscriptions share a few anchors and periods
def _period(anchor: date, months: int | None, days: int | None, index: int) -> Period:
    """Period ``index`` of a schedule anchored on ``anchor``, ``months`` or ``days`` long."""
    if months is not None:
        return Period(
            add_months(anchor, index * months), add_months(anchor, (index + 1) * months) - ONE_DAY
        )
    step = timedelta(days=days)  # type: ignore[arg-type]
    return Period(anchor + index * step, anchor + (index + 1) * step - ONE_DAY)
