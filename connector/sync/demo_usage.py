"""Metered usage in the demo: a metered product on a few deals, and their customers' usage.

Before the simulated year starts, the demo org gets a metered product, ``Bandwidth (metered)``
(``Billing_Metric__c`` = ``bandwidth_gb``: the sum of the ``gb`` of egress events, a line per
region, priced by ``mappings/usage.yaml`` in USD and at the line's unit price per GB in other
currencies), and a line item of it on the first :data:`METERED_DEALS` won monthly deals that
nothing amends, amends or cancels. Each month, once its cycle has run, each customer with a
metered subscription reports that month's usage as its product would (``ingest_batch``, as
``POST /v1/usage-events`` stores it): every day of service, an egress event per region and an
ingress event (which the metric's filter leaves out), with stable transaction ids. The next
month's cycle bills it in arrears, next to that month's fees.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from connector.billing.periods import ONE_DAY
from connector.billing.pricing import ChargeKind
from connector.db import tables
from connector.settings import Settings
from connector.sync.usage_events import Limits, Outcome, ingest_batch
from connector.sync.usage_mapping import usage_mapping_of
from sandbox.salesforce import rules
from sandbox.salesforce.store import Org

METRIC = "bandwidth_gb"
PRODUCT = {
    "Name": "Bandwidth (metered)",
    "ProductCode": "USAGE-BW",
    "Family": "Usage",
    "IsActive": True,
    "Billing_Type__c": "Recurring",
    "Billing_Metric__c": METRIC,
    "Description": "Egress per GB, billed monthly in arrears.",
}
# The line's unit price per GB where usage.yaml has no price of the metric (it has USD's)
UNIT_PRICES = {"USD": Decimal("0.09"), "EUR": Decimal("0.08"), "GBP": Decimal("0.07")}
UNIT_PRICES |= {"JPY": Decimal(14)}
METERED_DEALS = 6
REGIONS = ("us-east", "eu-west")
BATCH = 1000  # events per batch, as the HTTP API takes them
LIMITS = Limits(future=timedelta(days=1))  # the simulated day is "now"


def add_metered_lines(org: Org) -> list[str]:
    """The metered product, its price book entries, and a line item of it on the first
    :data:`METERED_DEALS` won monthly deals (by Id, one per account) with a billing address
    that nothing amends or cancels and that are not amendments; the names of those deals."""
    book = rules.standard_pricebook(org)
    multi = org.schema.multi_currency
    currencies = list(UNIT_PRICES) if multi else [org.schema.corporate_currency]
    rows = org.db.execute(
        "SELECT o.Id, o.Name, o.CurrencyIsoCode, o.AccountId FROM Opportunity o "
        "JOIN Account a ON a.Id = o.AccountId "
        "WHERE o.IsDeleted = 0 AND o.IsWon = 1 AND o.Billing_Frequency__c = 'Monthly' "
        "AND o.Cancellation_Date__c IS NULL AND o.Amends_Opportunity__c IS NULL "
        "AND a.BillingCountry IS NOT NULL "
        "AND EXISTS (SELECT 1 FROM OpportunityLineItem l WHERE l.OpportunityId = o.Id "
        "AND l.IsDeleted = 0) "
        "AND o.Id NOT IN (SELECT Amends_Opportunity__c FROM Opportunity "
        "WHERE Amends_Opportunity__c IS NOT NULL) "
        "ORDER BY o.Id"
    ).fetchall()
    deals: list[tuple[str, str, str]] = []
    accounts: set[str] = set()
    for deal, name, code, account in rows:
        if account not in accounts and len(deals) < METERED_DEALS:
            accounts.add(account)
            deals.append((deal, name, code))
    with org.transaction():
        product = org.create("Product2", PRODUCT)
        entries = {}
        for currency in currencies:
            entry: dict[str, Any] = {"Pricebook2Id": book, "Product2Id": product}
            entry |= {"UnitPrice": UNIT_PRICES[currency], "IsActive": True}
            if multi:
                entry["CurrencyIsoCode"] = currency
            entries[currency] = org.create("PricebookEntry", entry)
        for deal_id, _, currency in deals:
            code = currency if multi else org.schema.corporate_currency
            line = {"OpportunityId": deal_id, "PricebookEntryId": entries[code], "Quantity": 1}
            line |= {"UnitPrice": UNIT_PRICES[code], "SortOrder": 9}
            org.create("OpportunityLineItem", line)
    return [name for _, name, _ in deals]


@dataclass(frozen=True)
class MonthUsage:
    events: int  # accepted
    refused: list[str]  # reasons
    customers: frozenset[int]  # whose usage was reported


def report_usage(
    factory: sessionmaker[Session],
    settings: Settings,
    first_day: date,
    last_day: date,
    skip: Collection[int] = (),
) -> MonthUsage:
    """Each metered subscription's usage of the days from ``first_day`` to ``last_day`` it was
    served, stored as the HTTP API stores it, on the evening of ``last_day``; the customers of
    ``skip`` (whose usage of those days was reported already) left out."""
    metrics = usage_mapping_of(settings).metrics
    with factory() as session:
        served = session.execute(
            select(tables.Subscription.customer_id, func.min(tables.Subscription.start_date))
            .join(tables.SubscriptionItem)
            .where(tables.SubscriptionItem.kind == ChargeKind.METERED.value)
            .group_by(tables.Subscription.customer_id)
            .order_by(tables.Subscription.customer_id)
        ).all()
    events = [
        event
        for customer, start in served
        if customer not in skip
        for event in usage_events(customer, max(start, first_day), last_day)
    ]
    now = datetime.combine(last_day, time(22), tzinfo=UTC)
    accepted, refused = 0, []
    for index in range(0, len(events), BATCH):
        for result in ingest_batch(factory, metrics, events[index : index + BATCH], now, LIMITS):
            if result.outcome is Outcome.REFUSED:
                refused.append(f"{result.transaction_id}: {result.reason}")
            else:
                accepted += result.outcome is Outcome.ACCEPTED
    customers = frozenset(customer for customer, _ in served if customer not in skip)
    return MonthUsage(accepted, refused, customers)


def usage_events(customer: int, first: date, last: date) -> Iterator[dict[str, Any]]:
    """The events a customer reports for the days from ``first`` to ``last`` (the same ones
    each time)."""
    day = first
    while day <= last:
        rng = random.Random(f"{customer}:{day}")  # noqa: S311 - demo data
        for hour, region in enumerate(REGIONS):
            for direction, low, high in (("egress", 20, 90), ("ingress", 5, 40)):
                at = datetime.combine(day, time(8 + 6 * hour, rng.randrange(60)), tzinfo=UTC)
                gb = Decimal(rng.randrange(low * 10, high * 10)).scaleb(-1)
                yield {
                    "transaction_id": f"demo-{customer}-{day}-{region}-{direction}",
                    "customer": str(customer),
                    "metric": METRIC,
                    "timestamp": at.isoformat(),
                    "properties": {"gb": str(gb), "region": region, "direction": direction},
                }
        day += ONE_DAY
