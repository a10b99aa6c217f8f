"""Each document's PDF as a Salesforce File on its ``Billing_Invoice__c`` record.

The write-back's queue names the documents whose file may be behind (entity ``file``): one
whose invoice record Salesforce has just created, one whose PDF was kept for a new version
(:func:`mark_files`). For each, the kept PDF of its current version
(:func:`connector.documents.store.current_pdfs`) is compared with what ``salesforce_files``
says was uploaded; one that differs is uploaded as a ContentVersion (one call): the first with
``FirstPublishLocationId`` = the invoice record (Salesforce creates the file and shares it
with the record), later ones as a new version of the same ContentDocument.

Exactly once: before a batch (up to ``BATCH``) is sent, its uploads are noted as attempted
(document version and SHA-256) in a transaction of their own; the answers are recorded, and
the queue rows settled, in one transaction after the batch. An upload whose answer was not
recorded (a crash, a stop, a connection lost mid-call) is looked for in Salesforce before it
is sent again: every ContentVersion carries ``ReasonForChange`` = "<file> version <n>", and
one query per batch finds those already there. The same query reads the ContentDocumentId of
the files that get a new version when it is not known yet (a first upload records only the
ContentVersion's id, to spend one call per file).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from simple_salesforce import format_soql
from sqlalchemy import bindparam, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from connector.crm import files as crm_files
from connector.crm.client import SalesforceClient
from connector.db import tables
from connector.db import writeback_queue as queue
from connector.db.engine import transaction
from connector.db.types import utc_now
from connector.documents.store import StoredPdf, current_pdfs
from connector.errors import CrmError, QuotaExhaustedError
from connector.sync.writeback_records import INVOICE_RECORD

FILE = queue.FILE
BATCH = 200  # files per transaction, and per query looking for uploads Salesforce holds
IN_QUERY = 100  # values per IN list of a query (its URL stays short)
_SELECT = "SELECT Id, ContentDocumentId, ReasonForChange FROM ContentVersion WHERE "
_LOOK_UP = {  # (markers, ids) -> the query
    (True, True): _SELECT + "ReasonForChange IN {markers} OR Id IN {ids}",
    (True, False): _SELECT + "ReasonForChange IN {markers}",
    (False, True): _SELECT + "Id IN {ids}",
}


def mark_files(session: Session, document_ids: Sequence[int]) -> None:
    """Queue these documents' files (their PDF changed, or their invoice record is new)."""
    queue.mark(session, FILE, document_ids)


def marker(pdf: StoredPdf) -> str:
    """What the upload of this PDF carries in ``ReasonForChange``: one per document version."""
    return f"{pdf.filename} version {pdf.version}"


@dataclass
class _Upload:
    document_id: int
    generation: int
    pdf: StoredPdf
    record_id: str
    content_document_id: str | None  # the file to add a version to (None: a new file)
    known_version_id: str | None  # the last upload's ContentVersion, to find its file
    attempted: bool  # an upload sent before whose answer was not recorded
    done: dict[str, Any] | None = None  # the row to record
    error: str | None = None


def attach_files(
    factory: sessionmaker[Session],
    client: SalesforceClient,
    as_of: date,
    checkpoint: Callable[[], None],
    *,
    enabled: bool,
) -> dict[str, int]:
    """Upload the files the queue names; counts of what was done."""
    counts = {"uploaded": 0, "found": 0, "unchanged": 0, "waiting": 0, "failed": 0}
    with transaction(factory) as session:
        due = sorted(queue.due_of(session, FILE, as_of), key=lambda row: int(row[0]))
        if not enabled:
            queue.settle(session, [(FILE, key, generation, None) for key, generation in due])
            return counts
    for start in range(0, len(due), BATCH):
        if start:
            checkpoint()
        with transaction(factory) as session:
            uploads = _plan(session, due[start : start + BATCH], counts)
        if uploads:
            _send(factory, client, uploads, checkpoint, counts)
    return counts


def _plan(session: Session, due: list[tuple[str, int]], counts: dict[str, int]) -> list[_Upload]:
    """The uploads a batch needs (four queries); the rest settled at once."""
    ids = [int(key) for key, _ in due]
    pdfs = current_pdfs(session, ids)
    numbers = dict(
        session.execute(
            select(tables.Document.id, tables.Document.number).where(tables.Document.id.in_(ids))
        ).all()
    )
    state = tables.WritebackState
    records = dict(
        session.execute(
            select(state.key, state.record_id).where(
                state.object == INVOICE_RECORD[0],
                state.key.in_(sorted(set(numbers.values()))),
                state.record_id.is_not(None),
            )
        ).all()
    )
    files = {
        row.document_id: row
        for row in session.scalars(
            select(tables.SalesforceFile).where(tables.SalesforceFile.document_id.in_(ids))
        )
    }
    settled: list[tuple[str, str, int, date | None]] = []
    uploads: list[_Upload] = []
    for key, generation in due:
        document_id = int(key)
        pdf, record_id = pdfs.get(document_id), records.get(numbers.get(document_id, ""))
        held = files.get(document_id)
        if pdf is None or record_id is None:  # marked again once rendered / once created
            counts["waiting"] += 1
            settled.append((FILE, key, generation, None))
        elif held is not None and (held.version, held.sha256) == (pdf.version, pdf.sha256):
            counts["unchanged"] += 1
            settled.append((FILE, key, generation, None))
        else:
            uploads.append(
                _Upload(
                    document_id,
                    generation,
                    pdf,
                    record_id,
                    held.content_document_id if held else None,
                    held.content_version_id if held else None,
                    held is not None
                    and (held.attempt_version, held.attempt_sha256) == (pdf.version, pdf.sha256),
                )
            )
    queue.settle(session, settled)
    return uploads


