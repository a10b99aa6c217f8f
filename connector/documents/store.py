"""PROVISIONAL: the PDF of each document's current version, as the e-mail needs it.

This module stands in for the document store (rendering and keeping each document's PDF) with
exactly its interface: no table, and each PDF is a small one built in memory from the
document's number and version, the same inputs giving the same bytes. It is replaced as a whole
by the rendering store; nothing else is built on it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.db import tables

VERSION = 1  # every document's version until documents carry one


@dataclass(frozen=True)
class StoredPdf:
    document_id: int
    version: int  # the document's version (documents.version) the PDF shows
    filename: str  # e.g. "INV-000123.pdf" / "CN-000004.pdf" (the document number)
    sha256: str  # hex digest of content
    content: bytes


def current_pdf(session: Session, document_id: int) -> StoredPdf | None:
    """The kept PDF of the document's current version, or None while it is not rendered yet."""
    return current_pdfs(session, [document_id]).get(document_id)


def current_pdfs(session: Session, document_ids: Sequence[int]) -> dict[int, StoredPdf]:
    """The same for many documents, one query."""
    if not document_ids:
        return {}
    rows = session.execute(
        select(tables.Document.id, tables.Document.number).where(
            tables.Document.id.in_(sorted(set(document_ids)))
        )
    )
    found = {}
    for document_id, number in rows:
        content = _pdf(number, VERSION)
        found[document_id] = StoredPdf(
            document_id,
            VERSION,
            f"{number}.pdf",
            hashlib.sha256(content).hexdigest(),
            content,
        )
    return found


def _stored(session: Session, document_ids: Sequence[int]) -> None:
    """Called once a PDF is kept for these documents' versions (nothing to do here)."""


def _pdf(number: str, version: int) -> bytes:
    """A one-page PDF showing the document's number and version (deterministic bytes)."""
    text = f"{number} version {version}".replace("\\", "").replace("(", "").replace(")", "")
    stream = f"BT /F1 18 Tf 72 720 Td ({text}) Tj ET".encode("ascii", "replace")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number_, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number_, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)
