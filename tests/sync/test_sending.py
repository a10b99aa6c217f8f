"""The send stage against a real SMTP server (aiosmtpd) and a real database: each new document
e-mailed once with its PDF, refused addresses parked with the server's answer, deferred ones
tried again after their wait, customers without an address waiting, nothing sent while e-mail
is disabled; what `connector status` and the write-back show of it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from connector.db import tables
from connector.db import writeback_queue as writeback
from connector.db.engine import transaction
from connector.db.types import utc_now
from connector.documents.store import current_pdf
from connector.settings import Settings, load_settings
from connector.sync import sending
from connector.sync.billing_run import run_billing
from connector.sync.cycle import Runtime
from connector.sync.rendering import render_new
from connector.sync.status import status
from connector.sync.writeback_records import Builder
from tests import builders
from tests.email.smtp_server import Recorder, smtp_server

AS_OF = date(2026, 3, 1)
SENDER = "billing@seller.example"
BCC = "archive@seller.example"


def mail_settings(
    database_url: str, port: int, secrets: dict[str, str] | None = None, **email: Any
) -> Settings:
    return load_settings(
        database_url=database_url,
        secrets=secrets or {},
        tax={"rates": {"US": "7.25", "JP": "10"}},
        email={
            "enabled": True,
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
            "starttls": False,
            "from": f"Seller Inc. <{SENDER}>",
            "reply_to": "accounts@seller.example",
            "bcc": BCC,
            **email,
        },
    )


def issue(factory: sessionmaker[Session], customers: dict[str, tuple[str, str | None]]) -> None:
    """One monthly subscription per customer ``ref -> (country, address)``, billed, and its
    invoice rendered."""
    for ref, (country, _) in customers.items():
        builders.simple_subscription(
            factory,
            start=AS_OF,
            ref=ref,
            country=country,
            currency="JPY" if country == "JP" else "USD",
            unit_amount="1000" if country == "JP" else "10.00",
        )
    with transaction(factory) as session:
        for ref, (_, address) in customers.items():
            session.execute(
                update(tables.Customer)
                .where(tables.Customer.name == f"Customer {ref}")
                .values(billing_email=address)
            )
    settings = load_settings(database_url="sqlite://", tax={"rates": {"US": "7.25", "JP": "10"}})
    run_billing(factory, settings, AS_OF)
    render_new(Runtime(factory, settings))  # the send stage renders before it sends


def messages(factory: sessionmaker[Session]) -> list[tuple[str, str, str, int, str | None]]:
    """(number, kind, state, attempts, answer) of every message, in document order."""
    with factory() as session:
        rows = session.execute(
            select(
                tables.Document.number,
                tables.EmailMessage.kind,
                tables.EmailMessage.state,
                tables.EmailMessage.attempts,
                tables.EmailMessage.answer,
            )
            .join(tables.Document, tables.Document.id == tables.EmailMessage.document_id)
            .order_by(tables.Document.number)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


@pytest.fixture
def server() -> Iterator[tuple[Recorder, int]]:
    with smtp_server() as running:
        yield running


def test_issuing_queues_one_message_per_document_in_its_transaction(
    factory: sessionmaker[Session],
) -> None:
    issue(factory, {"A": ("US", "a@customer.example"), "B": ("US", None)})
    assert messages(factory) == [
        ("INV-000001", "document", "pending", 0, None),
        ("INV-000002", "document", "pending", 0, None),
    ]


def test_each_document_is_sent_once_with_its_pdf(
    factory: sessionmaker[Session], database_url: str, server: tuple[Recorder, int]
) -> None:
    recorder, port = server
    issue(factory, {"A": ("US", "a@customer.example"), "J": ("JP", "keiri@kaisha.example")})
    settings = mail_settings(database_url, port)

    result = sending.send_messages(factory, settings)

    assert result.to_dict() == {
        "sent": 2,
        "deferred": 0,
        "waiting": 0,
        "not_sent": 0,
        "no_pdf": 0,
        "parked": {},
    }
    assert [(r.mail_from, r.rcpt_tos) for r in recorder.received] == [
        (SENDER, ["a@customer.example", BCC]),
        (SENDER, ["keiri@kaisha.example", BCC]),
    ]
    english, japanese = (r.message for r in recorder.received)
    assert english["From"] == f'"Seller Inc." <{SENDER}>'
    assert english["To"] == "a@customer.example"
    assert english["Reply-To"] == "accounts@seller.example"
    assert english["Subject"] == "Invoice INV-000001 from Seller Inc."
    assert english["Message-ID"] == "<INV-000001.v1.document.1@seller.example>"
    assert "Bcc" not in english and BCC not in recorder.received[0].data.decode()
    body = english.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert "Dear Customer A," in text
    assert "Amount: 107.25 USD" in text  # 10 x 10.00 + 7.25 % tax
    assert "Due date: 2026-03-31" in text
    assert japanese["Subject"] == "請求書 INV-000002（Seller Inc.）"
    assert japanese["Message-ID"] == "<INV-000002.v1.document.2@seller.example>"
    jp_body = japanese.get_body(("plain",))
    assert jp_body is not None
    assert "ご請求金額: 11,000 JPY" in jp_body.get_content()
    with factory() as session:
        for received, document_id in zip(recorder.received, (1, 2), strict=True):
            (attachment,) = received.message.iter_attachments()
            pdf = current_pdf(session, document_id)
            assert pdf is not None
            assert attachment.get_content_type() == "application/pdf"
            assert attachment.get_filename() == pdf.filename
            assert attachment.get_content() == pdf.content
    assert [m[:4] for m in messages(factory)] == [
        ("INV-000001", "document", "sent", 1),
        ("INV-000002", "document", "sent", 1),
    ]

    again = sending.send_messages(factory, settings)  # nothing twice
    assert again.sent == 0
    assert len(recorder.received) == 2


def test_a_refused_address_is_parked_with_the_servers_answer_and_shown(
    factory: sessionmaker[Session], database_url: str, server: tuple[Recorder, int]
) -> None:
    recorder, port = server
    recorder.answers["nobody@customer.example"] = (
        "550 5.1.1 <nobody@customer.example>: no such user"
    )
    issue(factory, {"A": ("US", "nobody@customer.example"), "B": ("US", "b@customer.example")})
    with transaction(factory) as session:  # the deal of A's subscription is in Salesforce
        session.add(
            tables.ExternalId(
                entity="subscriptions", entity_id=1, system="salesforce", external_id="006A"
            )
        )

    result = sending.send_messages(factory, mail_settings(database_url, port))

    answer = "550 5.1.1 <nobody@customer.example>: no such user"
    assert result.sent == 1
    assert result.parked == {"INV-000001 document": answer}
    assert messages(factory) == [
        ("INV-000001", "document", "parked", 1, answer),
        ("INV-000002", "document", "sent", 1, "250 2.0.0 Ok: queued"),
    ]
    assert [r.rcpt_tos for r in recorder.received] == [["b@customer.example", BCC]]
    with transaction(factory) as session:
        assert ("document", "1") in writeback.due(session, AS_OF)
        (built,) = Builder(session, AS_OF).invoice_records([1])
        assert built.record is not None
        assert built.record.fields["Email_Status__c"] == "Refused"
        assert built.record.fields["Email_Error__c"] == answer
        report = status(session, AS_OF, email_enabled=True)
    assert report.email is not None
    assert report.email.counts == {
        "pending": 0,
        "sent": 1,
        "parked": 1,
        "waiting": 0,
        "in_flight": 0,
    }
    assert "e-mail: 1 messages refused by the mail server (see e-mail)" in report.attention()
    assert [m.to_dict() for m in report.email.messages] == [
        {
            "number": "INV-000001",
            "kind": "document",
            "customer": "Customer A",
            "state": "parked",
            "answer": answer,
        }
    ]

    recorder.answers.clear()  # the address is fixed: put it back in line
    with transaction(factory) as session:
        assert sending.retry_parked(session) == 1
    assert sending.send_messages(factory, mail_settings(database_url, port)).sent == 1
    assert recorder.received[-1].message["Message-ID"] == (
        "<INV-000001.v1.document.1@seller.example>"
    )


def test_a_deferred_message_is_tried_again_after_its_wait(
    factory: sessionmaker[Session], database_url: str, server: tuple[Recorder, int]
) -> None:
    recorder, port = server
    recorder.answers["a@customer.example"] = "451 4.3.0 try again later"
    issue(factory, {"A": ("US", "a@customer.example")})
    settings = mail_settings(database_url, port, retry_initial_seconds=600, max_attempts=3)

    before = utc_now()
    assert sending.send_messages(factory, settings).deferred == 1
    with factory() as session:
        row = session.scalars(select(tables.EmailMessage)).one()
        assert row.state == "pending" and row.attempts == 1
        assert row.answer == "451 4.3.0 try again later"
        assert row.next_attempt_at is not None
        assert before + timedelta(seconds=600) <= row.next_attempt_at
        assert row.next_attempt_at <= utc_now() + timedelta(seconds=600)
    assert sending.send_messages(factory, settings).to_dict()["deferred"] == 0  # not yet due

    def due_now() -> None:
        with transaction(factory) as session:
            session.execute(update(tables.EmailMessage).values(next_attempt_at=utc_now()))

    due_now()
    assert sending.send_messages(factory, settings).deferred == 1
    with factory() as session:  # the second wait is twice the first
        row = session.scalars(select(tables.EmailMessage)).one()
        assert row.next_attempt_at is not None
        assert row.next_attempt_at - row.updated_at == timedelta(seconds=1200)
    due_now()
    parked = sending.send_messages(factory, settings).parked
    assert parked == {
        "INV-000001 document": "deferred 3 times, given up: 451 4.3.0 try again later"
    }
    assert recorder.received == []


def test_a_customer_without_an_address_waits_until_it_has_one(
    factory: sessionmaker[Session], database_url: str, server: tuple[Recorder, int]
) -> None:
    recorder, port = server
    issue(factory, {"A": ("US", None)})
    settings = mail_settings(database_url, port)

    assert sending.send_messages(factory, settings).waiting == 1
    assert messages(factory) == [("INV-000001", "document", "waiting", 0, sending.NO_ADDRESS)]
    with transaction(factory) as session:
        report = status(session, AS_OF, email_enabled=True)
    assert "e-mail: 1 messages waiting for a customer's billing address" in report.attention()
    assert recorder.received == []

    with transaction(factory) as session:
        session.execute(update(tables.Customer).values(billing_email="a@customer.example"))
    assert sending.send_messages(factory, settings).sent == 1
    assert [r.rcpt_tos[0] for r in recorder.received] == ["a@customer.example"]


def test_nothing_is_sent_while_email_is_disabled(
    factory: sessionmaker[Session], database_url: str, server: tuple[Recorder, int]
) -> None:
    recorder, port = server
    issue(factory, {"A": ("US", "a@customer.example")})

    result = sending.send_messages(factory, mail_settings(database_url, port, enabled=False))

    assert result.not_sent == 1 and result.sent == 0
    assert recorder.received == []
    assert messages(factory) == [("INV-000001", "document", "pending", 0, None)]
    with transaction(factory) as session:
        report = status(session, AS_OF)
    assert report.email is not None and not report.email.enabled
    assert report.email.counts["pending"] == 1
