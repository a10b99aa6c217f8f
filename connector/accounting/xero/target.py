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

Closed periods: documents come dated by the closing of the books; Xero's own lock dates
(``PeriodLockDate``, ``EndOfYearLockDate`` on ``GET /Organisation``, read once and again after
Xero refuses a date) are honoured on top, the later of the two applying: a document dated on or
before them is booked on the first open day. Both lock dates are honoured, whether or not the
connection's user is an adviser (whom the period lock date does not bind). An invoice dated in a
closed period is not voided (that would change the closed period): it is credited in full on the
first open day instead, by a credit note numbered ``<invoice>-VOID`` allocated to it.
When Xero's daily limit is spent, or it cannot be reached, what is left of the batch waits for
the next push.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from typing import Any

import requests
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connector.accounting import base, dating
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
from connector.accounting.xero import payloads, tax
from connector.accounting.xero.auth import XeroAuth
from connector.accounting.xero.batches import chunks, elements, where_any
from connector.accounting.xero.client import XeroClient, error_text, validation_errors
from connector.accounting.xero.contacts import XeroContacts
from connector.accounting.xero.limits import CallLimiter
from connector.db import outbox, tables
from connector.db.engine import transaction
from connector.encryption import TokenCipher
from connector.errors import AccountingError, ConfigError
from connector.settings import Settings, ca_file_path, mapping_path
from connector.tls import https_session

log = logging.getLogger(__name__)

DUPLICATE_NUMBER = "must be unique"
LOCK_DATE = "lock date"  # in Xero's refusals of a document dated in a locked period
VOID_CREDIT_SUFFIX = "-VOID"


@dataclass(frozen=True)
class _Kind:
    """One kind of Xero document created in batches."""

    endpoint: str  # also the plural key of the body
    id_field: str


INVOICES = _Kind("Invoices", "InvoiceID")
CREDIT_NOTES = _Kind("CreditNotes", "CreditNoteID")
PAYMENTS = _Kind("Payments", "PaymentID")


def make_http(ca_file: str) -> requests.Session:
    """A session that verifies TLS against ``ca_file`` (or the system's store), whatever the
    environment says."""
    http = https_session(ca_file_path(ca_file, "xero.ca_file"), "xero.ca_file")
    http.trust_env = False
    return http


def xero_auth(settings: Settings, factory: sessionmaker[Session]) -> XeroAuth:
    """Sign-in alone (``connector xero connect``); the app's id and secret must be set."""
    missing = [
        f"xero.{key} (CONNECTOR_XERO__{key.upper()})"
        for key, value in (
            ("client_id", settings.xero.client_id),
            ("client_secret", settings.xero.client_secret.get_secret_value()),
        )
        if not value
    ]
    if missing:
        raise ConfigError(f"Xero is not configured: set {' and '.join(missing)}")
    cipher = TokenCipher.from_settings(settings.secrets, settings.database_url.get_secret_value())
    return XeroAuth(settings.xero, factory, make_http(settings.xero.ca_file), cipher)


