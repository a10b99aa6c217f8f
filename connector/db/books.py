"""The closing of the books, as stored: through which day they are closed, and which outbox
rows are on their way to an accounting target.

A closing and the dating of a batch of entries must not cross: a push reads the closed-through
date and marks its rows as in flight in one transaction, and a closing checks for rows in
flight in another; both take the books' lock first (a transaction-scoped advisory lock on
PostgreSQL; on SQLite every transaction already holds the write lock from its start).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import date

from sqlalchemy import ScalarSelect, delete, func, select, text
from sqlalchemy.orm import Session

from connector.db import tables
from connector.db.bulk import upsert
from connector.db.types import utc_now

LOCK_NAME = "connector:books"
BOOKS_LOCK_KEY = int.from_bytes(hashlib.sha256(LOCK_NAME.encode()).digest()[:8], "big", signed=True)


def lock(session: Session) -> None:
    """Hold the books' lock until the transaction ends."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": BOOKS_LOCK_KEY})


def latest(session: Session) -> tables.ClosedPeriod | None:
    """The closing in force (the latest one), or None when the books were never closed."""
    return session.scalars(
        select(tables.ClosedPeriod).order_by(tables.ClosedPeriod.id.desc()).limit(1)
    ).first()


def closed_through_query() -> ScalarSelect[date]:
    """The day the books are closed through (NULL: never closed), as a column a reader can add
    to its own query."""
    closing = tables.ClosedPeriod
    return select(closing.closed_through).order_by(closing.id.desc()).limit(1).scalar_subquery()


def closed_through(session: Session) -> date | None:
    return session.scalar(select(closed_through_query()))


def history(session: Session) -> Sequence[tables.ClosedPeriod]:
    return session.scalars(select(tables.ClosedPeriod).order_by(tables.ClosedPeriod.id)).all()


def record(
    session: Session, through: date, by: str, *, reopened: bool = False, reason: str | None = None
) -> tables.ClosedPeriod:
    closing = tables.ClosedPeriod(
        closed_through=through, closed_by=by, reopened=reopened, reason=reason
    )
    session.add(closing)
    session.flush()
    return closing


def mark_in_flight(session: Session, target: str, outbox_ids: Sequence[int]) -> None:
    """These rows are about to be sent to ``target``, dated by the closing now in force."""
    now = utc_now()
    upsert(
        session,
        tables.table_of(tables.PostingInFlight),
        [{"outbox_id": outbox_id, "target": target, "started_at": now} for outbox_id in outbox_ids],
        keys=["outbox_id", "target"],
        changes=["started_at"],
    )


def landed(session: Session, target: str, outbox_ids: Sequence[int]) -> None:
    """The answer for these rows is recorded (done, pending or parked)."""
    if outbox_ids:
        session.execute(
            delete(tables.PostingInFlight).where(
                tables.PostingInFlight.target == target,
                tables.PostingInFlight.outbox_id.in_(outbox_ids),
            )
        )


def in_flight(session: Session) -> dict[str, int]:
    """Rows sent whose answer is not recorded yet, per target (a push running, or one a crash
    cut short: the next push to that target settles them)."""
    rows = session.execute(
        select(tables.PostingInFlight.target, func.count())
        .group_by(tables.PostingInFlight.target)
        .order_by(tables.PostingInFlight.target)
    ).all()
    return {target: int(count) for target, count in rows}
