"""Storage of usage: customers found by either id, a period's aggregates read back."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy.orm import Session, sessionmaker

from connector.billing.usage import Aggregation, Metric
from connector.billing.usage_periods import Window, measure
from connector.db import usage as storage
from connector.db.engine import reading, transaction
from connector.sync import contracts
from connector.sync.usage_events import Limits, ingest_batch

D = Decimal
MARCH = Window(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))
SEATS = Metric("seats", Aggregation.UNIQUE_COUNT, "user")
STORAGE = Metric("storage", Aggregation.WEIGHTED_SUM, "gb", group_by="tier", recurring=True)


def test_customers_are_found_by_salesforce_account_id_or_by_our_id(
    factory: sessionmaker[Session],
) -> None:
    with transaction(factory) as session:
        first = contracts.upsert_customer(
            session,
            name="A",
            country="US",
            currency="USD",
            system="salesforce",
            external_id="001000000000001AAA",
        )
        second = contracts.upsert_customer(
            session, name="B", country="US", currency="USD", system="import", external_id="B"
        )
    with reading(factory) as session:
        found = storage.customer_ids(
            session, ["001000000000001AAA", str(second.id), "B", "999", "001000000000009ZZZ"]
        )

    assert found == {"001000000000001AAA": first.id, str(second.id): second.id}


def test_a_period_is_read_from_its_hourly_aggregates_part_by_part(
    factory: sessionmaker[Session],
) -> None:
    with transaction(factory) as session:
        customer = contracts.upsert_customer(
            session, name="A", country="US", currency="USD", system="test", external_id="A"
        )

    def event(tx: str, metric: str, when: str, **props: object) -> dict:
        return {
            "transaction_id": tx,
            "customer": str(customer.id),
            "metric": metric,
            "timestamp": when,
            "properties": props,
        }

    ingest_batch(
        factory,
        {"seats": SEATS, "storage": STORAGE},
        [
            event("s1", "seats", "2026-03-02T10:00:00Z", user="ann"),
            event("s2", "seats", "2026-03-20T10:00:00Z", user="ann"),
            event("s3", "seats", "2026-03-21T10:00:00Z", user="bob"),
            event("g0", "storage", "2026-02-10T00:00:00Z", gb=31, tier="hot"),
            event("g1", "storage", "2026-03-11T00:00:00Z", gb=-31, tier="hot"),
        ],
        datetime(2026, 4, 1, tzinfo=UTC),
        Limits(),
    )
    parts = [
        Window(MARCH.start, datetime(2026, 3, 16, tzinfo=UTC)),
        Window(datetime(2026, 3, 16, tzinfo=UTC), MARCH.end),
    ]
    with reading(factory) as session:
        hours = storage.hourly_usage(session, customer.id, MARCH, parts)
        carried = storage.levels_before(session, customer.id, ["storage"], MARCH.start)

    assert carried == {"storage": {"hot": D(31)}}
    assert measure(SEATS, hours["seats"], MARCH, parts) == [{"": D(1)}, {"": D(2)}]
    # 31 GB carried over until March 11: 10 days of 31 in the first part, none after.
    assert measure(STORAGE, hours["storage"], MARCH, parts, carried["storage"]) == [
        {"hot": D(10)},
        {},
    ]