class XeroTarget:
    name = "xero"
    max_batch = 500
    applies_to_invoices = True  # Xero holds payments and credit notes on invoices

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
        self.contacts = XeroContacts(self.client, factory, self.settings.contact_number_prefix)
        self._organisation: dict[str, Any] | None = None
        self.mapping_file = mapping_path(settings.accounting.mapping_file)
        self._tax_types_checked = False
        self._delivered: dict[tuple[str, str], str] = {}  # (type, number) -> Xero id
        self._not_delivered: set[tuple[str, str]] = set()  # read as not in Xero for this batch
        self._found: dict[str, dict[str, Any]] = {}  # reference -> element found by a lookup

    @property
    def calls(self) -> int:
        """Calls made to Xero's API (the token endpoint is not counted, as Xero does not)."""
        return self.client.total_calls

    # -- configuration ---------------------------------------------------------------------
    def check_configuration(self) -> None:
        """Refuse, as a configuration error naming the mapping file, a TaxType of the mapping
        that the organisation does not have (``GET /TaxRates``), cannot use on sales, or holds
        at another rate. Checked once per target, before the first document is sent."""
        if self._tax_types_checked:
            return
        rates = tax.organisation_tax_rates(self.client.get("TaxRates"))
        tax.check_mapping(self.chart, rates, self.mapping_file)
        self._tax_types_checked = True

    # -- contacts --------------------------------------------------------------------------
    def upsert_customers(self, customers: Sequence[Customer]) -> list[PostResult]:
        ids, refused = self.contacts.ids(customers)
        return [
            PostResult(f"customer:{c.id}", True, external_id=ids[c.id])
            if c.id in ids
            else PostResult(f"customer:{c.id}", False, error=refused.get(c.id, "not sent"))
            for c in customers
        ]

    # -- documents -------------------------------------------------------------------------
    def post(
        self, documents: Sequence[Document], retried: frozenset[str] = frozenset()
    ) -> list[PostResult]:
        results: dict[str, PostResult] = {}
        try:
            self.check_configuration()
            lock = self.lock_date()
            documents = [dating.book(doc, lock) for doc in documents]
            self._read_delivered(documents)
            customers = {
                doc.customer.id: doc.customer
                for doc in documents
                if not isinstance(doc, RevenueJournal)
            }
            contacts, refused = self.contacts.ids(customers.values())
            by_type: dict[str, list[Any]] = {}
            for doc in documents:
                if isinstance(doc, RevenueJournal):
                    by_type.setdefault(base.REVENUE, []).append(doc)
                elif doc.customer.id in contacts:
                    by_type.setdefault(doc.document_type, []).append(doc)
                else:
                    why = refused.get(doc.customer.id, "its customer has no contact in Xero")
                    results[doc.key] = PostResult(doc.key, False, error=why)
            invoices = by_type.get(base.INVOICE, [])
            self._create(INVOICES, invoices, retried, results, contacts)
            voids = by_type.get(base.VOID, [])
            credit_notes = by_type.get(base.CREDIT_NOTE, []) + self._credits_for_voids(
                [doc for doc in voids if doc.booking_date is not None], results
            )
            self._create(CREDIT_NOTES, credit_notes, retried, results, contacts)
            self._allocate(credit_notes, results)
            payments = by_type.get(base.PAYMENT, []) + by_type.get(base.REFUND, [])
            self._create(PAYMENTS, payments, retried, results, contacts)
            self._void([doc for doc in voids if doc.booking_date is None], retried, results)
            self._journals(by_type.get(base.REVENUE, []), retried, results)
            self._apply_credit(by_type.get(base.CREDIT_APPLIED, []), results)
            for doc in by_type.get(base.CREDIT_KEPT, []):  # see _apply_credit
                results[doc.key] = PostResult(doc.key, True, external_id=NOTHING_TO_MOVE)
        except AccountingError as error:
            log.warning("xero push stopped: %s", error)
            for doc in documents:
                results.setdefault(
                    doc.key, PostResult(doc.key, False, error=str(error), retriable=True)
                )
        return [self._lock_moved(results[doc.key]) for doc in documents]

    def _lock_moved(self, result: PostResult) -> PostResult:
        """A document refused for a lock date set in Xero since it was read waits for the next
        push, which reads the lock dates again and books it after them."""
        if result.ok or result.retriable or LOCK_DATE not in (result.error or ""):
            return result
        self._organisation = None
        return replace(result, retriable=True)

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

    def _read_delivered(self, documents: Sequence[Document]) -> None:
        """Read at once the Xero ids of the invoices and credit notes these documents refer
        to (paid, refunded, credited, applied, voided) that Xero holds: those not found wait
        for theirs, unless this batch delivers them first."""
        wanted: set[tuple[str, str]] = set()
        for doc in documents:
            if isinstance(doc, Payment):
                if doc.invoice_number:
                    wanted.add((base.INVOICE, doc.invoice_number))
                if doc.credit_note_number:
                    wanted.add((base.CREDIT_NOTE, doc.credit_note_number))
            elif isinstance(doc, Invoice):
                if doc.document_type == base.VOID:
                    wanted.add((base.INVOICE, doc.number))
                elif doc.document_type == base.CREDIT_NOTE:
                    numbers = [number for number, _ in doc.applied_to]
                    numbers += [doc.invoice_number] if doc.invoice_number else []
                    wanted.update((base.INVOICE, number) for number in numbers)
        wanted -= self._delivered.keys()
        self._not_delivered = set()
        if not wanted:
            return
        with transaction(self.factory) as session:
            self._delivered.update(outbox.held_as(session, self.name, wanted))
        self._not_delivered = wanted - self._delivered.keys()

    def _xero_id(self, kind: str, number: str) -> str:
        found = self._delivered.get((kind, number))
        if found:
            return found
        if (kind, number) in self._not_delivered:
            raise _WaitingError(f"waiting for {number} to reach Xero")
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
            request = {kind.endpoint: [body for _, body in part]}
            answer = self.client.write(
                "PUT", kind.endpoint, request, payloads.batch_key(kind.endpoint, keys, request)
            )
            answered = elements(answer, kind.endpoint, len(part))
            duplicates = []
            for (doc, _), element in zip(part, answered, strict=True):
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

    def _allocate(self, credit_notes: Sequence[Invoice], results: dict[str, PostResult]) -> None:
        """Apply each credit note to the invoices the billing core applied it to (its own, and
        others as customer credit), for what Xero does not hold yet: a credit note found by a
        lookup (an earlier attempt may have applied it) is compared with its allocations in
        Xero. What the core did not apply stays the customer's credit, as it is in Xero."""
        for doc in credit_notes:
            result = results.get(doc.key)
            if result is None or not result.ok:
                continue
            wanted = dict(doc.applied_to)
            if not wanted and doc.applied > 0 and doc.invoice_number:
                wanted = {doc.invoice_number: doc.applied}
            held = _allocated(self._found.get(doc.number))  # found: sent before
            missing = {
                number: amount - held.get(number, Decimal(0))
                for number, amount in wanted.items()
                if amount > held.get(number, Decimal(0))
            }
            if not missing:
                continue
            try:
                to = [(self._xero_id(base.INVOICE, n), amount) for n, amount in missing.items()]
            except _WaitingError as waiting:
                results[doc.key] = PostResult(doc.key, False, error=str(waiting), retriable=True)
                continue
            numbers = ", ".join(missing)
            request = payloads.allocations(doc, to)
            results[doc.key] = PostResult(  # until Xero confirms: the next push finishes it
                doc.key,
                False,
                error=f"{doc.number} is in Xero, not yet applied to {numbers}",
                retriable=True,
            )
            answer = self.client.write(
                "PUT",
                f"CreditNotes/{result.external_id}/Allocations",
                request,
                payloads.batch_key("allocation", [doc.key], request),
            )
            errors = [
                m for e in elements(answer, "Allocations", len(to)) for m in validation_errors(e)
            ]
            if errors or answer.status != 200:
                why = "; ".join(dict.fromkeys(errors)) or error_text(answer.body)
                results[doc.key] = PostResult(
                    doc.key,
                    False,
                    error=f"Xero holds {doc.number} but refused to apply it to {numbers}: {why}",
                )
            else:
                results[doc.key] = result

    def _apply_credit(self, docs: Sequence[Payment], results: dict[str, PostResult]) -> None:
        """Customer credit applied to a later invoice. A credit note's is allocated to that
        invoice in Xero, for what Xero does not hold yet (the credit note is read first: the
        credit note's own delivery, or an earlier attempt, may have applied it already).

        A payment's excess has nothing to move in Xero: Xero takes a payment only up to what
        its invoice owes, so a payment the connector recorded beyond that is refused with its
        own document (parked, with Xero's reason), and a payment read from Xero never had any
        (its excess in the billing core comes from credit Xero does not hold, which the
        payments read-back gives back to the customer)."""
        for doc in docs:
            if not doc.credit_note_number or not doc.invoice_number:
                results[doc.key] = PostResult(doc.key, True, external_id=NOTHING_TO_MOVE)
                continue
            try:
                note_id = self._xero_id(base.CREDIT_NOTE, doc.credit_note_number)
                invoice_id = self._xero_id(base.INVOICE, doc.invoice_number)
            except _WaitingError as waiting:
                results[doc.key] = PostResult(doc.key, False, error=str(waiting), retriable=True)
                continue
            found = self.client.get(f"CreditNotes/{note_id}").get("CreditNotes") or [{}]
            missing = doc.credit - _allocated(found[0]).get(doc.invoice_number, Decimal(0))
            if missing <= 0:
                results[doc.key] = PostResult(doc.key, True, external_id=note_id)
                continue
            request = payloads.allocations(doc, [(invoice_id, min(missing, doc.amount))])
            answer = self.client.write(
                "PUT",
                f"CreditNotes/{note_id}/Allocations",
                request,
                payloads.batch_key("allocation", [doc.key], request),
            )
            errors = [m for e in elements(answer, "Allocations", 1) for m in validation_errors(e)]
            if errors or answer.status != 200:
                why = "; ".join(dict.fromkeys(errors)) or error_text(answer.body)
                results[doc.key] = PostResult(
                    doc.key,
                    False,
                    error=f"Xero refused to apply {doc.credit_note_number} to "
                    f"{doc.invoice_number}: {why}",
                )
            else:
                results[doc.key] = PostResult(doc.key, True, external_id=note_id)

    def _credits_for_voids(
        self, voids: Sequence[Invoice], results: dict[str, PostResult]
    ) -> list[Invoice]:
        """The credit notes that take the place of voids of invoices in a closed period, for
        the invoices Xero holds (the others wait for theirs)."""
        credits = []
        for doc in voids:
            try:
                self._xero_id(base.INVOICE, doc.number)
            except _WaitingError as waiting:
                results[doc.key] = PostResult(doc.key, False, error=str(waiting), retriable=True)
            else:
                credits.append(_credit_in_full(doc))
        return credits

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
            request = {"Invoices": [payloads.void(xero_id) for _, xero_id in part]}
            answer = self.client.write(
                "POST", "Invoices", request, payloads.batch_key("void", keys, request)
            )
            answered = elements(answer, "Invoices", len(part))
            for (doc, xero_id), element in zip(part, answered, strict=True):
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
        needed = []
        for doc in voided:
            narration = f"Revenue reversed for void of {doc.number}"
            body = payloads.manual_journal([_void_revenue(doc)], self.chart, narration)
            if body is not None:
                needed.append((doc, narration, body))
        done = {doc.key: results[doc.key] for doc, _, _ in needed}
        for doc, _, _ in needed:  # until the reversal is in Xero: the next push finishes it
            results[doc.key] = PostResult(
                doc.key,
                False,
                error=f"{doc.number} is void in Xero, its revenue not yet reversed",
                retriable=True,
            )
        bodies: list[tuple[Invoice, dict[str, Any]]] = []
        for doc, narration, body in needed:
            if doc.key in retried and self._find_journal(narration):
                results[doc.key] = done[doc.key]
            elif doc.currency != self.base_currency():
                results[doc.key] = self._foreign(doc.key, doc.currency)
            else:
                bodies.append((doc, body))
        for part in chunks(bodies):
            request = {"ManualJournals": [body for _, body in part]}
            keys = [doc.key for doc, _ in part]
            answer = self.client.write(
                "PUT", "ManualJournals", request, payloads.batch_key("reversal", keys, request)
            )
            for (doc, _), element in zip(
                part, elements(answer, "ManualJournals", len(part)), strict=True
            ):
                if errors := validation_errors(element):
                    results[doc.key] = PostResult(
                        doc.key,
                        False,
                        error=f"{doc.number} is void in Xero, but reversing its revenue was "
                        "refused: " + "; ".join(errors),
                    )
                else:
                    results[doc.key] = done[doc.key]

    # -- the organisation ------------------------------------------------------------------
    def organisation(self) -> dict[str, Any]:
        if self._organisation is None:
            self._organisation = dict(self.client.get("Organisation")["Organisations"][0])
        return self._organisation

    def lock_date(self) -> date | None:
        """The later of Xero's lock dates (None when neither is set)."""
        organisation = self.organisation()
        return dating.later(
            *(
                payloads.parse_date(str(organisation[name]))
                for name in ("PeriodLockDate", "EndOfYearLockDate")
                if organisation.get(name)
            )
        )

    # -- revenue ---------------------------------------------------------------------------
    def base_currency(self) -> str:
        return str(self.organisation()["BaseCurrency"])

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
            if max(map(dating.booked_on, members)) != max(map(dating.own_date, members)):
                narration += f" (for {month}, period closed)"
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
            request = {"ManualJournals": [body for _, _, body in part]}
            keys = [narration for narration, _, _ in part]
            answer = self.client.write(
                "PUT", "ManualJournals", request, payloads.batch_key("journal", keys, request)
            )
            answered = elements(answer, "ManualJournals", len(part))
            for (_, members, _), element in zip(part, answered, strict=True):
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
        after the cursor ``since`` (UpdatedDateUTC, ISO 8601; UTC when it has no offset), with
        the next cursor (RFC 3339, with its offset). Payments the connector posted itself carry
        its references and are left out."""
        found: list[ExternalPayment] = []
        modified_since = payloads.rfc3339(since) if since else ""  # with its UTC offset
        cursor = modified_since or None
        page = 1
        while True:
            body = self.client.get(
                "Payments",
                {"page": str(page), "order": "UpdatedDateUTC ASC"},
                modified_since=modified_since,
            )
            elements = body.get("Payments") or []
            for element in elements:
                updated = payloads.parse_timestamp(str(element["UpdatedDateUTC"]))
                stamp = payloads.rfc3339(updated.isoformat())
                cursor = max(cursor or stamp, stamp)
                payment = _external_payment(element)
                if payment is not None:
                    found.append(payment)
            if len(elements) < 100:
                return found, cursor
            page += 1


NOTHING_TO_MOVE = "nothing to move in Xero"


class _WaitingError(Exception):
    """A document depends on one that has not reached Xero yet."""


def _reference_of(kind: _Kind) -> Callable[[Any], str]:
    if kind is PAYMENTS:
        return payloads.payment_reference
    return lambda doc: str(doc.number)


def _allocated(credit_note: dict[str, Any] | None) -> dict[str, Decimal]:
    """What a credit note found in Xero is applied to: invoice number -> amount."""
    held: dict[str, Decimal] = {}
    for allocation in (credit_note or {}).get("Allocations") or []:
        number = str((allocation.get("Invoice") or {}).get("InvoiceNumber") or "")
        held[number] = held.get(number, Decimal(0)) + _decimal(allocation.get("Amount"))
    return held


def _decimal(value: Any) -> Decimal:
    return Decimal(str(value)) if value is not None else Decimal(0)


def _credit_in_full(void: Invoice) -> Invoice:
    """The credit note that takes the place of voiding an invoice dated in a closed period: all
    of it, on the first open day, the revenue already recognized taken back from revenue, and
    allocated to the invoice; it keeps the void's key."""
    return replace(
        void,
        document_type=base.CREDIT_NOTE,
        number=void.number + VOID_CREDIT_SUFFIX,
        invoice_number=void.number,
        applied=void.total,
    )


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
