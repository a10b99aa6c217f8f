"""The webhooks stage against a real local receiver that verifies every request with the
``standardwebhooks`` library: events written with the changes they announce, delivered signed
with exact bodies, retried with backoff, disabled by 410 Gone, failed after max age, in order
per customer; and nothing written while no endpoint exists."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
import trustme
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from connector.db import tables
from connector.db.engine import transaction
from connector.db.types import utc_now
from connector.encryption import TokenCipher
from connector.settings import Settings, WebhooksSettings
from connector.sync import contracts, settlement
from connector.sync.billing_run import run_billing
from connector.sync.status import status
from connector.sync.webhooks import deliver, wait
from connector.webhooks.endpoints import add_endpoint
from connector.webhooks.events import event_id
from tests import builders
from tests.statements import Statements, counting
from tests.webhook_receiver import Receiver, receiving


@pytest.fixture
def hook_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"webhooks": WebhooksSettings(retry_initial_seconds=0)})


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as found:
        yield found


def add(factory: sessionmaker[Session], settings: Settings, url: str, events: str = "*") -> str:
    """Add an endpoint; its secret."""
    cipher = TokenCipher.from_settings(settings.secrets, settings.database_url.get_secret_value())
    with transaction(factory) as session:
        _, secret = add_endpoint(session, cipher, url, events)
    return secret


@pytest.fixture
def endpoint(factory: sessionmaker[Session], hook_settings: Settings, receiver: Receiver) -> str:
    receiver.secret = add(factory, hook_settings, receiver.url)
    return receiver.secret


def _deliveries(factory: sessionmaker[Session]) -> list[tuple[str, str, int, int | None]]:
    """(type, state, attempts, last status) of every delivery, in event order."""
    with factory() as session:
        rows = session.execute(
            select(
                tables.WebhookEvent.type,
                tables.WebhookDelivery.state,
                tables.WebhookDelivery.attempts,
                tables.WebhookDelivery.last_status,
            )
            .join(tables.WebhookEvent, tables.WebhookEvent.id == tables.WebhookDelivery.event_id)
            .order_by(tables.WebhookDelivery.event_id)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


def test_billing_events_are_delivered_signed_in_order_with_exact_bodies(
    factory: sessionmaker[Session], hook_settings: Settings, receiver: Receiver, endpoint: str
) -> None:
    sub_id = builders.simple_subscription(factory, start=date(2026, 1, 1))
    run_billing(factory, hook_settings, date(2026, 1, 1))
    with transaction(factory) as session:
        payment = settlement.record_payment(
            session,
            amount="100.00",
            received_on=date(2026, 1, 10),
            invoice_number="INV-000001",
            reference="wire-1",
        )
        payment_id = payment.id
    with factory() as session:
        invoice = session.scalars(select(tables.Document)).one()
        customer = session.scalars(select(tables.Customer)).one()

    result = deliver(factory, hook_settings)

    assert result.to_dict() == {
        "events": 5,
        "delivered": 5,
        "retrying": 0,
        "failed": 0,
        "disabled": [],
    }
    got = receiver.delivered()
    assert receiver.refused == 0
    assert [item.type for item in got] == [
        "customer.created",
        "subscription.created",
        "invoice.created",
        "payment.received",
        "invoice.paid",
    ]
    assert [item.webhook_id for item in got] == [
        event_id("customer.created", f"customer:{customer.id}"),
        event_id("subscription.created", f"subscription:{sub_id}"),
        event_id("invoice.created", f"document:{invoice.id}"),
        event_id("payment.received", f"payment:{payment_id}"),
        event_id("invoice.paid", f"document:{invoice.id}", "2"),
    ]
    document = {
        "id": invoice.id,
        "number": "INV-000001",
        "kind": "invoice",
        "customer_id": customer.id,
        "subscription_id": sub_id,
        "invoice_id": None,
        "currency": "USD",
        "issue_date": "2026-01-01",
        "due_date": "2026-01-31",
        "period_start": "2026-01-01",
        "period_end": "2026-01-31",
        "subtotal": "100.00",
        "tax_total": "0.00",
        "total": "100.00",
    }
    assert got[2].payload["data"] == {
        **document,
        "status": "open",
        "amount_paid": "0.00",
        "amount_credited": "0.00",
        "amount_due": "100.00",
        "version": 1,
    }
    assert got[4].payload["data"] == {
        **document,
        "status": "paid",
        "amount_paid": "100.00",
        "amount_credited": "0.00",
        "amount_due": "0.00",
        "version": 2,
    }
    assert got[3].payload["data"] == {
        "id": payment_id,
        "customer_id": customer.id,
        "currency": "USD",
        "amount": "100.00",
        "received_on": "2026-01-10",
        "reference": "wire-1",
        "invoice_id": invoice.id,
        "invoice_number": "INV-000001",
    }
    assert got[0].payload["data"] == {
        "id": customer.id,
        "external_id": "C1",
        "name": "Customer C1",
        "country": "US",
        "currency": "USD",
    }
    assert got[1].payload["data"] == {
        "id": sub_id,
        "external_id": None,
        "customer_id": customer.id,
        "contract_id": 1,
        "currency": "USD",
        "frequency": "monthly",
        "start_date": "2026-01-01",
        "trial_days": 0,
        "term_months": 12,
        "auto_renew": True,
        "cancel_date": None,
        "revision": 0,
    }
    with factory() as session:  # the body is the stored payload, timestamp included
        stored = session.scalars(
            select(tables.WebhookEvent.payload).order_by(tables.WebhookEvent.id)
        ).all()
    assert [item.payload for item in got] == list(stored)
    assert {tuple(item.payload) for item in got} == {("data", "timestamp", "type")}
    assert deliver(factory, hook_settings).to_dict()["delivered"] == 0  # nothing twice


def test_cancel_and_void_are_announced(
    factory: sessionmaker[Session], hook_settings: Settings, receiver: Receiver, endpoint: str
) -> None:
    sub_id = builders.simple_subscription(factory, start=date(2026, 1, 1))
    run_billing(factory, hook_settings, date(2026, 1, 1))
    with transaction(factory) as session:
        contracts.void_invoice(session, "INV-000001", "issued in error")
    with transaction(factory) as session:
        contracts.cancel_subscription(session, sub_id, cancel_date=date(2026, 3, 1))

    deliver(factory, hook_settings)

    got = receiver.delivered()
    assert [item.type for item in got] == [
        "customer.created",
        "subscription.created",
        "invoice.created",
        "invoice.voided",
        "subscription.updated",  # the void reopens the period: a new revision
        "subscription.cancelled",
    ]
    assert got[3].payload["data"]["status"] == "void"
    assert (got[4].payload["data"]["revision"], got[5].payload["data"]["revision"]) == (1, 2)
    assert got[5].payload["data"]["cancel_date"] == "2026-03-01"


def test_no_endpoint_no_events(factory: sessionmaker[Session], settings: Settings) -> None:
    builders.simple_subscription(factory, start=date(2026, 1, 1))
    run_billing(factory, settings, date(2026, 1, 1))
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(tables.WebhookEvent)) == 0
    assert deliver(factory, settings).to_dict()["events"] == 0


def test_an_endpoint_receives_only_its_event_types_from_when_it_was_added(
    factory: sessionmaker[Session], hook_settings: Settings, receiver: Receiver
) -> None:
    with receiving() as other:
        other.secret = add(factory, hook_settings, other.url, "customer.created")
        builders.simple_subscription(factory, start=date(2026, 1, 1))
        receiver.secret = add(factory, hook_settings, receiver.url, "invoice.created")
        run_billing(factory, hook_settings, date(2026, 1, 1))
        deliver(factory, hook_settings)
    assert [item.type for item in other.delivered()] == ["customer.created"]
    assert [item.type for item in receiver.delivered()] == ["invoice.created"]


def test_a_refused_delivery_is_retried_with_the_same_id_then_delivered(
    factory: sessionmaker[Session], hook_settings: Settings, receiver: Receiver, endpoint: str
) -> None:
    receiver.answers = [500, 503]
    with transaction(factory) as session:
        builders.customer(session)

    first = deliver(factory, hook_settings)
    assert first.to_dict()["retrying"] == 1
    assert _deliveries(factory) == [("customer.created", "pending", 1, 500)]
    second = deliver(factory, hook_settings)
    assert (second.retrying, second.delivered) == (1, 0)
    third = deliver(factory, hook_settings)
    assert (third.retrying, third.delivered) == (0, 1)

    assert _deliveries(factory) == [("customer.created", "delivered", 3, 200)]
    assert [item.status for item in receiver.received] == [500, 503, 200]
    assert len({item.webhook_id for item in receiver.received}) == 1
    assert len({item.body for item in receiver.received}) == 1
    with factory() as session:
        attempts = session.execute(
            select(tables.WebhookAttempt.status, tables.WebhookAttempt.error).order_by(
                tables.WebhookAttempt.id
            )
        ).all()
        latencies = session.scalars(select(tables.WebhookAttempt.latency_ms)).all()
    assert [tuple(row) for row in attempts] == [
        (500, "HTTP 500 Internal Server Error: refused"),
        (503, "HTTP 503 Service Unavailable: refused"),
        (200, None),
    ]
    assert all(latency >= 0 for latency in latencies)


def test_the_wait_doubles_with_jitter_up_to_its_ceiling() -> None:
    config = WebhooksSettings(retry_initial_seconds=5, retry_max_seconds=60)
    rng = random.Random(7)
    waits = [wait(config, attempts, rng).total_seconds() for attempts in range(1, 7)]
    ceilings = [5, 10, 20, 40, 60, 60]
    assert all(c / 2 <= w <= c for w, c in zip(waits, ceilings, strict=True))
    again = random.Random(7)
    assert waits == [wait(config, n, again).total_seconds() for n in range(1, 7)]


def test_a_retry_waits_and_the_last_comes_at_max_age_then_failed(
    factory: sessionmaker[Session], settings: Settings, receiver: Receiver
) -> None:
    config = WebhooksSettings(retry_initial_seconds=60, max_age_hours=72)
    hooked = settings.model_copy(update={"webhooks": config})
    receiver.secret = add(factory, hooked, receiver.url)
    receiver.answer = lambda payload: 500
    with transaction(factory) as session:
        builders.customer(session)

    before = utc_now()
    deliver(factory, hooked)
    with factory() as session:
        (next_at,) = session.scalars(select(tables.WebhookDelivery.next_attempt_at)).all()
    assert before + timedelta(seconds=30) <= next_at <= utc_now() + timedelta(seconds=60)
    assert deliver(factory, hooked).to_dict()["retrying"] == 0  # not due yet: not tried

    with transaction(factory) as session:  # the event is 72 hours old less a minute
        session.execute(
            update(tables.WebhookEvent).values(created_at=utc_now() - timedelta(hours=71.99))
        )
        session.execute(update(tables.WebhookDelivery).values(next_attempt_at=utc_now()))
    deliver(factory, hooked)
    with factory() as session:
        delivery = session.scalars(select(tables.WebhookDelivery)).one()
        created = session.scalars(select(tables.WebhookEvent.created_at)).one()
    assert delivery.next_attempt_at == created + timedelta(hours=72)  # the last try, at max age
    with transaction(factory) as session:
        session.execute(
            update(tables.WebhookEvent).values(created_at=utc_now() - timedelta(hours=73))
        )
        session.execute(update(tables.WebhookDelivery).values(next_attempt_at=utc_now()))

    assert deliver(factory, hooked).to_dict()["failed"] == 1
    assert _deliveries(factory) == [("customer.created", "failed", 3, 500)]
    with factory() as session:
        report = status(session, date(2026, 1, 1))
    assert "webhook endpoint 1: 1 deliveries failed" in report.attention()


def test_410_gone_disables_the_endpoint_and_its_pending_deliveries(
    factory: sessionmaker[Session], hook_settings: Settings, receiver: Receiver, endpoint: str
) -> None:
    receiver.answers = [410]
    with transaction(factory) as session:
        builders.customer(session, "C1")
        builders.customer(session, "C2")

    result = deliver(factory, hook_settings)

    assert result.to_dict()["disabled"] == ["1"]
    assert [item.status for item in receiver.received] == [410]  # the second never sent
    assert _deliveries(factory) == [
        ("customer.created", "disabled", 1, 410),
        ("customer.created", "disabled", 0, None),
    ]
    with factory() as session:
        row = session.scalars(select(tables.WebhookEndpoint)).one()
        report = status(session, date(2026, 1, 1))
    assert not row.enabled
    assert row.disabled_reason is not None
    assert row.disabled_reason.startswith("the receiver answered HTTP 410 Gone: refused on ")
    assert report.attention() == [
        f"webhook endpoint 1 ({receiver.url}) is disabled: {row.disabled_reason}"
    ]
    with transaction(factory) as session:
        builders.customer(session, "C3")
    assert deliver(factory, hook_settings).to_dict()["delivered"] == 0


def test_a_later_event_of_a_customer_waits_for_the_earlier_one(
    factory: sessionmaker[Session], hook_settings: Settings, receiver: Receiver, endpoint: str
) -> None:
    failing = {"customer.created"}
    receiver.answer = lambda payload: 500 if payload["type"] in failing else 200
    with transaction(factory) as session:
        builders.customer(session, "C1")
    builders.simple_subscription(factory, start=date(2026, 1, 1), ref="C2")
    with transaction(factory) as session:
        c1 = session.scalars(select(tables.Customer).where(tables.Customer.name == "Customer C1"))
        builders.subscription(
            session,
            c1.one(),
            [builders.spec(session, builders.price(session))],
            start=date(2026, 1, 1),
        )

    deliver(factory, hook_settings)

    # Every customer.created refused: no subscription.created of theirs was sent.
    assert [item.type for item in receiver.received] == ["customer.created", "customer.created"]
    failing.clear()
    deliver(factory, hook_settings)
    order = [(item.type, item.payload["data"].get("customer_id")) for item in receiver.delivered()]
    assert order == [
        ("customer.created", None),
        ("customer.created", None),
        ("subscription.created", 2),
        ("subscription.created", 1),
    ]


def test_a_batch_costs_a_handful_of_statements_and_an_idle_run_two(
    factory: sessionmaker[Session],
    hook_settings: Settings,
    receiver: Receiver,
    endpoint: str,
    engine: Engine,
) -> None:
    with transaction(factory) as session:
        for ref in ("C1", "C2", "C3"):
            builders.customer(session, ref)

    with counting(engine) as busy:
        assert deliver(factory, hook_settings).delivered == 3
    with counting(engine) as idle:
        deliver(factory, hook_settings)

    # Fan-out: the events, the endpoints, one insert of the deliveries, one update of the
    # events; then the deliveries due, one insert of the attempts, one update of the
    # deliveries; and the query that finds nothing more due.
    assert _verbs(busy) == {"SELECT": 4, "INSERT": 2, "UPDATE": 2}
    assert _verbs(idle) == {"SELECT": 2}


def _verbs(seen: Statements) -> dict[str, int]:
    return {verb: n for verb, n in seen.by_verb().items() if verb not in ("BEGIN", "COMMIT")}


def test_writes_announce_nothing_and_read_nothing_more_while_no_endpoint_exists(
    factory: sessionmaker[Session], settings: Settings, engine: Engine
) -> None:
    with transaction(factory) as session:
        builders.customer(session, "C1")
    with counting(engine) as without, transaction(factory) as session:
        builders.customer(session, "C2")
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(tables.WebhookEvent)) == 0
    add(factory, settings, "https://hooks.example.com/in")
    with counting(engine) as with_endpoint, transaction(factory) as session:
        builders.customer(session, "C3")
    # One query (is there an endpoint?) without; that and the event's insert with one.
    assert len(without.touching("webhook_events")) == 0
    assert len(without.touching("webhook_endpoints")) == 1
    assert len(with_endpoint) == len(without) + 1
    assert len(with_endpoint.touching("webhook_events")) == 1


def test_tls_is_verified_against_the_ca_file_never_the_environment(
    factory: sessionmaker[Session],
    hook_settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ca = trustme.CA()
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))  # never trusted
    monkeypatch.setenv("CURL_CA_BUNDLE", str(bundle))
    with receiving(ca=ca) as receiver:
        receiver.secret = add(factory, hook_settings, receiver.url)
        with transaction(factory) as session:
            builders.customer(session)
        refused = deliver(factory, hook_settings)
        trusting = hook_settings.model_copy(
            update={"webhooks": WebhooksSettings(retry_initial_seconds=0, ca_file=str(bundle))}
        )
        accepted = deliver(factory, trusting)

    assert (refused.retrying, accepted.delivered) == (1, 1)
    with factory() as session:
        first = session.scalars(
            select(tables.WebhookAttempt.error).order_by(tables.WebhookAttempt.id)
        ).first()
    assert first is not None
    assert first.startswith("TLS refused: ")
    assert "CERTIFICATE_VERIFY_FAILED" in first
    assert [item.type for item in receiver.delivered()] == ["customer.created"]
