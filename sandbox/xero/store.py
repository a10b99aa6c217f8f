"""The fake organisation's documents, in memory, as Xero returns them.

Tables map ids to documents (``store.invoices[invoice_id]``). A document is never changed in
place: a change puts a new dict, so a batch can be undone (Xero saves none of a batch when one
element fails and ``summarizeErrors`` is on) and readers never see half an update. Numbers
that must be unique (contact names and numbers, invoice and credit note numbers) are indexed.
Every change happens under :attr:`XeroStore.lock`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sandbox.xero.chart import Chart
from sandbox.xero.dates import datetime_ms
from sandbox.xero.locks import LockDates
from sandbox.xero.settlement import create_payment

Document = dict[str, Any]

ID_FIELDS = {
    "contacts": "ContactID",
    "invoices": "InvoiceID",
    "credit_notes": "CreditNoteID",
    "payments": "PaymentID",
    "manual_journals": "ManualJournalID",
}


def _active_contact(field: str) -> Callable[[Document], str | None]:
    def key(document: Document) -> str | None:
        value = document.get(field)
        if not value or document.get("ContactStatus") != "ACTIVE":
            return None
        return str(value).casefold()

    return key


INDEXES: dict[str, tuple[str, Callable[[Document], str | None]]] = {
    "contact_name": ("contacts", _active_contact("Name")),
    "contact_number": ("contacts", _active_contact("ContactNumber")),
    "invoice_number": (
        "invoices",
        lambda document: document["InvoiceNumber"] if document["Type"] == "ACCREC" else None,
    ),
    "credit_note_number": ("credit_notes", lambda document: document["CreditNoteNumber"]),
}


def utc_now() -> datetime:
    return datetime.now(UTC)


class Transaction:
    """A batch being applied; :meth:`rollback` undoes every document it put."""

    def __init__(self, store: XeroStore) -> None:
        self._store = store
        self.undo: list[tuple[str, str, Document | None]] = []

    def rollback(self) -> None:
        for table, key, previous in reversed(self.undo):
            self._store._replace(table, key, previous)
        self.undo.clear()


class XeroStore:
    """The organisation's contacts, invoices, credit notes, payments and manual journals."""

    def __init__(self, chart: Chart, clock: Callable[[], datetime] = utc_now) -> None:
        self.chart = chart
        self.clock = clock
        self.lock = threading.RLock()
        self.contacts: dict[str, Document] = {}
        self.invoices: dict[str, Document] = {}
        self.credit_notes: dict[str, Document] = {}
        self.payments: dict[str, Document] = {}
        self.manual_journals: dict[str, Document] = {}
        self.locks = LockDates()
        self._tables = {
            "contacts": self.contacts,
            "invoices": self.invoices,
            "credit_notes": self.credit_notes,
            "payments": self.payments,
            "manual_journals": self.manual_journals,
        }
        self._indexes: dict[str, dict[str, str]] = {name: {} for name in INDEXES}
        self._transaction: Transaction | None = None
        self._last_ms = 0

    # -- reading ---------------------------------------------------------------------------
    def table(self, name: str) -> dict[str, Document]:
        return self._tables[name]

    def lookup(self, index: str, key: str) -> Document | None:
        """The document an index holds for ``key`` (contact names and numbers: any case)."""
        table, _ = INDEXES[index]
        if table == "contacts":
            key = key.casefold()
        with self.lock:
            found = self._indexes[index].get(key)
            return None if found is None else self.table(table)[found]

    def invoice_by_number(self, number: str) -> Document | None:
        return self.lookup("invoice_number", number)

    def now_ms(self) -> int:
        """Milliseconds for ``UpdatedDateUTC``: never the same twice, never going back."""
        with self.lock:
            self._last_ms = max(datetime_ms(self.clock()), self._last_ms + 1)
            return self._last_ms

    # -- writing ---------------------------------------------------------------------------
    def put(self, table: str, document: Document) -> Document:
        """Save a new version of a document (recorded in the open transaction, if any)."""
        with self.lock:
            key = str(document[ID_FIELDS[table]])
            if self._transaction is not None:
                self._transaction.undo.append((table, key, self.table(table).get(key)))
            self._replace(table, key, document)
            return document

    def _replace(self, table: str, key: str, document: Document | None) -> None:
        rows = self.table(table)
        previous = rows.pop(key, None)
        for name, (indexed_table, index_key) in INDEXES.items():
            if indexed_table != table:
                continue
            index = self._indexes[name]
            if previous is not None:
                old = index_key(previous)
                if old is not None and index.get(old) == key:
                    del index[old]
            if document is not None:
                new = index_key(document)
                if new is not None:
                    index[new] = key
        if document is not None:
            rows[key] = document

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """Apply a batch under the lock; the caller may roll it back before leaving."""
        with self.lock:
            if self._transaction is not None:
                raise RuntimeError("transactions do not nest")
            self._transaction = Transaction(self)
            try:
                yield self._transaction
            except BaseException:
                self._transaction.rollback()
                raise
            finally:
                self._transaction = None

    # -- helpers for tests -----------------------------------------------------------------
    def set_lock_dates(
        self,
        period: date | None = None,
        end_of_year: date | None = None,
        *,
        adviser: bool = False,
    ) -> None:
        """Set (or clear, with None) the organisation's lock dates, as an adviser would in
        Xero's financial settings; ``adviser``: the connection acts for an adviser, whom the
        period lock date does not bind."""
        with self.lock:
            self.locks = LockDates(period, end_of_year, adviser)

    def record_payment(
        self,
        invoice_number: str,
        amount: Decimal | int | str,
        date: date | str,
        reference: str | None = None,
    ) -> Document:
        """Pay an invoice into the first bank account, as finance would in Xero's web app.

        Raises ``LookupError`` for an unknown invoice number and
        :class:`~sandbox.xero.errors.ElementError` when Xero would refuse it.
        """
        invoice = self.invoice_by_number(invoice_number)
        if invoice is None:
            raise LookupError(f"no invoice numbered {invoice_number}")
        element: dict[str, Any] = {
            "Invoice": {"InvoiceID": invoice["InvoiceID"]},
            "Account": {"Code": self.chart.first_bank_account().code},
            "Date": date if isinstance(date, str) else date.isoformat(),
            "Amount": Decimal(str(amount)),
        }
        if reference is not None:
            element["Reference"] = reference
        with self.transaction():
            return create_payment(self, element)
