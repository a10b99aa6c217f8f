"""connector usage show's engine: a customer's usage to date in its subscriptions' current
periods, priced by their metered items as the billing run will bill it, with the next
invoice's fixed fees; metrics no item bills with their quantity only."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from connector.billing.periods import Frequency, Period
from connector.db.engine import reading, transaction
from connector.errors import InvalidInputError, NotFoundError
from connector.settings import Settings
from connector.sync import contracts
from connector.sync.billing_run import run_billing
from connector.sync.usage_events import Limits, ingest_batch
from connector.sync.usage_mapping import load_usage_mapping
from connector.sync.usage_report import usage_report
from tests import builders
from tests.builders import documents

SHIPPED = Path(__file__).resolve().parents[2] / "mappings" / "usage.yaml"
METRICS = load_usage_mapping(SHIPPED).metrics
D = Decimal
JAN, FEB, MAR = (date(2026, month, 1) for month in (1, 2, 3))


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def send(factory: sessionmaker[Session], customer_id: int, *events: tuple[Any, ...]) -> None:
    """Events ``(metric, timestamp, count, properties)``: ``count`` of them a minute apart."""
    batch = [
        {
            "transaction_id": f"{metric}-{when}-{index}-{n}",
            "customer": str(customer_id),
            "metric": metric,
            "timestamp": (at(when) + timedelta(minutes=n)).isoformat(),
            "properties": props,
        }
        for index, (metric, when, count, props) in enumerate(events)
        for n in range(count)
    ]
    results = ingest_batch(
        factory, METRICS, batch, at("2026-12-31T00:00"), Limits(past=timedelta(days=3660))
    )
    assert all(result.outcome.value == "accepted" for result in results)


def report_of(
    factory: sessionmaker[Session], customer: object, now: str, period: Period | None = None
) -> dict[str, Any]:
    with reading(factory) as session:
        return usage_report(session, METRICS, str(customer), at(now), period).to_dict()


def window(start: str, end: str) -> dict[str, datetime]:
    return {"start": at(start), "end": at(end)}


def usage(  # noqa: PLR0917 - one usage line, as the report lists it
    subscription: int | None,
    item: str | None,
    metric: str,
    group: str | None,
    period: dict[str, datetime],
    quantity: str,
    billable: str | None = None,
    amount: str | None = None,
) -> dict[str, Any]:
    return {
        "subscription": subscription,
        "item": item,
        "metric": metric,
        "name": METRICS[metric].label,
        "aggregation": METRICS[metric].aggregation.value,
        "group": group,
        "period": period,
        "quantity": quantity,
        "billable": billable,
        "amount": amount,
    }


def test_an_upgrade_within_the_period_splits_its_usage_as_the_next_invoice_will(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    with transaction(factory) as session:
        customer = builders.customer(session, "C1", name="Acme")
        plan = builders.price(session, "PLAN", unit_amount="100.00")
        api = builders.metered_price(session, unit_amount="0.25", free_units="2", key="api-1")
        row = builders.subscription(
            session,
            customer,
            [builders.spec(session, plan, 1), builders.spec(session, api, 1)],
            start=JAN,
        )
        subscription_id, customer_id = row.id, customer.id
    run_billing(factory, settings, JAN)
    run_billing(factory, settings, FEB)
    with transaction(factory) as session:
        cheaper = builders.metered_price(session, unit_amount="0.10", free_units="2", key="api-2")
        contracts.amend_subscription(
            session,
            subscription_id,
            effective=date(2026, 2, 15),
            items=[builders.spec(session, plan, 1), builders.spec(session, cheaper, 1)],
        )
    send(
        factory,
        customer_id,
        ("api_calls", "2026-01-31T23:00", 9, {}),  # January's, billed already
        ("api_calls", "2026-02-10T08:00", 4, {}),
        ("api_calls", "2026-02-20T08:00", 6, {}),
        ("storage_gb", "2026-01-20T00:00", 1, {"gb": 28}),  # no item bills storage
    )

    report = report_of(factory, customer_id, "2026-02-22T10:30")

    storage = D(28) * D(515 * 3600) / D(672 * 3600)

    assert report["until"] == at("2026-02-22T11:00")
    assert report["subscriptions"] == [
        {
            "id": subscription_id,
            "contract": "Contract",
            "frequency": "monthly",
            "period": window("2026-02-01", "2026-03-01"),
            "invoice_date": MAR,
            "usage": "0.90",
            "fees": "100.00",
            "total": "100.90",
        }
    ]
    assert report["usage"] == [
        # 4 calls before the upgrade at 0.25 beyond 2 free, 6 after it at 0.10 beyond 2 free
        usage(
            subscription_id,
            "API",
            "api_calls",
            None,
            window("2026-02-01", "2026-02-15"),
            "4",
            "2",
            "0.50",
        ),
        usage(
            subscription_id,
            "API",
            "api_calls",
            None,
            window("2026-02-15", "2026-03-01"),
            "6",
            "4",
            "0.40",
        ),
        # 28 GB held all February to date: 515 of its 672 hours
        usage(None, None, "storage_gb", None, window("2026-02-01", "2026-03-01"), f"{storage:f}"),
    ]
    assert report["shortfalls"] == []
    assert report["fees"] == [
        {
            "subscription": subscription_id,
            "item": "PLAN",
            "description": "Plan × 1, 2026-03-01..2026-03-31",
            "quantity": "1",
            "service": {"start": MAR, "end": date(2026, 3, 31)},
            "amount": "100.00",
        }
    ]
    assert report["total"] == "100.90"
    # the billing run of March bills exactly that; and January's 9 calls, stored after January
    # was billed, on an invoice of their own (7 beyond the free ones at 0.25)
    run_billing(factory, settings, MAR)
    assert documents(factory)[2:] == [
        ("INV-000003", "invoice", MAR, D("1.75"), D("1.75")),
        ("INV-000004", "invoice", MAR, D("100.90"), D("100.90")),
    ]


def test_a_quarterly_subscription_shows_its_own_period_not_the_calendar_month(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    start = date(2026, 1, 15)
    with transaction(factory) as session:
        customer = builders.customer(session, "Q")
        plan = builders.price(session, "PLAN", unit_amount="300.00")
        api = builders.metered_price(session, unit_amount="0.25", free_units="2", key="api")
        storage = builders.metered_price(
            session, "STORAGE", metric="storage_gb", unit_amount="0.10", minimum="10.00"
        )
        row = builders.subscription(
            session,
            customer,
            [builders.spec(session, price) for price in (plan, api, storage)],
            start=start,
            frequency=Frequency.QUARTERLY,
        )
        subscription_id, customer_id = row.id, customer.id
    run_billing(factory, settings, start)
    send(
        factory,
        customer_id,
        ("api_calls", "2026-01-10T08:00", 2, {}),  # before the period
        ("api_calls", "2026-01-20T08:00", 3, {}),
        ("api_calls", "2026-03-10T08:00", 5, {}),
        ("api_calls", "2026-03-25T08:00", 4, {}),  # after now
        ("storage_gb", "2026-01-15T00:00", 1, {"gb": 90}),
        ("seats", "2026-02-20T00:00", 1, {"user_id": "bob"}),  # not in March
        ("seats", "2026-03-02T00:00", 1, {"user_id": "ann"}),
    )

    report = report_of(factory, customer_id, "2026-03-20T11:30")

    quarter = window("2026-01-15", "2026-04-15")
    assert report["subscriptions"] == [
        {
            "id": subscription_id,
            "contract": "Contract",
            "frequency": "quarterly",
            "period": quarter,
            "invoice_date": date(2026, 4, 15),
            "usage": "11.50",
            "fees": "300.00",
            "total": "311.50",
        }
    ]
    assert report["usage"] == [
        usage(subscription_id, "API", "api_calls", None, quarter, "8", "6", "1.50"),
        # 90 GB from the quarter's start to now: 64.5 of its 90 days
        usage(subscription_id, "STORAGE", "storage_gb", None, quarter, "64.5", "64.5", "6.45"),
        # seats: no item bills them, shown for the calendar month
        usage(None, None, "seats", None, window("2026-03-01", "2026-04-01"), "1"),
    ]
    assert report["shortfalls"] == [
        {
            "subscription": subscription_id,
            "item": "STORAGE",
            "metric": "storage_gb",
            "period": quarter,
            "minimum": "10.00",
            "charged": "6.45",
            "amount": "3.55",
        }
    ]
    assert [(fee["description"], fee["amount"]) for fee in report["fees"]] == [
        ("Plan × 1, 2026-04-15..2026-07-14", "300.00")
    ]
    assert report["total"] == "311.50"


def two_subscriptions(factory: sessionmaker[Session]) -> tuple[int, int, int]:
    """A customer (Salesforce Account SF) with a monthly subscription from January billing
    API calls only, and a quarterly one from February with a fixed fee of 300.00 and
    bandwidth at 0.05 a GB. Returns (customer id, monthly id, quarterly id)."""
    with transaction(factory) as session:
        customer = contracts.upsert_customer(
            session, name="Acme", country="US", currency="USD", system="salesforce", external_id=SF
        )
        api = builders.metered_price(session, unit_amount="0.25", free_units="2", key="api")
        plan = builders.price(session, "PLAN", unit_amount="300.00")
        bandwidth = builders.metered_price(
            session, "BW", metric="bandwidth_gb", unit_amount="0.05", key="bw"
        )
        monthly = builders.subscription(
            session, customer, [builders.spec(session, api)], start=JAN, name="Calls"
        )
        quarterly = builders.subscription(
            session,
            customer,
            [builders.spec(session, plan), builders.spec(session, bandwidth)],
            start=FEB,
            frequency=Frequency.QUARTERLY,
            name="Network",
        )
        return customer.id, monthly.id, quarterly.id


SF = "001000000000001AAA"


def test_two_subscriptions_each_show_their_period_items_and_next_invoice(
    factory: sessionmaker[Session],
) -> None:
    customer_id, monthly, quarterly = two_subscriptions(factory)
    egress = {"direction": "egress"}
    send(
        factory,
        customer_id,
        ("api_calls", "2026-02-20T08:00", 3, {}),  # the monthly's last period
        ("api_calls", "2026-03-05T08:00", 7, {}),
        ("bandwidth_gb", "2026-02-10T00:00", 1, {"gb": "10.5", "region": "eu", **egress}),
        ("bandwidth_gb", "2026-03-03T00:00", 1, {"gb": 4, "region": "us", **egress}),
        ("bandwidth_gb", "2026-03-03T00:00", 1, {"gb": 99, "region": "us", "direction": "in"}),
    )

    report = report_of(factory, SF, "2026-03-20T11:30")

    march, quarter = window("2026-03-01", "2026-04-01"), window("2026-02-01", "2026-05-01")
    assert [
        (s["id"], s["contract"], s["period"], s["invoice_date"], s["usage"], s["fees"], s["total"])
        for s in report["subscriptions"]
    ] == [
        (monthly, "Calls", march, date(2026, 4, 1), "1.25", "0.00", "1.25"),
        (quarterly, "Network", quarter, date(2026, 5, 1), "0.73", "300.00", "300.73"),
    ]
    assert report["usage"] == [
        usage(monthly, "API", "api_calls", None, march, "7", "5", "1.25"),
        usage(quarterly, "BW", "bandwidth_gb", "eu", quarter, "10.5", "10.5", "0.53"),
        usage(quarterly, "BW", "bandwidth_gb", "us", quarter, "4", "4", "0.20"),
    ]
    assert [(fee["subscription"], fee["description"]) for fee in report["fees"]] == [
        (quarterly, "Plan × 1, 2026-05-01..2026-07-31")
    ]
    assert report["total"] == "301.98"

    # dates given: each subscription's items priced over them, no fees (no invoice is due)
    february = report_of(factory, customer_id, "2026-03-20T11:30", Period(FEB, date(2026, 2, 28)))
    feb = window("2026-02-01", "2026-03-01")
    assert [
        (s["id"], s["period"], s["invoice_date"], s["total"]) for s in february["subscriptions"]
    ] == [(monthly, feb, None, "0.25"), (quarterly, feb, None, "0.53")]
    assert february["usage"] == [
        usage(monthly, "API", "api_calls", None, feb, "3", "1", "0.25"),
        usage(quarterly, "BW", "bandwidth_gb", "eu", feb, "10.5", "10.5", "0.53"),
    ]
    assert (february["fees"], february["until"], february["total"]) == (
        [],
        at("2026-03-01T00:00"),
        "0.78",
    )


def test_without_a_metered_item_usage_shows_quantities_only_next_to_the_fees(
    factory: sessionmaker[Session],
) -> None:
    with transaction(factory) as session:
        customer = builders.customer(session, "F", name="Flat")
        plan = builders.price(session, "PLAN", unit_amount="50.00")
        row = builders.subscription(session, customer, [builders.spec(session, plan)], start=JAN)
        subscription_id, customer_id = row.id, customer.id
    send(factory, customer_id, ("api_calls", "2026-03-02T08:00", 3, {}))

    report = report_of(factory, customer_id, "2026-03-20T11:30")

    march = window("2026-03-01", "2026-04-01")
    assert report == {
        "customer": {"id": customer_id, "name": "Flat"},
        "currency": "USD",
        "until": at("2026-03-20T12:00"),
        "subscriptions": [
            {
                "id": subscription_id,
                "contract": "Contract",
                "frequency": "monthly",
                "period": march,
                "invoice_date": date(2026, 4, 1),
                "usage": "0.00",
                "fees": "50.00",
                "total": "50.00",
            }
        ],
        "usage": [usage(None, None, "api_calls", None, march, "3")],
        "shortfalls": [],
        "fees": [
            {
                "subscription": subscription_id,
                "item": "PLAN",
                "description": "Plan × 1, 2026-04-01..2026-04-30",
                "quantity": "1",
                "service": {"start": date(2026, 4, 1), "end": date(2026, 4, 30)},
                "amount": "50.00",
            }
        ],
        "total": "50.00",
    }


def test_a_customer_without_subscriptions_an_unknown_one_and_a_period_after_now(
    factory: sessionmaker[Session],
) -> None:
    with transaction(factory) as session:
        euro = builders.customer(session, "E", currency="EUR", country="DE", name="Euro")
    send(factory, euro.id, ("api_calls", "2026-02-10T00:00", 1, {}))

    february = Period(FEB, date(2026, 2, 28))
    report = report_of(factory, euro.id, "2026-03-20T00:00", february)

    assert (report["currency"], report["subscriptions"], report["total"]) == ("EUR", [], "0.00")
    assert report["usage"] == [
        usage(None, None, "api_calls", None, window("2026-02-01", "2026-03-01"), "1")
    ]
    with pytest.raises(NotFoundError, match="no customer '999'"):
        report_of(factory, 999, "2026-03-20T00:00")
    with pytest.raises(InvalidInputError, match="the period starts after now"):
        report_of(factory, euro.id, "2026-03-20T00:00", Period(date(2026, 4, 1), date(2026, 4, 30)))
