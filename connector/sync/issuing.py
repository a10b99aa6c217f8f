"""Issuing documents: numbers from their gapless series, rows, outbox rows, and settlement.

The billing run and a credit note issued by hand (``connector invoice credit``) issue through
here, in the caller's transaction: the documents and their lines and taxes, their numbers, one
outbox row each (posted to accounting and written back by the same push as any other), the
e-mail of each to its customer (``email_messages``), the
credited amounts of the invoice lines a credit note corrects, and settlement: a credit note
first reduces what its invoice still owes, then the customer's other open invoices; what is left
is the customer's credit (``credit_kept``), a liability in accounting.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date
from types import SimpleNamespace

from sqlalchemy.orm import Session

from connector.billing.invoicing import DocumentDraft, DocumentKind
from connector.billing.money import ZERO
from connector.billing.payments import InvoiceStatus
from connector.db import outbox, revenue_due, tables, webhook_events
from connector.db import writeback_queue as writeback
from connector.db.documents import (
    CREDIT_NOTE_ISSUED,
    IssuedDocument,
    allocate_numbers,
    format_number,
    insert_documents,
    last_issue_date,
    record_credited_lines,
)
from connector.documents import store
from connector.email.queue import queue_documents
from connector.errors import BillingError
from connector.settings import BillingSettings
from connector.sync.settlement import (
    apply_credit_note,
    customers_with_credit,
    keep_credit,
    settle_customer,
)
from connector.webhooks.payloads import created_document_type, document_event

# (draft, customer id, subscription id)
Unnumbered = tuple[DocumentDraft, int, int | None]


def check_issue_date(session: Session, day: date) -> None:
    """Document dates never go back in time within a numbering series."""
    last = last_issue_date(session)
    if last is not None and day < last:
        raise BillingError(
            f"as-of date {day} is before the last issued document ({last}); document dates "
            "must not go backwards within a numbering series"
        )


def number_documents(
    session: Session, billing: BillingSettings, documents: Sequence[Unnumbered]
) -> list[tuple[DocumentDraft, int, int | None, str]]:
    """Numbers for ``documents``, reserved from the series of each kind in this transaction."""
    prefixes = {
        DocumentKind.INVOICE: billing.invoice_prefix,
        DocumentKind.CREDIT_NOTE: billing.credit_note_prefix,
    }
    by_kind: dict[DocumentKind, list[Unnumbered]] = defaultdict(list)
    for entry in documents:
        by_kind[entry[0].kind].append(entry)
    numbered: list[tuple[DocumentDraft, int, int | None, str]] = []
    for kind, entries in by_kind.items():
        prefix = prefixes[kind]
        first = allocate_numbers(session, f"{kind.value}:{prefix}", len(entries))
        numbered.extend(
            (
                draft,
                customer,
                subscription,
                format_number(prefix, first + offset, billing.number_digits),
            )
            for offset, (draft, customer, subscription) in enumerate(entries)
        )
    return numbered


def _announce(session: Session, issued: Sequence[IssuedDocument]) -> None:
    """``invoice.created`` and ``credit_note.created`` for the documents: one statement."""
    if not issued or not webhook_events.active(session):
        return
    webhook_events.emit(
        session,
        [
            document_event(
                created_document_type(doc.draft.kind.value),
                SimpleNamespace(
                    id=doc.id,
                    number=doc.number,
                    kind=doc.draft.kind.value,
                    status=InvoiceStatus.OPEN.value
                    if doc.draft.kind is DocumentKind.INVOICE
                    else CREDIT_NOTE_ISSUED,
                    customer_id=doc.customer_id,
                    subscription_id=doc.subscription_id,
                    invoice_id=doc.draft.credited_invoice_id,
                    currency=doc.draft.currency.code,
                    issue_date=doc.draft.issue_date,
                    due_date=doc.draft.due_date,
                    period_start=doc.draft.period.start,
                    period_end=doc.draft.period.end,
                    subtotal=doc.draft.subtotal,
                    tax_total=doc.draft.tax_total,
                    total=doc.draft.total,
                    amount_paid=ZERO,
                    amount_credited=ZERO,
                    version=1,
                ),
            )
            for doc in issued
        ],
    )


def issue(
    session: Session,
    billing: BillingSettings,
    documents: Sequence[Unnumbered],
    charge_ids: dict[int, int],
    on: date,
) -> list[IssuedDocument]:
    """Number and write ``documents`` with their outbox rows, and settle them as of ``on``
    (see the module's description)."""
    issued = insert_documents(session, number_documents(session, billing, documents), charge_ids)
    revenue_due.add_issued(session, issued)
    store.queue_renders(session, [document.id for document in issued])
    for kind in DocumentKind:  # in the same transaction as the documents
        outbox.enqueue(session, kind.value, (d.id for d in issued if d.draft.kind is kind))
    writeback.mark(session, writeback.DOCUMENT, (d.id for d in issued))
    _announce(session, issued)
    queue_documents(session, [(d.id, d.draft.kind.value) for d in issued])  # e-mailed
    credit_notes = [d for d in issued if d.draft.kind is DocumentKind.CREDIT_NOTE]
    record_credited_lines(session, credit_notes)
    for doc in credit_notes:
        note = session.get_one(tables.Document, doc.id)
        invoice = session.get_one(tables.Document, doc.draft.credited_invoice_id)
        apply_credit_note(session, note, invoice, on)
    session.flush()
    for customer_id in customers_with_credit(session, sorted({d.customer_id for d in issued})):
        settle_customer(session, customer_id, on)
    for doc in credit_notes:
        keep_credit(session.get_one(tables.Document, doc.id))
    return issued
