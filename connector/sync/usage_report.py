"""``connector usage show CUSTOMER``: a customer's usage in the current period, per metric and
group, and the charges it would produce if the period ended now.

The period is the calendar month (UTC) by default, or the dates given. Quantities are those
to date: counted up to the next whole hour, a weighted sum's level integrated up to then (so
its quantity grows through the period). Each metric is priced with its metered price in the
customer's currency (``mappings/usage.yaml``), the minimum commitment being the whole
period's; a metric without one shows its quantity only. Subscription items with metered
prices will take the place of these rates when the billing run bills usage.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from connector.billing.metered import PricedUsage, price_usage
from connector.billing.money import ZERO, Rounding, currency
from connector.billing.periods import Period, add_months
from connector.billing.usage import HOUR, Metric, hour_of
from connector.billing.usage_billing import window_of
from connector.billing.usage_periods import Window, measure
from connector.db import usage as storage
from connector.db.engine import reading
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
    whole = window_of(period or month_of(now.date()))
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
        price = mapping.price_of(code, row.currency)
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
