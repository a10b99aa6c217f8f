"""The webhook outbox: events written in the transaction that makes the change they announce.

Events are written only while at least one webhook endpoint exists (enabled or not): an
install without webhooks writes none. Whether one exists is read once per transaction, and
only by a transaction that has something to announce (:func:`active`); a batch then writes its
events in one statement (:func:`emit`), each once: an event whose id is stored already (the
same change written again) is left as it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from connector.db import tables
from connector.db.bulk import execute_many
from connector.db.staging import HELD, QUARANTINED
from connector.db.types import utc_now
from connector.webhooks.events import Event, payload
from connector.webhooks.payloads import (
    customer_event,
    document_event,
    payment_event,
    record_event,
    subscription_event,
)

WAITING = frozenset({QUARANTINED, HELD})

_ACTIVE = "webhooks.active"


def active(session: Session) -> bool:
    """Whether events are written: an endpoint exists. Read once per transaction."""
    transaction = session.get_transaction()
    cached = session.info.get(_ACTIVE)
    if cached is not None and cached[0] is transaction:
        return bool(cached[1])
    found = session.scalar(select(tables.WebhookEndpoint.id).limit(1)) is not None
    session.info[_ACTIVE] = (transaction, found)
    return found


def forget(session: Session) -> None:
    """Read again whether an endpoint exists (one was just added or removed)."""
    session.info.pop(_ACTIVE, None)


def emit(session: Session, events: Iterable[Event]) -> int:
    """Write ``events`` (in their order) when an endpoint exists, in one statement; how many
    were given."""
    found = list(events)
    if not found or not active(session):
        return 0
    now = utc_now()
    table = tables.table_of(tables.WebhookEvent)
    dialect = sqlite if session.get_bind().dialect.name == "sqlite" else postgresql
    statement = dialect.insert(table).inline().on_conflict_do_nothing(index_elements=["webhook_id"])
    execute_many(
        session,
        statement,
        table,
        [
            {
                "webhook_id": event.webhook_id,
                "type": event.type,
                "subject": event.subject,
                "ordering_key": event.ordering_key,
                "payload": payload(event, now),
                "fanned_out": False,
                "created_at": now,
            }
            for event in found
        ],
    )
    return len(found)


class StagedRecord(Protocol):
    object: str
    record_id: str
    state: str
    reason: str | None
    payload_hash: str


def emit_records(session: Session, system: str, records: Sequence[StagedRecord]) -> None:
    """``record.waiting`` for each record that starts waiting (quarantined or held) or waits
    for another reason, ``record.released`` for each that no longer waits: one statement."""
    if not records or not active(session):
        return
    emit(
        session,
        [
            record_event(
                system,
                row.object,
                row.record_id,
                row.state,
                row.reason,
                row.payload_hash,
                waiting=row.state in WAITING,
            )
            for row in records
        ],
    )


# -- one row at a time (the commands and the ORM paths: one statement for the row) ----------
def emit_customer(session: Session, row: tables.Customer, external_id: str | None) -> None:
    """``customer.created`` for a customer just made."""
    if active(session):
        emit(
            session,
            [customer_event(row.id, external_id, row.name, row.country, row.currency)],
        )


def _external_id(session: Session, row: tables.Subscription) -> str | None:
    return session.scalar(
        select(tables.ExternalId.external_id)
        .where(
            tables.ExternalId.entity == tables.Subscription.__tablename__,
            tables.ExternalId.entity_id == row.id,
        )
        .order_by(tables.ExternalId.id)
        .limit(1)
    )


def emit_subscription(
    session: Session,
    event_type: str,
    row: tables.Subscription,
    discriminator: str,
    external_id: str | None = None,
) -> None:
    """A ``subscription.*`` event for ``row`` as it now stands (its external id read when
    not given)."""
    if not active(session):
        return
    session.flush()
    emit(
        session,
        [
            subscription_event(
                event_type,
                row,
                subscription_id=row.id,
                external_id=external_id or _external_id(session, row),
                customer_id=row.customer_id,
                contract_id=row.contract_id,
                discriminator=discriminator,
            )
        ],
    )


def emit_document(
    session: Session, event_type: str, row: tables.Document, discriminator: str = ""
) -> None:
    """An ``invoice.*`` or ``credit_note.*`` event for ``row`` as it now stands."""
    if active(session):
        emit(session, [document_event(event_type, row, discriminator)])


def emit_payment(session: Session, row: tables.Payment, invoice_number: str | None) -> None:
    """``payment.received`` for a payment just recorded."""
    if active(session):
        emit(session, [payment_event(row, invoice_number)])
