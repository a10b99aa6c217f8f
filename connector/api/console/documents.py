"""Invoices and credit notes: the list (by status, kind and customer, a page at a time), one
document with its lines and taxes, and its PDF (the kept one, else rendered now and kept, as
``connector invoice pdf`` does)."""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from connector.api.auth import instance_of
from connector.api.console import views
from connector.api.console.guard import User
from connector.db.documents import find_document
from connector.db.engine import reading
from connector.documents.pdf import document_pdf
from connector.documents.store import current_pdf
from connector.errors import NotFoundError
from connector.sync.reports import billed_customers, document_view, list_documents
from connector.sync.settlement import due_of

router = APIRouter(include_in_schema=False)
PAGE = 50
Status = Literal["open", "paid", "void", "issued"]
Kind = Literal["invoice", "credit_note"]


def _not_found(request: Request, user: User, number: str) -> Response:
    return views.page(
        request,
        "error.html",
        user,
        status_code=404,
        title="No such document",
        message=f"There is no invoice or credit note numbered {number}.",
    )


@router.get("/invoices")
def invoices(
    request: Request,
    user: User,
    *,
    status: Annotated[Status | None, Query()] = None,
    kind: Annotated[Kind | None, Query()] = None,
    customer: Annotated[int | None, Query()] = None,
    before: Annotated[int | None, Query()] = None,
) -> Response:
    with reading(instance_of(request).factory) as session:  # the page is made from its rows
        rows = list_documents(
            session, customer_id=customer, status=status, kind=kind, limit=PAGE + 1, before=before
        )
        more = len(rows) > PAGE
        rows = rows[:PAGE]
        filters = {"status": status, "kind": kind, "customer": customer}
        given = {name: value for name, value in filters.items() if value is not None}
        older = "/invoices?" + urlencode({**given, "before": rows[-1][0].id}) if more else None
        return views.page(
            request,
            "invoices.html",
            user,
            rows=[(doc, name, due_of(doc)) for doc, name in rows],
            customers=billed_customers(session),
            filters=filters,
            filtered=bool(given),
            older=older,
            first_page=before is None,
            first_url="/invoices" + ("?" + urlencode(given) if given else ""),
        )


@router.get("/invoices/{number}")
def invoice(request: Request, user: User, number: str) -> Response:
    with reading(instance_of(request).factory) as session:
        try:
            view = document_view(session, find_document(session, number))
        except NotFoundError:
            return _not_found(request, user, number)
        return views.page(
            request,
            "invoice.html",
            user,
            view=view,
            doc=view.document,
            due=due_of(view.document) if view.document.kind == "invoice" else None,
            pdf_kept=current_pdf(session, view.document.id) is not None,
            pdf_url=f"/invoices/{quote(number, safe='')}/pdf",
        )


@router.get("/invoices/{number}/pdf")
def invoice_pdf(request: Request, user: User, number: str) -> Response:
    instance = instance_of(request)
    try:
        pdf = document_pdf(instance.factory, instance.settings, number)
    except NotFoundError:
        return _not_found(request, user, number)
    return Response(
        pdf.content,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'inline; filename="{pdf.filename}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )
