"""The records the write-back shows in Salesforce, built for the entities the queue names.

- ``Billing_Subscription__c`` per subscription of a deal (external id ``Subscription_Id__c``):
  the deal, the account, its status, MRR and next invoice date.
- ``Billing_Invoice__c`` per invoice or credit note of such a subscription (external id
  ``Document_Number__c``, shown as its ``Name``): type, deal, account, dates, due date, period,
  tax, total, amount paid and the day it was paid in full, balance due, status and currency;
  the e-mail of the document to its customer (``Email_Status__c``: Not Sent, Sent, Refused or
  No Address, and ``Email_Error__c``: the mail server's answer, or why it waits).
- On the Account: ``MRR__c``, ``Billing_Status__c`` (``Past Due`` once an invoice of its deals
  is due and unpaid after its due date; the status a collections escalation set when stronger),
  ``Balance_Due__c``, ``Overdue_Amount__c`` and ``Next_Invoice_Date__c``.
- Collections: an invoice's dunning step and dispute, and a ``Task`` per step taken
  (:mod:`connector.sync.writeback_dunning`).
- ``Billing_Usage__c`` per metered item of such a subscription and period whose usage was
  billed (external id ``Usage_Key__c``): the deal, the account, the subscription's record (by
  its external id), the metric, the quantity
  measured and billable, the amount billed, the period, ``Billed`` with its invoice or
  ``Adjusted`` with the last adjustment (:mod:`connector.sync.writeback_usage`); under the same
  key, ``Accruing`` with the usage of the current period so far, before it is billed
  (:mod:`connector.sync.writeback_accruing`), removed if the period billed nothing.
- On the Opportunity: ``Billing_Sync_Status__c`` (``Synced``, ``Waiting`` for a review, or
  ``Error``) and ``Billing_Sync_Error__c``, the reason a deal waits in quarantine or is held
  for review, or why the accounting system refused one of its documents.

``SHAPE`` names what the records hold: when it changes (a field added or computed otherwise),
the write-back builds every record once more (see :mod:`connector.sync.writeback`).

Each entity is read with a handful of queries per two thousand, whatever their number. A
subscription's or an account's fields change with the date on known days (the start, the end
of a trial, the end of service, a new version of an item, the day after an invoice's due
date): each is built with the next such day, when the queue makes it due again.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Row, and_, func, select
from sqlalchemy.orm import Session

from connector.accounting import base
from connector.billing.dunning import stronger_status
from connector.billing.metrics import to_money
from connector.billing.money import currency as currency_of
from connector.billing.payments import InvoiceStatus, amount_due
from connector.billing.pricing import ChargeKind
from connector.billing.subscriptions import Subscription, SubscriptionStatus
from connector.db import outbox, staging, tables
from connector.db.catalog import PriceCache
from connector.db.subscriptions import load_subscriptions
from connector.db.writeback_queue import (
    ACCRUING,
    CUSTOMER,
    DEAL,
    DOCUMENT,
    SUBSCRIPTION,
    SYSTEM,
    TASK,
    USAGE,
    Queued,
)
from connector.sync.writeback_accruing import (
    AccruingOptions,
    accruing_usage,
    reminder,
    stale_usage,
)
from connector.sync.writeback_dunning import (
    TASK_RECORD,
    TaskOptions,
    escalated,
    invoice_fields,
    taken_tasks,
    task_records,
)
from connector.sync.writeback_usage import USAGE_RECORD, BilledUsage, billed_usage, every_usage

SUBSCRIPTION_RECORD = ("Billing_Subscription__c", "Subscription_Id__c")
INVOICE_RECORD = ("Billing_Invoice__c", "Document_Number__c")
STATUS = {
    SubscriptionStatus.PENDING: "Active",
    SubscriptionStatus.TRIALING: "Trial",
    SubscriptionStatus.ACTIVE: "Active",
    SubscriptionStatus.CANCELED: "Cancelled",
    SubscriptionStatus.ENDED: "Ended",
}
SHOWN_DEALS = (staging.QUARANTINED, staging.HELD, staging.APPLIED)
WAITING = (staging.QUARANTINED, staging.HELD)
CHUNK = 2000  # ids per query
# What the records hold; a new value makes the write-back build every record once more.
SHAPE = "5"
SYNCED, WAITING_FOR_REVIEW, IN_ERROR = "Synced", "Waiting", "Error"
ONE_DAY = timedelta(days=1)
EMAIL_STATUS = {"pending": "Not Sent", "sent": "Sent", "parked": "Refused", "waiting": "No Address"}


@dataclass(frozen=True)
class Record:
    obj: str
    key_field: str
    key: str
    fields: dict[str, Any]
    remove: bool = False  # the record must go (its fields are empty)


@dataclass(frozen=True)
class Built:
    """One queued entity: its record (None when Salesforce shows nothing for it) and the
    next day its fields change with the date (None: only a change does)."""

    entity: str
    key: str
    record: Record | None
    again: date | None = None


@dataclass(frozen=True)
class _Shown:
    """A subscription as Salesforce shows it, and the days that can change it."""

    row: Row[Any]
    deal: str
    mrr: Decimal
    status: str
    turns: frozenset[date]


def _number(value: Decimal) -> float:
    return float(value)


def _chunks(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]


def _is_id(key: str) -> bool:
    return key.isdigit() and str(int(key)) == key


def _ids(keys: Iterable[str]) -> list[int]:
    return sorted(int(key) for key in keys if _is_id(key))


def _after(day: date) -> date | None:
    try:
        return day + ONE_DAY
    except OverflowError:
        return None


def _turns(subscription: Subscription) -> frozenset[date]:
    """The days its status or MRR may change: the start, the end of the trial, the day after
    service ends, and each version of a recurring item."""
    terms = subscription.terms
    days = {terms.start_date, terms.billing_start}
    if terms.service_end is not None and (after := _after(terms.service_end)) is not None:
        days.add(after)
    for item in subscription.items:
        if item.kind is ChargeKind.RECURRING:
            days.update(version.effective_date for version in item.versions)
    return frozenset(days)


def _document_status(doc: Any) -> str:
    if doc.kind == "credit_note":
        return "Applied"
    if doc.status == InvoiceStatus.VOID.value:
        return "Void"
    if doc.status == InvoiceStatus.PAID.value:
        return "Paid"
    return "Partially Paid" if doc.amount_paid or doc.amount_credited else "Open"


def _due(doc: Any) -> Decimal:
    if doc.kind != "invoice" or doc.status == InvoiceStatus.VOID.value:
        return Decimal(0)
    return amount_due(doc.total, doc.amount_paid, doc.amount_credited)


def _linked_subscription() -> Any:
    link = tables.ExternalId
    return and_(
        link.entity_id == tables.Subscription.id,
        link.entity == tables.Subscription.__tablename__,
        link.system == SYSTEM,
    )


class Builder:
    """Builds the records of queued entities as of a date, each read once however many
    records need it (a subscription shows on its own record and on its account's)."""

    def __init__(
        self,
        session: Session,
        as_of: date,
        tasks: TaskOptions | None = None,
        accruing: AccruingOptions | None = None,
    ) -> None:
        self.session = session
        self.as_of = as_of
        self.tasks = tasks or TaskOptions()
        self.accruing = accruing
        self.cache = PriceCache()
        self.shown: dict[int, _Shown | None] = {}  # subscription id -> how it shows
        self.accounts: dict[int, str | None] = {}  # customer id -> Account id
        self.deals: dict[int, str | None] = {}  # subscription id -> Opportunity id
        self.documents: dict[int, Row[Any] | None] = {}
        self.paid_on: dict[int, date] = {}  # invoice id -> day it was settled in full
        self.emails: dict[int, tuple[str, str | None]] = {}  # document id -> (state, answer)

    def _next(self, days: Iterable[date]) -> date | None:
        return min((day for day in days if day > self.as_of), default=None)

    # -- reading ---------------------------------------------------------------------------
    def _show(self, rows: Sequence[Row[Any]]) -> None:
        fresh = [row for row in rows if self.shown.get(row.id) is None]
        for part in _chunks(fresh):  # loaded CHUNK at a time, however many an account has
            loaded = load_subscriptions(self.session, part, self.cache, failures={})
            for row in part:
                domain = loaded.get(row.id)
                if domain is None:  # breaks a rule of the core: shown nowhere until fixed
                    self.shown[row.id] = None
                    continue
                mrr = domain.monthly_recurring_revenue(self.as_of)
                money = to_money(mrr, currency_of(row.currency))
                status = STATUS[domain.terms.status_on(self.as_of)]
                self.shown[row.id] = _Shown(row, row.deal, money, status, _turns(domain))
                self.deals[row.id] = row.deal

    def _subscriptions(self, where: Any) -> list[Row[Any]]:
        """Subscriptions of deals (with their deal) that match ``where``."""
        subscription = tables.table_of(tables.Subscription)
        return list(
            self.session.execute(
                select(subscription, tables.ExternalId.external_id.label("deal"))
                .join(tables.ExternalId, _linked_subscription())
                .where(where)
                .order_by(subscription.c.id)
            )
        )

    def read_subscriptions(self, ids: Sequence[int]) -> None:
        missing = [i for i in ids if i not in self.shown]
        for chunk in _chunks(missing):
            self._show(self._subscriptions(tables.Subscription.id.in_(chunk)))
            for subscription_id in chunk:
                self.shown.setdefault(subscription_id, None)

    def read_documents(self, ids: Sequence[int]) -> None:
        missing = [i for i in ids if i not in self.documents]
        table = tables.table_of(tables.Document)
        for chunk in _chunks(missing):
            for row in self.session.execute(select(table).where(table.c.id.in_(chunk))):
                self.documents[row.id] = row
            for document_id in chunk:
                self.documents.setdefault(document_id, None)

    def _paid_dates(self, docs: Sequence[Row[Any]]) -> None:
        """The day each paid invoice received its last allocation (payment or credit)."""
        paid = sorted(
            doc.id
            for doc in docs
            if doc.status == InvoiceStatus.PAID.value and doc.id not in self.paid_on
        )
        allocation = tables.Allocation
        for chunk in _chunks(paid):
            self.paid_on.update(
                (invoice_id, day)
                for invoice_id, day in self.session.execute(
                    select(allocation.invoice_id, func.max(allocation.allocated_on))
                    .where(allocation.invoice_id.in_(chunk))
                    .group_by(allocation.invoice_id)
                )
                if invoice_id is not None
            )

    def _emails(self, ids: Sequence[int]) -> None:
        """The state of each document's e-mail (its latest version's), with the answer."""
        message = tables.EmailMessage
        for chunk in _chunks([i for i in ids if i not in self.emails]):
            for document_id, state, answer in self.session.execute(
                select(message.document_id, message.state, message.answer)
                .where(message.document_id.in_(chunk), message.kind == "document")
                .order_by(message.document_id, message.document_version)
            ):
                self.emails[document_id] = (state, answer)

    def _links(self, entity: str, ids: Iterable[int], known: dict[int, str | None]) -> None:
        missing = sorted({i for i in ids if i not in known})
        link = tables.ExternalId
        for chunk in _chunks(missing):
            rows = self.session.execute(
                select(link.entity_id, link.external_id).where(
                    link.system == SYSTEM, link.entity == entity, link.entity_id.in_(chunk)
                )
            )
            known.update((entity_id, external_id) for entity_id, external_id in rows)
            for entity_id in chunk:
                known.setdefault(entity_id, None)

    def customers_touched(self, queued: Iterable[Queued]) -> set[int]:
        """The customers whose accounts show these subscriptions and documents (read here
        once for what is built next)."""
        by_entity = _by_entity(queued)
        self.read_subscriptions(_ids(by_entity[SUBSCRIPTION]))
        self.read_documents(_ids(by_entity[DOCUMENT]))
        return {s.row.customer_id for s in self.shown.values() if s is not None} | {
            d.customer_id for d in self.documents.values() if d is not None
        }

    # -- building --------------------------------------------------------------------------
    def build(self, queued: Iterable[Queued]) -> list[Built]:
        """The records of ``queued``: subscriptions, invoices, accounts, then opportunities."""
        by_entity = _by_entity(queued)
        return [
            *self.subscription_records(_ids(by_entity[SUBSCRIPTION]), by_entity[SUBSCRIPTION]),
            *self.invoice_records(_ids(by_entity[DOCUMENT]), by_entity[DOCUMENT]),
            *self.account_records(_ids(by_entity[CUSTOMER]), by_entity[CUSTOMER]),
            *self.opportunity_records(sorted(by_entity[DEAL])),
            *self.task_records(sorted(by_entity[TASK])),
            *self.usage_records(sorted(by_entity[USAGE])),
            *self.accruing_records(_ids(by_entity[ACCRUING])),
        ]

    def task_records(self, keys: list[str]) -> list[Built]:
        return [
            Built(TASK, key, Record(*TASK_RECORD, key, fields) if fields else None, again)
            for key, fields, again in task_records(self.session, keys, self.as_of, self.tasks)
        ]

    def subscription_records(self, ids: list[int], keys: Iterable[str] = ()) -> list[Built]:
        self.read_subscriptions(ids)
        self._links(
            tables.Customer.__tablename__,
            (s.row.customer_id for i in ids if (s := self.shown[i]) is not None),
            self.accounts,
        )
        built = _unreadable(SUBSCRIPTION, keys)
        for subscription_id in ids:
            shown = self.shown[subscription_id]
            if shown is None:
                built.append(Built(SUBSCRIPTION, str(subscription_id), None))
                continue
            row = shown.row
            fields = {
                "Opportunity__c": shown.deal,
                "Account__c": self.accounts.get(row.customer_id),
                "Status__c": shown.status,
                "MRR__c": _number(shown.mrr),
                "Next_Invoice_Date__c": row.next_billing_date.isoformat()
                if row.next_billing_date
                else None,
                "CurrencyIsoCode": row.currency,
            }
            record = Record(*SUBSCRIPTION_RECORD, f"SUB-{subscription_id}", fields)
            built.append(Built(SUBSCRIPTION, str(subscription_id), record, self._next(shown.turns)))
        return built

    def invoice_records(self, ids: list[int], keys: Iterable[str] = ()) -> list[Built]:
        self.read_documents(ids)
        docs = [doc for i in ids if (doc := self.documents[i]) is not None]
        self._links(
            tables.Subscription.__tablename__,
            (doc.subscription_id for doc in docs if doc.subscription_id is not None),
            self.deals,
        )
        self._links(tables.Customer.__tablename__, (doc.customer_id for doc in docs), self.accounts)
        self._paid_dates(docs)
        collections = invoice_fields(self.session, [doc.id for doc in docs])
        self._emails([doc.id for doc in docs])
        built = _unreadable(DOCUMENT, keys)
        for document_id in ids:
            doc = self.documents[document_id]
            deal = self.deals.get(doc.subscription_id) if doc and doc.subscription_id else None
            if doc is None or deal is None:
                built.append(Built(DOCUMENT, str(document_id), None))
                continue
            invoice = doc.kind == "invoice"
            paid_on = self.paid_on.get(doc.id)
            email, answer = self.emails.get(doc.id, (None, None))
            fields = {
                "Name": doc.number,
                "Type__c": "Invoice" if invoice else "Credit Note",
                "Opportunity__c": deal,
                "Account__c": self.accounts.get(doc.customer_id),
                "Document_Date__c": doc.issue_date.isoformat(),
                "Due_Date__c": doc.due_date.isoformat() if invoice else None,
                "Period_Start__c": doc.period_start.isoformat(),
                "Period_End__c": doc.period_end.isoformat(),
                "Tax__c": _number(doc.tax_total),
                "Total__c": _number(doc.total),
                "Amount_Paid__c": _number(doc.amount_paid) if invoice else None,
                "Paid_Date__c": paid_on.isoformat() if paid_on else None,
                "Balance_Due__c": _number(_due(doc)),
                "Status__c": _document_status(doc),
                "Currency__c": doc.currency,
                "CurrencyIsoCode": doc.currency,
                **collections[doc.id],
                "Email_Status__c": EMAIL_STATUS.get(email) if email else None,
                "Email_Error__c": answer[:1000] if answer and email != "sent" else None,
            }
            built.append(
                Built(DOCUMENT, str(document_id), Record(*INVOICE_RECORD, doc.number, fields))
            )
        return built

    def usage_records(self, keys: list[str]) -> list[Built]:
        """Billed usage; a key with no charge is usage shown accruing whose period fell due:
        checked again the next day until billed, its record removed if billed as nothing."""
        found = billed_usage(self.session, keys)
        self._links(
            tables.Subscription.__tablename__,
            (usage.subscription_id for usage in found.values()),
            self.deals,
        )
        self._links(
            tables.Customer.__tablename__,
            (usage.customer_id for usage in found.values()),
            self.accounts,
        )
        stale = stale_usage(self.session, [key for key in keys if key not in found])
        built = []
        for key in keys:
            usage, gone = found.get(key), stale.get(key)
            deal = self.deals.get(usage.subscription_id) if usage is not None else None
            if usage is not None and deal is not None:
                built.append(Built(USAGE, key, self._usage_record(usage, deal)))
            elif gone is not None and gone.billed:
                built.append(
                    Built(USAGE, key, Record(*USAGE_RECORD, gone.external_id, {}, remove=True))
                )
            elif gone is not None:  # not billed yet
                built.append(Built(USAGE, key, None, _after(self.as_of)))
            else:
                built.append(Built(USAGE, key, None))
        return built

    def accruing_records(self, ids: list[int]) -> list[Built]:
        """The usage accruing of these subscriptions' metered items, each built under its
        usage key, due again the day its usage falls due."""
        if self.accruing is None:
            return []
        built = []
        for chunk in _chunks(ids):
            rows = self._subscriptions(tables.Subscription.id.in_(chunk))
            loaded = load_subscriptions(self.session, rows, self.cache, failures={})
            found = accruing_usage(self.session, self.accruing, rows, loaded, self.as_of)
            deals = {row.id: row.deal for row in rows}
            self._links(
                tables.Customer.__tablename__, (u.customer_id for u in found), self.accounts
            )
            for usage in found:
                key, due = reminder(usage)
                record = self._usage_record(usage, deals[usage.subscription_id])
                built.append(Built(ACCRUING, key, record, due))
        return built

    def _usage_record(self, usage: BilledUsage, deal: str) -> Record:
        fields = {
            "Name": usage.name,
            "Opportunity__c": deal,
            "Account__c": self.accounts.get(usage.customer_id),
            "Subscription__r": {SUBSCRIPTION_RECORD[1]: f"SUB-{usage.subscription_id}"},
            "Metric__c": usage.metric,
            "Quantity__c": _number(usage.quantity),
            "Billable_Quantity__c": _number(usage.billable),
            "Amount__c": _number(usage.amount),
            "Currency__c": usage.currency,
            "CurrencyIsoCode": usage.currency,
            "Period_Start__c": usage.period.start.isoformat(),
            "Period_End__c": usage.period.end.isoformat(),
            "Status__c": usage.status,
            "Invoice_Number__c": usage.invoice,
            "Adjustment_Number__c": usage.adjustment,
        }
        return Record(*USAGE_RECORD, usage.external_id, fields)

    def _dues(self, customer_ids: Sequence[int]) -> dict[int, list[tuple[date, Decimal]]]:
        """Per customer, the due date and amount due of each invoice of its deals that still
        owes something."""
        document = tables.table_of(tables.Document)
        link = tables.ExternalId
        found: dict[int, list[tuple[date, Decimal]]] = defaultdict(list)
        rows = self.session.execute(
            select(
                document.c.customer_id,
                document.c.kind,
                document.c.status,
                document.c.due_date,
                document.c.total,
                document.c.amount_paid,
                document.c.amount_credited,
            )
            .join(
                link,
                and_(
                    link.entity_id == document.c.subscription_id,
                    link.entity == tables.Subscription.__tablename__,
                    link.system == SYSTEM,
                ),
            )
            .where(
                document.c.customer_id.in_(customer_ids),
                document.c.kind == "invoice",
                document.c.status != InvoiceStatus.VOID.value,
            )
        )
        for row in rows:
            if due := _due(row):
                found[row.customer_id].append((row.due_date, due))
        return found

    def account_records(self, ids: list[int], keys: Iterable[str] = ()) -> list[Built]:
        self._links(tables.Customer.__tablename__, ids, self.accounts)
        linked = [i for i in ids if self.accounts.get(i)]
        of_customer: dict[int, list[int]] = defaultdict(list)
        dues: dict[int, list[tuple[date, Decimal]]] = {}
        escalations: dict[int, str] = {}
        for chunk in _chunks(linked):
            rows = self._subscriptions(tables.Subscription.customer_id.in_(chunk))
            self._show(rows)
            for row in rows:
                of_customer[row.customer_id].append(row.id)
            dues.update(self._dues(chunk))
            escalations.update(escalated(self.session, chunk))
        built = _unreadable(CUSTOMER, keys)
        for customer_id in ids:
            account = self.accounts.get(customer_id)
            if account is None:
                built.append(Built(CUSTOMER, str(customer_id), None))
                continue
            shown = [s for i in of_customer[customer_id] if (s := self.shown[i]) is not None]
            states = {s.status for s in shown}
            owed = dues.get(customer_id, [])
            due_days = [day for day, _ in owed]
            overdue = [amount for day, amount in owed if day < self.as_of]
            upcoming = [
                s.row.next_billing_date
                for s in shown
                if s.status in ("Active", "Trial") and s.row.next_billing_date
            ]
            status = (
                "Past Due"
                if overdue
                else "Active"
                if "Active" in states
                else "Trial"
                if "Trial" in states
                else "Cancelled"
                if states
                else "Not Billed"
            )
            fields = {
                "MRR__c": _number(sum((s.mrr for s in shown), Decimal(0))),
                "Billing_Status__c": stronger_status(status, escalations.get(customer_id)),
                "Balance_Due__c": _number(sum((amount for _, amount in owed), Decimal(0))),
                "Overdue_Amount__c": _number(sum(overdue, Decimal(0))),
                "Next_Invoice_Date__c": min(upcoming).isoformat() if upcoming else None,
            }
            turns = {day for s in shown for day in s.turns}
            turns.update(after for day in due_days if (after := _after(day)) is not None)
            record = Record("Account", "Id", account, fields)
            built.append(Built(CUSTOMER, str(customer_id), record, self._next(turns)))
        return built

    def opportunity_records(self, deal_ids: list[str]) -> list[Built]:
        crm, link = tables.CrmRecord, tables.ExternalId
        states: dict[str, tuple[str | None, str | None]] = {}
        linked: dict[str, int] = {}
        for chunk in _chunks(deal_ids):
            for row in self.session.execute(
                select(crm.record_id, crm.state, crm.reason).where(  # payloads stay on disk
                    crm.system == SYSTEM, crm.object == "Opportunity", crm.record_id.in_(chunk)
                )
            ):
                states[row.record_id] = (row.state, row.reason)
            linked.update(
                (deal, subscription_id)
                for subscription_id, deal in self.session.execute(
                    select(link.entity_id, link.external_id).where(
                        link.system == SYSTEM,
                        link.entity == tables.Subscription.__tablename__,
                        link.external_id.in_(chunk),
                    )
                )
            )
        refused = refused_in_accounting(self.session, {s: d for d, s in linked.items()})
        built = []
        for deal in deal_ids:
            state, reason = states.get(deal, (None, None))
            if state not in SHOWN_DEALS and deal not in linked:
                built.append(Built(DEAL, deal, None))
                continue
            waiting = reason if state in WAITING else None
            why = waiting or refused.get(deal)
            status = WAITING_FOR_REVIEW if state == staging.HELD else IN_ERROR if why else SYNCED
            fields = {
                "Billing_Sync_Status__c": status,
                "Billing_Sync_Error__c": why[:1000] if why else None,
            }
            built.append(Built(DEAL, deal, Record("Opportunity", "Id", deal, fields)))
        return built


def _by_entity(queued: Iterable[Queued]) -> dict[str, list[str]]:
    by_entity: dict[str, list[str]] = defaultdict(list)
    for entity, key in queued:
        by_entity[entity].append(key)
    return by_entity


def _unreadable(entity: str, keys: Iterable[str]) -> list[Built]:
    """Queued keys that name no entity of ours (nothing to show, nothing to keep)."""
    return [Built(entity, key, None) for key in keys if not _is_id(key)]


def refused_in_accounting(session: Session, deals: dict[int, str]) -> dict[str, str]:
    """Per deal (by subscription id), the first of its documents an accounting target parked,
    with the target's message: invoices, credit notes and voids, their payments and their
    revenue journals."""
    document = tables.Document
    found: dict[str, str] = {}
    if not deals:
        return found
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


def every_record(session: Session) -> list[Queued]:
    """Every entity Salesforce shows: subscriptions and customers of deals and accounts,
    the documents and billed usage of those subscriptions, and every deal applied, waiting, or
    billed."""
    link = tables.ExternalId
    queued: list[Queued] = []
    for entity, table in (
        (SUBSCRIPTION, tables.Subscription.__tablename__),
        (CUSTOMER, tables.Customer.__tablename__),
    ):
        queued.extend(
            (entity, str(entity_id))
            for entity_id in session.scalars(
                select(link.entity_id).where(link.system == SYSTEM, link.entity == table)
            )
        )
    queued.extend(
        (DOCUMENT, str(document_id))
        for document_id in session.scalars(
            select(tables.Document.id).join(
                link,
                and_(
                    link.entity_id == tables.Document.subscription_id,
                    link.entity == tables.Subscription.__tablename__,
                    link.system == SYSTEM,
                ),
            )
        )
    )
    crm = tables.CrmRecord
    deals = set(
        session.scalars(
            select(crm.record_id).where(
                crm.system == SYSTEM, crm.object == "Opportunity", crm.state.in_(SHOWN_DEALS)
            )
        )
    )
    deals.update(
        session.scalars(
            select(link.external_id).where(
                link.system == SYSTEM, link.entity == tables.Subscription.__tablename__
            )
        )
    )
    queued.extend((DEAL, deal) for deal in sorted(deals))
    queued.extend((TASK, key) for key in taken_tasks(session))
    queued.extend((USAGE, key) for key in every_usage(session))
    return queued


def records(session: Session, as_of: date) -> Iterator[tuple[str, str, str, dict[str, Any]]]:
    """Every record the CRM should show as of ``as_of``: (object, key field, key, fields)."""
    for built in Builder(session, as_of).build(every_record(session)):
        if built.record is not None:
            record = built.record
            yield record.obj, record.key_field, record.key, record.fields
