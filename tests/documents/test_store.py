"""Kept PDFs: the same document version always renders the same bytes (in this process and in
a fresh one), and the same bytes are kept once."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from connector.db import tables
from connector.db.engine import transaction
from connector.documents.pdf import render_documents
from connector.documents.store import RenderedPdf, current_pdf, hold, keep, queue_depth
from connector.settings import Settings

SHA = """
import hashlib, sys
from connector.db.engine import make_engine, session_factory
from connector.documents.pdf import render_documents
from tests.documents.conftest import sample_settings
from pathlib import Path
settings = sample_settings(sys.argv[1], Path(sys.argv[2]))
with session_factory(make_engine(sys.argv[1]))() as session:
    for pdf in render_documents(session, [int(x) for x in sys.argv[3:]], settings):
        print(hashlib.sha256(pdf.content).hexdigest())
"""


def ids(factory: sessionmaker[Session]) -> list[int]:
    with factory() as session:
        return list(session.scalars(select(tables.Document.id).order_by(tables.Document.id)))


def test_the_same_version_renders_the_same_bytes(
    factory: sessionmaker[Session],
    doc_settings: Settings,
    samples: dict[str, str],
    database_url: str,
    tmp_path: Path,
) -> None:
    documents = ids(factory)
    with factory() as session:
        first = render_documents(session, documents, doc_settings)
        second = render_documents(session, documents, doc_settings)
    assert [pdf.content for pdf in first] == [pdf.content for pdf in second]
    assert len({pdf.sha256 for pdf in first}) == 4  # four different documents
    fresh = subprocess.run(
        [sys.executable, "-c", SHA, database_url, str(tmp_path), *map(str, documents)],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert fresh.stdout.split() == [pdf.sha256 for pdf in first]
    assert all(pdf.content.startswith(b"%PDF-1.") for pdf in first)
    assert b"/CreationDate (D:20260101000000Z" in first[0].content


def test_the_same_bytes_are_kept_once(
    factory: sessionmaker[Session], doc_settings: Settings, samples: dict[str, str]
) -> None:
    documents = ids(factory)
    with factory() as session:
        [pdf] = render_documents(session, documents[:1], doc_settings)
    twin = RenderedPdf(documents[1], 1, "twin.pdf", "en", pdf.content)
    with transaction(factory) as session:
        assert keep(session, [pdf, twin]) == documents[:2]
    with transaction(factory) as session:
        assert keep(session, [pdf]) == []  # already kept: nothing new
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(tables.PdfContent)) == 1
        kept = current_pdf(session, documents[0])
        assert current_pdf(session, documents[2]) is None
    assert kept is not None
    assert (kept.version, kept.filename, kept.content) == (1, pdf.filename, pdf.content)
    assert kept.sha256 == hashlib.sha256(pdf.content).hexdigest()


def test_the_render_queue_depth(
    factory: sessionmaker[Session], doc_settings: Settings, samples: dict[str, str]
) -> None:
    documents = ids(factory)
    with factory() as session:
        assert queue_depth(session) == {"waiting": len(documents), "held": 0}
        [pdf] = render_documents(session, documents[:1], doc_settings)
    with transaction(factory) as session:
        keep(session, [pdf])
        hold(session, {documents[1]: "the logo file is missing"})
    with factory() as session:
        assert queue_depth(session) == {"waiting": len(documents) - 2, "held": 1}
