"""``/v1/invoices`` and ``/v1/credit-notes``: the documents issued, with their lines and taxes,
and the PDF of each one's latest version."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy import select

from connector.api.auth import ReadKey, instance_of
from connector.api.v1.document_views import Document, document_views, documents_query
from connector.api.v1.pagination import PageRequest, Paging, paged
from connector.api.v1.schemas import PROBLEMS, Page
from connector.billing.invoicing import DocumentKind
from connector.db import tables
from connector.db.engine import reading
from connector.documents.pdf import document_pdf
from connector.documents.store import current_pdf
from connector.errors import NotFoundError

router = APIRouter(tags=["documents"], responses=PROBLEMS)

CustomerFilter = Annotated[int | None, Query(description="Only this customer's.")]
IssuedFrom = Annotated[date | None, Query(description="Issued on or after this day.")]
IssuedTo = Annotated[date | None, Query(description="Issued on or before this day.")]
PDF_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The PDF of the document's latest version.",
        "content": {"application/pdf": {}},  # bytes, no JSON schema (OpenAPI 3.1)
    }
}


def _list(  # noqa: PLR0917 - the filters, as the routes take them
    request: Request,
    kind: DocumentKind,
    page: PageRequest,
    customer_id: int | None,
    status: str | None,
    issued_from: date | None,
    issued_to: date | None,
) -> Page[Document]:
    doc = tables.Document
    query = documents_query(kind).where(doc.id > page.after)
    if customer_id is not None:
        query = query.where(doc.customer_id == customer_id)
    if status is not None:
        query = query.where(doc.status == status)
    if issued_from is not None:
        query = query.where(doc.issue_date >= issued_from)
    if issued_to is not None:
        query = query.where(doc.issue_date <= issued_to)
    with reading(instance_of(request).factory) as session:
        rows = session.execute(query.order_by(doc.id).limit(page.fetch)).all()
        kept, cursor = paged(rows, page, lambda row: row[0].id)
        return Page[Document](data=document_views(session, kept), next_cursor=cursor)


def _one(request: Request, kind: DocumentKind, number: str) -> Document:
    with reading(instance_of(request).factory) as session:
        rows = session.execute(documents_query(kind).where(tables.Document.number == number)).all()
        if not rows:
            raise NotFoundError(f"unknown {_word(kind)} {number!r}")
        return document_views(session, rows)[0]


def _pdf(request: Request, kind: DocumentKind, number: str) -> Response:
    """The kept PDF of the document's latest version; rendered and kept now when the send stage
    has not rendered it yet (as `connector invoice pdf` does)."""
    instance = instance_of(request)
    with reading(instance.factory) as session:
        found = session.scalar(
            select(tables.Document.id).where(
                tables.Document.number == number, tables.Document.kind == kind.value
            )
        )
        if found is None:
            raise NotFoundError(f"unknown {_word(kind)} {number!r}")
        pdf = current_pdf(session, found)
    if pdf is None:
        pdf = document_pdf(instance.factory, instance.settings, number)
    return Response(
        pdf.content,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'inline; filename="{pdf.filename}"',
            "ETag": f'"{pdf.sha256}"',
            "X-Document-Version": str(pdf.version),
        },
    )


def _word(kind: DocumentKind) -> str:
    return "invoice" if kind is DocumentKind.INVOICE else "credit note"


@router.get("/invoices", response_model=Page[Document], summary="List invoices")
def list_invoices(  # noqa: PLR0917 - one parameter per filter
    request: Request,
    _key: ReadKey,
    page: Paging,
    customer_id: CustomerFilter = None,
    status: Annotated[Literal["open", "paid", "void"] | None, Query()] = None,
    issued_from: IssuedFrom = None,
    issued_to: IssuedTo = None,
) -> Page[Document]:
    return _list(request, DocumentKind.INVOICE, page, customer_id, status, issued_from, issued_to)


@router.get("/invoices/{number}", response_model=Document, summary="One invoice")
def get_invoice(request: Request, _key: ReadKey, number: str) -> Document:
    return _one(request, DocumentKind.INVOICE, number)


@router.get(
    "/invoices/{number}/pdf",
    response_class=Response,
    responses=PDF_RESPONSE,
    summary="An invoice's PDF",
)
def invoice_pdf(request: Request, _key: ReadKey, number: str) -> Response:
    return _pdf(request, DocumentKind.INVOICE, number)


@router.get("/credit-notes", response_model=Page[Document], summary="List credit notes")
def list_credit_notes(  # noqa: PLR0917 - one parameter per filter
    request: Request,
    _key: ReadKey,
    page: Paging,
    customer_id: CustomerFilter = None,
    status: Annotated[Literal["issued"] | None, Query()] = None,
    issued_from: IssuedFrom = None,
    issued_to: IssuedTo = None,
) -> Page[Document]:
    return _list(
        request, DocumentKind.CREDIT_NOTE, page, customer_id, status, issued_from, issued_to
    )


@router.get("/credit-notes/{number}", response_model=Document, summary="One credit note")
def get_credit_note(request: Request, _key: ReadKey, number: str) -> Document:
    return _one(request, DocumentKind.CREDIT_NOTE, number)


@router.get(
    "/credit-notes/{number}/pdf",
    response_class=Response,
    responses=PDF_RESPONSE,
    summary="A credit note's PDF",
)
def credit_note_pdf(request: Request, _key: ReadKey, number: str) -> Response:
    return _pdf(request, DocumentKind.CREDIT_NOTE, number)