def _look_up(client: SalesforceClient, uploads: list[_Upload]) -> None:
    """One query (per ``IN_QUERY``) for what Salesforce holds of these uploads: those
    attempted before, found by their marker, are done; a file to version whose id is not
    known yet learns it from its last ContentVersion."""
    attempted = {marker(item.pdf): item for item in uploads if item.attempted}
    versions = {
        item.known_version_id: item
        for item in uploads
        if item.content_document_id is None and item.known_version_id and not item.attempted
    }
    markers, ids = sorted(attempted), sorted(versions)
    while markers or ids:
        chunk_markers, markers = markers[:IN_QUERY], markers[IN_QUERY:]
        chunk_ids, ids = ids[:IN_QUERY], ids[IN_QUERY:]
        soql = format_soql(
            _LOOK_UP[(bool(chunk_markers), bool(chunk_ids))],
            markers=chunk_markers,
            ids=chunk_ids,
        )
        for page in client.query_pages(soql):
            for row in page:
                found = attempted.get(row["ReasonForChange"] or "")
                if found is not None:
                    found.done = _uploaded(found, row["Id"], row["ContentDocumentId"])
                held = versions.get(row["Id"])
                if held is not None:
                    held.content_document_id = row["ContentDocumentId"]


def _uploaded(item: _Upload, version_id: str, document_id: str | None) -> dict[str, Any]:
    return {
        "document_id": item.document_id,
        "content_document_id": document_id or item.content_document_id,
        "version": item.pdf.version,
        "sha256": item.pdf.sha256,
        "content_version_id": version_id,
        "attempt_version": None,
        "attempt_sha256": None,
        "error": None,
        "updated_at": utc_now(),
    }


def _send(
    factory: sessionmaker[Session],
    client: SalesforceClient,
    uploads: list[_Upload],
    checkpoint: Callable[[], None],
    counts: dict[str, int],
) -> None:
    """Look for what Salesforce already holds, note the rest as attempted, upload them (one
    call each) and record every answer with the queue rows it settles (one transaction)."""
    if any(
        item.attempted or (item.content_document_id is None and item.known_version_id)
        for item in uploads
    ):
        _look_up(client, uploads)
    counts["found"] += sum(1 for item in uploads if item.done is not None)
    to_send = [item for item in uploads if item.done is None]
    with transaction(factory) as session:
        _save(session, [_attempt(item) for item in to_send], attempt_only=True)
    try:
        for item in to_send:
            checkpoint()
            fields: dict[str, Any] = {
                "PathOnClient": item.pdf.filename,
                "Title": item.pdf.filename.rsplit(".", 1)[0],
                "ReasonForChange": marker(item.pdf),
            }
            if item.content_document_id:
                fields["ContentDocumentId"] = item.content_document_id
            else:
                fields["FirstPublishLocationId"] = item.record_id
            try:
                version_id = crm_files.insert_version(
                    client, fields, item.pdf.filename, item.pdf.content
                )
            except CrmError as error:
                if isinstance(error, QuotaExhaustedError) or error.status in (None, 403, 429):
                    raise  # the cycle stops here; the upload is looked for next time
                if error.status >= 500:
                    raise  # the outcome is unknown: looked for next time
                item.error = str(error)
                counts["failed"] += 1
                continue
            item.done = _uploaded(item, version_id, None)
            counts["uploaded"] += 1
    finally:
        with transaction(factory) as session:
            _record(session, uploads)


def _attempt(item: _Upload) -> dict[str, Any]:
    return {
        "document_id": item.document_id,
        "content_document_id": item.content_document_id,
        "version": None,
        "sha256": None,
        "content_version_id": item.known_version_id,
        "attempt_version": item.pdf.version,
        "attempt_sha256": item.pdf.sha256,
        "error": None,
        "updated_at": utc_now(),
    }


def _record(session: Session, uploads: list[_Upload]) -> None:
    """The uploads done (and the refusals) in one upsert; their queue rows settled."""
    rows = [item.done for item in uploads if item.done is not None]
    refused = [item for item in uploads if item.error is not None]
    _save(session, rows, attempt_only=False)
    _save_errors(session, refused)
    queue.settle(
        session,
        [
            (FILE, str(item.document_id), item.generation, None)
            for item in uploads
            if item.done is not None or item.error is not None
        ],
    )


def _save(session: Session, rows: list[dict[str, Any]], *, attempt_only: bool) -> None:
    if not rows:
        return
    table = tables.table_of(tables.SalesforceFile)
    dialect = sqlite if session.get_bind().dialect.name == "sqlite" else postgresql
    statement = dialect.insert(table)
    columns = [column.name for column in table.columns if column.name != "document_id"]
    changed: dict[str, Any] = {name: statement.excluded[name] for name in columns}
    if attempt_only:  # what was uploaded stays; a file's id learned meanwhile is kept
        changed = {
            "attempt_version": statement.excluded.attempt_version,
            "attempt_sha256": statement.excluded.attempt_sha256,
            "updated_at": statement.excluded.updated_at,
            "content_document_id": func.coalesce(
                statement.excluded.content_document_id, table.c.content_document_id
            ),
        }
    statement = statement.on_conflict_do_update(index_elements=[table.c.document_id], set_=changed)
    session.execute(statement, rows)


def _save_errors(session: Session, refused: list[_Upload]) -> None:
    if not refused:
        return
    table = tables.table_of(tables.SalesforceFile)
    session.execute(
        table.update()
        .where(table.c.document_id == bindparam("d_id"))
        .values(error=bindparam("d_error"), attempt_version=None, attempt_sha256=None),
        [{"d_id": item.document_id, "d_error": item.error} for item in refused],
    )
