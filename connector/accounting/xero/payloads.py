"""What each document becomes in Xero: the JSON of contacts, invoices, credit notes,
allocations, payments, voids and manual journals. Pure functions, no I/O.

- An invoice is an ACCREC invoice, AUTHORISED, numbered and referenced with our number; its
  recurring lines (and one-time lines dated on another day than the invoice) go to deferred
  revenue and its other one-time lines to revenue (the chart's ``xero`` codes), each with the
  TaxType of its customer's country and rate and a TaxAmount such that Xero's tax and total
  equal ours to the cent (:mod:`connector.accounting.xero.tax`).
- A credit note is an ACCRECCREDIT credit note: the part of a recurring line whose days had
  passed comes back from revenue, the rest from deferred revenue.
- Revenue journals of one month and currency become one manual journal: deferred revenue
  debited, each revenue account credited (a credit note's revenue the other way round); revenue
  earned before its invoice debits the unbilled receivable instead, and on the invoice's date
  what the invoice clears of it moves from deferred revenue.

Every document is dated on the day it is booked (``dating.booked_on``): its own date, or the
first open day when its own is in a closed period.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import simplejson

from connector.accounting.base import (
    REFUND,
    Customer,
    Invoice,
    Line,
    Payment,
    RevenueJournal,
)
from connector.accounting.chart import XeroChart, journal_accounts
from connector.accounting.dating import booked_on
from connector.accounting.xero.tax import line_taxes
from connector.errors import ConnectorError

ZERO = Decimal(0)
MAX_DESCRIPTION = 4000


class UnmappableError(ConnectorError):
    """A document cannot be expressed in Xero with the mapping as it stands."""


def contact_number(customer_id: int, prefix: str) -> str:
    return f"{prefix}{customer_id}"


def contact(customer: Customer, prefix: str, name: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "Name": (name or customer.name)[:255],
        "ContactNumber": contact_number(customer.id, prefix),
        "DefaultCurrency": customer.currency,
        "Addresses": [{"AddressType": "POBOX", "Country": customer.country}],
    }
    if customer.tax_id:
        body["TaxNumber"] = customer.tax_id[:50]
    return body


def payment_reference(payment: Payment) -> str:
    """The Reference a payment or refund carries in Xero, by which it is found again."""
    return f"{'REFUND' if payment.document_type == REFUND else 'PAY'}-{payment.document_id}"


def _line_items(doc: Invoice, chart: XeroChart, *, credit: bool) -> list[dict[str, Any]]:
    """Lines with account, tax type and tax: Xero's own per line, the document's rounding
    difference for each rate on that rate's largest line."""
    parts: list[tuple[Line, str, Decimal]] = []  # line, account code, amount
    for line in doc.lines:
        revenue = chart.revenue_account(line.recurring, line.product_code, line.product_family)
        if not line.deferred:
            parts.append((line, revenue, line.amount))
        elif credit and line.recognized:
            parts.append((line, revenue, line.recognized))
            if line.amount - line.recognized:
                parts.append((line, chart.accounts.deferred_revenue, line.amount - line.recognized))
        else:
            parts.append((line, chart.accounts.deferred_revenue, line.amount))
    tax_of_part = [ZERO] * len(parts)
    for by_rate in doc.taxes:
        members = [i for i, (line, _, _) in enumerate(parts) if line.tax_rate == by_rate.rate]
        if not members:
            if by_rate.amount:
                raise UnmappableError(f"tax at {by_rate.rate.normalize():f}% has no line to go on")
            continue
        shares = line_taxes([parts[i][2] for i in members], by_rate.rate, by_rate.amount)
        for i, share in zip(members, shares, strict=True):
            tax_of_part[i] = share
    country = doc.customer.country
    items = []
    for (line, account, amount), tax in zip(parts, tax_of_part, strict=True):
        tax_type = chart.tax_type(line.tax_rate, country)
        if tax_type is None:
            rate = f"{line.tax_rate.normalize():f}"
            raise UnmappableError(
                f"no Xero TaxType for tax rate {rate}% in {country}: add it under xero.tax_types "
                f"in the accounting mapping file ({country}: {{{rate}: …}}, or {rate}: … for "
                "every country)"
            )
        items.append(
            {
                "Description": (line.description or line.product_code)[:MAX_DESCRIPTION],
                "Quantity": Decimal(1),
                "UnitAmount": amount,
                "LineAmount": amount,
                "AccountCode": account,
                "TaxType": tax_type,
                "TaxAmount": tax,
            }
        )
    return items


def invoice(doc: Invoice, contact_id: str, chart: XeroChart) -> dict[str, Any]:
    return {
        "Type": "ACCREC",
        "Contact": {"ContactID": contact_id},
        "Date": booked_on(doc).isoformat(),
        "DueDate": doc.due_date.isoformat(),
        "InvoiceNumber": doc.number,
        "Reference": doc.number,
        "CurrencyCode": doc.currency,
        "Status": "AUTHORISED",
        "LineAmountTypes": "Exclusive",
        "LineItems": _line_items(doc, chart, credit=False),
    }


