"""The send stage's rendering: every document whose current version has no PDF yet (a new
invoice or credit note, or one whose payments, credits or void changed what it shows) is
rendered once and kept, ``documents.batch_size`` at a time: a batch's content is read in one
short transaction, rendered with no transaction open (no lock held meanwhile), and kept in
another. A crash loses at most the batch in hand, which the next run renders again (the same
bytes); a version that changed meanwhile is rendered by the next batch (only the current
version's PDF is ever served). A stop request (SIGTERM) keeps what the batch in hand has
rendered so far, then ends the stage."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from connector.db.engine import transaction
from connector.documents import store
from connector.documents.content import load_contents
from connector.documents.pdf import render_content

if TYPE_CHECKING:
    from connector.sync.cycle import Runtime


@dataclass
class RenderResult:
    rendered: int = 0
    stored: int = 0
    bytes: int = 0

    def to_dict(self) -> dict[str, int]:
        return {"rendered": self.rendered, "stored": self.stored, "bytes": self.bytes}


def render_documents(runtime: Runtime) -> dict[str, int]:
    """Render and keep the PDFs not kept yet; the counts."""
    return render_new(runtime).to_dict()


def render_new(runtime: Runtime) -> RenderResult:
    result = RenderResult()
    if not runtime.settings.documents.render:
        return result  # queued until rendering is on
    size = runtime.settings.documents.batch_size
    while True:
        with transaction(runtime.factory) as session:  # short: no lock held while rendering
            ids = store.unrendered(session, size)
            contents = load_contents(session, ids)
        if not ids:
            break
        pdfs: list[store.RenderedPdf] = []
        for key in sorted(contents):
            pdfs.append(render_content(contents[key], runtime.settings))
            if runtime.stop.is_set():
                break
        with transaction(runtime.factory) as session:
            kept = store.keep(session, pdfs)
        result.rendered += len(pdfs)
        result.stored += len(kept)
        result.bytes += sum(len(pdf.content) for pdf in pdfs)
        runtime.stop.checkpoint()
        if len(ids) < size:
            break
    return result
