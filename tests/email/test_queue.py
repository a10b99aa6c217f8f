"""The mail outbox: one row per (document, version, kind), whatever is asked again."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connector.db import tables
from connector.db.engine import transaction
from connector.email.queue import MessageRequest, queue_messages
from tests.sync.test_sending import issue


def test_a_message_asked_for_again_is_queued_once(factory: sessionmaker[Session]) -> None:
    issue(factory, {"A": ("US", "a@customer.example")})  # queues (1, document)
    with transaction(factory) as session:
        asked = queue_messages(
            session,
            [
                MessageRequest(1, "document", "invoice"),
                MessageRequest(1, "reminder:friendly", "reminder_friendly"),
                MessageRequest(1, "reminder:friendly", "reminder_friendly"),
            ],
        )
    assert asked == 2
    with transaction(factory) as session:
        queue_messages(session, [MessageRequest(1, "reminder:friendly", "reminder_friendly")])
    with factory() as session:
        rows = session.execute(
            select(
                tables.EmailMessage.document_id,
                tables.EmailMessage.document_version,
                tables.EmailMessage.kind,
                tables.EmailMessage.template,
                tables.EmailMessage.state,
            ).order_by(tables.EmailMessage.id)
        ).all()
    assert [tuple(row) for row in rows] == [
        (1, 1, "document", "invoice", "pending"),
        (1, 1, "reminder:friendly", "reminder_friendly", "pending"),
    ]


@pytest.mark.parametrize("kind", ["", "reminder", "reminder:", "invoice"])
def test_a_message_kind_is_a_document_or_a_reminder_step(kind: str) -> None:
    with pytest.raises(ValueError, match="document or reminder:<step>"):
        MessageRequest(1, kind, "invoice")
