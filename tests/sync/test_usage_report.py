"""connector usage show's engine: a customer's usage to date, per metric and group, priced."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from connector.billing.periods import Frequency, Period
from connector.db import tables
from connector.db.engine import reading, transaction
from connector.errors import InvalidInputError, NotFoundError
from connector.sync import contracts
from connector.sync.usage_events import Limits, ingest_batch
from connector.sync.usage_mapping import load_usage_mapping
from connector.sync.usage_report import usage_report
from tests import builders

SHIPPED = Path(__file__).resolve().parents[2] / "mappings" / "usage.yaml"
MAPPING = load_usage_mapping(SHIPPED)
SF = "001000000000001AAA"


@pytest.fixture
def customer_id(factory: sessionmaker[Session]) -> int:
    with transaction(factory) as session:
        return contracts.upsert_customer(
            session,
            name="Acme",
            country="US",
            currency="USD",
            system="salesforce",
            external_id=SF,
        ).id


def event(tx: str, metric: str, when: str, **props: object) -> dict:
    return {
        "transaction_id": tx,
        "customer": SF,
        "metric": metric,
        "timestamp": when,
        "properties": props,
    }


def send(factory: sessionmaker[Session], events: list[dict]) -> None:
    ingest_batch(factory, MAPPING.metrics, events, datetime(2026, 4, 2, tzinfo=UTC), Limits())


def test_the_usage_to_date_is_shown_per_metric_and_group_with_its_charges(
    factory: sessionmaker[Session], customer_id: int
) -> None:
    send(factory, [event(f"c{n}", "api_calls", "2026-03-02T10:00:00Z") for n in range(10_001)])
    send(
        factory,
        [
            event("s0", "storage_gb", "2026-02-01T00:00:00Z", gb=10),  # carried over
            event("s1", "storage_gb", "2026-03-16T12:00:00Z", gb=20),
            event(
                "b1",
                "bandwidth_gb",
                "2026-03-03T00:00:00Z",
                gb="1000.5",
                region="eu",
                direction="egress",
            ),
            event(
                "b2", "bandwidth_gb", "2026-03-03T00:00:00Z", gb=2, region="us", direction="egress"
            ),
            event(
                "b3",
                "bandwidth_gb",
                "2026-03-03T00:00:00Z",
                gb=99,
                region="us",
                direction="ingress",
            ),
            event("u1", "seats", "2026-03-04T00:00:00Z", user_id="ann"),
            event("u2", "seats", "2026-03-25T00:00:00Z", user_id="bob"),  # after "now"
        ],
    )
    now = datetime(2026, 3, 20, 11, 30, tzinfo=UTC)

    with reading(factory) as session:
        report = usage_report(session, MAPPING, SF, now)

    data = report.to_dict()
    assert data["period"] == {
        "start": datetime(2026, 3, 1, tzinfo=UTC),
        "end": datetime(2026, 4, 1, tzinfo=UTC),
    }
    assert data["until"] == datetime(2026, 3, 20, 12, tzinfo=UTC)
    # Storage to date: 10 GB (carried over) for 19.5 days, 20 GB more for 4, over 31 days.
    storage = (Decimal(10) * Decimal("19.5") + Decimal(20) * Decimal(4)) / 31
    assert data["usage"] == [
        {
            "metric": "api_calls",
            "name": "API calls",
            "aggregation": "count",
            "group": None,
            "quantity": "10001",
            "billable": "1",
            "amount": "0.50",
        },
        {
            "metric": "bandwidth_gb",
            "name": "Bandwidth (GB)",
            "aggregation": "sum",
            "group": "eu",
            "quantity": "1000.5",
            "billable": "1000.5",
            "amount": "90.04",
        },
        {
            "metric": "bandwidth_gb",
            "name": "Bandwidth (GB)",
            "aggregation": "sum",
            "group": "us",
            "quantity": "2",
            "billable": "2",
            "amount": "0.18",
        },
        {
            "metric": "seats",
            "name": "Active seats",
            "aggregation": "unique_count",
            "group": None,
            "quantity": "1",
            "billable": "1",
            "amount": "12.00",
        },
        {
            "metric": "storage_gb",
            "name": "Storage (GB-month)",
            "aggregation": "weighted_sum",
            "group": None,
            "quantity": f"{storage:f}",
            "billable": f"{storage:f}",
            "amount": "0.89",
        },
    ]
    assert data["shortfalls"] == [
        {"metric": "seats", "minimum": "60.00", "charged": "12.00", "amount": "48.00"}
    ]
    assert data["total"] == "151.61"  # 0.50 + 90.04 + 0.18 + 12.00 + 0.89 + 48.00


def test_a_period_can_be_given_and_a_customer_without_a_price_shows_quantities_only(
    factory: sessionmaker[Session],
) -> None:
    with transaction(factory) as session:
        euro = contracts.upsert_customer(
            session, name="Euro", country="DE", currency="EUR", system="test", external_id="E"
        )
    send(factory, [{**event("e1", "api_calls", "2026-02-10T00:00:00Z"), "customer": str(euro.id)}])

    with reading(factory) as session:
        report = usage_report(
            session,
            MAPPING,
            str(euro.id),
            datetime(2026, 3, 20, tzinfo=UTC),
            Period(date(2026, 2, 1), date(2026, 2, 28)),
        )
        assert [(u.metric.code, u.quantity) for u in report.usage] == [("api_calls", Decimal(1))]
        assert (report.priced, report.to_dict()["total"]) == ({}, "0.00")
        with pytest.raises(NotFoundError, match="no customer '999'"):
            usage_report(session, MAPPING, "999", datetime(2026, 3, 20, tzinfo=UTC))
        with pytest.raises(InvalidInputError, match="the period starts after now"):
            usage_report(
                session,
                MAPPING,
                str(euro.id),
                datetime(2026, 3, 20, tzinfo=UTC),
                Period(date(2026, 4, 1), date(2026, 4, 30)),
            )


def test_a_metric_a_subscription_meters_is_priced_by_its_item_over_its_billing_period(
    factory: sessionmaker[Session], customer_id: int
) -> None:
    """A quarterly subscription from January metering API calls at 0.02 beyond 100 free (not
    usage.yaml's packages): on 20 March its period is the quarter, and the calls of January
    count; storage, which it does not meter, shows its quantity to date only."""
    with transaction(factory) as session:
        customer = session.get_one(tables.Customer, customer_id)
        api = builders.metered_price(session, unit_amount="0.02", free_units="100")
        builders.subscription(
            session,
            customer,
            [builders.spec(session, api, 1)],
            start=date(2026, 1, 1),
            frequency=Frequency.QUARTERLY,
        )
    send(factory, [event(f"j{n}", "api_calls", "2026-01-15T10:00:00Z") for n in range(150)])
    send(factory, [event(f"m{n}", "api_calls", "2026-03-02T10:00:00Z") for n in range(50)])
    send(factory, [event("s1", "storage_gb", "2026-02-01T00:00:00Z", gb=9)])
    send(factory, [event("p1", "api_calls", "2025-12-31T23:00:00Z")])  # the period before

    with reading(factory) as session:
        report = usage_report(session, MAPPING, SF, datetime(2026, 3, 20, 9, 30, tzinfo=UTC))

    assert (report.period.start, report.period.end) == (
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(2026, 4, 1, tzinfo=UTC),
    )
    # 200 calls, 100 free, at 0.02
    assert {code: priced.total for code, priced in report.priced.items()} == {
        "api_calls": Decimal("2.00")
    }
    storage = next(u for u in report.usage if u.metric.code == "storage_gb")
    assert storage.quantity == Decimal(9 * 1138) / 2160  # 9 GB for 1,138 of 2,160 hours
    assert report.to_dict()["total"] == "2.00"
