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

from sqlalchemy import and_, bindparam, delete, func, select, update
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


def queue_renders(session: Session, document_ids: Sequence[int]) -> None:
    """Mark these documents for rendering (just issued, or their version raised), in the
    transaction of the change: one statement."""
    if document_ids:
        statement = _insert(session, tables.RenderQueue)
        session.execute(
            statement.on_conflict_do_update(  # a new version is tried again, held or not
                index_elements=["document_id"], set_={"error": None}
            ),
            [
                {"document_id": document_id, "error": None}
                for document_id in sorted(set(document_ids))
            ],
        )


def hold(session: Session, failed: dict[int, str]) -> None:
    """Hold these documents in the render queue with why their rendering failed: they are not
    tried again until their version changes. One statement."""
    if failed:
        queued = tables.table_of(tables.RenderQueue)
        session.execute(
            update(queued)
            .where(queued.c.document_id == bindparam("b_id"))
            .values(error=bindparam("b_error")),
            [{"b_id": doc_id, "b_error": error} for doc_id, error in sorted(failed.items())],
        )


def held(session: Session) -> list[tuple[str, str]]:
    """(document number, why) of each document held unrendered."""
    queued, doc = tables.RenderQueue, tables.Document
    return [
        (number, error or "")
        for number, error in session.execute(
            select(doc.number, queued.error)
            .join(doc, doc.id == queued.document_id)
            .where(queued.error.is_not(None))
            .order_by(doc.id)
        )
    ]


def queue_depth(session: Session) -> dict[str, int]:
    """Documents in the render queue: ``waiting`` for the send stage, ``held`` after their
    rendering failed; one query."""
    queued = tables.RenderQueue
    counts = {"waiting": 0, "held": 0}
    failed = queued.error.is_not(None).label("failed")
    for held_row, count in session.execute(select(failed, func.count()).group_by(failed)):
        counts["held" if held_row else "waiting"] = count
    return counts


def unrendered(session: Session, limit: int) -> list[int]:
    """Up to ``limit`` documents whose current version has no PDF yet, oldest first: read from
    the render queue, never from the whole history."""
    queued, doc, file = tables.RenderQueue, tables.Document, tables.DocumentFile
    return list(
        session.scalars(
            select(queued.document_id)
            .join(doc, doc.id == queued.document_id)
            .outerjoin(file, and_(file.document_id == doc.id, file.version == doc.version))
            .where(file.document_id.is_(None), queued.error.is_(None))
            .order_by(queued.document_id)
            .limit(limit)
        )
    )


def _insert(session: Session, table: type[tables.Base]) -> sqlite.Insert | postgresql.Insert:
    dialect = sqlite if session.get_bind().dialect.name == "sqlite" else postgresql
    return dialect.insert(tables.table_of(table))


def keep(session: Session, pdfs: Sequence[RenderedPdf]) -> list[int]:
    """Store ``pdfs`` (a version already kept is left as it is) and take their documents off
    the render queue; the ids of the documents whose PDF is new. Three statements."""
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
    # Out of the queue: the documents whose current version is kept now (a version raised
    # while this one was rendered stays).
    queued, doc = tables.table_of(tables.RenderQueue), tables.Document
    session.execute(
        delete(queued).where(
            queued.c.document_id.in_(
                select(doc.id)
                .join(
                    files,
                    and_(files.c.document_id == doc.id, files.c.version == doc.version),
                )
                .where(doc.id.in_(sorted({pdf.document_id for pdf in pdfs})))
            )
        )
    )
    stored = sorted(new)
    _stored(session, stored)
    return stored


def _stored(session: Session, document_ids: Sequence[int]) -> None:
    """Called in the transaction that keeps a new PDF of each of these documents: the next
    write-back attaches it to the document's invoice record in Salesforce (a new version of
    its file)."""
    writeback_queue.mark(session, writeback_queue.FILE, document_ids)
