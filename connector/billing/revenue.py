"""Revenue recognition schedules.

A recurring line is recognized ratably, day by day, over its service period. What is recognized
through a day is the line's amount × the days served so far / the days of the period, rounded
once (half up) to the minor unit: rounding never accumulates, the recognized amount of any
prefix of the period is as close to the exact one as the currency allows, and the last day
completes the line exactly. A one-time line is recognized in full on its service date. A usage
line (metered, billed in arrears) is recognized in full on the last day of its service: the
service was delivered by then, so its revenue belongs to its period, not to the day it was
invoiced.
Schedules are computed, never stored per day: any range is answered in constant time.

A credit note does not get a schedule of its own making: it takes back from the schedule of the
invoice line it credits (:class:`CreditSchedule`). The invoice line and the credit lines that
correct it form one :class:`LineGroup`, whose recognized revenue through a day is the exact
value of its lines' days, rounded once. When the credits leave nothing of value after some day
(a cancellation: what is left is only what rounding left over), that day is the group's last day
of service: the group's net amount is complete on it, so the rounding residue lands inside the
service actually delivered and net revenue is zero on every later day.

A billing run may net several changes of one billing period into one line: an upgrade and a
cancellation billed together are one amount (a credit, or an invoice line) over the days from
the upgrade to the period's end, and its amount alone does not say where service stopped. The
subscription's last day of service says it: once billing is settled, the lines of a period add
up to what its service through that day is worth. When they would still recognize revenue
after it, the newest line's schedule (:func:`ending_schedule`) is the difference it makes to an
:class:`EndedPeriod`, whose revenue is complete on the last day of service.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from fractions import Fraction

from connector.billing.invoicing import DocumentKind
from connector.billing.money import ZERO, Currency, round_money
from connector.billing.periods import ONE_DAY, Period, add_months
from connector.billing.pricing import ChargeKind


def scheduled(kind: str, document_kind: str, service_start: date, issue_date: date) -> bool:
    """Whether a line is recognized by the revenue close rather than when its document is
    issued: recurring lines, and one-time lines of invoices dated on another day than the
    invoice, and usage lines."""
    if kind in (ChargeKind.RECURRING.value, ChargeKind.METERED.value):
        return True
    return document_kind == DocumentKind.INVOICE.value and service_start != issue_date


def recognition_service(kind: str, service: Period) -> Period:
    """The days a line's revenue is spread over: a usage line's on the last day of its
    service, every other line's over its service."""
    if kind == ChargeKind.METERED.value:
        return Period(service.end, service.end)
    return service


def month_end(day: date) -> date:
    return add_months(day.replace(day=1), 1) - ONE_DAY


def _round(value: Fraction, currency: Currency) -> Decimal:
    exact = Decimal(value.numerator) / Decimal(value.denominator)
    return round_money(exact, currency) if exact.is_finite() else ZERO


class Schedule:
    """Queries shared by every schedule: subclasses say what is recognized through a day."""

    amount: Decimal
    start: date
    end: date

    def recognized_through(self, day: date) -> Decimal:
        raise NotImplementedError

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
        start = self.start
        last = self.end if through is None else min(self.end, through)
        while start <= last:
            end = month_end(start)
            amount = self.recognized_between(start, min(end, last))
            if amount:
                yield (through if through is not None and through < end else end), amount
            start = end + ONE_DAY


@dataclass(frozen=True, slots=True)
class RevenueSchedule(Schedule):
    """One line on its own: ``amount`` (signed) over ``service``."""

    amount: Decimal
    currency: Currency
    service: Period

    @property
    def start(self) -> date:  # type: ignore[override]
        return self.service.start

    @property
    def end(self) -> date:  # type: ignore[override]
        return self.service.end

    def recognized_through(self, day: date) -> Decimal:
        """Revenue recognized from the start of service through ``day`` inclusive."""
        if day < self.service.start:
            return ZERO
        if day >= self.service.end:
            return self.amount
        served = (day - self.service.start).days + 1
        return round_money(self.amount * served / self.service.days, self.currency)


