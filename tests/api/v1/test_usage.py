"""``POST /v1/usage-events`` through the real server: each event answered on its own, and the
hourly aggregates they leave (the upcoming invoice they make: test_upcoming.py).

Events are dated at the first instant of the current month (UTC): always in the current period,
never in the future, whatever the day the tests run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connector.db import tables
from connector.db.engine import reading, transaction
from connector.sync import contracts
from connector.sync.usage_report import month_of, window_of
from tests.api.conftest import Served

SF = "001000000000001AAA"
PATH = "/v1/usage-events"


def month_start() -> datetime:
    return window_of(month_of(datetime.now(UTC).date())).start


START = month_start()
STAMP = START.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def customer_id(factory: sessionmaker[Session]) -> int:
    with transaction(factory) as session:
        return contracts.upsert_customer(
            session, name="Acme", country="US", currency="USD", system="salesforce", external_id=SF
        ).id


def event(tx: Any, metric: str = "api_calls", customer: Any = SF, **props: Any) -> dict[str, Any]:
    return {
        "transaction_id": tx,
        "customer": customer,
        "metric": metric,
        "timestamp": STAMP,
        "properties": props,
    }


def send(served: Served, key: str, events: list[Any]) -> Any:
    answer = served.post(PATH, key, json={"events": events})
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_each_event_of_a_batch_is_answered_on_its_own_in_order(
    served: Served, customer_id: int, factory: sessionmaker[Session]
) -> None:
    key = served.key("write")
    assert send(served, key, [event("stored")])["accepted"] == 1
    batch = [
        event("e1"),
        event("e1"),  # again in the same batch
        event("stored"),  # stored by the first batch
        event("e2", customer="nobody"),
        event("e3", metric="widgets"),
        {**event("e4"), "timestamp": "yesterday"},
        event("e5", customer=str(customer_id)),  # our id rather than the Salesforce one
        event("e6", "seats", user_id="ann"),
        event("e7", "seats"),  # no user_id
        42,
        {**event("e8"), "colour": "red"},
        event("e9", "bandwidth_gb", gb="2.5", region="eu", direction="egress"),
    ]

    answer = send(served, key, batch)

    assert answer == {
        "accepted": 4,
        "duplicates": 2,
        "refused": 6,
        "results": [
            {"transaction_id": "e1", "status": "accepted"},
            {"transaction_id": "e1", "status": "duplicate"},
            {"transaction_id": "stored", "status": "duplicate"},
            {"transaction_id": "e2", "status": "refused", "reason": "unknown customer 'nobody'"},
            {"transaction_id": "e3", "status": "refused", "reason": "unknown metric 'widgets'"},
            {
                "transaction_id": "e4",
                "status": "refused",
                "reason": "timestamp 'yesterday' is neither ISO 8601 (2026-03-01T12:00:00Z) "
                "nor Unix seconds",
            },
            {"transaction_id": "e5", "status": "accepted"},
            {"transaction_id": "e6", "status": "accepted"},
            {
                "transaction_id": "e7",
                "status": "refused",
                "reason": "property 'user_id' (the metric's field) is missing",
            },
            {
                "transaction_id": None,
                "status": "refused",
                "reason": "an event must be an object (transaction_id, customer, metric, "
                "timestamp, properties), not 42",
            },
            {
                "transaction_id": "e8",
                "status": "refused",
                "reason": "unknown field 'colour' (expected transaction_id, customer, metric, "
                "timestamp, properties)",
            },
            {"transaction_id": "e9", "status": "accepted"},
        ],
    }
    # the batch sent again: every event stored is a duplicate now, the refusals the same
    again = send(served, key, batch)
    assert (again["accepted"], again["duplicates"], again["refused"]) == (0, 6, 6)
    with reading(factory) as session:
        stored = session.scalars(
            select(tables.UsageEvent.transaction_id).order_by(tables.UsageEvent.transaction_id)
        ).all()
        hourly = session.execute(
            select(
                tables.UsageHourly.metric,
                tables.UsageHourly.group_value,
                tables.UsageHourly.hour,
                tables.UsageHourly.events,
                tables.UsageHourly.total,
            ).order_by(tables.UsageHourly.metric, tables.UsageHourly.group_value)
        ).all()
        values = session.execute(
            select(tables.UsageHourlyValue.metric, tables.UsageHourlyValue.value)
        ).all()
    assert stored == ["e1", "e5", "e6", "e9", "stored"]
    assert [(m, g, h.replace(tzinfo=UTC), n, t) for m, g, h, n, t in hourly] == [
        ("api_calls", "", START, 3, None),
        ("bandwidth_gb", "eu", START, 1, Decimal("2.5")),
        ("seats", "", START, 1, None),
    ]
    assert values == [("seats", "ann")]


def test_events_need_a_write_key_and_the_invoice_a_key(served: Served, customer_id: int) -> None:
    body = {"events": [event("k1")]}

    assert served.post(PATH, json=body).status_code == 401
    assert served.post(PATH, "ck_not_a_key", json=body).status_code == 401
    refused = served.post(PATH, served.key("read"), json=body)
    assert refused.status_code == 403
    assert refused.json()["type"] == "https://connector.invalid/problems/scope"
    assert served.get(f"/v1/customers/{SF}/upcoming-invoice").status_code == 401
    # a write key reads too, and no Idempotency-Key is needed to send events
    assert served.get(f"/v1/customers/{SF}/upcoming-invoice", served.key("write")).ok
    assert send(served, served.key("write"), [event("k1")])["accepted"] == 1


def test_a_batch_of_more_than_1000_events_is_refused_whole(
    served: Served, customer_id: int, factory: sessionmaker[Session]
) -> None:
    events = [event(f"x{n}") for n in range(1001)]

    answer = served.post(PATH, served.key("write"), json={"events": events})

    assert answer.status_code == 422
    found = answer.json()
    assert found["type"] == "https://connector.invalid/problems/invalid-request"
    assert found["errors"] == [
        {
            "location": "body.events",
            "message": "List should have at most 1000 items after validation, not 1001",
        }
    ]
    with reading(factory) as session:
        assert session.scalar(select(tables.UsageEvent.id).limit(1)) is None


def test_events_dated_ahead_of_now_are_refused(served: Served, customer_id: int) -> None:
    ahead = datetime.now(UTC) + timedelta(hours=2)
    late = {**event("f1"), "timestamp": ahead.isoformat()}

    [result] = send(served, served.key("write"), [late])["results"]

    assert result["status"] == "refused"
    assert result["reason"].endswith("is in the future")
