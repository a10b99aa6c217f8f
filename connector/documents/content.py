"""What a document shows, read from the billing core for a batch of documents at once (one
query per table): the document and its customer, its lines, its taxes per rate exactly as the
billing core computed and stored them (never computed again here), and for a credit note the
invoice it corrects."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from connector.billing.money import ZERO, currency, round_money
from connector.db import tables

HUNDRED = Decimal(100)


@dataclass(frozen=True)
class Party:
    name: str
    address: tuple[str, ...]
    country: str  # ISO 3166 code
    tax_id: str | None
    language: str | None = None


@dataclass(frozen=True)
class Line:
    product: str  # the product's name
    detail: str | None  # the billing core's description, when it says more than the columns
    service_start: date
    service_end: date
    quantity: Decimal
    discount_percent: Decimal
    amount: Decimal  # after discount, as billed
    tax_rate: Decimal
    gross: Decimal  # before discount, in the currency's minor unit
    unit_price: Decimal | None  # gross / quantity, when a whole number of minor units

    @property
    def discount(self) -> Decimal:
        return self.gross - self.amount


@dataclass(frozen=True)
class TaxRate:
    rate: Decimal
    taxable: Decimal
    tax: Decimal
    jurisdiction: str
    reverse_charge: bool


@dataclass(frozen=True)
class DocumentContent:
    id: int
    version: int
    kind: str  # invoice, credit_note
    number: str
    status: str
    currency: str
    issue_date: date
    due_date: date
    buyer: Party
    lines: tuple[Line, ...]
    taxes: tuple[TaxRate, ...]
    subtotal: Decimal
    tax_total: Decimal
    total: Decimal
    amount_paid: Decimal
    amount_credited: Decimal
    tax_note: str | None
    corrects: str | None  # a credit note: the invoice's number
    reason: str | None

    @property
    def balance_due(self) -> Decimal:
        return self.total - self.amount_paid - self.amount_credited

    @property
    def filename(self) -> str:
        return f"{self.number}.pdf"

    def texts(self) -> list[str]:
        """Every text of the customer's that the document prints (to choose the fonts)."""
        return [
            self.buyer.name,
            *self.buyer.address,
            self.buyer.tax_id or "",
            self.reason or "",
            *(line.product for line in self.lines),
            *(line.detail or "" for line in self.lines),
        ]


def _detail(row: tables.DocumentLine, product: str) -> str | None:
    """The line's description unless it only repeats the product, quantity, service period
    and discount that the document shows in their own columns."""
    plain = row.description.split(" (discount ")[0]
    service = f"{row.service_start.isoformat()}..{row.service_end.isoformat()}"
    quantity = f"{product} × {row.quantity:f}"
    return None if plain in {quantity, f"{quantity}, {service}"} else row.description


def _line(row: tables.DocumentLine, product: str, code: str) -> Line:
    unit = currency(code)
    amount = row.amount
    if row.discount_percent and row.discount_percent < HUNDRED:
        gross = round_money(amount * HUNDRED / (HUNDRED - row.discount_percent), unit)
    else:
        gross = amount
    price = gross / row.quantity if row.quantity else gross
    exact = round_money(price, unit)
    unit_price = exact if exact == price else None  # a prorated or partly credited line
    return Line(
        product,
        _detail(row, product),
        row.service_start,
        row.service_end,
        row.quantity,
        row.discount_percent,
        amount,
        row.tax_rate,
        gross,
        unit_price,
    )


def _join(*parts: str | None, between: str = " ") -> str:
    return between.join(part for part in parts if part)


def _address(customer: tables.Customer) -> tuple[str, ...]:
    """The billing address in the order of the customer's country (the country's name is
    added by the layout, in the document's language)."""
    street = [part.strip() for part in (customer.address_street or "").splitlines()]
    street = [part for part in street if part]
    city, state, code = customer.address_city, customer.address_state, customer.address_postal_code
    if customer.country == "JP":  # 〒100-6690, then prefecture, city, street
        lines = [f"〒{code}" if code else "", _join(state, city, between=""), *street]
    elif customer.country in {"US", "CA", "AU"}:  # New York, NY 10110
        lines = [*street, _join(_join(city, state, between=", "), code)]
    elif customer.country in {"GB", "IE"}:
        lines = [*street, city or "", state or "", code or ""]
    else:  # 10117 Berlin
        lines = [*street, _join(code, city), state or ""]
    return tuple(line for line in lines if line)


def load_contents(session: Session, document_ids: Sequence[int]) -> dict[int, DocumentContent]:
    """The content of each document (the current version), by id: four queries."""
    ids = sorted(set(document_ids))
    if not ids:
        return {}
    doc, customer = tables.Document, tables.Customer
    corrected = aliased(tables.Document)
    rows = session.execute(
        select(doc, customer, corrected.number)
        .join(customer, customer.id == doc.customer_id)
        .outerjoin(corrected, corrected.id == doc.invoice_id)
        .where(doc.id.in_(ids))
    ).all()
    lines: dict[int, list[tuple[tables.DocumentLine, str]]] = defaultdict(list)
    for line, product in session.execute(
        select(tables.DocumentLine, tables.Product.name)
        .join(tables.Product, tables.Product.id == tables.DocumentLine.product_id)
        .where(tables.DocumentLine.document_id.in_(ids))
        .order_by(tables.DocumentLine.document_id, tables.DocumentLine.id)
    ):
        lines[line.document_id].append((line, product))
    taxes: dict[int, list[TaxRate]] = defaultdict(list)
    for tax in session.scalars(
        select(tables.DocumentTax)
        .where(tables.DocumentTax.document_id.in_(ids))
        .order_by(tables.DocumentTax.document_id, tables.DocumentTax.id)
    ):
        taxes[tax.document_id].append(
            TaxRate(tax.rate, tax.taxable, tax.tax, tax.jurisdiction, tax.reverse_charge)
        )
    contents = {}
    for document, buyer, corrects in rows:
        contents[document.id] = DocumentContent(
            id=document.id,
            version=document.version,
            kind=document.kind,
            number=document.number,
            status=document.status,
            currency=document.currency,
            issue_date=document.issue_date,
            due_date=document.due_date,
            buyer=Party(buyer.name, _address(buyer), buyer.country, buyer.tax_id, buyer.language),
            lines=tuple(
                _line(row, product, document.currency) for row, product in lines[document.id]
            ),
            taxes=tuple(sorted(taxes[document.id], key=lambda tax: -tax.rate)),
            subtotal=document.subtotal,
            tax_total=document.tax_total,
            total=document.total,
            amount_paid=document.amount_paid if document.kind == "invoice" else ZERO,
            amount_credited=document.amount_credited if document.kind == "invoice" else ZERO,
            tax_note=document.tax_note,
            corrects=corrects,
            reason=document.reason,
        )
    return contents