@dataclass(frozen=True, slots=True)
class LineGroup(Schedule):
    """An invoice line and the credit lines that correct it, as ``(signed amount, service)``
    pairs: the invoice line first (positive), its credits after it in the order they were
    issued (negative).

    One credit may be spread over several invoice lines of the same charge (an upgrade billed
    on its own invoice, then a cancellation credited newest line first): each line's share of
    the credit is then not what that line has left to serve, and only together do they take
    back the service exactly. Those other invoice lines are ``others``: each is recognized as
    on its invoice (rounded on its own), and they count in the group's value, so that the
    group's revenue stops with the service of all of them."""

    lines: tuple[tuple[Decimal, Period], ...]
    currency: Currency
    others: tuple[tuple[Decimal, Period], ...] = ()
    _last: date = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_last", self._last_day_of_service())

    @property
    def amount(self) -> Decimal:  # type: ignore[override]
        return sum((amount for amount, _ in (*self.lines, *self.others)), ZERO)

    @property
    def start(self) -> date:  # type: ignore[override]
        return min(service.start for _, service in (*self.lines, *self.others))

    @property
    def end(self) -> date:  # type: ignore[override]
        return max(service.end for _, service in (*self.lines, *self.others))

    def _exact_through(self, day: date, lines: Sequence[tuple[Decimal, Period]]) -> Fraction:
        """The exact value of ``lines``' days through ``day``."""
        total = Fraction(0)
        for amount, service in lines:
            if day < service.start:
                continue
            served = min((day - service.start).days + 1, service.days)
            total += Fraction(amount) * served / service.days
        return total

    def last_day_of_service(self) -> date:
        return self._last

    def _last_day_of_service(self) -> date:
        """The last day with something of value: the day before the earliest credit after
        which less than a minor unit per line is left (only rounding's leftovers), else the
        group's last day."""
        exact_total = Fraction(self.amount)
        every = (*self.lines, *self.others)
        noise = Fraction(self.currency.quantum) * len(every)
        last = self.end
        for amount, service in self.lines[1:]:
            if amount >= 0:
                continue
            left = exact_total - self._exact_through(service.start - ONE_DAY, every)
            if abs(left) < noise:
                last = min(last, service.start - ONE_DAY)
        return max(last, self.start)

    def recognized_through(self, day: date) -> Decimal:
        if day < self.start:
            return ZERO
        apart = sum(
            (
                RevenueSchedule(amount, self.currency, service).recognized_through(day)
                for amount, service in self.others
            ),
            ZERO,
        )
        if len(self.lines) == 1:
            amount, service = self.lines[0]
            return apart + RevenueSchedule(amount, self.currency, service).recognized_through(day)
        total = self.amount
        if day >= self.last_day_of_service():
            return total
        recognized = apart + _round(self._exact_through(day, self.lines), self.currency)
        low, high = min(total, ZERO), max(total, ZERO)
        return min(max(recognized, low), high)


@dataclass(frozen=True, slots=True)
class CreditSchedule(Schedule):
    """What one credit line takes back, day by day: the difference it makes to its group's
    recognized revenue (negative). ``group`` holds the invoice line, the credits issued before
    this one, and this one last."""

    group: LineGroup

    @property
    def amount(self) -> Decimal:  # type: ignore[override]
        return self.group.lines[-1][0]

    @property
    def start(self) -> date:  # type: ignore[override]
        return self.group.start

    @property
    def end(self) -> date:  # type: ignore[override]
        return self.group.end

    @property
    def before(self) -> LineGroup:
        return LineGroup(self.group.lines[:-1], self.group.currency, self.group.others)

    def recognized_through(self, day: date) -> Decimal:
        return self.group.recognized_through(day) - self.before.recognized_through(day)


