"""Invoices and credit notes as the API shows them, read set-based: a page of documents with
their lines and taxes costs three statements (documents, lines, taxes) however long it is."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, aliased

from connector.api.v1.schemas import DecimalText, Model, Money, decimal_text, money, money_or_none
from connector.billing.invoicing import DocumentKind
from connector.billing.money import ZERO
from connector.billing.payments import InvoiceStatus, amount_due
from connector.db import tables


class Line(Model):
    position: int  # from 1, as `connector invoice show` numbers them (and credits take them)
    kind: str
    product_code: str
    description: str
    quantity: DecimalText
    discount_percent: DecimalText
    service_start: date
    service_end: date
    amount: Money
    tax_rate: DecimalText
    credited_amount: Money


class Tax(Model):
    jurisdiction: str
    rate: DecimalText
    taxable: Money
    tax: Money
    reverse_charge: bool


class Document(Model):
    id: int
    kind: str
    number: str
    status: str
    customer_id: int
    customer_name: str
    subscription_id: int | None
    credited_invoice: str | None
    currency: str
    issue_date: date
    due_date: date
    period_start: date
    period_end: date
    subtotal: Money
    tax_total: Money
    total: Money
    amount_paid: Money
    amount_credited: Money
    amount_due: Money
    unapplied: Money | None
    tax_note: str | None
    reason: str | None
    reference: str | None
    version: int
    created_at: datetime
    lines: list[Line]
    taxes: list[Tax]


def documents_query(kind: DocumentKind) -> Select[tables.Document, str, str]:
    """Documents of ``kind`` with their customer's name and the number of the invoice a credit
    note credits; filter and page it, then give its rows to :func:`document_views`."""
    credited = aliased(tables.Document)
    return (
        select(tables.Document, tables.Customer.name, credited.number)
        .join(tables.Customer, tables.Customer.id == tables.Document.customer_id)
        .outerjoin(credited, credited.id == tables.Document.invoice_id)
        .where(tables.Document.kind == kind.value)
    )


def document_views(session: Session, rows: Sequence[Any]) -> list[Document]:
    """The documents of ``rows`` (from :func:`documents_query`) with their lines and taxes:
    two more statements."""
    ids = [row[0].id for row in rows]
    lines: dict[int, list[Any]] = defaultdict(list)
    taxes: dict[int, list[Any]] = defaultdict(list)
    if ids:
        line = tables.DocumentLine
        for found in session.execute(
            select(line, tables.Product.code)
            .join(tables.Product, tables.Product.id == line.product_id)
            .where(line.document_id.in_(ids))
            .order_by(line.document_id, line.id)
        ):
            lines[found[0].document_id].append(found)
        for tax in session.scalars(
            select(tables.DocumentTax)
            .where(tables.DocumentTax.document_id.in_(ids))
            .order_by(tables.DocumentTax.document_id, tables.DocumentTax.id)
        ):
            taxes[tax.document_id].append(tax)
    return [
        _document(doc, customer, credited, lines.get(doc.id, []), taxes.get(doc.id, []))
        for doc, customer, credited in rows
    ]


def _document(
    doc: tables.Document,
    customer: str,
    credited: str | None,
    lines: Sequence[Any],
    taxes: Sequence[tables.DocumentTax],
) -> Document:
    code = doc.currency
    return Document(
        id=doc.id,
        kind=doc.kind,
        number=doc.number,
        status=doc.status,
        customer_id=doc.customer_id,
        customer_name=customer,
        subscription_id=doc.subscription_id,
        credited_invoice=credited,
        currency=code,
        issue_date=doc.issue_date,
        due_date=doc.due_date,
        period_start=doc.period_start,
        period_end=doc.period_end,
        subtotal=money(doc.subtotal, code),
        tax_total=money(doc.tax_total, code),
        total=money(doc.total, code),
        amount_paid=money(doc.amount_paid, code),
        amount_credited=money(doc.amount_credited, code),
        amount_due=money(
            amount_due(doc.total, doc.amount_paid, doc.amount_credited)
            if doc.kind == DocumentKind.INVOICE.value and doc.status != InvoiceStatus.VOID.value
            else ZERO,
            code,
        ),
        unapplied=money_or_none(doc.unapplied, code),
        tax_note=doc.tax_note,
        reason=doc.reason,
        reference=doc.reference,
        version=doc.version,
        created_at=doc.created_at,
        lines=[
            Line(
                position=position,
                kind=row.kind,
                product_code=product_code,
                description=row.description,
                quantity=decimal_text(row.quantity),
                discount_percent=decimal_text(row.discount_percent),
                service_start=row.service_start,
                service_end=row.service_end,
                amount=money(row.amount, code),
                tax_rate=decimal_text(row.tax_rate),
                credited_amount=money(row.credited_amount, code),
            )
            for position, (row, product_code) in enumerate(lines, start=1)
        ],
        taxes=[
            Tax(
                jurisdiction=tax.jurisdiction,
                rate=decimal_text(tax.rate),
                taxable=money(tax.taxable, code),
                tax=money(tax.tax, code),
                reverse_charge=tax.reverse_charge,
            )
            for tax in taxes
        ],
    )
