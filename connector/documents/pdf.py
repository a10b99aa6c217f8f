"""Documents to PDFs: each in its customer's language, with the seller of ``[seller]`` and the
templates of ``[documents]``."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from sqlalchemy.orm import Session, sessionmaker

from connector.db.documents import find_document
from connector.db.engine import transaction
from connector.documents import layout, templates
from connector.documents.content import DocumentContent, load_contents
from connector.documents.store import RenderedPdf, StoredPdf, current_pdf, keep
from connector.settings import DocumentSettings, SellerSettings, Settings


def _lines(text: str) -> tuple[str, ...]:
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def seller_of(settings: SellerSettings) -> layout.Seller:
    return layout.Seller(
        name=settings.name,
        address=_lines(settings.address),
        tax_id=settings.tax_id,
        registration_number=settings.registration_number,
        bank_details=_lines(settings.bank_details),
        logo=settings.logo,
    )


def language_of(content: DocumentContent, settings: DocumentSettings) -> str:
    return templates.choose_language(
        content.buyer.language,
        content.buyer.country,
        settings.default_language,
        templates.languages(settings.templates),
    )


def render_content(content: DocumentContent, settings: Settings) -> RenderedPdf:
    language = language_of(content, settings.documents)
    labels = templates.labels(language, settings.documents.templates)
    data = layout.render(content, labels, seller_of(settings.seller), settings.documents.font_cache)
    return RenderedPdf(content.id, content.version, content.filename, language, data)


def render_documents(
    session: Session, document_ids: Sequence[int], settings: Settings
) -> list[RenderedPdf]:
    """The PDF of each document's current version (four queries for all of them)."""
    return list(render_each(session, document_ids, settings))


def render_each(
    session: Session, document_ids: Sequence[int], settings: Settings
) -> Iterator[RenderedPdf]:
    """The same, one document after another, in the order of their ids."""
    contents = load_contents(session, document_ids)
    for key in sorted(contents):
        yield render_content(contents[key], settings)


def document_pdf(factory: sessionmaker[Session], settings: Settings, number: str) -> StoredPdf:
    """The PDF of the invoice or credit note ``number``'s current version: the kept one, else
    rendered now and kept (the same bytes the send stage would keep)."""
    with transaction(factory) as session:
        document = find_document(session, number)
        kept = current_pdf(session, document.id)
        if kept is not None:
            return kept
        [pdf] = render_documents(session, [document.id], settings)
        keep(session, [pdf])
        return StoredPdf(pdf.document_id, pdf.version, pdf.filename, pdf.sha256, pdf.content)
