"""Proration by days.

The amount due for an item in a billing period is built from the events inside the period, each
prorated by ``days from the event through the period end (inclusive) / days in the period`` and
rounded once:

- service begins (normally on the period start, a full period): ``+ amount × fraction``;
- a version changes the amount (upgrade, downgrade, price or quantity change, item added or
  removed): ``+ (new amount − old amount) × fraction``;
- service ends inside the period (end of a term that does not renew, cancellation):
  ``− amount × fraction`` of the unused days.

So an increase is charged for the rest of the period, a decrease or cancellation credits the
unused days, a change with no net effect adds nothing, and a change and its exact reversal on
the same day cancel out, whatever the rounding. What is due is never below zero (separately
rounded events on sub-cent amounts could otherwise add up to -0.01).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from connector.billing.money import ZERO, prorate
from connector.billing.periods import ONE_DAY, Period
from connector.billing.subscriptions import ItemVersion, SubscriptionItem


def version_amount(version: ItemVersion | None) -> Decimal:
    return ZERO if version is None else version.period_amount()


def due_in_period(
    item: SubscriptionItem, period: Period, service_start: date, service_end: date | None
) -> Decimal:
    """What a recurring item owes for ``period`` when it is served from ``service_start``
    through ``service_end`` (None: no end)."""
    covered = period.intersect(service_start, service_end)
    if covered is None:
        return ZERO
    currency = item.versions[0].price.currency
    period_days = period.days
    amount = version_amount(item.version_at(covered.start))
    total = prorate(amount, period.days_from(covered.start), period_days, currency)
    for version in item.versions:
        if covered.start < version.effective_date <= covered.end:
            new_amount = version.period_amount()
            days = period.days_from(version.effective_date)
            total += prorate(new_amount - amount, days, period_days, currency)
            amount = new_amount
    if covered.end < period.end:
        total -= prorate(amount, period.days_from(covered.end + ONE_DAY), period_days, currency)
    # Each event is rounded on its own; with amounts of a cent or less the roundings can add up
    # below zero. Nothing is ever owed below zero.
    return max(total, ZERO)


def due_once(item: SubscriptionItem, service_start: date, service_end: date | None) -> Decimal:
    """What a one-time item owes: its amount on its charge date, if service runs that day."""
    day = item.charge_date
    if day < service_start or (service_end is not None and day > service_end):
        return ZERO
    return version_amount(item.version_at(day))
