"""The send stage renders each new document version once and keeps it: set-based (a handful of
statements a batch, however many documents), nothing the second time, a new PDF when a payment
changes what an invoice shows; killed (SIGKILL) while it renders, the next run leaves exactly
one file per document version."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from connector.db import tables
from connector.db.engine import transaction
from connector.documents.store import current_pdf, current_pdfs
from connector.settings import Settings
from connector.sync import rendering
from connector.sync.billing_run import run_billing
from connector.sync.cycle import STAGES, JobRun, Runtime
from connector.sync.settlement import record_payment
from connector.sync.status import status as status_of
from tests.documents.conftest import bill_samples, sample_settings
from tests.kills import Progress, kill_repeatedly, rows_of
from tests.statements import counting


def files(factory: sessionmaker[Session]) -> list[tuple[int, int]]:
    with factory() as session:
        rows = session.execute(
            select(tables.DocumentFile.document_id, tables.DocumentFile.version).order_by(
                tables.DocumentFile.document_id, tables.DocumentFile.version
            )
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


def versions(factory: sessionmaker[Session]) -> list[tuple[int, int]]:
    with factory() as session:
        rows = session.execute(
            select(tables.Document.id, tables.Document.version).order_by(tables.Document.id)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


@pytest.fixture
def doc_settings(database_url: str, tmp_path: Path) -> Settings:
    return sample_settings(database_url, tmp_path)


def rendered(run: JobRun) -> dict[str, int]:
    """What the send stage rendered (it then e-mails: its other counts)."""
    summary = run.summary() or {}
    return {key: summary[key] for key in ("rendered", "stored", "bytes")}


def test_send_runs_after_push_and_before_writeback() -> None:
    assert STAGES.index("push") < STAGES.index("send") < STAGES.index("writeback")


def test_each_new_version_is_rendered_once(
    factory: sessionmaker[Session], engine: Engine, doc_settings: Settings
) -> None:
    numbers = bill_samples(factory, doc_settings)
    runtime = Runtime(factory, doc_settings)
    with counting(engine) as statements:
        first = runtime.run("send")
    assert first.ok, first.error
    assert first.summary() is not None
    assert {key: first.summary()[key] for key in ("rendered", "stored")} == {  # type: ignore[index]
        "rendered": 4,
        "stored": 4,
    }
    work = [sql for sql in statements.sql if "job_runs" not in sql and "api_usage" not in sql]
    by_table = {
        table: len([sql for sql in work if table in sql])
        for table in (
            "render_queue",
            "document_files",
            "pdf_contents",
            "document_lines",
            "document_taxes",
        )
    }
    # One batch: the queued documents without a PDF, their content (documents and customers,
    # lines, taxes), then the PDFs' bytes and files, and the documents off the queue: one
    # statement each, whatever the batch's size.
    assert by_table == {
        "render_queue": 2,
        "document_files": 3,
        "pdf_contents": 1,
        "document_lines": 1,
        "document_taxes": 1,
    }
    # pdf_contents, document_files, the files to attach in Salesforce (the write-back's
    # queue), job_runs
    assert statements.by_verb()["INSERT"] == 4
    assert statements.by_verb()["DELETE"] == 1  # off the queue
    assert files(factory) == [(id_, 1) for id_, _ in versions(factory)]

    with counting(engine) as again:
        second = runtime.run("send")
    assert rendered(second) == {"rendered": 0, "stored": 0, "bytes": 0}
    # Nothing new: one read of the (empty) render queue, whatever the number of documents.
    reads = [sql for sql in again.sql if "document_files" in sql]
    assert len(reads) == 1 and "FROM render_queue" in reads[0]

    with transaction(factory) as session:  # a payment changes what the invoice shows
        record_payment(
            session, amount="100.00", received_on=date(2026, 1, 9), invoice_number=numbers["us"]
        )
    third = runtime.run("send")
    assert third.summary()["stored"] == 1  # type: ignore[index]
    current = versions(factory)
    with factory() as session:
        paid = session.scalars(
            select(tables.Document).where(tables.Document.number == numbers["us"])
        ).one()
        assert paid.version == 2
        pdf = current_pdf(session, paid.id)
        assert pdf is not None
        assert (pdf.version, pdf.filename) == (2, f"{numbers['us']}.pdf")
        all_pdfs = current_pdfs(session, [id_ for id_, _ in current])
    assert sorted((p.document_id, p.version) for p in all_pdfs.values()) == current
    assert len(files(factory)) == 5  # the first version's PDF is kept too


RENDER = """
import json, sys
from connector.db.engine import make_engine, session_factory
from connector.settings import load_settings
from connector.sync.cycle import Runtime
from connector.sync.rendering import render_documents
settings = load_settings(None, **json.loads(sys.argv[1]))
factory = session_factory(make_engine(settings.database_url.get_secret_value()))
print(json.dumps(render_documents(Runtime(factory, settings))))
"""


def test_killed_while_rendering_then_run_again(
    factory: sessionmaker[Session], database_url: str, tmp_path: Path
) -> None:
    overrides = {"documents": {"batch_size": 1}}
    settings = sample_settings(database_url, tmp_path, **overrides)
    bill_samples(factory, settings)
    run_billing(factory, settings, date(2026, 4, 1))  # Feb, Mar, Apr: 16 invoices
    total = len(versions(factory))
    assert total == 16
    arguments = json.dumps(
        {
            "database_url": database_url,
            "tax": {"rates": {"JP": "10"}},
            "seller": {"name": "Northwind Billing Co."},
            **overrides,
        }
    )

    def launch() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-c", RENDER, arguments],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    with rows_of(database_url, tables.DocumentFile) as count:
        kills = kill_repeatedly(
            launch,
            Progress(count, total),
            lambda: None,
            kills=2,
            attempts=8,
            rng=random.Random(17),
        )
    assert all(kill.mid_run for kill in kills)
    done = subprocess.run(
        [sys.executable, "-c", RENDER, arguments], capture_output=True, check=True
    )
    counts = json.loads(done.stdout)
    assert counts["stored"] == counts["rendered"] == total - kills[-1].after
    assert files(factory) == versions(factory)  # exactly one file per version
    with factory() as session:
        shas = session.scalar(select(func.count()).select_from(tables.PdfContent))
        used = session.scalar(select(func.count(tables.DocumentFile.sha256.distinct())))
    assert shas == used == total  # no bytes kept without their file


def test_with_rendering_off_the_cycle_renders_nothing_and_keeps_the_queue(
    factory: sessionmaker[Session], doc_settings: Settings
) -> None:
    bill_samples(factory, doc_settings)
    off = doc_settings.model_copy(
        update={"documents": doc_settings.documents.model_copy(update={"render": False})}
    )
    assert rendered(Runtime(factory, off).run("send")) == {"rendered": 0, "stored": 0, "bytes": 0}
    assert files(factory) == []
    with factory() as session:
        queued = session.scalars(select(tables.RenderQueue.document_id)).all()
    assert sorted(queued) == [id_ for id_, _ in versions(factory)]

    assert Runtime(factory, doc_settings).run("send").summary()["stored"] == 4  # type: ignore[index]


def test_a_document_that_fails_to_render_is_held_alone_with_its_reason(
    factory: sessionmaker[Session], doc_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fault in one document's rendering (here made to happen: no real document fails) holds
    that document, with the reason, shown by the status; the others are kept. It is not tried
    again until its version changes."""
    numbers = bill_samples(factory, doc_settings)
    bad = numbers["uk"]
    real = rendering.render_content

    def failing(content: Any, settings: Settings) -> Any:
        if content.number == bad:
            raise ValueError("no glyph for U+E000")
        return real(content, settings)

    monkeypatch.setattr(rendering, "render_content", failing)
    runtime = Runtime(factory, doc_settings)
    first = runtime.run("send")
    assert first.ok, first.error
    summary = first.summary() or {}
    assert (summary["stored"], summary["render_held"]) == (
        3,
        {bad: "ValueError: no glyph for U+E000"},
    )
    with factory() as session:
        shown = status_of(session, date(2026, 1, 9))
    assert (
        f"{bad}: its PDF could not be rendered (ValueError: no glyph for U+E000)"
        in shown.attention()
    )
    assert (rendered(runtime.run("send"))["rendered"]) == 0  # held: not tried again

    monkeypatch.setattr(rendering, "render_content", real)
    with transaction(factory) as session:  # a payment: its next version is tried again
        record_payment(session, amount="10.00", received_on=date(2026, 1, 9), invoice_number=bad)
    assert rendered(runtime.run("send"))["stored"] == 1
    with factory() as session:
        assert session.scalars(select(tables.RenderQueue.document_id)).all() == []
