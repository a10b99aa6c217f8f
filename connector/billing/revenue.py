"""Revenue recognition schedules.

A recurring line is recognized daily and ratably over its service period: each day gets the
line's amount divided by its days, truncated to the minor unit, and the last day takes the
rounding residue, so that recognized plus deferred always equals the line exactly. A one-time
line is recognized in full on its service date. Schedules are computed, never stored per day:
any range is answered in constant time.
"""

from __future__ import annotations

import decimal
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from connector.billing.money import ZERO, Currency
from connector.billing.periods import ONE_DAY, Period, add_months


def month_end(day: date) -> date:
    return add_months(day.replace(day=1), 1) - ONE_DAY


@dataclass(frozen=True, slots=True)
class RevenueSchedule:
    amount: Decimal  # signed: a credit note line reverses revenue
    currency: Currency
    service: Period

    @property
    def daily(self) -> Decimal:
        if self.service.days == 1:
            return self.amount
        return (self.amount / self.service.days).quantize(
            self.currency.quantum, rounding=decimal.ROUND_DOWN
        )

    def recognized_through(self, day: date) -> Decimal:
        """Revenue recognized from the start of service through ``day`` inclusive."""
        if day < self.service.start:
            return ZERO
        if day >= self.service.end:
            return self.amount
        return self.daily * ((day - self.service.start).days + 1)

    def recognized_between(self, start: date, end: date) -> Decimal:
        """Revenue recognized from ``start`` through ``end``, both inclusive."""
        if end < start:
            return ZERO
        return self.recognized_through(end) - self.recognized_through(start - ONE_DAY)

    def deferred_after(self, day: date) -> Decimal:
        """Revenue still deferred at the end of ``day``."""
        return self.amount - self.recognized_through(day)

    def by_month(self, through: date | None = None) -> Iterator[tuple[date, Decimal]]:
        """``(month's last day, amount)`` per calendar month of service. With ``through`` (an
        as-of date), recognition stops there: the running month is dated ``through`` and later
        months are left out."""
        start = self.service.start
        last = self.service.end if through is None else min(self.service.end, through)
        while start <= last:
            end = month_end(start)
            amount = self.recognized_between(start, min(end, last))
            if amount:
                yield (through if through is not None and through < end else end), amount
            start = end + ONE_DAY
