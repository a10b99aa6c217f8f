"""The documents the revenue close has yet to journal, each with the first as-of date on which
it has revenue to journal: a close reads the documents due, never the whole history, so a
cycle in which no day of service passed reads nothing.

A document enters when it is issued, due on the first day of service of its scheduled lines
(:func:`connector.billing.revenue.scheduled`); the close moves it to the day after what it
journaled, and removes it once its revenue is complete or it is void, in the same transaction
as its journals.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from connector.billing.revenue import scheduled
from connector.db import tables
from connector.db.bulk import bulk_insert, upsert
from connector.db.documents import IssuedDocument


def add_issued(session: Session, issued: Sequence[IssuedDocument]) -> None:
    """Enter the documents just issued that have scheduled revenue, in one statement."""
    rows = []
    for document in issued:
        kind, issue_date = document.draft.kind.value, document.draft.issue_date
        starts = [
            line.charge.service.start
            for line in document.draft.lines
            if scheduled(line.charge.item.kind.value, kind, line.charge.service.start, issue_date)
        ]
        if starts:
            rows.append({"document_id": document.id, "due_on": min(starts)})
    bulk_insert(session, tables.table_of(tables.RevenueDue), rows)


def due(session: Session, as_of: date) -> list[int]:
    """The documents with revenue to journal through ``as_of``, in id order."""
    return list(
        session.scalars(
            select(tables.RevenueDue.document_id)
            .where(tables.RevenueDue.due_on <= as_of)
            .order_by(tables.RevenueDue.document_id)
        )
    )


def settle(session: Session, next_due: Mapping[int, date | None]) -> None:
    """Move each document to the date it is next due, or remove it (``None``): one statement
    for each."""
    table = tables.table_of(tables.RevenueDue)
    done = [doc_id for doc_id, day in next_due.items() if day is None]
    if done:
        session.execute(delete(table).where(table.c.document_id.in_(done)))
    upsert(
        session,
        table,
        [{"document_id": doc_id, "due_on": day} for doc_id, day in next_due.items() if day],
        keys=["document_id"],
        changes=["due_on"],
    )
