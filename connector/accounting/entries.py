"""Beancount text for each document: one balanced transaction, its metadata and its links.

- Invoice: debit the customer's receivable; credit deferred revenue (recurring lines, and
  one-time lines dated on another day than the invoice), revenue (other one-time lines) and tax
  payable per rate.
- Credit note: the reverse of its share: credit receivable; debit revenue for what its invoice
  had already journaled (and one-time lines), deferred revenue for the rest, and tax payable.
- Payment: debit the bank, credit receivable for what it paid and the customer's credit (a
  liability, one sub-account per customer) for what it left over. Refund: debit the customer's
  credit it pays out, credit the bank. A credit note also credits the customer's credit with
  what it left over; credit applied later to an invoice moves from customer credit to
  receivable (``credit_applied``); an over-payment finance recorded itself moves from
  receivable to customer credit (``credit_kept``).
- Revenue journal: debit deferred revenue (``deferred``) or the unbilled receivable
  (``unbilled``: revenue earned before its invoice), credit the revenue accounts (negative
  amounts for a credit note's revenue); ``invoiced``: on an invoice's issue date, debit deferred
  revenue and credit the unbilled receivable by what the invoice clears of it.

Every transaction carries ``document_type`` and ``document_id`` metadata (in that order, on the
first two lines, which is how the ledger finds what it already holds) and links ``^NUMBER`` that
tie a document to its invoice.

A document whose own date is in a closed period is dated on its booking date (the first open
day, :mod:`connector.accounting.dating`), with ``original_date`` and ``original_period``
metadata and a narration ending ``(for 2026-03, period closed)``.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from datetime import date
from decimal import Decimal

from babel.numbers import get_territory_currencies

from connector.accounting import dating
from connector.accounting.base import (
    CREDIT_APPLIED,
    CREDIT_KEPT,
    CREDIT_NOTE,
    JOURNAL_INVOICED,
    JOURNAL_UNBILLED,
    REFUND,
    VOID,
    Customer,
    Document,
    Invoice,
    Payment,
    RevenueJournal,
    Tax,
)
from connector.accounting.chart import Chart, journal_accounts
from connector.billing.money import currency as currency_of
from connector.billing.money import round_money

ZERO = Decimal(0)
CURRENCIES_ON = date(2026, 2, 1)
LINK_CHARS = re.compile(r"[^A-Za-z0-9\-_/.]")


def quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def customer_component(customer: Customer) -> str:
    """``Acme Corporation`` (id 7) → ``Acme-Corporation-7``: readable, unique, and a valid
    account component (ASCII letters, digits and dashes, starting with a capital)."""
    ascii_name = unicodedata.normalize("NFKD", customer.name).encode("ascii", "ignore").decode()
    words = re.findall(r"[A-Za-z0-9]+", ascii_name)
    stem = "-".join(words)[:60].strip("-") or "Customer"
    stem = stem[0].upper() + stem[1:]
    return f"{stem}-{customer.id}"


def tax_account(chart: Chart, tax: Tax, currency: str, country: str = "") -> str:
    """Tax payable per jurisdiction and rate, one currency to an account:
    ``Liabilities:SalesTax:FR:20`` (and ``…:US-CA:7-25``) holds the tax in the jurisdiction's
    own currency; tax billed in another currency has its own account below it,
    ``Liabilities:SalesTax:FR:20:USD``. A tax without a jurisdiction is owed in ``country``."""
    place = tax.jurisdiction or country
    rate = format(tax.rate.normalize(), "f").replace(".", "-")
    account = f"{chart.accounts.sales_tax}:{place}:{rate}"
    return account if currency == local_currency(place) else f"{account}:{currency}"


@functools.cache
def local_currency(jurisdiction: str) -> str | None:
    """The currency of a jurisdiction's country (CLDR's legal tender on a fixed day, so that an
    account's name never changes when a country changes its currency)."""
    found = get_territory_currencies(jurisdiction[:2], start_date=CURRENCIES_ON, tender=True)
    return found[0] if found else None


def credit_account(chart: Chart, receivable: str) -> str:
    """The customer's credit account beside its receivable account (same last component)."""
    return f"{chart.accounts.customer_credit}:{receivable.rsplit(':', 1)[-1]}"


def link(number: str) -> str:
    return "^" + LINK_CHARS.sub("-", number)


def _amount(value: Decimal, currency: str) -> str:
    """An amount in its currency's minor unit (``0.00 GBP``, ``1200 JPY``)."""
    return f"{format(round_money(value, currency_of(currency)), 'f')} {currency}"


def _transaction(
    day: date,
    payee: str,
    narration: str,
    *,
    links: Iterable[str | None],
    document: tuple[str, int],
    postings: dict[str, Decimal],
    currency: str,
    extra: dict[str, str] | None = None,
) -> str:
    document_type, document_id = document
    tags = " ".join(dict.fromkeys(link(number) for number in links if number))
    head = f"{day.isoformat()} * {quote(payee)} {quote(narration)}" + (f" {tags}" if tags else "")
    lines = [head, f'  document_type: "{document_type}"', f'  document_id: "{document_id}"']
    lines += [f"  {key}: {value}" for key, value in (extra or {}).items()]
    kept = [(account, value) for account, value in postings.items() if value != ZERO]
    if not kept:  # a zero document still appears, balanced
        kept = [(next(iter(postings)), ZERO)]
    width = max(len(account) for account, _ in kept) + 4
    lines += [f"  {account:<{width}}{_amount(value, currency):>20}" for account, value in kept]
    return "\n".join(lines) + "\n"


