"""The outbox: documents to deliver to accounting targets, and what each target made of them.

A row is written in the same transaction as its document, so no document can exist without
it. A dispatcher reads the rows a target has not yet received (no delivery, or a delivery still
``pending``), posts them and records each result; ``done`` is written only once the target
confirmed the write.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import and_, func, insert, or_, select
from sqlalchemy.orm import Session

from connector.db import tables, writeback_queue

DONE = "done"
PENDING = "pending"
PARKED = "parked"


def enqueue(session: Session, document_type: str, document_ids: Iterable[int]) -> None:
    """Add outbox rows for these documents (ids already queued are left as they are)."""
    ids = list(dict.fromkeys(document_ids))
    if not ids:
        return
    present = set(
        session.scalars(
            select(tables.Outbox.document_id).where(
                tables.Outbox.document_type == document_type,
                tables.Outbox.document_id.in_(ids),
            )
        )
    )
    rows = [
        {"document_type": document_type, "document_id": doc_id}
        for doc_id in ids
        if doc_id not in present
    ]
    if rows:
        session.execute(insert(tables.Outbox), rows)


def delivered_elsewhere(
    session: Session, document_type: str, document_id: int, target: str, external_id: str
) -> None:
    """The document came from ``target`` (a payment finance recorded in the ledger): it must
    not be posted back there."""
    outbox_id = session.scalar(
        select(tables.Outbox.id).where(
            tables.Outbox.document_type == document_type,
            tables.Outbox.document_id == document_id,
        )
    )
    if outbox_id is not None and session.get(tables.Delivery, (outbox_id, target)) is None:
        session.add(
            tables.Delivery(outbox_id=outbox_id, target=target, state=DONE, external_id=external_id)
        )
        session.flush()


def undelivered(
    session: Session, target: str, limit: int, after: int = 0
) -> Sequence[tables.Outbox]:
    """The oldest rows ``target`` has not received yet, from the row after ``after`` on."""
    delivery = tables.Delivery
    return session.scalars(
        select(tables.Outbox)
        .outerjoin(
            delivery,
            and_(delivery.outbox_id == tables.Outbox.id, delivery.target == target),
        )
        .where(
            tables.Outbox.id > after,
            or_(delivery.outbox_id.is_(None), delivery.state == PENDING),
        )
        .order_by(tables.Outbox.id)
        .limit(limit)
    ).all()


@dataclass(frozen=True)
class Outcome:
    outbox_id: int
    state: str
    external_id: str | None = None
    error: str | None = None


IN_FLIGHT = "sent; the answer has not come back yet"


def begin_attempt(session: Session, target: str, outbox_ids: Sequence[int]) -> set[int]:
    """Mark these rows as being sent to ``target``, before the write, and return those an
    earlier attempt already sent: that attempt may have reached the target, whose answer was
    lost (a timeout, a crash), so the target must look for them before sending them again."""
    existing = {
        row.outbox_id: row
        for row in session.scalars(
            select(tables.Delivery).where(
                tables.Delivery.target == target, tables.Delivery.outbox_id.in_(outbox_ids)
            )
        )
    }
    fresh = [
        {"outbox_id": outbox_id, "target": target, "state": PENDING, "attempts": 1}
        for outbox_id in outbox_ids
        if outbox_id not in existing
    ]
    for row in existing.values():
        row.attempts += 1
        row.error = row.error or IN_FLIGHT
    if fresh:
        session.execute(insert(tables.Delivery), [{**row, "error": IN_FLIGHT} for row in fresh])
    session.flush()
    return set(existing)


def record(session: Session, target: str, outcomes: Sequence[Outcome]) -> None:
    """Store each row's outcome at ``target`` (one insert for rows never marked as sent)."""
    ids = [outcome.outbox_id for outcome in outcomes]
    existing = {
        row.outbox_id: row
        for row in session.scalars(
            select(tables.Delivery).where(
                tables.Delivery.target == target, tables.Delivery.outbox_id.in_(ids)
            )
        )
    }
    fresh = []
    writeback_queue.mark_refused(  # a deal's sync error names what accounting refused
        session,
        [
            outcome.outbox_id
            for outcome in outcomes
            if PARKED in (outcome.state, getattr(existing.get(outcome.outbox_id), "state", None))
        ],
    )
    for outcome in outcomes:
        row = existing.get(outcome.outbox_id)
        if row is None:
            fresh.append(
                {
                    "outbox_id": outcome.outbox_id,
                    "target": target,
                    "state": outcome.state,
                    "attempts": 1,
                    "external_id": outcome.external_id,
                    "error": outcome.error,
                }
            )
        else:
            kept = row.external_id if outcome.state == PENDING else None  # a noted name
            row.state, row.external_id, row.error = (
                outcome.state,
                outcome.external_id or kept,
                outcome.error,
            )
    if fresh:
        session.execute(insert(tables.Delivery), fresh)
    session.flush()


