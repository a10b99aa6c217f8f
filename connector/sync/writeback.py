"""Write-back: what was billed and paid, shown in Salesforce where sales work.

- ``Billing_Subscription__c`` per subscription of a deal (external id ``Subscription_Id__c``):
  the deal, the account, its status, MRR and next invoice date.
- ``Billing_Invoice__c`` per invoice or credit note (external id ``Document_Number__c``): type,
  deal, account, dates, period, total, balance due, status and currency.
- On the Account: ``MRR__c`` and ``Billing_Status__c``.
- On the Opportunity: ``Billing_Sync_Error__c``, the reason a deal waits in quarantine or is
  held for review, or why the accounting system refused one of its documents (cleared once
  the cause is gone).

Each record's fields are hashed; only records whose hash differs from what Salesforce last
accepted are sent, 200 to a call (sObject Collections, upserts by external id, so a retry after
any failure writes nothing twice). Nothing changed, no call. A record Salesforce refuses is kept
with its error and sent again when it changes; a retryable refusal is sent again next cycle.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connector.accounting import base
from connector.billing.metrics import to_money
from connector.billing.money import currency as currency_of
from connector.billing.payments import InvoiceStatus
from connector.billing.subscriptions import SubscriptionStatus
from connector.crm.client import MAX_COLLECTION, SalesforceClient
from connector.crm.policy import RETRY_CODES
from connector.db import outbox, staging, tables
from connector.db.catalog import PriceCache
from connector.db.engine import transaction
from connector.db.subscriptions import load_subscriptions
from connector.sync.settlement import due_of
from connector.sync.stopping import no_stop

SYSTEM = "salesforce"
SUBSCRIPTION = ("Billing_Subscription__c", "Subscription_Id__c")
INVOICE = ("Billing_Invoice__c", "Document_Number__c")
STATUS = {
    SubscriptionStatus.PENDING: "Active",
    SubscriptionStatus.TRIALING: "Trial",
    SubscriptionStatus.ACTIVE: "Active",
    SubscriptionStatus.CANCELED: "Cancelled",
    SubscriptionStatus.ENDED: "Ended",
}


@dataclass
class WritebackResult:
    sent: dict[str, int] = field(default_factory=dict)
    unchanged: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # object/key -> error
    api_calls: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "sent": dict(self.sent),
            "unchanged": self.unchanged,
            "failed": dict(self.failed),
            "api_calls": self.api_calls,
        }


def _number(value: Decimal) -> float:
    return float(value)


def _links(session: Session, entity: str) -> dict[int, str]:
    return dict(
        session.execute(
            select(tables.ExternalId.entity_id, tables.ExternalId.external_id).where(
                tables.ExternalId.system == SYSTEM, tables.ExternalId.entity == entity
            )
        ).all()
    )


def _document_status(doc: tables.Document) -> str:
    if doc.kind == "credit_note":
        return "Applied"
    if doc.status == InvoiceStatus.VOID.value:
        return "Void"
    if doc.status == InvoiceStatus.PAID.value:
        return "Paid"
    return "Partially Paid" if doc.amount_paid or doc.amount_credited else "Open"


def records(session: Session, as_of: date) -> Iterator[tuple[str, str, str, dict[str, Any]]]:
    """Every record the CRM should show: (object, key field, key, fields)."""
    deals = _links(session, tables.Subscription.__tablename__)
    accounts = _links(session, tables.Customer.__tablename__)
    rows = session.scalars(
        select(tables.Subscription).where(tables.Subscription.id.in_(list(deals)))
    ).all()
    subscriptions = load_subscriptions(session, rows, PriceCache(), failures={})
    account_mrr: dict[int, Decimal] = defaultdict(Decimal)
    account_states: dict[int, set[str]] = defaultdict(set)
    for row in rows:
        domain = subscriptions.get(row.id)
        if domain is None:
            continue
        money = currency_of(row.currency)
        mrr = to_money(domain.monthly_recurring_revenue(as_of), money)
        status = STATUS[domain.terms.status_on(as_of)]
        account_mrr[row.customer_id] += mrr
        account_states[row.customer_id].add(status)
        yield (
            *SUBSCRIPTION,
            f"SUB-{row.id}",
            {
                "Opportunity__c": deals[row.id],
                "Account__c": accounts.get(row.customer_id),
                "Status__c": status,
                "MRR__c": _number(mrr),
                "Next_Invoice_Date__c": row.next_billing_date.isoformat()
                if row.next_billing_date
                else None,
                "CurrencyIsoCode": row.currency,
            },
        )
    overdue: set[int] = set()
    for doc in session.scalars(
        select(tables.Document)
        .where(tables.Document.subscription_id.in_(list(deals)))
        .order_by(tables.Document.id)
    ):
        due = due_of(doc) if doc.kind == "invoice" and doc.status != "void" else Decimal(0)
        if due and doc.due_date < as_of:
            overdue.add(doc.customer_id)
        yield (
            *INVOICE,
            doc.number,
            {
                "Type__c": "Invoice" if doc.kind == "invoice" else "Credit Note",
                "Opportunity__c": deals.get(doc.subscription_id or 0),
                "Account__c": accounts.get(doc.customer_id),
                "Document_Date__c": doc.issue_date.isoformat(),
                "Period_Start__c": doc.period_start.isoformat(),
                "Period_End__c": doc.period_end.isoformat(),
                "Total__c": _number(doc.total),
                "Balance_Due__c": _number(due),
                "Status__c": _document_status(doc),
                "Currency__c": doc.currency,
                "CurrencyIsoCode": doc.currency,
            },
        )
    for customer_id, account_id in accounts.items():
        states = account_states.get(customer_id, set())
        status = (
            "Past Due"
            if customer_id in overdue
            else "Active"
            if "Active" in states
            else "Trial"
            if "Trial" in states
            else "Cancelled"
            if states
            else "Not Billed"
        )
        yield (
            "Account",
            "Id",
            account_id,
            {
                "MRR__c": _number(account_mrr.get(customer_id, Decimal(0))),
                "Billing_Status__c": status,
            },
        )
    waiting: dict[str, str | None] = dict(
        session.execute(  # ids and reasons only: payloads stay on disk
            select(tables.CrmRecord.record_id, tables.CrmRecord.reason).where(
                tables.CrmRecord.system == SYSTEM,
                tables.CrmRecord.object == "Opportunity",
                tables.CrmRecord.state.in_([staging.QUARANTINED, staging.HELD]),
            )
        ).all()
    )
    applied = set(
        session.scalars(
            select(tables.CrmRecord.record_id).where(
                tables.CrmRecord.system == SYSTEM,
                tables.CrmRecord.object == "Opportunity",
                tables.CrmRecord.state == staging.APPLIED,
            )
        )
    )
    refused = _refused_in_accounting(session, deals)
    for deal_id in sorted(waiting.keys() | applied | set(deals.values())):
        reason = waiting.get(deal_id) or refused.get(deal_id)
        yield (
            "Opportunity",
            "Id",
            deal_id,
            {"Billing_Sync_Error__c": reason[:1000] if reason else None},
        )


def _refused_in_accounting(session: Session, deals: dict[int, str]) -> dict[str, str]:
    """Per deal, the first of its documents an accounting target parked, with the target's
    message: invoices, credit notes and voids, their payments and their revenue journals."""
    document = tables.Document
    found: dict[str, str] = {}
    for kind in (
        base.INVOICE,
        base.CREDIT_NOTE,
        base.VOID,
        base.PAYMENT,
        base.REFUND,
        base.REVENUE,
    ):
        query = (
            select(tables.Delivery.target, document.number, document.subscription_id)
            .add_columns(tables.Delivery.error)
            .join(tables.Outbox, tables.Outbox.id == tables.Delivery.outbox_id)
            .where(tables.Outbox.document_type == kind, tables.Delivery.state == outbox.PARKED)
            .order_by(tables.Delivery.outbox_id)
        )
        if kind in (base.PAYMENT, base.REFUND):
            query = query.join(tables.Payment, tables.Payment.id == tables.Outbox.document_id)
            query = query.join(document, document.id == tables.Payment.invoice_id)
        elif kind == base.REVENUE:
            journal = tables.RevenueJournal
            query = query.join(journal, journal.id == tables.Outbox.document_id)
            query = query.join(document, document.id == journal.document_id)
        else:
            query = query.join(document, document.id == tables.Outbox.document_id)
        for target, number, subscription_id, error in session.execute(query):
            deal_id = deals.get(subscription_id)
            if deal_id and deal_id not in found:
                found[deal_id] = f"{target} refused {number}: {error}"
    return found


def _changed(
    session: Session, as_of: date, result: WritebackResult
) -> dict[tuple[str, str], list[tuple[str, dict[str, Any], str]]]:
    state = {(row.object, row.key): row for row in session.scalars(select(tables.WritebackState))}
    pending: dict[tuple[str, str], list[tuple[str, dict[str, Any], str]]] = defaultdict(list)
    for obj, key_field, key, fields in records(session, as_of):
        digest = staging.payload_hash(fields)
        known = state.get((obj, key))
        if known is not None and digest in (known.sent_hash, known.error_hash):
            result.unchanged += 1
            continue
        if known is None and obj == "Opportunity" and fields["Billing_Sync_Error__c"] is None:
            result.unchanged += 1  # nothing to clear on a deal never marked
            continue
        pending[(obj, key_field)].append((key, fields, digest))
    return pending


def write_back(
    factory: sessionmaker[Session],
    client: SalesforceClient,
    as_of: date,
    checkpoint: Callable[[], None] = no_stop,
) -> WritebackResult:
    """Send what changed since Salesforce last accepted it; ``checkpoint`` is called between
    calls (it raises to stop there)."""
    result = WritebackResult()
    calls_before = client.calls
    with transaction(factory) as session:
        pending = _changed(session, as_of, result)
    for (obj, key_field), items in pending.items():
        for start in range(0, len(items), MAX_COLLECTION):
            checkpoint()
            chunk = items[start : start + MAX_COLLECTION]
            if key_field == "Id":
                answers = client.update_records(
                    obj, [{"Id": key, **fields} for key, fields, _ in chunk]
                )
            else:
                answers = client.upsert_records(
                    obj, key_field, [{key_field: key, **fields} for key, fields, _ in chunk]
                )
            with transaction(factory) as session:
                for (key, _, digest), answer in zip(chunk, answers, strict=True):
                    _record(session, obj, key, digest, answer, result)
    result.api_calls = client.calls - calls_before
    return result


def _record(  # noqa: PLR0917 - one answer and where it goes
    session: Session,
    obj: str,
    key: str,
    digest: str,
    answer: dict[str, Any],
    result: WritebackResult,
) -> None:
    row = session.get(tables.WritebackState, (obj, key))
    if row is None:
        row = tables.WritebackState(object=obj, key=key)
        session.add(row)
    if answer.get("success"):
        row.sent_hash, row.error, row.error_hash = digest, None, None
        result.sent[obj] = result.sent.get(obj, 0) + 1
        return
    errors = answer.get("errors") or [{}]
    code = str(errors[0].get("statusCode", ""))
    message = f"{code}: {errors[0].get('message', '')}"
    result.failed[f"{obj} {key}"] = message
    row.error = message
    # A refusal that may pass later is tried again next cycle; others wait for a change.
    row.error_hash = None if code in RETRY_CODES else digest