def _invoice(doc: Invoice, chart: Chart, receivable: str) -> str:
    accounts = chart.accounts
    credit = doc.document_type in (CREDIT_NOTE, VOID)
    sign = 1 if credit else -1  # income and liabilities are credited (negative) by an invoice
    postings: dict[str, Decimal] = defaultdict(lambda: ZERO)
    postings[receivable] = ZERO
    for line in doc.lines:
        revenue = chart.revenue_account(line.recurring, line.product_code, line.product_family)
        if line.deferred:
            postings[accounts.deferred_revenue] += sign * (line.amount - line.recognized)
            postings[revenue] += sign * line.recognized
        else:
            postings[revenue] += sign * line.amount
    for tax in doc.taxes:  # a reverse-charged tax (0) posts nothing
        account = tax_account(chart, tax, doc.currency, doc.customer.country)
        postings[account] += sign * tax.amount
    if doc.credit:  # a credit note's credit left over for the customer
        postings[credit_account(chart, receivable)] = -doc.credit
    postings[receivable] = -sum(postings.values(), ZERO)
    kind = {CREDIT_NOTE: "Credit note", VOID: "Void of invoice"}.get(doc.document_type, "Invoice")
    narration = f"{kind} {doc.number}" + (
        f" for {doc.invoice_number}" if doc.invoice_number else ""
    )
    return _transaction(
        dating.booked_on(doc),
        doc.customer.name,
        narration + dating.closed_suffix(doc),
        links=(doc.number, doc.invoice_number),
        document=(doc.document_type, doc.document_id),
        postings=dict(postings),
        currency=doc.currency,
        extra=({"due": doc.due_date.isoformat()} if not credit else {})
        | dating.ledger_metadata(doc),
    )


def _payment(doc: Payment, chart: Chart, receivable: str) -> str:
    credit = credit_account(chart, receivable)
    if doc.document_type == CREDIT_APPLIED:
        postings = {credit: doc.amount, receivable: -doc.amount}
    elif doc.document_type == CREDIT_KEPT:
        postings = {receivable: doc.amount, credit: -doc.amount}
    else:
        received = doc.amount if doc.document_type != REFUND else -doc.amount
        kept = doc.credit if doc.document_type != REFUND else -doc.credit
        postings = {
            chart.bank_account(doc.currency): received,
            receivable: kept - received,
            credit: -kept,
        }
    kind = {
        REFUND: "Refund",
        CREDIT_APPLIED: "Customer credit applied",
        CREDIT_KEPT: "Over-payment kept as customer credit",
    }.get(doc.document_type, "Payment")
    target = f" for {doc.invoice_number}" if doc.invoice_number else ""
    reference = f" ({doc.reference})" if doc.reference else ""
    return _transaction(
        dating.booked_on(doc),
        doc.customer.name,
        f"{kind}{target}{reference}{dating.closed_suffix(doc)}",
        links=(doc.invoice_number, doc.credit_note_number),
        document=(doc.document_type, doc.document_id),
        postings=postings,
        currency=doc.currency,
        extra=dating.ledger_metadata(doc),
    )


def _revenue(doc: RevenueJournal, chart: Chart) -> str:
    postings: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for part in doc.amounts:
        debited, credited = journal_accounts(chart, doc.kind, part)
        postings[debited] += part.amount
        postings[credited] -= part.amount
    if not postings:
        postings[chart.accounts.deferred_revenue] = ZERO
    span = f"{doc.period_start.isoformat()} to {doc.period_end.isoformat()}"
    narration = {
        JOURNAL_UNBILLED: f"Revenue of {doc.source_number} earned before it was issued, {span}",
        JOURNAL_INVOICED: f"{doc.source_number} bills revenue earned {span}",
    }.get(doc.kind, f"Revenue of {doc.source_number}, {span}")
    return _transaction(
        dating.booked_on(doc),
        doc.customer.name,
        narration + dating.closed_suffix(doc),
        links=(doc.source_number, doc.invoice_number),
        document=(doc.document_type, doc.document_id),
        postings=dict(postings),
        currency=doc.currency,
        extra=dating.ledger_metadata(doc),
    )


def entry(doc: Document, chart: Chart, receivable: str) -> str:
    """The transaction of ``doc``; ``receivable`` is its customer's receivable account."""
    if isinstance(doc, Invoice):
        return _invoice(doc, chart, receivable)
    if isinstance(doc, Payment):
        return _payment(doc, chart, receivable)
    return _revenue(doc, chart)


def open_directive(
    day: date, account: str, customer: Customer | None = None, currency: str | None = None
) -> str:
    """``open``; with ``currency``, the account may hold only that currency."""
    text = f"{day.isoformat()} open {account}" + (f" {currency}\n" if currency else "\n")
    if customer is not None:
        text += f'  customer_id: "{customer.id}"\n  name: {quote(customer.name)}\n'
    return text
