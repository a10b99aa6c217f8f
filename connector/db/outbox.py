"""The outbox: documents to deliver to accounting targets, and what each target made of them.

A row is written in the same transaction as its document, so no document can exist without
it. A dispatcher reads the rows a target has not yet received (no delivery, or a delivery still
``pending``), posts them and records each result; ``done`` is written only once the target
confirmed the write.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import (
    ColumnElement,
    Row,
    Select,
    Table,
    and_,
    bindparam,
    case,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from connector.db import tables, writeback_queue
from connector.db.bulk import bulk_insert, upsert
from connector.db.types import utc_now

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


def add(session: Session, document_type: str, document_ids: Sequence[int]) -> None:
    """Add outbox rows for documents just made (never queued before: no check), in one
    statement."""
    now = utc_now()
    bulk_insert(
        session,
        tables.table_of(tables.Outbox),
        [
            {"document_type": document_type, "document_id": doc_id, "created_at": now}
            for doc_id in document_ids
        ],
    )


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


def pending_query(target: str, limit: int, after: int = 0) -> Select[int, str, int, bool]:
    """The oldest rows ``target`` has not received yet (no delivery, or one still pending),
    from the row after ``after`` on: their ``id``, ``document_type``, ``document_id``, and
    ``tried`` (an earlier attempt sent them). A reader may join more to it. Every row through
    :func:`received_through` was received: a reader starts after it."""
    delivery = tables.Delivery
    return (
        select(
            tables.Outbox.id,
            tables.Outbox.document_type,
            tables.Outbox.document_id,
            delivery.outbox_id.is_not(None).label("tried"),
        )
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
    )


def undelivered(
    session: Session, target: str, limit: int, after: int = 0
) -> Sequence[Row[int, str, int, bool]]:
    """The rows of :func:`pending_query`."""
    after = max(after, received_through(session, target))
    return session.execute(pending_query(target, limit, after)).all()


# On PostgreSQL an id is drawn before its transaction commits: a row may appear below ids
# already seen. The floor stays below every row made in the last hour, far longer than any
# transaction of ours lasts. On SQLite writers take turns: ids appear in order.
FLOOR_LAG = timedelta(hours=1)


def received_through(session: Session, target: str) -> int:
    """The outbox id through which ``target`` has every row, done or parked: the floor kept
    by :func:`raise_floor`, or below the oldest row still pending there. Two reads of an index
    each, whatever the size of the outbox."""
    floor = session.scalar(
        select(tables.OutboxFloor.delivered_through).where(tables.OutboxFloor.target == target)
    )
    first_pending = session.scalar(
        select(func.min(tables.Delivery.outbox_id)).where(
            tables.Delivery.target == target, tables.Delivery.state == PENDING
        )
    )
    through = floor or 0
    return through if first_pending is None else min(through, first_pending - 1)


def raise_floor(session: Session, target: str) -> None:
    """Move ``target``'s floor up to the row before the first one it has no delivery for (or
    to the last row): one read of the rows above the floor, and an upsert when it moves."""
    floors = tables.table_of(tables.OutboxFloor)
    floor = session.scalar(select(floors.c.delivered_through).where(floors.c.target == target)) or 0
    outbox_row, delivery = tables.Outbox, tables.Delivery
    above = outbox_row.id > floor
    if session.get_bind().dialect.name != "sqlite":
        above = and_(above, outbox_row.created_at < utc_now() - FLOOR_LAG)
    first_missing, last = session.execute(
        select(
            func.min(case((delivery.outbox_id.is_(None), outbox_row.id))),
            func.max(outbox_row.id),
        )
        .outerjoin(delivery, and_(delivery.outbox_id == outbox_row.id, delivery.target == target))
        .where(above)
    ).one()
    through = last if first_missing is None else first_missing - 1
    if through is not None and through > floor:
        upsert(
            session,
            floors,
            [{"target": target, "delivered_through": through}],
            keys=["target"],
            changes=["delivered_through"],
        )


@dataclass(frozen=True)
class Outcome:
    outbox_id: int
    state: str
    external_id: str | None = None
    error: str | None = None


IN_FLIGHT = "sent; the answer has not come back yet"


def _deliveries() -> Table:
    return tables.table_of(tables.Delivery)


def begin_attempt(session: Session, target: str, outbox_ids: Sequence[int]) -> None:
    """Mark these rows as being sent to ``target``, before the write, in one statement: a row
    never sent gets a pending delivery, a row sent before one attempt more. Those an earlier
    attempt sent (``tried`` in :func:`pending_query`) may have reached the target, whose
    answer was lost (a timeout, a crash), so the target must look for them before sending
    them again."""
    table, now = _deliveries(), utc_now()
    upsert(
        session,
        table,
        [
            {
                "outbox_id": outbox_id,
                "target": target,
                "state": PENDING,
                "attempts": 1,
                "error": IN_FLIGHT,
                "updated_at": now,
            }
            for outbox_id in outbox_ids
        ],
        keys=["outbox_id", "target"],
        changes=lambda new: {
            "attempts": table.c.attempts + 1,
            "error": func.coalesce(func.nullif(table.c.error, ""), new.error),
            "updated_at": new.updated_at,
        },
    )


def record(session: Session, target: str, outcomes: Sequence[Outcome]) -> None:
    """Store each row's outcome at ``target``, in one statement (a row never marked as sent
    gets its delivery). A pending outcome without an id keeps the name noted before the
    write. The deals of rows refused there, or refused before, are queued for the write-back
    (their sync error names what accounting refused; one query, before the write)."""
    if not outcomes:
        return
    table, now = _deliveries(), utc_now()
    ids = [outcome.outbox_id for outcome in outcomes]
    parked = [outcome.outbox_id for outcome in outcomes if outcome.state == PARKED]
    was_parked = tables.Outbox.id.in_(
        select(table.c.outbox_id).where(
            table.c.target == target, table.c.state == PARKED, table.c.outbox_id.in_(ids)
        )
    )
    writeback_queue.mark_refused(
        session, or_(tables.Outbox.id.in_(parked), was_parked) if parked else was_parked
    )
    upsert(
        session,
        table,
        [
            {
                "outbox_id": outcome.outbox_id,
                "target": target,
                "state": outcome.state,
                "attempts": 1,
                "external_id": outcome.external_id,
                "error": outcome.error,
                "updated_at": now,
            }
            for outcome in outcomes
        ],
        keys=["outbox_id", "target"],
        changes=lambda new: {
            "state": new.state,
            "external_id": func.coalesce(
                func.nullif(new.external_id, ""),
                case((new.state == PENDING, table.c.external_id)),
            ),
            "error": new.error,
            "updated_at": new.updated_at,
        },
    )


def depth(session: Session, target: str) -> dict[str, int]:
    """Rows waiting for ``target`` (never tried or pending) and rows parked there."""
    waiting = session.scalar(
        select(func.count())
        .select_from(tables.Outbox)
        .outerjoin(
            tables.Delivery,
            and_(tables.Delivery.outbox_id == tables.Outbox.id, tables.Delivery.target == target),
        )
        .where(
            tables.Outbox.id > received_through(session, target),
            or_(tables.Delivery.outbox_id.is_(None), tables.Delivery.state == PENDING),
        )
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
    journal's narration), so that an attempt whose answer was lost is found again; one
    statement."""
    if not sent_as:
        return
    table = _deliveries()
    session.execute(
        update(table)
        .where(
            table.c.target == target,
            table.c.outbox_id
            == select(tables.Outbox.id)
            .where(
                tables.Outbox.document_type == document_type,
                tables.Outbox.document_id == bindparam("b_document"),
            )
            .scalar_subquery(),
        )
        .values(external_id=bindparam("b_name"), updated_at=utc_now()),
        [{"b_document": document_id, "b_name": name} for document_id, name in sent_as.items()],
    )


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


