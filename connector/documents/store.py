"""The kept PDFs: one file per document version (``document_files``), its bytes kept once by
their SHA-256 (``pdf_contents``), so that the same bytes are never stored twice.

``current_pdf`` / ``current_pdfs`` give the PDF of a document's current version (None until the
send stage, or ``connector invoice pdf``, renders it); :func:`keep` stores rendered PDFs set-based
(one statement per table however many), ignoring a version already kept, and calls the
:func:`_stored` hook with the documents whose PDF is new, in the same transaction.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import and_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from connector.db import tables, writeback_queue
from connector.db.types import utc_now


@dataclass(frozen=True)
class StoredPdf:
    document_id: int
    version: int  # the document's version (documents.version) the PDF shows
    filename: str  # e.g. "INV-000123.pdf" / "CN-000004.pdf" (the document number)
    sha256: str  # hex digest of content
    content: bytes


@dataclass(frozen=True)
class RenderedPdf:
    document_id: int
    version: int
    filename: str
    language: str
    content: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


def current_pdf(session: Session, document_id: int) -> StoredPdf | None:
    """The kept PDF of the document's current version, or None while it is not rendered yet."""
    return current_pdfs(session, [document_id]).get(document_id)


def current_pdfs(session: Session, document_ids: Sequence[int]) -> dict[int, StoredPdf]:
    """The same for many documents, one query."""
    ids = sorted(set(document_ids))
    if not ids:
        return {}
    doc, file, content = tables.Document, tables.DocumentFile, tables.PdfContent
    rows = session.execute(
        select(file.document_id, file.version, file.filename, file.sha256, content.content)
        .join(doc, and_(doc.id == file.document_id, doc.version == file.version))
        .join(content, content.sha256 == file.sha256)
        .where(file.document_id.in_(ids))
    )
    return {
        row.document_id: StoredPdf(
            row.document_id, row.version, row.filename, row.sha256, bytes(row.content)
        )
        for row in rows
    }


def unrendered(session: Session, limit: int) -> list[int]:
    """Up to ``limit`` documents whose current version has no PDF yet, oldest first."""
    doc, file = tables.Document, tables.DocumentFile
    return list(
        session.scalars(
            select(doc.id)
            .outerjoin(file, and_(file.document_id == doc.id, file.version == doc.version))
            .where(file.document_id.is_(None))
            .order_by(doc.id)
            .limit(limit)
        )
    )


def _insert(session: Session, table: type[tables.Base]) -> sqlite.Insert | postgresql.Insert:
    dialect = sqlite if session.get_bind().dialect.name == "sqlite" else postgresql
    return dialect.insert(tables.table_of(table))


def keep(session: Session, pdfs: Sequence[RenderedPdf]) -> list[int]:
    """Store ``pdfs`` (a version already kept is left as it is); the ids of the documents whose
    PDF is new. Two statements."""
    if not pdfs:
        return []
    now = utc_now()
    contents = {pdf.sha256: pdf.content for pdf in pdfs}
    session.execute(
        _insert(session, tables.PdfContent).on_conflict_do_nothing(),
        [
            {"sha256": sha, "content": data, "size": len(data), "created_at": now}
            for sha, data in sorted(contents.items())
        ],
    )
    files = tables.table_of(tables.DocumentFile)
    new = session.scalars(
        _insert(session, tables.DocumentFile)
        .values(
            [
                {
                    "document_id": pdf.document_id,
                    "version": pdf.version,
                    "sha256": pdf.sha256,
                    "filename": pdf.filename,
                    "language": pdf.language,
                    "created_at": now,
                }
                for pdf in pdfs
            ]
        )
        .on_conflict_do_nothing()
        .returning(files.c.document_id)
    ).all()
    stored = sorted(new)
    _stored(session, stored)
    return stored


def _stored(session: Session, document_ids: Sequence[int]) -> None:
    """Called in the transaction that keeps a new PDF of each of these documents: the next
    write-back attaches it to the document's invoice record in Salesforce (a new version of
    its file)."""
    writeback_queue.mark(session, writeback_queue.FILE, document_ids)