def depth(session: Session, target: str) -> dict[str, int]:
    """Rows waiting for ``target`` (never tried or pending) and rows parked there."""
    waiting = session.scalar(
        select(func.count())
        .select_from(tables.Outbox)
        .outerjoin(
            tables.Delivery,
            and_(tables.Delivery.outbox_id == tables.Outbox.id, tables.Delivery.target == target),
        )
        .where(or_(tables.Delivery.outbox_id.is_(None), tables.Delivery.state == PENDING))
    )
    parked = session.scalar(
        select(func.count())
        .select_from(tables.Delivery)
        .where(tables.Delivery.target == target, tables.Delivery.state == PARKED)
    )
    return {"waiting": int(waiting or 0), "parked": int(parked or 0)}


def note_sent_as(
    session: Session, target: str, document_type: str, sent_as: dict[int, str]
) -> None:
    """Before a write, store under which name the target will hold these documents (a manual
    journal's narration), so that an attempt whose answer was lost is found again."""
    rows = session.execute(
        select(tables.Delivery)
        .join(tables.Outbox, tables.Outbox.id == tables.Delivery.outbox_id)
        .where(
            tables.Delivery.target == target,
            tables.Outbox.document_type == document_type,
            tables.Outbox.document_id.in_(sent_as),
        )
        .add_columns(tables.Outbox.document_id)
    ).all()
    for delivery, document_id in rows:
        delivery.external_id = sent_as[document_id]
    session.flush()


def external_ids(
    session: Session, target: str, document_type: str, document_ids: Iterable[int], state: str
) -> dict[int, str]:
    """What ``target`` holds these documents as, among deliveries in ``state``: its id once
    ``done``, or the name noted before an unanswered write (``pending``)."""
    rows = session.execute(
        select(tables.Outbox.document_id, tables.Delivery.external_id)
        .join(tables.Delivery, tables.Delivery.outbox_id == tables.Outbox.id)
        .where(
            tables.Delivery.target == target,
            tables.Delivery.state == state,
            tables.Delivery.external_id.is_not(None),
            tables.Outbox.document_type == document_type,
            tables.Outbox.document_id.in_(list(document_ids)),
        )
    ).all()
    return {document_id: external_id for document_id, external_id in rows if external_id}


def states(
    session: Session, target: str, document_type: str, document_ids: Iterable[int]
) -> dict[int, str]:
    """The delivery state at ``target`` of each of these documents that has one."""
    rows = session.execute(
        select(tables.Outbox.document_id, tables.Delivery.state)
        .join(tables.Delivery, tables.Delivery.outbox_id == tables.Outbox.id)
        .where(
            tables.Delivery.target == target,
            tables.Outbox.document_type == document_type,
            tables.Outbox.document_id.in_(list(document_ids)),
        )
    ).all()
    return {document_id: state for document_id, state in rows}


def send_again(
    session: Session, target: str, document_type: str, document_ids: Iterable[int]
) -> int:
    """Put these documents back in line for ``target`` when it refused them (their cause is
    gone): the next push sends them again, looking each up first. Returns how many."""
    ids = list(document_ids)
    if not ids:
        return 0
    outbox_ids = select(tables.Outbox.id).where(
        tables.Outbox.document_type == document_type, tables.Outbox.document_id.in_(ids)
    )
    parked = session.scalars(
        select(tables.Delivery).where(
            tables.Delivery.target == target,
            tables.Delivery.state == PARKED,
            tables.Delivery.outbox_id.in_(outbox_ids),
        )
    ).all()
    for row in parked:
        row.state = PENDING
    writeback_queue.mark_refused(session, [row.outbox_id for row in parked])
    session.flush()
    return len(parked)


def retry_parked(session: Session, target: str) -> int:
    """Put the documents ``target`` refused back in line (once their cause is fixed): the next
    push tries them again, looking first for any an earlier attempt delivered."""
    parked = session.scalars(
        select(tables.Delivery).where(
            tables.Delivery.target == target, tables.Delivery.state == PARKED
        )
    ).all()
    for row in parked:
        row.state = PENDING
    writeback_queue.mark_refused(session, [row.outbox_id for row in parked])
    session.flush()
    return len(parked)