def held_as(
    session: Session, target: str, numbers: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], str]:
    """Per ``(document type, number)`` of an invoice or credit note delivered to ``target``
    (``done``), its id there; one query for all."""
    wanted = set(numbers)
    if not wanted:
        return {}
    doc, delivery = tables.Document, tables.Delivery
    rows = session.execute(
        select(doc.kind, doc.number, delivery.external_id)
        .join(
            tables.Outbox,
            and_(tables.Outbox.document_type == doc.kind, tables.Outbox.document_id == doc.id),
        )
        .join(delivery, delivery.outbox_id == tables.Outbox.id)
        .where(
            delivery.target == target,
            delivery.state == DONE,
            delivery.external_id.is_not(None),
            doc.number.in_({number for _, number in wanted}),
        )
    )
    return {
        (kind, number): external_id
        for kind, number, external_id in rows
        if external_id and (kind, number) in wanted
    }


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
    return _unpark(session, target, _deliveries().c.outbox_id.in_(outbox_ids))


def retry_parked(session: Session, target: str) -> int:
    """Put the documents ``target`` refused back in line (once their cause is fixed): the next
    push tries them again, looking first for any an earlier attempt delivered."""
    return _unpark(session, target)


def _unpark(session: Session, target: str, *where: ColumnElement[bool]) -> int:
    """Put ``target``'s parked deliveries (those ``where`` chooses) back in line, in one
    statement; their deals are queued for the write-back first (one query)."""
    table = _deliveries()
    writeback_queue.mark_refused(
        session,
        tables.Outbox.id.in_(
            select(table.c.outbox_id).where(
                table.c.target == target, table.c.state == PARKED, *where
            )
        ),
    )
    result = session.execute(
        update(table)
        .where(table.c.target == target, table.c.state == PARKED, *where)
        .values(state=PENDING, updated_at=utc_now())
    )
    return int(getattr(result, "rowcount", 0) or 0)
