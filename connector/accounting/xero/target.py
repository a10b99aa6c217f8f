"""Xero as an accounting target, behind the same interface and outbox as the ledger.

A batch of outbox documents becomes a few calls of up to 50 elements each, every one with
``summarizeErrors=false`` (one bad element does not sink the rest) and an ``Idempotency-Key``
derived from the ids and versions of the documents in it. Order within a batch follows the
documents' dependencies: contacts, invoices, credit notes (then their allocations), payments
and refunds, voids, manual journals.

Exactly once:
- a document an earlier attempt may have delivered (``retried``: its answer was lost to a
  timeout or a crash) is looked up in Xero first, by Reference (invoices, credit notes,
  payments), ContactNumber (contacts) or Narration (manual journals, whose narration is noted in
  the database before they are sent), and only sent when it is not there;
- an invoice or credit note Xero refuses as a duplicate number is looked up too, and counts as
  delivered when found.

An element Xero refuses with ValidationErrors parks that one document with Xero's message; a
document whose invoice or credit note has not reached Xero waits (retriable) with that reason.
When Xero's daily limit is spent, or it cannot be reached, what is left of the batch waits for
the next push.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import requests
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connector.accounting import base
from connector.accounting.base import (
    Customer,
    Document,
    ExternalPayment,
    Invoice,
    Payment,
    PostResult,
    RevenueJournal,
)
from connector.accounting.chart import XeroChart
from connector.accounting.xero import payloads
from connector.accounting.xero.auth import XeroAuth
from connector.accounting.xero.client import Answer, XeroClient, error_text, validation_errors
from connector.accounting.xero.limits import CallLimiter
from connector.db import outbox, tables
from connector.db.engine import transaction
from connector.errors import AccountingError
from connector.settings import Settings

log = logging.getLogger(__name__)

BATCH = 50
SENDING = "sending"
DONE = "done"
REFUSED = "refused"
NAME_TAKEN = "already assigned to another contact"
DUPLICATE_NUMBER = "must be unique"


@dataclass(frozen=True)
class _Kind:
    """One kind of Xero document created in batches."""

    endpoint: str  # also the plural key of the body
    id_field: str
    number_field: str


INVOICES = _Kind("Invoices", "InvoiceID", "InvoiceNumber")
CREDIT_NOTES = _Kind("CreditNotes", "CreditNoteID", "CreditNoteNumber")
PAYMENTS = _Kind("Payments", "PaymentID", "Reference")


def make_http(ca_file: str) -> requests.Session:
    """A session that verifies TLS against ``ca_file`` (or the system's store)."""
    http = requests.Session()
    http.trust_env = False
    http.verify = ca_file or True
    return http


def xero_auth(settings: Settings, factory: sessionmaker[Session]) -> XeroAuth:
    """Sign-in alone (``connector xero connect``)."""
    return XeroAuth(settings.xero, factory, make_http(settings.xero.ca_file))


def chunks(items: Sequence[Any], size: int = BATCH) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def where_any(field: str, values: Iterable[str]) -> str:
    """``Field=="a" OR Field=="b"``: Xero's filter for any of these values."""
    return " OR ".join(f"{field}=={json.dumps(value)}" for value in values)


class XeroTarget:
    name = "xero"
    max_batch = 500

    def __init__(
        self,
        settings: Settings,
        factory: sessionmaker[Session],
        chart: XeroChart,
        *,
        limiter: CallLimiter | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.settings = settings.xero
        self.factory = factory
        self.chart = chart
        self.auth = xero_auth(settings, factory)
        http = self.auth.http
        extra = {"sleep": sleep} if sleep else {}
        self.client = XeroClient(self.settings, self.auth, http, limiter, **extra)
        self._base_currency: str | None = None
        self._delivered: dict[tuple[str, str], str] = {}  # (type, number) -> Xero id
        self._found: dict[str, dict[str, Any]] = {}  # reference -> element found by a lookup

    @property
    def calls(self) -> int:
        """Calls made to Xero's API (the token endpoint is not counted, as Xero does not)."""
        return self.client.total_calls

    # -- contacts --------------------------------------------------------------------------
    def upsert_customers(self, customers: Sequence[Customer]) -> list[PostResult]:
        ids = self._contacts(customers)
        return [
            PostResult(f"customer:{c.id}", True, external_id=ids[c.id])
            if c.id in ids and not ids[c.id].startswith("!")
            else PostResult(
                f"customer:{c.id}", False, error=ids.get(c.id, "!not sent")[1:], retriable=False
            )
            for c in customers
        ]

    def _contacts(self, customers: Iterable[Customer]) -> dict[int, str]:
        """ContactID per customer, or ``!why`` for a contact Xero refused."""
        wanted = {customer.id: customer for customer in customers}
        prefix = self.settings.contact_number_prefix
        hashes = {
            cid: _hash(payloads.contact(customer, prefix)) for cid, customer in wanted.items()
        }
        with transaction(self.factory) as session:
            rows = {
                row.customer_id: (row.external_id, row.sent_hash, row.state, row.error)
                for row in session.scalars(
                    select(tables.AccountingContact).where(
                        tables.AccountingContact.target == self.name,
                        tables.AccountingContact.customer_id.in_(wanted),
                    )
                )
            }
        known: dict[int, str] = {}
        uncertain, create, update = [], [], []
        for cid, customer in wanted.items():
            external_id, sent_hash, state, _ = rows.get(cid, (None, None, None, None))
            if external_id and sent_hash == hashes[cid]:
                known[cid] = external_id
            elif external_id:
                update.append((customer, external_id))
            elif state == SENDING:
                uncertain.append(customer)
            else:
                create.append(customer)
        if uncertain:
            found = self._find_contacts(uncertain)
            for customer in uncertain:
                if customer.id in found:
                    update.append((customer, found[customer.id]))
                else:
                    create.append(customer)
        if create:
            self._store_contacts({c.id: (None, None, SENDING, None) for c in create})
            for part in chunks(create):
                known.update(self._send_contacts("PUT", [(c, None) for c in part], hashes))
        for part in chunks(update):
            known.update(self._send_contacts("POST", list(part), hashes))
        return known

    def _find_contacts(self, customers: Sequence[Customer]) -> dict[int, str]:
        prefix = self.settings.contact_number_prefix
        by_number = {payloads.contact_number(c.id, prefix): c.id for c in customers}
        found: dict[int, str] = {}
        for part in chunks(list(by_number)):
            body = self.client.get("Contacts", {"where": where_any("ContactNumber", part)})
            for element in body.get("Contacts") or []:
                cid = by_number.get(str(element.get("ContactNumber")))
                if cid is not None and element.get("ContactStatus", "ACTIVE") != "ARCHIVED":
                    found[cid] = str(element["ContactID"])
        return found

    def _send_contacts(
        self, method: str, pairs: list[tuple[Customer, str | None]], hashes: dict[int, str]
    ) -> dict[int, str]:
        prefix = self.settings.contact_number_prefix
        outcome: dict[int, str] = {}
        renamed: list[tuple[Customer, str | None]] = []
        for attempt in ("as named", "renamed"):
            batch = pairs if attempt == "as named" else renamed
            if not batch:
                break
            bodies = []
            for customer, contact_id in batch:
                name = None
                if attempt == "renamed":
                    name = f"{customer.name} ({payloads.contact_number(customer.id, prefix)})"
                body = payloads.contact(customer, prefix, name)
                if contact_id:
                    body["ContactID"] = contact_id
                bodies.append(body)
            keys = [f"customer:{c.id}:{hashes[c.id][:12]}" for c, _ in batch]
            answer = self.client.write(
                method, "Contacts", {"Contacts": bodies}, payloads.batch_key(attempt, keys)
            )
            elements = _elements(answer, "Contacts", len(batch))
            states: dict[int, tuple[str | None, str | None, str, str | None]] = {}
            for (customer, contact_id), element in zip(batch, elements, strict=True):
                errors = validation_errors(element)
                if not errors and element.get("ContactID"):
                    outcome[customer.id] = str(element["ContactID"])
                    states[customer.id] = (outcome[customer.id], hashes[customer.id], DONE, None)
                elif attempt == "as named" and any(NAME_TAKEN in e for e in errors):
                    renamed.append((customer, contact_id))
                else:
                    why = "; ".join(errors) or error_text(element)
                    outcome[customer.id] = "!" + f"contact {customer.name!r}: {why}"
                    states[customer.id] = (contact_id, None, REFUSED, why)
            self._store_contacts(states)
        return outcome

    def _store_contacts(
        self, states: dict[int, tuple[str | None, str | None, str, str | None]]
    ) -> None:
        if not states:
            return
        with transaction(self.factory) as session:
            for cid, (external_id, sent_hash, state, error) in states.items():
                row = session.get(tables.AccountingContact, (self.name, cid))
                if row is None:
                    row = tables.AccountingContact(target=self.name, customer_id=cid)
                    session.add(row)
                row.external_id = external_id or row.external_id
                row.sent_hash, row.state, row.error = sent_hash, state, error

    # -- documents -------------------------------------------------------------------------
    def post(
        self, documents: Sequence[Document], retried: frozenset[str] = frozenset()
    ) -> list[PostResult]:
        results: dict[str, PostResult] = {}
        try:
            customers = {
                doc.customer.id: doc.customer
                for doc in documents
                if not isinstance(doc, RevenueJournal)
            }
            contacts = self._contacts(customers.values()) if customers else {}
            by_type: dict[str, list[Any]] = {}
            for doc in documents:
                if isinstance(doc, RevenueJournal):
                    by_type.setdefault(base.REVENUE, []).append(doc)
                    continue
                contact = contacts.get(doc.customer.id, "!no contact")
                if contact.startswith("!"):
                    results[doc.key] = PostResult(doc.key, False, error=contact[1:])
                else:
                    by_type.setdefault(doc.document_type, []).append(doc)
            invoices = by_type.get(base.INVOICE, [])
            self._create(INVOICES, invoices, retried, results, contacts)
            credit_notes = by_type.get(base.CREDIT_NOTE, [])
            self._create(CREDIT_NOTES, credit_notes, retried, results, contacts)
            self._allocate(credit_notes, retried, results)
            payments = by_type.get(base.PAYMENT, []) + by_type.get(base.REFUND, [])
            self._create(PAYMENTS, payments, retried, results, contacts)
            self._void(by_type.get(base.VOID, []), retried, results)
            self._journals(by_type.get(base.REVENUE, []), retried, results)
        except AccountingError as error:
            log.warning("xero push stopped: %s", error)
            for doc in documents:
                results.setdefault(
                    doc.key, PostResult(doc.key, False, error=str(error), retriable=True)
                )
        return [results[doc.key] for doc in documents]

    def _body(self, kind: _Kind, doc: Document, contacts: dict[int, str]) -> dict[str, Any]:
        if kind is PAYMENTS:
            assert isinstance(doc, Payment)
            return payloads.payment(doc, self._applied_to(doc), self.chart)
        assert isinstance(doc, Invoice)
        build = payloads.invoice if kind is INVOICES else payloads.credit_note
        return build(doc, contacts[doc.customer.id], self.chart)

    def _applied_to(self, doc: Payment) -> dict[str, str]:
        if doc.document_type == base.REFUND:
            if not doc.credit_note_number:
                raise payloads.UnmappableError(
                    "a refund of an overpayment: Xero refunds come out of a credit note"
                )
            return {"CreditNoteID": self._xero_id(base.CREDIT_NOTE, doc.credit_note_number)}
        if not doc.invoice_number:
            raise payloads.UnmappableError("a payment applied to no invoice")
        return {"InvoiceID": self._xero_id(base.INVOICE, doc.invoice_number)}

    def _xero_id(self, kind: str, number: str) -> str:
        found = self._delivered.get((kind, number))
        if found:
            return found
        with transaction(self.factory) as session:
            document_id = session.scalar(
                select(tables.Document.id).where(
                    tables.Document.number == number, tables.Document.kind == kind
                )
            )
            ids = outbox.external_ids(session, self.name, kind, [document_id or 0], outbox.DONE)
        if document_id is None or document_id not in ids:
            raise _WaitingError(f"waiting for {number} to reach Xero")
        return ids[document_id]

    def _create(
        self,
        kind: _Kind,
        docs: Sequence[Invoice | Payment],
        retried: frozenset[str],
        results: dict[str, PostResult],
        contacts: dict[int, str],
    ) -> None:
        if not docs:
            return
        reference = _reference_of(kind)
        found = self._lookup(kind, [doc for doc in docs if doc.key in retried])
        to_send: list[tuple[Invoice | Payment, dict[str, Any]]] = []
        for doc in docs:
            if reference(doc) in found:
                self._done(results, doc, found[reference(doc)], kind)
                continue
            try:
                to_send.append((doc, self._body(kind, doc, contacts)))
            except _WaitingError as waiting:
                results[doc.key] = PostResult(doc.key, False, error=str(waiting), retriable=True)
            except payloads.UnmappableError as error:
                results[doc.key] = PostResult(doc.key, False, error=str(error))
        for part in chunks(to_send):
            keys = [doc.key for doc, _ in part]
            answer = self.client.write(
                "PUT",
                kind.endpoint,
                {kind.endpoint: [body for _, body in part]},
                payloads.batch_key(kind.endpoint, keys),
            )
            elements = _elements(answer, kind.endpoint, len(part))
            duplicates = []
            for (doc, _), element in zip(part, elements, strict=True):
                errors = validation_errors(element)
                if not errors and element.get(kind.id_field):
                    self._done(results, doc, str(element[kind.id_field]), kind)
                elif any(DUPLICATE_NUMBER in error for error in errors) and kind is not PAYMENTS:
                    duplicates.append(doc)  # sent before, its delivery forgotten: find it
                    results[doc.key] = PostResult(doc.key, False, error="; ".join(errors))
                else:
                    why = "; ".join(errors) or error_text(element)
                    results[doc.key] = PostResult(doc.key, False, error=f"Xero: {why}")
            for doc in duplicates:
                if reference(doc) in (again := self._lookup(kind, [doc])):
                    self._done(results, doc, again[reference(doc)], kind)

    def _done(
        self, results: dict[str, PostResult], doc: Invoice | Payment, xero_id: str, kind: _Kind
    ) -> None:
        results[doc.key] = PostResult(doc.key, True, external_id=xero_id)
        if isinstance(doc, Invoice):
            doc_type = base.INVOICE if kind is INVOICES else base.CREDIT_NOTE
            self._delivered[(doc_type, doc.number)] = xero_id

    def _lookup(self, kind: _Kind, docs: Sequence[Invoice | Payment]) -> dict[str, str]:
        """Reference -> Xero id of those of ``docs`` already in Xero."""
        reference = _reference_of(kind)
        found: dict[str, str] = {}
        for part in chunks([reference(doc) for doc in docs]):
            body = self.client.get(kind.endpoint, {"where": where_any("Reference", part)})
            for element in body.get(kind.endpoint) or []:
                ref = str(element.get("Reference"))
                if ref in part and element.get("Status") != "DELETED":
                    found[ref] = str(element[kind.id_field])
                    self._found[ref] = element
        return found

    def _allocate(
        self,
        credit_notes: Sequence[Invoice],
        retried: frozenset[str],
        results: dict[str, PostResult],
    ) -> None:
        """Apply each new credit note to its invoice, as much as the billing core applied."""
        for doc in credit_notes:
            result = results.get(doc.key)
            if result is None or not result.ok or doc.applied <= 0 or not doc.invoice_number:
                continue
            found = self._found.get(doc.number) if doc.key in retried else None
            if found is not None and _decimal(found.get("RemainingCredit")) < doc.total:
                continue  # allocated by the attempt whose answer was lost
            try:
                invoice_id = self._xero_id(base.INVOICE, doc.invoice_number)
            except _WaitingError as waiting:
                results[doc.key] = PostResult(doc.key, False, error=str(waiting), retriable=True)
                continue
            answer = self.client.write(
                "PUT",
                f"CreditNotes/{result.external_id}/Allocations",
                payloads.allocation(doc, invoice_id),
                f"allocation:{doc.key}",
            )
            errors = [m for e in _elements(answer, "Allocations", 1) for m in validation_errors(e)]
            if errors or answer.status != 200:
                why = "; ".join(errors) or error_text(answer.body)
                results[doc.key] = PostResult(
                    doc.key,
                    False,
                    error=f"Xero holds {doc.number} but refused to apply it to "
                    f"{doc.invoice_number}: {why}",
                )

    def _void(
        self, voids: Sequence[Invoice], retried: frozenset[str], results: dict[str, PostResult]
    ) -> None:
        """Voiding is naturally idempotent: a voided invoice voided again stays as it is."""
        ready: list[tuple[Invoice, str]] = []
        for doc in voids:
            try:
                ready.append((doc, self._xero_id(base.INVOICE, doc.number)))
            except _WaitingError as waiting:
                results[doc.key] = PostResult(doc.key, False, error=str(waiting), retriable=True)
        for part in chunks(ready):
            keys = [doc.key for doc, _ in part]
            answer = self.client.write(
                "POST",
                "Invoices",
                {"Invoices": [payloads.void(xero_id) for _, xero_id in part]},
                payloads.batch_key("void", keys),
            )
            elements = _elements(answer, "Invoices", len(part))
            for (doc, xero_id), element in zip(part, elements, strict=True):
                errors = validation_errors(element)
                results[doc.key] = (
                    PostResult(doc.key, False, error="Xero: " + "; ".join(errors))
                    if errors
                    else PostResult(doc.key, True, external_id=xero_id)
                )
        voided = [doc for doc, _ in ready if results[doc.key].ok]
        self._reverse_revenue(voided, retried, results)

    def _reverse_revenue(
        self, voided: Sequence[Invoice], retried: frozenset[str], results: dict[str, PostResult]
    ) -> None:
        """A void takes back the revenue already journaled for its invoice: one manual journal
        per void, named after the invoice (voided once), looked up after a lost answer."""
        bodies: list[tuple[Invoice, dict[str, Any]]] = []
        for doc in voided:
            narration = f"Revenue reversed for void of {doc.number}"
            body = payloads.manual_journal([_void_revenue(doc)], self.chart, narration)
            if body is None or (doc.key in retried and self._find_journal(narration)):
                continue
            if doc.currency != self.base_currency():
                results[doc.key] = self._foreign(doc.key, doc.currency)
                continue
            bodies.append((doc, body))
        for part in chunks(bodies):
            answer = self.client.write(
                "PUT",
                "ManualJournals",
                {"ManualJournals": [body for _, body in part]},
                payloads.batch_key("reversal", [doc.key for doc, _ in part]),
            )
            for (doc, _), element in zip(
                part, _elements(answer, "ManualJournals", len(part)), strict=True
            ):
                if errors := validation_errors(element):
                    results[doc.key] = PostResult(
                        doc.key,
                        False,
                        error=f"{doc.number} is void in Xero, but reversing its revenue was "
                        "refused: " + "; ".join(errors),
                    )

    # -- revenue ---------------------------------------------------------------------------
    def base_currency(self) -> str:
        if self._base_currency is None:
            body = self.client.get("Organisation")
            self._base_currency = str(body["Organisations"][0]["BaseCurrency"])
        return self._base_currency

    def _foreign(self, key: str, currency: str) -> PostResult:
        return PostResult(
            key,
            False,
            error=f"Xero manual journals are in the organisation's base currency "
            f"({self.base_currency()}); revenue in {currency} cannot be journaled there",
        )

    def _journals(
        self,
        journals: Sequence[RevenueJournal],
        retried: frozenset[str],
        results: dict[str, PostResult],
    ) -> None:
        """Revenue journals of a month and currency in this batch as one manual journal. Its
        narration is noted on each member's delivery before it is sent, and looked up after a
        lost answer."""
        if not journals:
            return
        if retried:
            with transaction(self.factory) as session:
                noted = outbox.external_ids(
                    session,
                    self.name,
                    base.REVENUE,
                    [j.document_id for j in journals if j.key in retried],
                    outbox.PENDING,
                )
            for narration in set(noted.values()):
                journal_id = self._find_journal(narration)
                for journal in journals:
                    if journal_id and noted.get(journal.document_id) == narration:
                        results[journal.key] = PostResult(journal.key, True, external_id=journal_id)
        fresh: dict[tuple[str, str], list[RevenueJournal]] = {}
        for journal in journals:
            if journal.key in results:
                continue
            if journal.currency != self.base_currency():
                results[journal.key] = self._foreign(journal.key, journal.currency)
                continue
            fresh.setdefault((payloads.journal_month(journal), journal.currency), []).append(
                journal
            )
        groups = []
        for (month, currency), members in sorted(fresh.items()):
            narration = payloads.narration(month, currency, [j.key for j in members])
            body = payloads.manual_journal(members, self.chart, narration)
            if body is None:  # their amounts cancel out: nothing to move
                for journal in members:
                    results[journal.key] = PostResult(journal.key, True)
                continue
            groups.append((narration, members, body))
        if not groups:
            return
        with transaction(self.factory) as session:
            outbox.note_sent_as(
                session,
                self.name,
                base.REVENUE,
                {j.document_id: narration for narration, members, _ in groups for j in members},
            )
        for part in chunks(groups):
            answer = self.client.write(
                "PUT",
                "ManualJournals",
                {"ManualJournals": [body for _, _, body in part]},
                payloads.batch_key("journal", [narration for narration, _, _ in part]),
            )
            elements = _elements(answer, "ManualJournals", len(part))
            for (_, members, _), element in zip(part, elements, strict=True):
                errors = validation_errors(element)
                for journal in members:
                    results[journal.key] = (
                        PostResult(journal.key, False, error="Xero: " + "; ".join(errors))
                        if errors
                        else PostResult(
                            journal.key, True, external_id=str(element["ManualJournalID"])
                        )
                    )

    def _find_journal(self, narration: str) -> str | None:
        body = self.client.get("ManualJournals", {"where": where_any("Narration", [narration])})
        for element in body.get("ManualJournals") or []:
            if element.get("Narration") == narration and element.get("Status") != "DELETED":
                return str(element["ManualJournalID"])
        return None

    # -- payments entered in Xero ----------------------------------------------------------
    def payments(self, since: str | None = None) -> tuple[list[ExternalPayment], str | None]:
        """Payments on invoices entered in Xero (by hand, bank feeds, batch payments), modified
        after the cursor ``since`` (UpdatedDateUTC, ISO), with the next cursor. Payments the
        connector posted itself carry its references and are left out."""
        found: list[ExternalPayment] = []
        cursor = since
        page = 1
        while True:
            body = self.client.get(
                "Payments",
                {"page": str(page), "order": "UpdatedDateUTC ASC"},
                modified_since=since or "",
            )
            elements = body.get("Payments") or []
            for element in elements:
                updated = payloads.parse_timestamp(str(element["UpdatedDateUTC"]))
                stamp = updated.strftime("%Y-%m-%dT%H:%M:%S")
                cursor = max(cursor or stamp, stamp)
                payment = _external_payment(element)
                if payment is not None:
                    found.append(payment)
            if len(elements) < 100:
                return found, cursor
            page += 1


class _WaitingError(Exception):
    """A document depends on one that has not reached Xero yet."""


def _elements(answer: Answer, plural: str, expected: int) -> list[dict[str, Any]]:
    """The per-element results of a batched write; a whole-request refusal (400) is repeated
    for each element, so that each document carries Xero's message."""
    elements = answer.body.get(plural) or answer.body.get("Elements")
    if answer.status == 200 and isinstance(elements, list) and len(elements) == expected:
        return elements
    if answer.status == 400 and isinstance(elements, list) and len(elements) == expected:
        return [
            element
            if validation_errors(element)
            else {**element, "ValidationErrors": [{"Message": error_text(answer.body)}]}
            for element in elements
        ]
    message = error_text(answer.body) if answer.status != 200 else "unexpected answer"
    return [{"ValidationErrors": [{"Message": f"HTTP {answer.status}: {message}"}]}] * expected


def _reference_of(kind: _Kind) -> Callable[[Any], str]:
    if kind is PAYMENTS:
        return payloads.payment_reference
    return lambda doc: str(doc.number)


def _hash(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def _decimal(value: Any) -> Decimal:
    return Decimal(str(value)) if value is not None else Decimal(0)


def _void_revenue(doc: Invoice) -> RevenueJournal:
    """The revenue a void takes back: what was recognized of its recurring lines."""
    return RevenueJournal(
        key=doc.key,
        document_id=doc.document_id,
        journal_date=doc.issue_date,
        period_start=doc.issue_date,
        period_end=doc.issue_date,
        customer=doc.customer,
        currency=doc.currency,
        source_number=doc.number,
        invoice_number=doc.number,
        amounts=tuple(
            base.RevenueAmount(line.product_code, line.product_family, -line.recognized)
            for line in doc.lines
            if line.recognized
        ),
    )


def _external_payment(element: dict[str, Any]) -> ExternalPayment | None:
    """A payment on one of our invoices that the connector did not post itself."""
    reference = str(element.get("Reference") or "")
    if element.get("PaymentType") != "ACCRECPAYMENT" or element.get("Status") != "AUTHORISED":
        return None
    if reference.startswith(("PAY-", "REFUND-")) and reference.split("-", 1)[1].isdigit():
        return None
    invoice = element.get("Invoice") or {}
    number = invoice.get("InvoiceNumber")
    if not number:
        return None
    return ExternalPayment(
        reference=f"xero:{element['PaymentID']}",
        invoice_number=str(number),
        amount=_decimal(element.get("Amount")),
        currency=str(invoice.get("CurrencyCode") or element.get("CurrencyCode") or ""),
        date=payloads.parse_date(str(element["Date"])),
        where=f"Xero payment {element['PaymentID']}",
    )
