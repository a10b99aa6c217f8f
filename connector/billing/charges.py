"""What a billing run owes for one subscription: the charges due by an as-of date.

Billing works by reconciliation. For every (item, period) the run looks at, the amount due
(:mod:`connector.billing.proration`) is compared with what was already billed for it; the
difference becomes a charge: positive on an invoice, negative on a credit note. Running again
finds nothing new, and a late change (an amendment, a cancellation, a backdated one) is settled
by reconciling only the periods from the day it takes effect.

Metered items bill their usage in arrears (:mod:`connector.billing.usage_billing`): the usage of
a period is one charge keyed by the period's start, carried by the invoice of the next period
(next to its fixed fees billed in advance) or, when service ends with the period, by the
period's own; reconciled like the rest when a change reaches back into it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from connector.billing.money import ZERO
from connector.billing.periods import ONE_DAY, Period
from connector.billing.pricing import ChargeKind
from connector.billing.proration import due_in_period, due_once
from connector.billing.subscriptions import Subscription, SubscriptionItem
from connector.billing.usage_billing import (
    UsageLine,
    UsageMeter,
    UsagePeriod,
    item_parts,
    metered_items,
    next_usage_date,
    usage_periods,
)
from connector.errors import BillingError


@dataclass(frozen=True, slots=True)
class Charge:
    """One amount to bill (> 0) or credit (< 0) for an item.

    ``key_date`` (the period start, or a one-time item's charge date) identifies, with the item
    and the subscription's revision, the charge in storage: each can exist only once.
    """

    item: SubscriptionItem
    key_date: date
    period: Period  # the billing period whose document carries the charge
    service: Period  # the days this amount pays for
    amount: Decimal
    quantity: Decimal
    discount_percent: Decimal
    adjustment: bool  # a change to an amount billed before
    usage: tuple[UsageLine, ...] = ()  # a first billing of usage: its lines

    @property
    def description(self) -> str:
        name = self.item.product.name
        if self.item.kind is ChargeKind.METERED:
            if self.amount < 0:
                return f"{name}: usage credited for {self.service}"
            if self.adjustment:
                return f"{name}: usage change for {self.service}"
            return f"{name}: usage {self.service}"
        if self.item.kind is ChargeKind.ONE_TIME:
            if self.amount < 0:
                return f"{name}: one-time charge credited"
            text = f"{name} × {self.quantity:f}"
        elif self.amount < 0:
            text = f"{name}: unused time {self.service}"
        elif self.adjustment:
            text = f"{name} × {self.quantity:f}: change for {self.service}"
        elif self.service != self.period:
            text = f"{name} × {self.quantity:f}, prorated {self.service}"
        else:
            text = f"{name} × {self.quantity:f}, {self.service}"
        if self.discount_percent:
            text += f" (discount {self.discount_percent.normalize():f}%)"
        return text


@dataclass(frozen=True, slots=True)
class BillingState:
    """What storage knows of a subscription's past billing.

    ``billed`` holds the net amount billed (invoiced minus credited) per ``(item key, key
    date)``; it needs entries only from the period that contains ``reconcile_from``.
    """

    billed_until: date | None = None  # start of the first recurring period not yet billed
    billed_as_of: date | None = None  # as-of date of the last run that billed it
    reconcile_from: date | None = None  # changes made since then take effect from this day
    billed: Mapping[tuple[str, date], Decimal] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BillingPlan:
    charges: tuple[Charge, ...]
    billed_until: date
    next_billing_date: date | None


def plan_billing(
    subscription: Subscription,
    as_of: date,
    state: BillingState,
    usage: UsageMeter | None = None,
) -> BillingPlan:
    """Charges due by ``as_of``: every period started by then and not yet billed, one-time
    charges that fell due, the usage of periods whose service ended (measured by ``usage``),
    and adjustments of periods touched by a change."""
    terms = subscription.terms
    schedule = terms.schedule
    service_end = terms.service_end
    recurring = [i for i in subscription.items if i.kind is ChargeKind.RECURRING]
    first_unbilled = schedule.index_of(state.billed_until) if state.billed_until else 0
    planner = _Planner(state, terms.billing_start, service_end)

    if state.reconcile_from is not None:
        first = max(0, schedule.index_of(max(state.reconcile_from, terms.billing_start)))
        for index in range(first, first_unbilled):
            planner.add_period(recurring, schedule.period(index))

    index = first_unbilled
    start = schedule.start_of(index)
    while recurring and start <= as_of and (service_end is None or start <= service_end):
        following = schedule.start_of(index + 1)
        planner.add_period(recurring, Period(start, following - ONE_DAY))
        index, start = index + 1, following
    billed_until = start

    for item in subscription.items:
        if item.kind is not ChargeKind.ONE_TIME:
            continue
        day = item.charge_date
        newly_due = state.billed_as_of is None or day > state.billed_as_of
        changed = state.reconcile_from is not None and day >= state.reconcile_from
        if day <= as_of and (newly_due or changed):
            due = due_once(item, terms.start_date, service_end)
            planner.add(item, _period_for_one_time(subscription, day), day, due)
        for key, moved_from in state.billed:
            if key == item.key and moved_from != day:  # its date was moved: take it back
                planner.add(item, _period_for_one_time(subscription, moved_from), moved_from, ZERO)

    _plan_usage(subscription, as_of, state, usage, planner)

    billed_as_of = as_of if state.billed_as_of is None else max(as_of, state.billed_as_of)
    return BillingPlan(
        tuple(planner.charges),
        billed_until,
        next_billing_date(subscription, billed_until, billed_as_of),
    )


def next_billing_date(
    subscription: Subscription, billed_until: date | None, billed_as_of: date | None
) -> date | None:
    """The first day on which something new falls due, or None when nothing ever will."""
    terms = subscription.terms
    candidates = []
    if any(i.kind is ChargeKind.RECURRING for i in subscription.items):
        start = billed_until or terms.billing_start
        if terms.service_end is None or start <= terms.service_end:
            candidates.append(start)
    for item in subscription.items:
        if item.kind is ChargeKind.ONE_TIME and (
            billed_as_of is None or item.charge_date > billed_as_of
        ):
            candidates.append(item.charge_date)
    usage_due = next_usage_date(subscription, billed_as_of)
    if usage_due is not None:
        candidates.append(usage_due)
    return min(candidates) if candidates else None


def _plan_usage(
    subscription: Subscription,
    as_of: date,
    state: BillingState,
    usage: UsageMeter | None,
    planner: _Planner,
) -> None:
    """The usage charges of the periods whose service ended by ``as_of``, and the corrections
    of those a change reaches back into."""
    items = metered_items(subscription)
    for found in usage_periods(subscription, as_of, state.billed_as_of, state.reconcile_from):
        document = _usage_document(subscription, found)
        for item in items:
            key = (item.key, found.period.start)
            if found.served is None:  # service ended before the period: take back its usage
                if key in state.billed:
                    planner.add_usage(item, found.period, document, found.period, ())
                continue
            if not found.due_by(as_of):
                continue
            if usage is None:
                raise BillingError(f"the usage of item {item.key} cannot be measured")
            parts = item_parts(item, found.served)
            lines = usage.lines(found.period, parts) if parts else ()
            planner.add_usage(item, found.period, document, found.served, lines)


def _usage_document(subscription: Subscription, found: UsagePeriod) -> Period:
    """The billing period whose invoice carries a period's usage: the next one, when it is
    served and has fixed fees; else the period itself."""
    terms = subscription.terms
    following = terms.schedule.period(found.index + 1)
    end = terms.service_end
    recurring = any(i.kind is ChargeKind.RECURRING for i in subscription.items)
    if recurring and (end is None or following.start <= end):
        return following
    return found.period


def _period_for_one_time(subscription: Subscription, day: date) -> Period:
    """A one-time charge rides on the invoice of the billing period it falls in, or, outside
    billed service (during a trial, say), on a document of its own."""
    terms = subscription.terms
    if terms.is_billable_on(day) and any(
        i.kind is ChargeKind.RECURRING for i in subscription.items
    ):
        return terms.schedule.period(terms.schedule.index_of(day))
    return Period(day, day)


@dataclass(slots=True)
class _Planner:
    state: BillingState
    service_start: date
    service_end: date | None
    charges: list[Charge] = field(default_factory=list)

    def add_period(self, items: list[SubscriptionItem], period: Period) -> None:
        for item in items:
            self.add(
                item,
                period,
                period.start,
                due_in_period(item, period, self.service_start, self.service_end),
            )

    def add(self, item: SubscriptionItem, period: Period, key_date: date, due: Decimal) -> None:
        billed = self.state.billed.get((item.key, key_date))
        delta = due - (billed or ZERO)
        if not delta:
            return
        service = self._service(item, period, key_date, first=billed is None)
        self.charges.append(
            Charge(
                item=item,
                key_date=key_date,
                period=period,
                service=service,
                amount=delta,
                quantity=_quantity(
                    item, service.start, self.state.reconcile_from, billed is not None
                ),
                discount_percent=(
                    item.version_at(service.start) or item.versions[0]
                ).discount_percent,
                adjustment=billed is not None,
            )
        )

    def add_usage(
        self,
        item: SubscriptionItem,
        period: Period,
        document: Period,
        served: Period,
        lines: tuple[UsageLine, ...],
    ) -> None:
        """The usage charge of ``item`` in ``period`` (its ``served`` days priced as
        ``lines``), on the invoice of ``document``: what it adds to what was billed."""
        billed = self.state.billed.get((item.key, period.start))
        due = sum((line.amount for line in lines), ZERO)
        delta = due - (billed or ZERO)
        if not delta:
            return
        first = billed is None
        self.charges.append(
            Charge(
                item=item,
                key_date=period.start,
                period=document,
                service=served,
                amount=delta,
                quantity=sum((line.quantity for line in lines), ZERO),
                discount_percent=ZERO,
                adjustment=not first,
                usage=lines if first else (),
            )
        )

    def _service(
        self, item: SubscriptionItem, period: Period, key_date: date, first: bool
    ) -> Period:
        """The days a charge pays for: the served part of the period on a first billing, the
        days from the change on an adjustment."""
        if item.kind is ChargeKind.ONE_TIME:
            return Period(key_date, key_date)
        if first:
            start = max(self.service_start, item.versions[0].effective_date)
            return period.intersect(start, self.service_end) or period
        return Period(self._changed_from(item, period), period.end)

    def _changed_from(self, item: SubscriptionItem, period: Period) -> date:
        """First day of ``period`` that a change made since the last run touches for ``item``:
        its own new version, or a move of the service end; else the day changes begin."""
        since = max(self.state.reconcile_from or period.start, period.start)
        changes = [v.effective_date for v in item.versions if v.effective_date >= since]
        if self.service_end is not None and self.service_end + ONE_DAY >= since:
            changes.append(self.service_end + ONE_DAY)
        first = min(changes, default=since)
        return first if first <= period.end else since


def _quantity(
    item: SubscriptionItem, day: date, changed_from: date | None, adjustment: bool
) -> Decimal:
    """Quantity shown on a line: the quantity served, or for an adjustment the units changed
    since the day before the change took effect."""
    current = item.version_at(day)
    if not adjustment:
        return current.quantity if current else ZERO
    before = item.version_at(min(day, changed_from or day) - ONE_DAY)
    after_qty = current.quantity if current else ZERO
    before_qty = before.quantity if before else ZERO
    return abs(after_qty - before_qty) or after_qty or before_qty
