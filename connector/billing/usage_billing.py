"""Usage billed in arrears: which billing periods' usage is due, and what it comes to.

A metered item bills the usage of a billing period once the period's service is over: on the
invoice issued on the day after its last day of service (the next period's start, next to that
period's fixed fees, or the day a cancellation takes effect). The usage is measured from the
period's hourly aggregates (:mod:`connector.billing.usage_periods`, never raw events) and priced
with the item's metered price (:mod:`connector.billing.metered`). A change within the period
(an upgrade to another metered price, the item removed) splits it at the change: each part is
priced with the version in effect, its minimum commitment prorated.

The usage of one item and period is one charge (keyed by the period's start, like every other
charge), whose lines are the priced groups and shortfalls of its parts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Protocol

from connector.billing.metered import MeteredPrice, PricedUsage, price_usage
from connector.billing.money import ZERO, Rounding
from connector.billing.periods import ONE_DAY, Period
from connector.billing.pricing import ChargeKind
from connector.billing.subscriptions import Subscription, SubscriptionItem
from connector.billing.usage import HourlyUsage, Metric
from connector.billing.usage_periods import Window, measure
from connector.errors import BillingError


@dataclass(frozen=True, slots=True)
class UsageLine:
    """One line of a usage charge: a group's priced quantity, or a minimum's shortfall."""

    description: str
    quantity: Decimal
    amount: Decimal
    service: Period


class UsageMeter(Protocol):
    """What a billing run knows of a subscription's usage: the lines of an item's usage in a
    billing ``period`` whose served ``parts`` are each priced with the given price."""

    def lines(
        self, period: Period, parts: Sequence[tuple[Period, MeteredPrice]]
    ) -> tuple[UsageLine, ...]: ...


@lru_cache(maxsize=65_536)  # the periods of a billing run's subscriptions are few
def window_of(period: Period) -> Window:
    """An inclusive period of days as the instants it covers (UTC)."""
    start = datetime.combine(period.start, time(), tzinfo=UTC)
    return Window(start, datetime.combine(period.end + ONE_DAY, time(), tzinfo=UTC))


@dataclass(frozen=True)
class Meter:
    """The usage of one customer: hourly aggregates by metric (from the first period billed on),
    and the level every earlier event left per metric and group (recurring weighted sums).

    With ``until`` (a whole UTC hour), usage is measured up to that instant only: what a
    period's usage comes to so far, a weighted sum's level integrated to then (so its quantity
    grows through the period). A minimum commitment stays the whole part's."""

    metrics: Mapping[str, Metric]
    hours: Mapping[str, Sequence[HourlyUsage]]
    levels: Mapping[str, Mapping[str, Decimal]]
    rounding: Rounding = Rounding.HALF_UP
    until: datetime | None = None

    def metric(self, code: str) -> Metric:
        metric = self.metrics.get(code)
        if metric is None:
            raise BillingError(f"metric {code!r} of a metered price is not in the usage mapping")
        return metric

    def _carried(self, metric: Metric, before: datetime) -> dict[str, Decimal]:
        level = dict(self.levels.get(metric.code, {}))
        for hour in self.hours.get(metric.code, ()):
            if hour.hour < before:
                level[hour.group] = level.get(hour.group, ZERO) + hour.usage.total
        return level

    def _may_bill(self, price: MeteredPrice) -> bool:
        """Whether ``price`` may bill something: usage measured, a level carried or a minimum
        (its metric must be known all the same)."""
        code = self.metric(price.metric).code
        return bool(
            price.minimum is not None
            or code != price.metric
            or self.hours.get(code)
            or self.levels.get(code)
        )

    def measured(self, metric: Metric, period: Period, part: Period) -> dict[str, Decimal]:
        """The quantity of each group of ``metric`` in ``part`` of the billing ``period``
        (up to ``until``, when given)."""
        whole, window = window_of(period), window_of(part)
        end = window.end if self.until is None else min(window.end, self.until)
        if end <= window.start:
            return {}
        hours = self.hours.get(metric.code, ())
        carried = self._carried(metric, whole.start) if metric.recurring else None
        if not hours and not carried and whole.start <= window.start and window.end <= whole.end:
            return {}  # no event, no level: nothing measured
        if end != window.end:
            window = Window(window.start, end)
        (quantities,) = measure(metric, hours, whole, [window], carried)
        return quantities

    def priced(
        self, period: Period, parts: Sequence[tuple[Period, MeteredPrice]]
    ) -> list[tuple[Period, PricedUsage]]:
        """Each part of a billing ``period`` with its usage priced by the part's price."""
        whole = window_of(period)
        found = []
        for part, price in parts:
            metric = self.metric(price.metric)
            quantities = self.measured(metric, period, part)
            priced = price_usage(
                metric, price, quantities, window_of(part), whole, rounding=self.rounding
            )
            found.append((part, priced))
        return found

    def lines(
        self, period: Period, parts: Sequence[tuple[Period, MeteredPrice]]
    ) -> tuple[UsageLine, ...]:
        found: list[UsageLine] = []
        measured = [(part, price) for part, price in parts if self._may_bill(price)]
        for part, priced in self.priced(period, measured) if measured else ():
            found.extend(
                UsageLine(charge.description, charge.quantity, charge.amount, part)
                for charge in priced.charges
            )
            if priced.shortfall is not None:
                shortfall = priced.shortfall
                found.append(UsageLine(shortfall.description, ZERO, shortfall.amount, part))
        return tuple(found)


