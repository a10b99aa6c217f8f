"""The send stage's rendering: every document whose current version has no PDF yet (a new
invoice or credit note, or one whose payments, credits or void changed what it shows) is
rendered once and kept, ``documents.batch_size`` at a time: a batch's content is read in one
short transaction, rendered with no transaction open (no lock held meanwhile), and kept in
another. A crash loses at most the batch in hand, which the next run renders again (the same
bytes); a version that changed meanwhile is rendered by the next batch (only the current
version's PDF is ever served). A document that fails to render is held in the render queue
with the reason (shown by ``connector status``; tried again once its version changes) while the
others go on. A stop request (SIGTERM) keeps what the batch in hand has rendered so far, then
ends the stage."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from connector.db.engine import transaction
from connector.documents import store
from connector.documents.content import load_contents
from connector.documents.pdf import render_content
from connector.errors import ConfigError

if TYPE_CHECKING:
    from connector.sync.cycle import Runtime

log = logging.getLogger(__name__)


@dataclass
class RenderResult:
    rendered: int = 0
    stored: int = 0
    bytes: int = 0
    held: dict[str, str] = field(default_factory=dict)  # document number -> why not rendered

    def to_dict(self) -> dict[str, Any]:
        counts: dict[str, Any] = {
            "rendered": self.rendered,
            "stored": self.stored,
            "bytes": self.bytes,
        }
        if self.held:
            counts["render_held"] = dict(self.held)
        return counts


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
        failed: dict[int, str] = {}
        for key in sorted(contents):
            try:
                pdfs.append(render_content(contents[key], runtime.settings))
            except ConfigError:
                raise  # the settings or templates: every document would fail alike
            except Exception as error:  # this document alone: held, the others go on
                failed[key] = f"{type(error).__name__}: {error}"[:1000]
                result.held[contents[key].number] = failed[key]
                log.warning("%s not rendered: %s", contents[key].number, failed[key])
            if runtime.stop.is_set():
                break
        with transaction(runtime.factory) as session:
            kept = store.keep(session, pdfs)
            store.hold(session, failed)
        result.rendered += len(pdfs)
        result.stored += len(kept)
        result.bytes += sum(len(pdf.content) for pdf in pdfs)
        runtime.stop.checkpoint()
        if len(ids) < size:
            break
    return result
