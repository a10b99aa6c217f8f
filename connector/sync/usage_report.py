"""``connector usage show CUSTOMER`` and ``GET /v1/customers/{id}/upcoming-invoice``: a
customer's usage in the current period and the charges it would produce now, priced the way
the billing run will bill it.

Each subscription of the customer in service today shows its current billing period (its own
schedule: a quarter, a month from its anchor day): every metered item's usage of the period
to date, split by the item's versions (an upgrade within the period) and priced with the
metered price of each version, as :mod:`connector.billing.usage_billing` prices it for the
invoice issued the day after the period's last day of service; and that invoice's fixed fees
(the recurring items billed in advance for the next period), as :func:`plan_billing` plans
them. Quantities are those to date: counted up to the next whole hour, a weighted sum's level
integrated up to then (so its quantity grows through the period); a minimum commitment is the
whole part's. Metrics no subscription item bills show their quantity in the calendar month,
with no charge.

Given dates (``period``) replace every subscription's current period: its metered items'
usage of those days is priced as if they were one billing period (its minimum too), and no
fees are shown (no invoice is due for them).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connector.billing.charges import plan_billing
from connector.billing.metered import MeteredPrice, PricedUsage
from connector.billing.money import Rounding
from connector.billing.periods import ONE_DAY, Period, add_months
from connector.billing.pricing import ChargeKind
from connector.billing.subscriptions import Subscription, SubscriptionItem
from connector.billing.usage import HOUR, Metric, hour_of
from connector.billing.usage_billing import Meter, UsageLine, item_parts, metered_items, window_of
from connector.billing.usage_periods import Window
from connector.db import tables
from connector.db import usage as storage
from connector.db.catalog import PriceCache
from connector.db.engine import reading
from connector.db.subscriptions import load_subscriptions
from connector.errors import InvalidInputError, NotFoundError
from connector.settings import Settings
from connector.sync.billing_run import billing_state, load_past
from connector.sync.billing_usage import read_meters
from connector.sync.usage_mapping import usage_mapping_of
from connector.sync.usage_report_shape import (
    Fee,
    MeteredLine,
    ShortfallLine,
    UpcomingSubscription,
    UsageReport,
)


def month_of(day: date) -> Period:
    """The calendar month of ``day``, as an inclusive period."""
    first = day.replace(day=1)
    return Period(first, add_months(first, 1) - timedelta(days=1))


class _FeesOnly:
    """The usage meter :func:`plan_billing` is given when only the fees of its plan are read."""

    def lines(
        self, period: Period, parts: Sequence[tuple[Period, MeteredPrice]]
    ) -> tuple[UsageLine, ...]:
        return ()


def usage_report(
    session: Session,
    metrics: Mapping[str, Metric],
    customer: str,
    now: datetime,
    period: Period | None = None,
    *,
    rounding: Rounding = Rounding.HALF_UP,
) -> UsageReport:
    """The usage of ``customer`` (our id or the Salesforce Account Id) to ``now`` in its
    subscriptions' current periods, or in the dates of ``period``, priced (module doc)."""
    known = storage.customer_ids(session, [customer]).get(customer)
    row = session.get(tables.Customer, known) if known is not None else None
    if row is None:
        raise NotFoundError(f"no customer {customer!r} (give our id or its Salesforce Account Id)")
    until = hour_of(now) + HOUR
    if period is not None:
        whole = window_of(period)
        until = min(whole.end, until)
        if until <= whole.start:
            raise InvalidInputError(f"the period starts after now ({whole.start:%Y-%m-%d})")
    report = UsageReport(row.id, row.name, row.currency, until)
    rows, shown = _subscriptions(session, row.id, now.date(), period)
    report.subscriptions = shown
    days = period or month_of(now.date())
    unbilled = window_of(days)
    windows = [window_of(found.period) for found in shown] + [unbilled]
    start, end = min(w.start for w in windows), max(w.end for w in windows)
    meter = read_meters(
        session, metrics, {row.id: Window(start, end)}, metrics, rounding=rounding, until=until
    )[row.id]
    billed: set[str] = set()
    for found in shown:
        billed.update(_price_usage(report, found, meter))
    if period is None:
        _plan_fees(session, report, rows, shown)
    for code, metric in sorted(metrics.items()):
        if code not in billed:
            quantities = meter.measured(metric, days, days)
            report.usage.extend(
                MeteredLine(None, None, metric, group, unbilled, quantity)
                for group, quantity in quantities.items()
            )
    return report


