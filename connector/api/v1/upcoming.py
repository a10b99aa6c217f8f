"""``GET /v1/customers/{id}/upcoming-invoice``: what ``connector usage show CUSTOMER --json``
says, by the same code (:mod:`connector.sync.usage_report`): the customer's usage in each
subscription's current period, priced by its metered items as the billing run will bill it,
and the fixed fees of the invoice that will carry it."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Request
from pydantic import Field

from connector.api.auth import ReadKey, instance_of
from connector.api.v1.schemas import PROBLEMS, DecimalText, Model, Money
from connector.db.types import utc_now
from connector.sync.usage_report import current_usage

router = APIRouter(tags=["usage"], responses=PROBLEMS)


class CustomerRef(Model):
    id: int
    name: str


class Window(Model):
    start: datetime
    end: datetime = Field(description="Exclusive: the first instant after it.")


class Days(Model):
    start: date
    end: date = Field(description="Inclusive: the last day.")


class UpcomingSubscription(Model):
    id: int
    contract: str = Field(description="The name of the contract it bills.")
    frequency: str
    period: Window = Field(description="Its current billing period.")
    invoice_date: date = Field(
        description="The day of the invoice that bills the period's usage (next to the next "
        "period's fixed fees): the day after the period's last day of service."
    )
    usage: Money = Field(description="The usage lines and shortfalls of its items.")
    fees: Money = Field(description="The next invoice's fixed fees.")
    total: Money


class UsageLine(Model):
    subscription: int | None = Field(
        description="The subscription whose item bills it; null when no item bills the metric."
    )
    item: str | None = Field(description="The item's key; null when no item bills the metric.")
    metric: str
    name: str
    aggregation: str
    group: str | None = Field(description="The value of the metric's group_by property.")
    period: Window = Field(
        description="What the line measures: the part of the subscription's period an item's "
        "version was in effect (an upgrade splits a period), or the calendar month for a metric "
        "no item bills."
    )
    quantity: DecimalText = Field(description="Measured up to `until`.")
    billable: DecimalText | None = Field(description="Less free units; null when not billed.")
    amount: Money | None = Field(description="Null when no item bills the metric.")


class Shortfall(Model):
    subscription: int
    item: str
    metric: str
    period: Window
    minimum: Money = Field(description="The item's minimum, prorated for a part of a period.")
    charged: Money
    amount: Money = Field(description="The minimum less what the metric charged.")


class Fee(Model):
    subscription: int
    item: str
    description: str = Field(description="As the invoice line will read.")
    quantity: DecimalText
    service: Days
    amount: Money = Field(description="Before tax, discounts applied.")


class UpcomingInvoice(Model):
    customer: CustomerRef
    currency: str
    until: datetime = Field(description="Quantities are those up to this instant.")
    subscriptions: list[UpcomingSubscription] = Field(
        description="The customer's subscriptions in service today."
    )
    usage: list[UsageLine]
    shortfalls: list[Shortfall]
    fees: list[Fee] = Field(
        description="The recurring items the next invoice of each subscription bills in "
        "advance for the period starting then."
    )
    total: Money = Field(description="Usage, shortfalls and fees of every subscription.")


@router.get(
    "/customers/{customer_id}/upcoming-invoice",
    response_model=UpcomingInvoice,
    summary="A customer's usage in its current periods and the charges it would produce now",
)
def upcoming_invoice(
    request: Request,
    _key: ReadKey,
    customer_id: Annotated[
        str, Path(max_length=255, description="Our customer id or its Salesforce Account Id.")
    ],
) -> UpcomingInvoice:
    """For each subscription of the customer in service today: the usage of its current
    billing period to the next whole hour, per metered item, metric and group, split where an
    item changed within the period and priced by the item's metered price as the billing run
    will price it; and the fixed fees of the invoice that will bill it. Metrics no item bills
    show their quantity in the calendar month, with no amount. Amounts are before tax."""
    instance = instance_of(request)
    report = current_usage(instance.factory, instance.settings, customer_id, utc_now())
    return UpcomingInvoice.model_validate(report.to_dict())
