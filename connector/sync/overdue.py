"""``invoice.overdue``: announced once for each open invoice on the first dunning run after
its due date has passed, in the dunning stage's transaction.

Only while a webhook endpoint exists, and only for invoices that fell due since the day before
the first endpoint was added (an endpoint added today is not told of every invoice overdue for
years). Whether one exists, and since when, is one query; an invoice already announced has its
event (found by its subject through an index), so a run reads only the invoices that became
overdue since the last one, and writes their events in one statement a batch.
"""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import String, cast, exists, func, literal, select
from sqlalchemy.orm import Session

from connector.billing.invoicing import DocumentKind
from connector.billing.payments import InvoiceStatus
from connector.db import tables, webhook_events
from connector.webhooks.events import INVOICE_OVERDUE
from connector.webhooks.payloads import document_event

BATCH = 2000
Document = tables.Document
Event = tables.WebhookEvent


def announce_overdue(session: Session, as_of: date) -> int:
    """Write ``invoice.overdue`` for the open invoices due before ``as_of`` not announced
    yet; how many."""
    first = session.scalar(select(func.min(tables.WebhookEndpoint.created_at)))
    if first is None:
        return 0
    since = first.date() - timedelta(days=1)
    subject = literal("document:").concat(cast(Document.id, String))
    announced = exists().where(Event.type == INVOICE_OVERDUE, Event.subject == subject)
    count, after = 0, 0
    while True:
        rows = session.scalars(
            select(Document)
            .where(
                Document.status == InvoiceStatus.OPEN.value,
                Document.due_date < as_of,
                Document.due_date >= since,
                Document.kind == DocumentKind.INVOICE.value,
                Document.id > after,
                ~announced,
            )
            .order_by(Document.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return count
        webhook_events.emit(
            session,
            [document_event(INVOICE_OVERDUE, row, row.due_date.isoformat()) for row in rows],
        )
        count += len(rows)
        after = rows[-1].id
