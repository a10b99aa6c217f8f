"""``POST /v1/invoices/{number}/credit-notes``: a credit note on an invoice, paid or not, as
`connector invoice credit` issues it (once per correction: its reference)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import Field
from sqlalchemy.orm import Session

from connector.api.auth import WriteKey, instance_of
from connector.api.v1 import idempotency
from connector.api.v1.document_views import Document, document_views, documents_query
from connector.api.v1.idempotency import Answer, IdempotencyClaim
from connector.api.v1.schemas import PROBLEMS, Model, Money
from connector.billing.invoicing import DocumentKind
from connector.billing.money import to_decimal
from connector.db import tables
from connector.db.types import utc_now
from connector.errors import InvalidInputError
from connector.sync import corrections

router = APIRouter(tags=["documents"], responses=PROBLEMS)


class LineCredit(Model):
    position: int = Field(ge=1, description="The invoice line, numbered from 1 as listed.")
    amount: Money | None = Field(
        default=None, description="Before tax; default: all the line still holds."
    )


class CreditRequest(Model):
    reason: str = Field(min_length=1, max_length=500, description="Kept, and on its lines.")
    amount: Money | None = Field(
        default=None,
        description="Before tax, spread over the invoice's lines in proportion to what each "
        "still holds (default: all it still holds). Not with lines.",
    )
    lines: list[LineCredit] | None = Field(default=None, description="Lines to credit.")
    reference: str | None = Field(
        default=None,
        max_length=255,
        description="The correction's reference: issuing it again changes nothing (default: "
        "the invoice and the reason).",
    )
    issue_date: date | None = Field(default=None, description="Default: today, UTC.")


class Credited(Model):
    issued: bool = Field(description="False when this correction had been issued before.")
    credit_note: Document


def _lines(lines: list[LineCredit]) -> dict[int, Decimal | None]:
    credits: dict[int, Decimal | None] = {}
    for line in lines:
        if line.position in credits:
            raise InvalidInputError(f"line {line.position} is given twice", where="lines")
        credits[line.position] = (
            None if line.amount is None else to_decimal(line.amount, what="amount")
        )
    if not credits:
        raise InvalidInputError("names no line", where="lines")
    return dict(credits)


@router.post(
    "/invoices/{number}/credit-notes",
    response_model=Credited,
    status_code=201,
    summary="Issue a credit note on an invoice",
    responses={200: {"model": Credited, "description": "Issued before for this correction."}},
    openapi_extra=idempotency.OPENAPI,
)
def issue_credit_note(
    request: Request, _key: WriteKey, claim: IdempotencyClaim, number: str, body: CreditRequest
) -> JSONResponse:
    """It reduces what the invoice still owes; what is left is the customer's credit."""
    settings = instance_of(request).settings

    def work(session: Session) -> Answer:
        done = corrections.credit_in(
            session,
            settings,
            number,
            reason=body.reason,
            on=body.issue_date or utc_now().date(),
            amount=None if body.amount is None else to_decimal(body.amount, what="amount"),
            lines=None if body.lines is None else _lines(body.lines),
            reference=body.reference,
        )
        session.flush()
        rows = session.execute(
            documents_query(DocumentKind.CREDIT_NOTE).where(
                tables.Document.id == done.credit_note.id
            )
        ).all()
        answer = Credited(issued=done.issued, credit_note=document_views(session, rows)[0])
        return Answer(201 if done.issued else 200, answer.model_dump(mode="json"))

    return idempotency.once(request, claim, work)