def metered_parts(
    versions: Sequence[tuple[date, MeteredPrice | None, Decimal]], served: Period
) -> list[tuple[Period, MeteredPrice]]:
    """The parts of ``served`` cut by an item's versions ``(effective date, metered price,
    quantity)`` in date order: each with the price in effect, the days the item was removed
    (quantity 0) or not yet on the subscription left out."""
    parts: list[tuple[Period, MeteredPrice]] = []
    for index, (day, price, quantity) in enumerate(versions):
        following = versions[index + 1][0] if index + 1 < len(versions) else None
        start = max(day, served.start)
        end = served.end if following is None else min(following - ONE_DAY, served.end)
        if price is not None and quantity > 0 and start <= end:
            parts.append((Period(start, end), price))
    return parts


@dataclass(frozen=True, slots=True)
class UsagePeriod:
    """A billing period whose usage a run looks at: ``served`` its days of service (None when
    service ended before it), ``reconciling`` when a change since the last run touches it."""

    index: int
    period: Period
    served: Period | None
    reconciling: bool

    def due_by(self, as_of: date) -> bool:
        """Whether its service is over by ``as_of`` (its usage can be billed)."""
        return self.served is not None and self.served.end < as_of


def metered_items(subscription: Subscription) -> list[SubscriptionItem]:
    return [item for item in subscription.items if item.kind is ChargeKind.METERED]


def usage_periods(
    subscription: Subscription,
    as_of: date,
    billed_as_of: date | None,
    reconcile_from: date | None = None,
) -> list[UsagePeriod]:
    """The billing periods whose usage a run at ``as_of`` bills or settles: those whose service
    ended before ``as_of`` and after the last run's as-of date ``billed_as_of`` (the earlier ones
    it billed), and those a change effective ``reconcile_from`` touches."""
    if not metered_items(subscription):
        return []
    terms = subscription.terms
    schedule, end = terms.schedule, terms.service_end
    since = [day for day in (billed_as_of, reconcile_from) if day is not None]
    index = 0
    if since:
        index = max(0, schedule.index_of(max(min(since), terms.billing_start)) - 1)
    found: list[UsagePeriod] = []
    while True:
        period = schedule.period(index)
        reconciling = reconcile_from is not None and period.end >= reconcile_from
        if period.start >= as_of or (end is not None and period.start > end and not reconciling):
            return found
        served = period.intersect(terms.billing_start, end)
        billed_before = (
            billed_as_of is not None and served is not None and served.end < billed_as_of
        )
        if reconciling or not billed_before:
            found.append(UsagePeriod(index, period, served, reconciling))
        index += 1


def next_usage_date(subscription: Subscription, billed_as_of: date | None) -> date | None:
    """The day the usage of the first period not yet billed falls due (the day after its last
    day of service), None without metered items or once service ended and was billed."""
    if not metered_items(subscription):
        return None
    terms = subscription.terms
    schedule, end = terms.schedule, terms.service_end
    index = 0
    if billed_as_of is not None:
        index = max(0, schedule.index_of(max(billed_as_of, terms.billing_start)) - 1)
    while True:
        period = schedule.period(index)
        served = period.intersect(terms.billing_start, end)
        if served is None:
            return None
        if billed_as_of is None or served.end >= billed_as_of:
            return served.end + ONE_DAY
        index += 1


def item_parts(item: SubscriptionItem, served: Period) -> list[tuple[Period, MeteredPrice]]:
    """The parts of ``served`` a metered item bills, each with its metered price."""
    return metered_parts(
        [(v.effective_date, v.price.metered, v.quantity) for v in item.versions], served
    )


def usage_billed_until(subscription: Subscription, billed_as_of: date | None) -> date | None:
    """The first day whose usage is not billed yet, once a run at ``billed_as_of`` billed the
    usage of every period whose service ended before it: an event dated earlier is late, and
    its period is billed again. None without metered items or before any run."""
    if billed_as_of is None or not metered_items(subscription):
        return None
    terms = subscription.terms
    schedule, end = terms.schedule, terms.service_end
    index = max(0, schedule.index_of(max(billed_as_of, terms.billing_start)) - 1)
    while True:
        period = schedule.period(index)
        served = period.intersect(terms.billing_start, end)
        if served is None or served.end >= billed_as_of:
            return period.start
        index += 1


def usage_as_of(as_of: date, now: datetime, grace_hours: int) -> date:
    """The as-of date a run at ``as_of`` bills subscriptions with metered items to, ``now``:
    a period's usage falls due ``grace_hours`` after its end (midnight UTC), so that events
    arriving late within the grace still reach its invoice."""
    if not grace_hours:
        return as_of
    return min(as_of, (now - timedelta(hours=grace_hours)).astimezone(UTC).date())