def credit_schedule(
    invoice_line: tuple[Decimal, Period],
    credits: Sequence[tuple[Decimal, Period]],
    currency: Currency,
    others: Sequence[tuple[Decimal, Period]] = (),
) -> CreditSchedule:
    """The schedule of the last of ``credits`` (amounts positive, as documents hold them) on
    ``invoice_line``, the earlier ones issued before it. When the credits were spread over
    several invoice lines (parts of one credit charge), ``invoice_line`` is the first of them,
    ``others`` the rest, and ``credits`` those on any of them."""
    amount, service = invoice_line
    lines = ((amount, service), *((-credit, period) for credit, period in credits))
    return CreditSchedule(LineGroup(lines, currency, tuple(others)))


@dataclass(frozen=True, slots=True)
class Together(Schedule):
    """Schedules side by side: what they recognize together."""

    parts: tuple[Schedule, ...]

    @property
    def amount(self) -> Decimal:  # type: ignore[override]
        return sum((part.amount for part in self.parts), ZERO)

    @property
    def start(self) -> date:  # type: ignore[override]
        return min(part.start for part in self.parts)

    @property
    def end(self) -> date:  # type: ignore[override]
        return max(part.end for part in self.parts)

    def recognized_through(self, day: date) -> Decimal:
        return sum((part.recognized_through(day) for part in self.parts), ZERO)


@dataclass(frozen=True, slots=True)
class EndedPeriod(Schedule):
    """The lines of one billing period of an item whose service ends inside it, on
    ``last_day``, once billing is settled (they add up to what the service through that day is
    worth): ``before`` is what the earlier lines recognize together, ``line`` the newest one, as
    ``(signed amount, service)``.

    Their revenue is complete on the last day of service. Before the line's first day it is
    what the earlier lines recognize; from that day (or the last day of service, when the line
    begins after it) what is left of the period's total is recognized evenly through the last
    day, rounded once; nothing after."""

    before: Schedule
    line: tuple[Decimal, Period]
    last_day: date
    currency: Currency

    @property
    def amount(self) -> Decimal:  # type: ignore[override]
        return self.before.amount + self.line[0]

    @property
    def start(self) -> date:  # type: ignore[override]
        return min(self.before.start, self.line[1].start)

    @property
    def end(self) -> date:  # type: ignore[override]
        return max(self.before.end, self.line[1].end)

    def recognized_through(self, day: date) -> Decimal:
        if day >= self.last_day:
            return self.amount
        first = min(self.line[1].start, self.last_day)
        if day < first:
            return self.before.recognized_through(day)
        base = self.before.recognized_through(first - ONE_DAY)
        served = (day - first).days + 1
        days = (self.last_day - first).days + 1
        return base + _round(Fraction(self.amount - base) * served / days, self.currency)


@dataclass(frozen=True, slots=True)
class EndingLine(Schedule):
    """What the newest line of an :class:`EndedPeriod` recognizes, day by day: the difference
    it makes to the period's revenue. Nothing before its first day (or the last day of
    service); after the last day of service it takes back what the earlier lines still
    recognize."""

    period: EndedPeriod

    @property
    def amount(self) -> Decimal:  # type: ignore[override]
        return self.period.line[0]

    @property
    def start(self) -> date:  # type: ignore[override]
        return self.period.start

    @property
    def end(self) -> date:  # type: ignore[override]
        return self.period.end

    def recognized_through(self, day: date) -> Decimal:
        return self.period.recognized_through(day) - self.period.before.recognized_through(day)


def ending_schedule(
    before: Schedule,
    ordinary: Schedule,
    line: tuple[Decimal, Period],
    last_day: date,
    currency: Currency,
) -> Schedule:
    """The schedule of ``line`` (signed amount, service), the newest line of its billing period,
    whose lines add up to what the service through its last day ``last_day`` is worth;
    ``before`` is what the period's earlier lines recognize together (nothing, when it is the
    only one). ``ordinary``, the line's schedule as any line's, when with ``before`` it
    recognizes the whole period through the last day of service (a cancellation credited on
    its own); else its share of the :class:`EndedPeriod`."""
    total = before.amount + ordinary.amount
    if before.recognized_through(last_day) + ordinary.recognized_through(last_day) == total:
        return ordinary
    return EndingLine(EndedPeriod(before, line, last_day, currency))
