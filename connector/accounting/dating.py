"""On which day a document is booked: closed periods stay closed.

Every document has its own date: an invoice's or credit note's issue date (a void: the date of
the invoice it reverses), a payment's day received, a revenue journal's last day. When that day
is on or before the day the books are closed through, the document is booked on the first open
day instead (``booking_date``), and its entry says which day and period it belongs to
(``original_date``, ``original_period``, and a narration suffix). Amounts never change, only
the day they are booked on. Pure functions: the push applies them where documents become
entries for any target.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from typing import TypeVar

from connector.accounting.base import Document, Invoice, Payment

D = TypeVar("D", bound=Document)


def own_date(doc: Document) -> date:
    """The document's own date, whatever the books say."""
    if isinstance(doc, Invoice):
        return doc.issue_date
    if isinstance(doc, Payment):
        return doc.paid_on
    return doc.journal_date


def booked_on(doc: Document) -> date:
    """The day the document is booked on."""
    return doc.booking_date or own_date(doc)


def first_open_day(closed_through: date) -> date:
    return closed_through + timedelta(days=1)


def later(*days: date | None) -> date | None:
    """The latest of the closed-through dates given (None: not closed)."""
    known = [day for day in days if day is not None]
    return max(known) if known else None


def book(doc: D, closed_through: date | None) -> D:
    """``doc`` booked on the first open day when it would fall on or before
    ``closed_through``; as it is otherwise."""
    if closed_through is None or booked_on(doc) > closed_through:
        return doc
    return replace(doc, booking_date=first_open_day(closed_through))


def period_of(day: date) -> str:
    return f"{day:%Y-%m}"


def moved(doc: Document) -> bool:
    """True when the document is booked on another day than its own."""
    return doc.booking_date is not None and doc.booking_date != own_date(doc)


def closed_suffix(doc: Document) -> str:
    """`` (for 2026-03, period closed)`` for a moved document, else nothing."""
    return f" (for {period_of(own_date(doc))}, period closed)" if moved(doc) else ""


def ledger_metadata(doc: Document) -> dict[str, str]:
    """Beancount metadata of a moved document: ``original_date`` (a date) and
    ``original_period`` (a string, ``"2026-03"``)."""
    if not moved(doc):
        return {}
    day = own_date(doc)
    return {"original_date": day.isoformat(), "original_period": f'"{period_of(day)}"'}
