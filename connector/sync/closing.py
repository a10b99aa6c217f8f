"""``connector ledger close``: close the books through a day, durably.

After a closing, nothing is dated on or before that day: documents whose own date falls there
(a late credit note, revenue caught up, the void of an invoice, a payment recorded late) are
booked on the first open day when they are pushed (:mod:`connector.accounting.dating`), the
ones already waiting in the outbox included. Each closing is recorded with who closed and when.

Closing moves forward only. A day that has not ended is refused (the running month would lose
its own dates), and so is an earlier day than the closing in force unless ``reopen`` is given
(and then only an earlier one): reopening is deliberate, and recorded as such. A closing waits
while a push has documents in flight (sent, their answer not recorded), since those are dated by
the closing they were sent under; run ``connector push`` and close again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connector.accounting.dating import first_open_day
from connector.db import books, outbox, tables
from connector.db.engine import transaction
from connector.errors import ConnectorError, InvalidInputError


class ClosingRefusedError(InvalidInputError):
    """The day given cannot close the books (not ended yet, or earlier than the closing in
    force without ``reopen``)."""


class PostingInFlightError(ConnectorError):
    """Documents are on their way to accounting under the closing in force: close after the
    push has recorded their answers."""


@dataclass(frozen=True)
class Books:
    """The closing in force, as ``connector status`` shows it."""

    closed_through: date | None = None
    closed_by: str | None = None
    closed_at: datetime | None = None
    reopened: bool = False
    in_flight: dict[str, int] = field(default_factory=dict)

    @property
    def first_open_day(self) -> date | None:
        return first_open_day(self.closed_through) if self.closed_through else None

    def to_dict(self) -> dict[str, object]:
        return {
            "closed_through": self.closed_through.isoformat() if self.closed_through else None,
            "first_open_day": self.first_open_day.isoformat() if self.first_open_day else None,
            "closed_by": self.closed_by,
            "closed_at": self.closed_at.isoformat() if self.closed_at else None,
            "reopened": self.reopened,
            "in_flight": dict(self.in_flight),
        }


@dataclass(frozen=True)
class CloseResult:
    books: Books
    previous: date | None
    changed: bool
    waiting: dict[str, int]  # documents waiting per target: those dated in the closed period
    # are booked on the first open day

    def to_dict(self) -> dict[str, object]:
        return {
            **self.books.to_dict(),
            "previous": self.previous.isoformat() if self.previous else None,
            "changed": self.changed,
            "waiting": dict(self.waiting),
        }


def books_state(session: Session) -> Books:
    closing = books.latest(session)
    if closing is None:
        return Books(in_flight=books.in_flight(session))
    return Books(
        closing.closed_through,
        closing.closed_by,
        closing.closed_at,
        closing.reopened,
        books.in_flight(session),
    )


def close_books(
    factory: sessionmaker[Session],
    through: date,
    *,
    by: str,
    today: date,
    reopen: bool = False,
    reason: str | None = None,
    targets: Sequence[str] = (),
) -> CloseResult:
    """Close the books through ``through`` (see the module's description)."""
    if through >= today:
        raise ClosingRefusedError(
            f"{through} has not ended yet (today is {today}): close a day before today"
        )
    with transaction(factory) as session:
        books.lock(session)
        current = books.latest(session)
        previous = current.closed_through if current else None
        if previous is not None and through < previous and not reopen:
            raise ClosingRefusedError(
                f"the books are closed through {previous}; closing only moves forward: give "
                f"--reopen to reopen the days after {through}"
            )
        if reopen and (previous is None or through >= previous):
            raise ClosingRefusedError(
                f"--reopen moves the closing back, but {through} is not before the day the "
                f"books are closed through ({previous or 'never closed'})"
            )
        changed = through != previous
        if changed and not reopen:
            flying = books.in_flight(session)
            if flying:
                where = ", ".join(f"{count} to {target}" for target, count in flying.items())
                raise PostingInFlightError(
                    f"documents were sent to accounting and their answer is not recorded yet "
                    f"({where}): a push is running, or was interrupted; run `connector push`, "
                    "then close again"
                )
        if changed:
            books.record(session, through, by, reopened=reopen, reason=reason)
        known = set(targets) | set(session.scalars(select(tables.Delivery.target).distinct()))
        waiting = {target: outbox.depth(session, target)["waiting"] for target in sorted(known)}
        return CloseResult(books_state(session), previous, changed, waiting)