def credit_note(doc: Invoice, contact_id: str, chart: XeroChart) -> dict[str, Any]:
    return {
        "Type": "ACCRECCREDIT",
        "Contact": {"ContactID": contact_id},
        "Date": booked_on(doc).isoformat(),
        "CreditNoteNumber": doc.number,
        "Reference": doc.number,
        "CurrencyCode": doc.currency,
        "Status": "AUTHORISED",
        "LineAmountTypes": "Exclusive",
        "LineItems": _line_items(doc, chart, credit=True),
    }


def allocations(doc: Invoice | Payment, to: Sequence[tuple[str, Decimal]]) -> dict[str, Any]:
    """A credit note applied to invoices (on its day, or the day ``doc`` applies credit held):
    ``to`` holds (InvoiceID, amount) pairs."""
    return {
        "Allocations": [
            {
                "Invoice": {"InvoiceID": invoice_id},
                "Amount": amount,
                "Date": booked_on(doc).isoformat(),
            }
            for invoice_id, amount in to
        ]
    }


def payment(doc: Payment, applied_to: dict[str, str], chart: XeroChart) -> dict[str, Any]:
    """``applied_to``: {"InvoiceID": …} for a payment, {"CreditNoteID": …} for a refund."""
    target = "Invoice" if "InvoiceID" in applied_to else "CreditNote"
    return {
        target: applied_to,
        "Account": {"Code": chart.accounts.bank},
        "Date": booked_on(doc).isoformat(),
        "Amount": doc.amount,
        "Reference": payment_reference(doc),
    }


def void(invoice_id: str) -> dict[str, Any]:
    return {"InvoiceID": invoice_id, "Status": "VOIDED"}


def journal_month(journal: RevenueJournal) -> str:
    return f"{journal.journal_date:%Y-%m}"


def manual_journal(
    journals: Sequence[RevenueJournal], chart: XeroChart, narration: str
) -> dict[str, Any] | None:
    """One manual journal for revenue journals of one month and currency (None when their
    amounts cancel out): deferred revenue debited, revenue accounts credited."""
    by_account: dict[str, Decimal] = defaultdict(Decimal)
    for journal in journals:
        for amount in journal.amounts:
            debited, credited = journal_accounts(chart, journal.kind, amount)
            by_account[credited] -= amount.amount
            by_account[debited] += amount.amount
    lines = [
        {"AccountCode": account, "LineAmount": total, "Description": _describe(account, chart)}
        for account, total in sorted(by_account.items())
        if total
    ]
    if not lines:
        return None
    return {
        "Narration": narration,
        "Date": max(booked_on(journal) for journal in journals).isoformat(),
        "Status": "POSTED",
        "LineAmountTypes": "NoTax",
        "JournalLines": lines,
    }


def _describe(account: str, chart: XeroChart) -> str:
    if account == chart.accounts.deferred_revenue:
        return "Deferred revenue released"
    if account == chart.accounts.unbilled_receivable:
        return "Revenue earned before it was invoiced"
    return "Subscription revenue recognized"


def narration(month: str, currency: str, keys: Iterable[str]) -> str:
    """Unique per set of revenue journals, so that an unanswered attempt is found again."""
    digest = hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()[:12]
    return f"Revenue recognized {month} ({currency}), billing connector {digest}"


def batch_key(kind: str, keys: Sequence[str], body: Any) -> str:
    """The Idempotency-Key of one write, derived from the ids and versions of the documents in
    it and from what is sent: the same request sent again has the same key (Xero answers it from
    its record), and a document sent again after a fix (a mapping corrected) gets a new one."""
    sent = simplejson.dumps(body, sort_keys=True, use_decimal=True)
    digest = hashlib.sha256("\n".join([*keys, sent]).encode()).hexdigest()[:24]
    return f"{kind}:{keys[0]}:{len(keys)}:{digest}"[:128]


MS_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")


def parse_date(value: str) -> date:
    """A Xero date: ``/Date(1773532800000+0000)/`` or ISO ``2026-03-15T00:00:00``."""
    if value.startswith("/Date("):
        return parse_timestamp(value).date()
    return date.fromisoformat(value[:10])


def rfc3339(value: str) -> str:
    """An ISO 8601 date-time (UTC when it has no offset) as Xero's ``If-Modified-Since`` takes
    it: an RFC 3339 ``date-time`` in UTC, with its offset (``2026-03-01T10:00:00+00:00``)."""
    moment = datetime.fromisoformat(value)
    moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.isoformat(timespec="seconds")


def parse_timestamp(value: str) -> datetime:
    """A Xero timestamp (``UpdatedDateUTC``) as an aware UTC datetime."""
    found = MS_DATE.match(value)
    if found:
        return datetime.fromtimestamp(int(found.group(1)) / 1000, UTC)
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
