"""``connector usage show CUSTOMER``: a customer's usage in the current period, per metric and
group, and the charges it would produce if the period ended now.

Each metric is priced as the billing run will bill it: with the metered price of the
customer's subscription item metering it today, over that subscription's current billing
period (or the dates given); a metric none of them meters shows its quantity only. A customer
without any metered item sees its usage of the calendar month (UTC) priced with
``mappings/usage.yaml``'s rates in its currency, where it has them. Quantities are those to
date: counted up to the next whole hour, a weighted sum's level integrated up to then (so its
quantity grows through the period); a minimum commitment is the whole period's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connector.billing.metered import MeteredPrice, PricedUsage, price_usage
from connector.billing.money import ZERO, Rounding, currency
from connector.billing.periods import Period, add_months
from connector.billing.usage import HOUR, Metric, hour_of
from connector.billing.usage_billing import metered_items, window_of
from connector.billing.usage_periods import Window, measure
from connector.db import tables
from connector.db import usage as storage
from connector.db.catalog import PriceCache
from connector.db.engine import reading
from connector.db.subscriptions import load_subscriptions
from connector.db.tables import Customer
from connector.errors import InvalidInputError, NotFoundError
from connector.settings import Settings
from connector.sync.usage_mapping import UsageMapping, usage_mapping_of


@dataclass(frozen=True)
class MetricUsage:
    metric: Metric
    group: str
    quantity: Decimal


@dataclass(frozen=True)
class UsageReport:
    customer_id: int
    customer_name: str
    currency: str
    period: Window
    until: datetime  # quantities are those up to this instant
    usage: list[MetricUsage]
    priced: dict[str, PricedUsage]  # by metric code, for the metrics with a price

    @property
    def total(self) -> Decimal:
        return sum((priced.total for priced in self.priced.values()), ZERO)

    def to_dict(self) -> dict[str, Any]:
        code = currency(self.currency)
        lines: list[dict[str, Any]] = []
        for found in self.usage:
            priced = self.priced.get(found.metric.code)
            charge = next(
                (c for c in priced.charges if c.group == found.group) if priced else iter(()),
                None,
            )
            lines.append(
                {
                    "metric": found.metric.code,
                    "name": found.metric.label,
                    "aggregation": found.metric.aggregation.value,
                    "group": found.group or None,
                    "quantity": f"{found.quantity:f}",
                    "billable": f"{charge.billable:f}" if charge else None,
                    "amount": f"{charge.amount:f}" if charge else None,
                }
            )
        shortfalls = [
            {
                "metric": priced.shortfall.metric,
                "minimum": f"{priced.shortfall.minimum:f}",
                "charged": f"{priced.shortfall.charged.quantize(code.quantum):f}",
                "amount": f"{priced.shortfall.amount:f}",
            }
            for priced in self.priced.values()
            if priced.shortfall is not None
        ]
        return {
            "customer": {"id": self.customer_id, "name": self.customer_name},
            "currency": self.currency,
            "period": {"start": self.period.start, "end": self.period.end},
            "until": self.until,
            "usage": lines,
            "shortfalls": shortfalls,
            "total": f"{self.total.quantize(code.quantum):f}",
        }


def month_of(day: date) -> Period:
    """The calendar month of ``day``, as an inclusive period."""
    first = day.replace(day=1)
    return Period(first, add_months(first, 1) - timedelta(days=1))


@dataclass(frozen=True)
class MeteredNow:
    """What a customer's subscriptions meter today: the metered price of each metric, and the
    current billing period of the first subscription metering one (None without any)."""

    prices: dict[str, MeteredPrice]
    period: Period | None


def metered_prices(session: Session, customer_id: int, today: date) -> MeteredNow:
    """The metered prices in effect ``today`` on the customer's subscriptions in service, and
    the billing period they are measured over (four queries)."""
    rows = session.scalars(
        select(tables.Subscription)
        .where(tables.Subscription.customer_id == customer_id)
        .order_by(tables.Subscription.id)
    ).all()
    prices: dict[str, MeteredPrice] = {}
    period: Period | None = None
    for subscription in load_subscriptions(session, rows, PriceCache(), {}).values():
        terms = subscription.terms
        if not terms.is_billable_on(today):
            continue
        for item in metered_items(subscription):
            version = item.version_at(today)
            if version is None or version.quantity <= 0 or version.price.metered is None:
                continue
            prices.setdefault(version.price.metered.metric, version.price.metered)
            if period is None:
                period = terms.schedule.period(terms.schedule.index_of(today))
    return MeteredNow(prices, period)


def usage_report(
    session: Session,
    mapping: UsageMapping,
    customer: str,
    now: datetime,
    period: Period | None = None,
    *,
    rounding: Rounding = Rounding.HALF_UP,
) -> UsageReport:
    """The usage of ``customer`` (our id or the Salesforce Account Id) in ``period`` (default:
    the month of ``now``), up to ``now``, priced."""
    found = storage.customer_ids(session, [customer]).get(customer)
    row = session.get(Customer, found) if found is not None else None
    if row is None:
        raise NotFoundError(f"no customer {customer!r} (give our id or its Salesforce Account Id)")
    metered = metered_prices(session, row.id, now.date())
    whole = window_of(period or metered.period or month_of(now.date()))
    until = min(whole.end, hour_of(now) + HOUR)
    if until <= whole.start:
        raise InvalidInputError(f"the period starts after now ({whole.start:%Y-%m-%d})")
    hours = storage.hourly_usage(session, row.id, whole, [Window(whole.start, until)])
    recurring = [code for code, metric in mapping.metrics.items() if metric.recurring]
    carried = storage.levels_before(session, row.id, recurring, whole.start)
    usage: list[MetricUsage] = []
    priced: dict[str, PricedUsage] = {}
    for code, metric in sorted(mapping.metrics.items()):
        (quantities,) = measure(
            metric, hours.get(code, []), whole, [Window(whole.start, until)], carried.get(code)
        )
        usage.extend(MetricUsage(metric, group, value) for group, value in quantities.items())
        price = metered.prices.get(code) if metered.prices else mapping.price_of(code, row.currency)
        if price is not None:
            priced[code] = price_usage(metric, price, quantities, whole, whole, rounding=rounding)
    return UsageReport(row.id, row.name, row.currency, whole, until, usage, priced)


def current_usage(
    factory: sessionmaker[Session],
    settings: Settings,
    customer: str,
    now: datetime,
    period: Period | None = None,
) -> UsageReport:
    """:func:`usage_report` with the usage mapping and rounding ``settings`` name, in a read-only
    transaction: what ``connector usage show`` and ``GET /v1/customers/{id}/upcoming-invoice``
    answer."""
    mapping = usage_mapping_of(settings)
    with reading(factory) as session:
        return usage_report(session, mapping, customer, now, period, rounding=settings.tax.rounding)