def _subscriptions(
    session: Session, customer_id: int, today: date, period: Period | None
) -> tuple[list[Any], list[UpcomingSubscription]]:
    """The customer's subscription rows, and those to show: in service today, with their
    current period, or serving some of the days of ``period``."""
    rows: list[Any] = list(
        session.execute(
            select(tables.table_of(tables.Subscription), tables.Contract.name.label("contract"))
            .join(tables.Contract, tables.Contract.id == tables.Subscription.contract_id)
            .where(tables.Subscription.customer_id == customer_id)
            .order_by(tables.Subscription.id)
        )
    )
    subscriptions = load_subscriptions(session, rows, PriceCache())
    shown = []
    for found in rows:
        subscription = subscriptions[found.id]
        terms = subscription.terms
        if period is None:
            days = current_period(subscription, today)
        else:
            served = period.intersect(terms.billing_start, terms.service_end)
            days = None if served is None else (period, served)
        if days is None:
            continue
        current, served = days
        invoice_date = served.end + ONE_DAY if period is None else None
        shown.append(
            UpcomingSubscription(
                found.id, found.contract, subscription, current, served, invoice_date
            )
        )
    return rows, shown


def current_period(subscription: Subscription, today: date) -> tuple[Period, Period] | None:
    """The billing period of ``subscription`` in service ``today``, with its days of service;
    None when it is not in service."""
    terms = subscription.terms
    if not terms.is_billable_on(today):
        return None
    current = terms.schedule.period(terms.schedule.index_of(today))
    served = current.intersect(terms.billing_start, terms.service_end)
    return None if served is None else (current, served)


def priced_items(
    subscription: Subscription, period: Period, served: Period, meter: Meter
) -> Iterator[tuple[SubscriptionItem, list[tuple[Period, PricedUsage]]]]:
    """Each metered item of ``subscription`` with the usage of its parts of the ``served`` days
    of ``period``, priced as the billing run bills it (to the meter's ``until``, when given)."""
    for item in metered_items(subscription):
        yield item, meter.priced(period, item_parts(item, served))


def _price_usage(report: UsageReport, found: UpcomingSubscription, meter: Meter) -> set[str]:
    """The usage lines of a subscription's metered items; returns the metrics they bill."""
    billed: set[str] = set()
    for item, priced_parts in priced_items(found.subscription, found.period, found.served, meter):
        parts = item_parts(item, found.served)
        for _part, priced in priced_parts:
            for charge in priced.charges:
                metric = meter.metric(charge.metric)
                report.usage.append(MeteredLine.priced(found.id, item.key, metric, charge))
            if priced.shortfall is not None:
                report.shortfalls.append(ShortfallLine(found.id, item.key, priced.shortfall))
            found.usage += priced.total
        billed.update(price.metric for _part, price in parts)
    return billed


def _plan_fees(
    session: Session, report: UsageReport, rows: list[Any], shown: list[UpcomingSubscription]
) -> None:
    """The fixed fees of each subscription's next invoice: what the billing run on its date
    plans for the recurring items of the period starting then."""
    subscriptions = {found.id: found.subscription for found in shown}
    past = load_past(session, [row for row in rows if row.id in subscriptions], subscriptions)
    by_id = {row.id: row for row in rows}
    for found in shown:
        assert found.invoice_date is not None
        state = billing_state(by_id[found.id], past.get(found.id))
        plan = plan_billing(found.subscription, found.invoice_date, state, _FeesOnly())
        for charge in plan.charges:
            if charge.item.kind is ChargeKind.RECURRING and charge.key_date == found.invoice_date:
                report.fees.append(Fee(found.id, charge))
                found.fees += charge.amount


def current_usage(
    factory: sessionmaker[Session],
    settings: Settings,
    customer: str,
    now: datetime,
    period: Period | None = None,
) -> UsageReport:
    """:func:`usage_report` with the metrics and rounding ``settings`` name, in a read-only
    transaction: what ``connector usage show`` and ``GET /v1/customers/{id}/upcoming-invoice``
    answer."""
    metrics = usage_mapping_of(settings).metrics
    with reading(factory) as session:
        return usage_report(session, metrics, customer, now, period, rounding=settings.tax.rounding)
