"""The ``data`` of each event: what a receiver needs of the customer, subscription, document,
payment or CRM record that changed, as JSON (money as strings in the currency's minor-unit
precision, dates as ISO 8601). Pure functions of the values they are given."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from connector.billing.money import currency
from connector.billing.payments import amount_due
from connector.webhooks.events import (
    CREDIT_NOTE_CREATED,
    CUSTOMER_CREATED,
    INVOICE_CREATED,
    PAYMENT_RECEIVED,
    RECORD_RELEASED,
    RECORD_WAITING,
    Event,
)


def money(amount: Decimal, code: str) -> str:
    """``amount`` as a string with the minor-unit digits of ``code`` (JPY 0, EUR 2)."""
    return str(amount.quantize(currency(code).quantum))


def _day(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def customer_key(customer_id: int) -> str:
    """The ordering key of everything about a customer."""
    return f"customer:{customer_id}"


def customer_event(
    customer_id: int, external_id: str | None, name: str, country: str, code: str
) -> Event:
    data = {
        "id": customer_id,
        "external_id": external_id,
        "name": name,
        "country": country,
        "currency": code,
    }
    return Event(CUSTOMER_CREATED, f"customer:{customer_id}", customer_key(customer_id), data)


def subscription_event(
    event_type: str,
    terms: Any,
    *,
    subscription_id: int,
    external_id: str | None,
    customer_id: int,
    contract_id: int,
    discriminator: str = "",
) -> Event:
    """An event about a subscription: ``terms`` has a subscription's columns (currency,
    frequency, start_date, trial_days, term_months, auto_renew, cancel_date, revision); the
    ids are given apart, as they are known once written."""
    data = {
        "id": subscription_id,
        "external_id": external_id,
        "customer_id": customer_id,
        "contract_id": contract_id,
        "currency": terms.currency,
        "frequency": terms.frequency,
        "start_date": _day(terms.start_date),
        "trial_days": terms.trial_days,
        "term_months": terms.term_months,
        "auto_renew": terms.auto_renew,
        "cancel_date": _day(terms.cancel_date),
        "revision": terms.revision,
    }
    return Event(
        event_type,
        f"subscription:{subscription_id}",
        customer_key(customer_id),
        data,
        discriminator,
    )


def document_event(event_type: str, document: Any, discriminator: str = "") -> Event:
    """An event about an invoice or credit note: ``document`` has a document's columns
    (a :class:`~connector.db.tables.Document`, or values of one as written)."""
    code = document.currency
    data = {
        "id": document.id,
        "number": document.number,
        "kind": document.kind,
        "status": document.status,
        "customer_id": document.customer_id,
        "subscription_id": document.subscription_id,
        "invoice_id": document.invoice_id,
        "currency": code,
        "issue_date": _day(document.issue_date),
        "due_date": _day(document.due_date),
        "period_start": _day(document.period_start),
        "period_end": _day(document.period_end),
        "subtotal": money(document.subtotal, code),
        "tax_total": money(document.tax_total, code),
        "total": money(document.total, code),
        "amount_paid": money(document.amount_paid, code),
        "amount_credited": money(document.amount_credited, code),
        "amount_due": money(
            amount_due(document.total, document.amount_paid, document.amount_credited), code
        ),
        "version": document.version,
    }
    return Event(
        event_type,
        f"document:{document.id}",
        customer_key(document.customer_id),
        data,
        discriminator,
    )


def created_document_type(kind: str) -> str:
    return CREDIT_NOTE_CREATED if kind == "credit_note" else INVOICE_CREATED


def payment_event(payment: Any, invoice_number: str | None) -> Event:
    """``payment.received`` for a :class:`~connector.db.tables.Payment` just recorded."""
    code = payment.currency
    data = {
        "id": payment.id,
        "customer_id": payment.customer_id,
        "currency": code,
        "amount": money(payment.amount, code),
        "received_on": _day(payment.received_on),
        "reference": payment.reference,
        "invoice_id": payment.invoice_id,
        "invoice_number": invoice_number,
    }
    return Event(PAYMENT_RECEIVED, f"payment:{payment.id}", customer_key(payment.customer_id), data)


def record_event(  # noqa: PLR0917 - a staged record's identity and state
    system: str,
    obj: str,
    record_id: str,
    state: str,
    reason: str | None,
    payload_hash: str,
    *,
    waiting: bool,
) -> Event:
    """``record.waiting`` for a CRM record that starts waiting (quarantined or held) or waits
    for another reason; ``record.released`` once it no longer waits (its new state)."""
    data = {
        "system": system,
        "object": obj,
        "record_id": record_id,
        "state": state,
        "reason": reason if waiting else None,
    }
    event_type = RECORD_WAITING if waiting else RECORD_RELEASED
    subject = f"record:{system}:{obj}:{record_id}"
    return Event(event_type, subject, subject, data, f"{payload_hash}:{state}:{reason or ''}")
