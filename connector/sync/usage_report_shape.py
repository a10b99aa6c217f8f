"""What ``connector usage show`` and ``GET /v1/customers/{id}/upcoming-invoice`` say
(:mod:`connector.sync.usage_report` makes it): the usage lines, shortfalls and fees of a
customer's subscriptions, and its JSON shape."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from connector.billing.charges import Charge
from connector.billing.metered import Shortfall, UsageCharge
from connector.billing.money import ZERO, currency
from connector.billing.periods import Period
from connector.billing.subscriptions import Subscription
from connector.billing.usage import Metric
from connector.billing.usage_billing import window_of
from connector.billing.usage_periods import Window


@dataclass(frozen=True)
class MeteredLine:
    """A group of a metric measured in ``window``: priced by a subscription's item, or, without
    one (``item`` None), its quantity only."""

    subscription_id: int | None
    item: str | None
    metric: Metric
    group: str
    window: Window
    quantity: Decimal
    billable: Decimal | None = None
    amount: Decimal | None = None

    @classmethod
    def priced(
        cls, subscription_id: int, item: str, metric: Metric, charge: UsageCharge
    ) -> MeteredLine:
        return cls(
            subscription_id,
            item,
            metric,
            charge.group,
            charge.window,
            charge.quantity,
            charge.billable,
            charge.amount,
        )


@dataclass(frozen=True)
class ShortfallLine:
    subscription_id: int
    item: str
    shortfall: Shortfall


@dataclass(frozen=True)
class Fee:
    """A fixed fee of the next invoice: a recurring item billed in advance."""

    subscription_id: int
    charge: Charge


@dataclass
class UpcomingSubscription:
    id: int
    contract: str
    subscription: Subscription
    period: Period  # the billing period shown (or the dates given)
    served: Period  # its days of service
    invoice_date: date | None  # of the invoice its usage goes on; None for dates given
    usage: Decimal = ZERO  # usage charges and shortfalls
    fees: Decimal = ZERO

    @property
    def total(self) -> Decimal:
        return self.usage + self.fees


@dataclass
class UsageReport:
    customer_id: int
    customer_name: str
    currency: str
    until: datetime  # quantities are those up to this instant
    subscriptions: list[UpcomingSubscription] = field(default_factory=list)
    usage: list[MeteredLine] = field(default_factory=list)
    shortfalls: list[ShortfallLine] = field(default_factory=list)
    fees: list[Fee] = field(default_factory=list)

    @property
    def total(self) -> Decimal:
        return sum((found.total for found in self.subscriptions), ZERO)

    def to_dict(self) -> dict[str, Any]:
        code = currency(self.currency)

        def money(amount: Decimal) -> str:
            return f"{amount.quantize(code.quantum):f}"

        return {
            "customer": {"id": self.customer_id, "name": self.customer_name},
            "currency": self.currency,
            "until": self.until,
            "subscriptions": [
                {
                    "id": found.id,
                    "contract": found.contract,
                    "frequency": found.subscription.terms.frequency.value,
                    "period": _window(window_of(found.period)),
                    "invoice_date": found.invoice_date,
                    "usage": money(found.usage),
                    "fees": money(found.fees),
                    "total": money(found.total),
                }
                for found in self.subscriptions
            ],
            "usage": [
                {
                    "subscription": line.subscription_id,
                    "item": line.item,
                    "metric": line.metric.code,
                    "name": line.metric.label,
                    "aggregation": line.metric.aggregation.value,
                    "group": line.group or None,
                    "period": _window(line.window),
                    "quantity": f"{line.quantity:f}",
                    "billable": None if line.billable is None else f"{line.billable:f}",
                    "amount": None if line.amount is None else f"{line.amount:f}",
                }
                for line in self.usage
            ],
            "shortfalls": [
                {
                    "subscription": line.subscription_id,
                    "item": line.item,
                    "metric": line.shortfall.metric,
                    "period": _window(line.shortfall.window),
                    "minimum": f"{line.shortfall.minimum:f}",
                    "charged": money(line.shortfall.charged),
                    "amount": f"{line.shortfall.amount:f}",
                }
                for line in self.shortfalls
            ],
            "fees": [
                {
                    "subscription": fee.subscription_id,
                    "item": fee.charge.item.key,
                    "description": fee.charge.description,
                    "quantity": f"{fee.charge.quantity:f}",
                    "service": {"start": fee.charge.service.start, "end": fee.charge.service.end},
                    "amount": money(fee.charge.amount),
                }
                for fee in self.fees
            ],
            "total": money(self.total),
        }


def _window(window: Window) -> dict[str, datetime]:
    return {"start": window.start, "end": window.end}
