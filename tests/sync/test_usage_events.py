"""Usage events in: per-element answers, idempotency by transaction id, running aggregates."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from connector.billing.usage import Aggregation, Metric
from connector.db import tables
from connector.db.engine import reading, transaction
from connector.sync import contracts
from connector.sync.usage_events import EventResult, Limits, Outcome, ingest_batch
from tests.statements import counting

D = Decimal
NOW = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)
METRICS = {
    "api_calls": Metric("api_calls", Aggregation.COUNT),
    "gb": Metric("gb", Aggregation.SUM, "gb", (("direction", frozenset({"egress"})),), "region"),
    "peak": Metric("peak", Aggregation.MAX, "cpus"),
    "balance": Metric("balance", Aggregation.LATEST, "value"),
    "seats": Metric("seats", Aggregation.UNIQUE_COUNT, "user"),
    "storage": Metric("storage", Aggregation.WEIGHTED_SUM, "gb"),
}
ACCEPTED, DUPLICATE, REFUSED = Outcome.ACCEPTED, Outcome.DUPLICATE, Outcome.REFUSED


@pytest.fixture
def customer_id(factory: sessionmaker[Session]) -> int:
    with transaction(factory) as session:
        row = contracts.upsert_customer(
            session,
            name="Acme",
            country="US",
            currency="USD",
            system="salesforce",
            external_id="001000000000001AAA",
        )
        return row.id


def event(tx: str, metric: str = "api_calls", when: str = "2026-03-02T10:15:00Z", **props: Any):
    return {
        "transaction_id": tx,
        "customer": "001000000000001AAA",
        "metric": metric,
        "timestamp": when,
        "properties": props,
    }


def ingest(factory: sessionmaker[Session], events: list[Any], now: datetime = NOW):
    return ingest_batch(
        factory, METRICS, events, now, Limits(timedelta(minutes=5), timedelta(days=30))
    )


def hourly(factory: sessionmaker[Session]) -> list[tuple]:
    with reading(factory) as session:
        rows = session.execute(
            select(tables.UsageHourly).order_by(
                tables.UsageHourly.metric, tables.UsageHourly.group_value, tables.UsageHourly.hour
            )
        ).scalars()
        return [
            (
                r.metric,
                r.group_value,
                r.hour,
                r.events,
                r.total,
                r.maximum,
                r.latest_at,
                r.latest_value,
                r.weighted,
            )
            for r in rows
        ]


def stored_ids(factory: sessionmaker[Session]) -> list[str]:
    with reading(factory) as session:
        return sorted(session.scalars(select(tables.UsageEvent.transaction_id)))


def test_each_element_is_accepted_acknowledged_as_a_duplicate_or_refused_with_its_reason(
    factory: sessionmaker[Session], customer_id: int
) -> None:
    ours = {**event("t2"), "customer": str(customer_id)}
    results = ingest(
        factory,
        [
            event("t1"),
            ours,
            event("t1"),
            event("t3", "nothing"),
            {**event("t4"), "customer": "001000000000009ZZZ"},
            {**event("t5"), "customer": "77"},
            event("t6", "gb", gb=5, direction="egress"),
            event("t7", "gb", gb="x", region="eu", direction="egress"),
            event("t8", "gb", gb=1, region="eu", direction="ingress"),
            "t9",
            {**event("t10"), "colour": "blue"},
            {**event("t11"), "properties": [1]},
            {**event(""), "customer": None},
            event("t12", when="2026-03-02T10:15:00"),
            event("t13", when="yesterday"),
            {**event("t14"), "timestamp": None},
            event("x" * 256),
        ],
    )

    assert results == [
        EventResult("t1", ACCEPTED),
        EventResult("t2", ACCEPTED),
        EventResult("t1", DUPLICATE),
        EventResult("t3", REFUSED, "unknown metric 'nothing'"),
        EventResult("t4", REFUSED, "unknown customer '001000000000009ZZZ'"),
        EventResult("t5", REFUSED, "unknown customer '77'"),
        EventResult("t6", REFUSED, "property 'region' (the metric's group) is missing"),
        EventResult("t7", REFUSED, "property 'gb' 'x' is not a number"),
        EventResult("t8", ACCEPTED),  # the metric's filter leaves it out: kept, not counted
        EventResult(
            None,
            REFUSED,
            "an event must be an object (transaction_id, customer, "
            "metric, timestamp, properties), not 't9'",
        ),
        EventResult(
            "t10",
            REFUSED,
            "unknown field 'colour' (expected transaction_id, customer, "
            "metric, timestamp, properties)",
        ),
        EventResult("t11", REFUSED, "properties must be an object, not [1]"),
        EventResult("", REFUSED, "transaction_id is missing"),
        EventResult(
            "t12", REFUSED, "timestamp '2026-03-02T10:15:00' has no time zone (add Z or +00:00)"
        ),
        EventResult(
            "t13",
            REFUSED,
            "timestamp 'yesterday' is neither ISO 8601 (2026-03-01T12:00:00Z) nor Unix seconds",
        ),
        EventResult("t14", REFUSED, "timestamp is missing"),
        EventResult("x" * 256, REFUSED, "transaction_id is longer than 255 characters"),
    ]
    assert stored_ids(factory) == ["t1", "t2", "t8"]
    hour = datetime(2026, 3, 2, 10, tzinfo=UTC)
    assert hourly(factory) == [("api_calls", "", hour, 2, None, None, None, None, None)]
    assert results[0].to_dict() == {"transaction_id": "t1", "status": "accepted"}
    assert results[3].to_dict() == {
        "transaction_id": "t3",
        "status": "refused",
        "reason": "unknown metric 'nothing'",
    }


def test_a_duplicate_of_a_stored_event_is_acknowledged_and_not_counted_again(
    factory: sessionmaker[Session], customer_id: int
) -> None:
    first = [event("a", "gb", gb="1.25", region="eu", direction="egress"), event("b")]
    assert [r.outcome for r in ingest(factory, first)] == [ACCEPTED, ACCEPTED]
    before = hourly(factory)

    again = ingest(factory, [*first, event("c")])

    assert [r.outcome for r in again] == [DUPLICATE, DUPLICATE, ACCEPTED]
    hour = datetime(2026, 3, 2, 10, tzinfo=UTC)
    assert before[1] == ("gb", "eu", hour, 1, D("1.25"), None, None, None, None)
    assert hourly(factory) == [
        ("api_calls", "", hour, 2, None, None, None, None, None),
        before[1],
    ]


def test_aggregates_keep_what_each_aggregation_needs_hour_by_hour(
    factory: sessionmaker[Session], customer_id: int
) -> None:
    ingest(
        factory,
        [
            event("p1", "peak", "2026-03-02T10:05:00Z", cpus=4),
            event("p2", "peak", "2026-03-02T10:55:00Z", cpus="7.5"),
            event("l1", "balance", "2026-03-02T10:30:00Z", value=3),
            event("l2", "balance", "2026-03-02T10:10:00Z", value=9),
            event("s1", "seats", "2026-03-02T10:00:00Z", user="ann"),
            event("s2", "seats", "2026-03-02T10:59:59Z", user="bob"),
            event("s3", "seats", "2026-03-02T11:00:00Z", user="ann"),
            event("w1", "storage", "2026-03-02T10:00:30+09:00", gb=10),  # 01:00:30 UTC
        ],
    )
    ingest(  # a second batch adds to the same hours, exactly
        factory,
        [
            event("p3", "peak", "2026-03-02T10:20:00Z", cpus=6),
            event("l3", "balance", "2026-03-02T10:45:00Z", value="-2.5"),
            event("s4", "seats", "2026-03-02T10:20:00Z", user="ann"),
            event("w2", "storage", 1772413200.5, gb="-0.5"),  # 2026-03-02T01:00:00.5Z
        ],
    )

    h01, h10, h11 = (datetime(2026, 3, 2, hour, tzinfo=UTC) for hour in (1, 10, 11))
    assert hourly(factory) == [
        (
            "balance",
            "",
            h10,
            3,
            None,
            None,
            datetime(2026, 3, 2, 10, 45, tzinfo=UTC),
            D("-2.5"),
            None,
        ),
        ("peak", "", h10, 3, None, D("7.5"), None, None, None),
        ("seats", "", h10, 3, None, None, None, None, None),
        ("seats", "", h11, 1, None, None, None, None, None),
        # Σ v × t: 10 × 1772413230 − 0.5 × 1772413200.5
        ("storage", "", h01, 2, D("9.5"), None, None, None, D("16837925699.75")),
    ]
    with reading(factory) as session:
        values = session.execute(
            select(tables.UsageHourlyValue.hour, tables.UsageHourlyValue.value).order_by(
                tables.UsageHourlyValue.hour, tables.UsageHourlyValue.value
            )
        ).all()
    assert values == [(h10, "ann"), (h10, "bob"), (h11, "ann")]


def test_events_dated_in_the_future_or_too_long_ago_are_refused(
    factory: sessionmaker[Session], customer_id: int
) -> None:
    results = ingest(
        factory,
        [
            event("soon", when="2026-03-20T12:04:59Z"),
            event("later", when="2026-03-20T12:05:01Z"),
            event("old", when="2026-02-18T11:59:59Z"),
            event("oldest-accepted", when="2026-02-18T12:00:00Z"),
        ],
    )

    assert results == [
        EventResult("soon", ACCEPTED),
        EventResult("later", REFUSED, "timestamp 2026-03-20T12:05:01+00:00 is in the future"),
        EventResult("old", REFUSED, "timestamp 2026-02-18T11:59:59+00:00 is older than 2026-02-18"),
        EventResult("oldest-accepted", ACCEPTED),
    ]


def test_events_are_stored_with_their_exact_time_and_properties(
    factory: sessionmaker[Session], customer_id: int
) -> None:
    ingest(
        factory,
        [event("e1", "gb", "2026-03-02T10:15:00.123456Z", gb=1.1, region="eu", direction="egress")],
    )

    with reading(factory) as session:
        row = session.scalars(select(tables.UsageEvent)).one()
        stored = (row.customer_id, row.metric, row.occurred_at, row.properties, row.received_at)
    assert stored == (
        customer_id,
        "gb",
        datetime(2026, 3, 2, 10, 15, 0, 123456, tzinfo=UTC),
        {"gb": 1.1, "region": "eu", "direction": "egress"},
        NOW,
    )


def test_a_batch_costs_the_same_statements_whatever_its_size(
    backend: str, engine: Engine, factory: sessionmaker[Session], customer_id: int
) -> None:
    def batch(prefix: str, size: int) -> list[dict[str, Any]]:
        return [
            event(
                f"{prefix}{n}",
                "seats",
                f"2026-03-{1 + n % 19:02d}T{n % 24:02d}:00:00Z",
                user=f"u{n % 7}",
            )
            for n in range(size)
        ]

    ingest(factory, batch("w", 1))  # the month's partition is made once (PostgreSQL)
    with counting(engine) as small:
        ingest(factory, batch("s", 10))
    with counting(engine) as large:
        ingest(factory, batch("l", 2000))

    assert small.by_verb() == large.by_verb()
    assert len(large) <= 10
    # SQLite: the events in one executemany. PostgreSQL: the events by COPY (two statements
    # the counter does not see), every other write one statement whatever its rows.
    assert max(large.rows) == (2000 if backend == "sqlite" else 1)


def test_two_writers_of_the_same_events_at_once_count_each_event_once(
    factory: sessionmaker[Session], customer_id: int
) -> None:
    events = [event(f"r{n}", when=f"2026-03-{1 + n % 9:02d}T10:00:00Z") for n in range(300)]
    results: list[list[EventResult]] = []

    def write(batch: list[dict[str, Any]]) -> None:
        results.append(ingest(factory, batch))

    threads = [
        threading.Thread(target=write, args=(events,)),
        threading.Thread(target=write, args=(events[::-1],)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    outcomes = [result.outcome for found in results for result in found]
    assert (outcomes.count(ACCEPTED), outcomes.count(DUPLICATE)) == (300, 300)
    assert sum(row[3] for row in hourly(factory)) == 300
