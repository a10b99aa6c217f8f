"""Invoices and credit notes drafted from charges.

Positive charges go on invoices, one per subscription and billing period. Negative charges go on
credit notes: each is allocated to the invoice lines it corrects (newest first, never more than
a line still holds) and one credit note is drafted per credited invoice, at that invoice's tax
rates, in its jurisdiction and with its reverse charge. Tax is computed per document per rate
and rounded once per rate. Numbers are given by storage, in the same transaction, from a
gapless series.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum

from connector.billing.charges import Charge
from connector.billing.money import ZERO, Currency, Rounding
from connector.billing.periods import Period
from connector.billing.pricing import Product
from connector.billing.tax import CreditedTax, TaxLine, credit_tax, tax_by_rate
from connector.billing.vat import NOTE as REVERSE_CHARGE_NOTE
from connector.errors import BillingError


class DocumentKind(StrEnum):
    INVOICE = "invoice"
    CREDIT_NOTE = "credit_note"


@dataclass(frozen=True, slots=True)
class DraftLine:
    charge: Charge
    amount: Decimal  # positive on invoices and on credit notes alike
    tax_rate: Decimal
    credited_line_id: int | None = None
    description: str | None = None  # a credit note issued by hand: what it says (else the charge's)
    quantity: Decimal | None = None  # a line of usage: its quantity (else the charge's)
    service: Period | None = None  # a line of usage: its days (else the charge's)


@dataclass(frozen=True, slots=True)
class DocumentDraft:
    kind: DocumentKind
    currency: Currency
    issue_date: date
    due_date: date
    period: Period
    lines: tuple[DraftLine, ...]
    taxes: tuple[TaxLine, ...]
    credited_invoice_id: int | None = None
    subtotal: Decimal = field(init=False)
    tax_total: Decimal = field(init=False)
    total: Decimal = field(init=False)
    tax_note: str | None = None  # the legal note a reverse-charged document carries

    def __post_init__(self) -> None:
        subtotal = sum((line.amount for line in self.lines), ZERO)
        tax_total = sum((t.tax for t in self.taxes), ZERO)
        object.__setattr__(self, "subtotal", subtotal)
        object.__setattr__(self, "tax_total", tax_total)
        object.__setattr__(self, "total", subtotal + tax_total)


@dataclass(frozen=True, slots=True)
class InvoicedLine:
    """An invoice line already issued, as storage knows it, that a credit may correct."""

    line_id: int
    invoice_id: int
    item_key: str
    key_date: date
    remaining: Decimal  # amount not yet credited
    tax_rate: Decimal
    period: Period  # the invoice's billing period


def _draft(
    kind: DocumentKind,
    lines: Sequence[DraftLine],
    *,
    currency: Currency,
    issue_date: date,
    due_date: date,
    period: Period,
    rounding: Rounding,
    credited_invoice_id: int | None = None,
    tax_history: Mapping[Decimal, CreditedTax] | None = None,
    jurisdiction: str = "",
    reverse_charge: bool = False,
) -> DocumentDraft:
    amounts = [(line.amount, line.tax_rate) for line in lines]
    if tax_history:  # a credit note is taxed where, and as, its invoice was
        past = next(iter(tax_history.values()))
        jurisdiction, reverse_charge = past.jurisdiction or jurisdiction, past.reverse_charge
    taxes = (
        credit_tax(
            amounts,
            tax_history,
            currency,
            rounding,
            jurisdiction=jurisdiction,
            reverse_charge=reverse_charge,
        )
        if tax_history
        else tax_by_rate(
            amounts, currency, rounding, jurisdiction=jurisdiction, reverse_charge=reverse_charge
        )
    )
    return DocumentDraft(
        kind,
        currency,
        issue_date,
        due_date,
        period,
        tuple(lines),
        taxes,
        credited_invoice_id,
        tax_note=REVERSE_CHARGE_NOTE if reverse_charge else None,
    )


def draft_invoices(
    charges: Iterable[Charge],
    *,
    currency: Currency,
    tax_rate: Callable[[Product], Decimal],
    issue_date: date,
    due_date: date,
    rounding: Rounding,
    jurisdiction: str = "",
    reverse_charge: bool = False,
) -> list[DocumentDraft]:
    """One invoice per billing period for the positive charges, taxed in ``jurisdiction``
    (reverse-charged: ``tax_rate`` gives 0 for every product). The invoice's period ends with
    the last day its lines serve: the last week of a term that ends mid-week ends on that day."""
    by_period: dict[Period, list[DraftLine]] = defaultdict(list)
    for charge in charges:
        if charge.amount > 0:
            rate = tax_rate(charge.item.product)
            if charge.usage:  # the usage of a period: a line per group and shortfall
                by_period[charge.period].extend(
                    DraftLine(charge, u.amount, rate, None, u.description, u.quantity, u.service)
                    for u in charge.usage
                )
            else:
                by_period[charge.period].append(DraftLine(charge, charge.amount, rate))
    return [
        _draft(
            DocumentKind.INVOICE,
            lines,
            currency=currency,
            issue_date=issue_date,
            due_date=due_date,
            period=_served(period, lines),
            rounding=rounding,
            jurisdiction=jurisdiction,
            reverse_charge=reverse_charge,
        )
        for period, lines in sorted(by_period.items(), key=lambda kv: kv[0].start)
    ]


def _served(period: Period, lines: Sequence[DraftLine]) -> Period:
    """An invoice's period: ``period`` up to the last day its lines serve in it (usage of the
    period before, billed in arrears, does not shorten it)."""
    ends = [line.charge.service.end for line in lines if line.charge.service.end >= period.start]
    return Period(period.start, min(period.end, max(ends))) if ends else period


def draft_credit_notes(
    charges: Iterable[Charge],
    invoiced: Sequence[InvoicedLine],
    *,
    currency: Currency,
    issue_date: date,
    rounding: Rounding,
    tax_history: Mapping[int, Mapping[Decimal, CreditedTax]] | None = None,
    jurisdiction: str = "",
) -> list[DocumentDraft]:
    """Credit notes for the negative charges, one per credited invoice. ``tax_history`` gives,
    per invoice id and rate, the invoice's tax, jurisdiction and reverse charge, and what
    earlier credit notes took back of it; ``jurisdiction`` serves an invoice without one."""
    lines_by_key: dict[tuple[str, date], list[InvoicedLine]] = defaultdict(list)
    for line in sorted(invoiced, key=lambda line: line.line_id, reverse=True):
        lines_by_key[(line.item_key, line.key_date)].append(line)
    by_invoice: dict[int, list[DraftLine]] = defaultdict(list)
    periods: dict[int, Period] = {}
    for charge in charges:
        if charge.amount >= 0:
            continue
        candidates = lines_by_key.get((charge.item.key, charge.key_date))
        if not candidates:
            raise BillingError(
                f"credit of {charge.amount} for {charge.item.key} on {charge.key_date} "
                "has no invoice line to correct"
            )
        for target, amount in allocate_credit(-charge.amount, candidates):
            by_invoice[target.invoice_id].append(
                DraftLine(charge, amount, target.tax_rate, target.line_id)
            )
            periods[target.invoice_id] = target.period
    return [
        draft_credit_note(
            lines,
            invoice_id=invoice_id,
            period=periods[invoice_id],
            currency=currency,
            issue_date=issue_date,
            rounding=rounding,
            tax_history=(tax_history or {}).get(invoice_id),
            jurisdiction=jurisdiction,
        )
        for invoice_id, lines in sorted(by_invoice.items())
    ]


def draft_credit_note(
    lines: Sequence[DraftLine],
    *,
    invoice_id: int,
    period: Period,
    currency: Currency,
    issue_date: date,
    rounding: Rounding,
    tax_history: Mapping[Decimal, CreditedTax] | None = None,
    jurisdiction: str = "",
) -> DocumentDraft:
    """One credit note of ``lines`` (each crediting a line of the invoice ``invoice_id``, for
    its billing ``period``), due on its issue date, taxed where and as the invoice was on
    everything credited against it so far (``tax_history``: the invoice's tax per rate and what
    earlier credit notes took back of it)."""
    return _draft(
        DocumentKind.CREDIT_NOTE,
        lines,
        currency=currency,
        issue_date=issue_date,
        due_date=issue_date,
        period=period,
        rounding=rounding,
        credited_invoice_id=invoice_id,
        tax_history=tax_history,
        jurisdiction=jurisdiction,
    )


def allocate_credit(
    amount: Decimal, lines: Sequence[InvoicedLine]
) -> list[tuple[InvoicedLine, Decimal]]:
    """Spread a credit over invoice lines in the given order, each up to what it still holds.
    Anything left (a rounding cent when several changes met in one period) goes on the first
    line, so that a credit is never lost."""
    parts: list[tuple[InvoicedLine, Decimal]] = []
    left = amount
    for line in lines:
        if left <= 0:
            break
        take = min(left, line.remaining)
        if take > 0:
            parts.append((line, take))
            left -= take
    if left > 0:
        if parts and parts[0][0] is lines[0]:
            parts[0] = (lines[0], parts[0][1] + left)
        else:
            parts.insert(0, (lines[0], left))
    return parts
