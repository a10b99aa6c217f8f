"""The mail outbox: one ``email_messages`` row per message, written in the transaction that
makes the reason to send it (a document issued, a reminder due).

A message is a document's version sent as a ``kind``: ``document`` for a new invoice or credit
note, ``reminder:<step>`` for a reminder of the dunning schedule; ``template`` names the text
it is rendered from (per language). Asking again for a (document, version, kind) already queued
changes nothing, so a crash and a rerun of whatever queues never doubles a message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from connector.db import tables
from connector.db.types import utc_now

DOCUMENT = "document"
REMINDER = "reminder:"
PENDING, SENT, PARKED, WAITING = "pending", "sent", "parked", "waiting"
STATES = (PENDING, SENT, PARKED, WAITING)
TEMPLATES = {"invoice": "invoice", "credit_note": "credit_note"}  # document kind -> template


@dataclass(frozen=True)
class MessageRequest:
    document_id: int
    kind: str  # "document" or "reminder:<step>"
    template: str  # template name, e.g. "invoice", "credit_note", "reminder_friendly"

    def __post_init__(self) -> None:
        if self.kind != DOCUMENT and not (
            self.kind.startswith(REMINDER) and len(self.kind) > len(REMINDER)
        ):
            raise ValueError(f"message kind {self.kind!r}: document or reminder:<step>")


def document_version() -> ColumnElement[int]:
    """The current version of the document ``b_document`` names."""
    document = tables.table_of(tables.Document)
    return (
        select(document.c.version).where(document.c.id == bindparam("b_document")).scalar_subquery()
    )


def queue_messages(session: Session, requests: Sequence[MessageRequest]) -> int:
    """Queue these messages with the transaction in hand, in one statement; a request for a
    (document, version, kind) already queued is ignored. Returns how many were asked for."""
    if not requests:
        return 0
    table = tables.table_of(tables.EmailMessage)
    dialect = sqlite if session.get_bind().dialect.name == "sqlite" else postgresql
    now = utc_now()
    statement = (
        dialect.insert(table)
        .values(
            document_id=bindparam("b_document"),
            document_version=document_version(),
            kind=bindparam("b_kind"),
            template=bindparam("b_template"),
            state=PENDING,
            attempts=0,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["document_id", "document_version", "kind"])
    )
    unique = {(r.document_id, r.kind): r for r in requests}  # one request per message
    session.execute(
        statement,
        [
            {"b_document": r.document_id, "b_kind": r.kind, "b_template": r.template}
            for _, r in sorted(unique.items())
        ],
    )
    return len(unique)


def queue_documents(session: Session, documents: Sequence[tuple[int, str]]) -> int:
    """Queue the e-mail of new documents, given as (id, kind of document: invoice or
    credit_note)."""
    return queue_messages(
        session,
        [MessageRequest(document_id, DOCUMENT, TEMPLATES[kind]) for document_id, kind in documents],
    )
