"""``/v1/payments``: money received from customers and returned to them, with where it went;
``POST /v1/payments`` records a payment as `connector payment record` does."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import Field
from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session, aliased

from connector.api.auth import ReadKey, WriteKey, instance_of
from connector.api.problems import ApiProblem
from connector.api.v1 import idempotency
from connector.api.v1.idempotency import Answer, IdempotencyClaim
from connector.api.v1.pagination import Paging, paged
from connector.api.v1.schemas import PROBLEMS, Model, Money, Page, money, money_or_none
from connector.billing.money import to_decimal
from connector.billing.payments import amount_due
from connector.db import tables
from connector.db.engine import reading
from connector.db.types import utc_now
from connector.errors import NotFoundError
from connector.sync import settlement

router = APIRouter(tags=["payments"], responses=PROBLEMS)


class Application(Model):
    """Money moved from a payment (or a credit note) to an invoice (or a refund)."""

    payment_id: int | None
    credit_note: str | None
    invoice: str | None
    refund_id: int | None
    amount: Money
    on: date


class Payment(Model):
    id: int
    kind: str
    customer_id: int
    currency: str
    amount: Money
    received_on: date
    reference: str | None
    invoice: str | None
    unapplied: Money | None
    credit_kept: Money | None
    applied: list[Application]
    created_at: datetime


class InvoiceBalance(Model):
    number: str
    status: str
    total: Money
    amount_paid: Money
    amount_due: Money


class RecordedPayment(Model):
    payment: Payment
    invoice: InvoiceBalance | None


class PaymentRequest(Model):
    """A payment received: for an invoice (its excess pays the customer's other open invoices,
    then stays as credit), or for a customer."""

    invoice: str | None = Field(default=None, description="The invoice it pays.")
    customer_id: int | None = Field(default=None, description="The customer, without invoice.")
    amount: Money
    received_on: date | None = Field(default=None, description="Default: today, UTC.")
    reference: str | None = Field(
        default=None, max_length=255, description="The bank's reference: recorded once."
    )
    again: bool = Field(
        default=False,
        description="Another payment of the same amount, day and invoice without a reference "
        "(refused otherwise, as the same payment recorded twice).",
    )


def payments_query() -> Select[tables.Payment, str]:
    """Payments with the number of the invoice each was for: page it, then give its rows to
    :func:`payment_views`."""
    invoice = aliased(tables.Document)
    return select(tables.Payment, invoice.number).outerjoin(
        invoice, invoice.id == tables.Payment.invoice_id
    )


def payment_views(
    session: Session, found: Sequence[tuple[tables.Payment, str | None]]
) -> list[Payment]:
    """Payments with where their money went: one more statement for any number of them."""
    ids = [row.id for row, _ in found]
    applied: dict[int, list[tuple[tables.Allocation, str | None, str | None]]] = defaultdict(list)
    if ids:
        allocation = tables.Allocation
        invoice, note = aliased(tables.Document), aliased(tables.Document)
        for row, number, note_number in session.execute(
            select(allocation, invoice.number, note.number)
            .outerjoin(invoice, invoice.id == allocation.invoice_id)
            .outerjoin(note, note.id == allocation.credit_note_id)
            .where(or_(allocation.payment_id.in_(ids), allocation.refund_id.in_(ids)))
            .order_by(allocation.id)
        ):
            for owner in (row.payment_id, row.refund_id):
                if owner in ids:
                    applied[owner].append((row, number, note_number))
    return [
        Payment(
            id=row.id,
            kind=row.kind,
            customer_id=row.customer_id,
            currency=row.currency,
            amount=money(row.amount, row.currency),
            received_on=row.received_on,
            reference=row.reference,
            invoice=invoice_number,
            unapplied=money_or_none(row.unapplied, row.currency),
            credit_kept=money_or_none(row.credit_kept, row.currency),
            applied=[
                Application(
                    payment_id=allocation.payment_id,
                    credit_note=note_number,
                    invoice=number,
                    refund_id=allocation.refund_id,
                    amount=money(allocation.amount, row.currency),
                    on=allocation.allocated_on,
                )
                for allocation, number, note_number in applied.get(row.id, [])
            ],
            created_at=row.created_at,
        )
        for row, invoice_number in found
    ]


@router.get("/payments", response_model=Page[Payment], summary="List payments and refunds")
def list_payments(  # noqa: PLR0917 - one parameter per filter
    request: Request,
    _key: ReadKey,
    page: Paging,
    customer_id: Annotated[int | None, Query(description="Only this customer's.")] = None,
    kind: Annotated[Literal["payment", "refund"] | None, Query()] = None,
    received_from: Annotated[date | None, Query(description="On or after this day.")] = None,
    received_to: Annotated[date | None, Query(description="On or before this day.")] = None,
) -> Page[Payment]:
    row = tables.Payment
    query = payments_query().where(row.id > page.after)
    if customer_id is not None:
        query = query.where(row.customer_id == customer_id)
    if kind is not None:
        query = query.where(row.kind == kind)
    if received_from is not None:
        query = query.where(row.received_on >= received_from)
    if received_to is not None:
        query = query.where(row.received_on <= received_to)
    with reading(instance_of(request).factory) as session:
        rows = session.execute(query.order_by(row.id).limit(page.fetch)).all()
        kept, cursor = paged(rows, page, lambda found: found[0].id)
        return Page[Payment](data=payment_views(session, kept), next_cursor=cursor)


@router.get("/payments/{payment_id}", response_model=Payment, summary="One payment or refund")
def get_payment(request: Request, _key: ReadKey, payment_id: int) -> Payment:
    with reading(instance_of(request).factory) as session:
        rows = session.execute(payments_query().where(tables.Payment.id == payment_id)).all()
        if not rows:
            raise NotFoundError(f"unknown payment {payment_id}")
        return payment_views(session, rows)[0]


@router.post(
    "/payments",
    response_model=RecordedPayment,
    status_code=201,
    summary="Record a payment",
    openapi_extra=idempotency.OPENAPI,
)
def record_payment(
    request: Request, _key: WriteKey, claim: IdempotencyClaim, body: PaymentRequest
) -> JSONResponse:
    settings = instance_of(request).settings

    def work(session: Session) -> Answer:
        try:
            payment = settlement.record_payment(
                session,
                amount=to_decimal(body.amount, what="amount"),
                received_on=body.received_on or utc_now().date(),
                invoice_number=body.invoice,
                customer_id=body.customer_id,
                reference=body.reference,
                again=body.again,
                max_amount=settings.billing.max_amount,
            )
        except settlement.DuplicatePaymentError as error:
            raise ApiProblem(
                409,
                f'{error}; if it is another payment, send it with "again": true (or give '
                "each its reference)",
                slug="duplicate-payment",
            ) from None
        invoice, number = None, None
        if payment.invoice_id is not None:
            doc = session.get_one(tables.Document, payment.invoice_id)
            code = doc.currency
            invoice = InvoiceBalance(
                number=doc.number,
                status=doc.status,
                total=money(doc.total, code),
                amount_paid=money(doc.amount_paid, code),
                amount_due=money(amount_due(doc.total, doc.amount_paid, doc.amount_credited), code),
            )
            number = doc.number
        answer = RecordedPayment(
            payment=payment_views(session, [(payment, number)])[0], invoice=invoice
        )
        return Answer(201, answer.model_dump(mode="json"))

    return idempotency.once(request, claim, work)
