"""Late usage: events stored after their period's usage was billed mark the subscription for
reconciliation, so the next billing run bills what they add (an adjustment); nothing is lost
and nothing counted twice, because the run prices the period's whole usage again and bills
the difference from what it billed.

A subscription's ``usage_billed_until`` is the first day whose usage is not billed yet. An
event dated earlier is late: the batch that stores it moves the subscription's
``reconcile_from`` back to the event's day, in the same transaction.

On PostgreSQL a batch of events and a billing run could otherwise cross: the run reading the
hourly aggregates before the batch commits, the batch reading ``usage_billed_until`` before the
run commits. A transaction-scoped advisory lock per customer orders them: a batch takes it
shared (batches go on side by side), a billing batch exclusive before it reads the usage, so
whichever comes second sees what the first wrote. SQLite serializes writers anyway.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from sqlalchemy import Date, bindparam, case, func, select, text, update
from sqlalchemy.orm import Session

from connector.db import exact
from connector.db.tables import Subscription, table_of
from connector.db.usage import _among as among

USAGE_LOCK_CLASS = 0x75736167  # the first key of a customer's usage lock; the second: its id
SUBSCRIPTIONS = table_of(Subscription)
_EACH = "FROM unnest(CAST(:ids AS integer[])) AS id"
EXCLUSIVE = text(f"SELECT count(pg_advisory_xact_lock(:class, id)) {_EACH}")
SHARED = text(f"SELECT count(pg_advisory_xact_lock_shared(:class, id)) {_EACH}")


def lock_usage(session: Session, customer_ids: Iterable[int], *, exclusive: bool) -> None:
    """Take the usage lock of each customer until the transaction ends (PostgreSQL), in id
    order so that two transactions never wait on each other crosswise."""
    if exact.is_sqlite(session):
        return
    ids = sorted(set(customer_ids))
    if not ids:
        return
    session.execute(EXCLUSIVE if exclusive else SHARED, {"class": USAGE_LOCK_CLASS, "ids": ids})


def mark_late(session: Session, earliest: Mapping[int, date]) -> int:
    """Mark for reconciliation the subscriptions of each customer whose usage was billed past
    ``earliest[customer]``, the day of its earliest event in hand; returns how many."""
    if not earliest:
        return 0
    first = min(earliest.values())
    candidates = session.execute(
        select(
            SUBSCRIPTIONS.c.id, SUBSCRIPTIONS.c.customer_id, SUBSCRIPTIONS.c.usage_billed_until
        ).where(
            SUBSCRIPTIONS.c.usage_billed_until > first,
            among(session, SUBSCRIPTIONS.c.customer_id, sorted(earliest)),
        )
    ).all()
    late = [
        {"s_id": row.id, "s_day": earliest[row.customer_id]}
        for row in candidates
        if row.customer_id in earliest and earliest[row.customer_id] < row.usage_billed_until
    ]
    if late:
        column = SUBSCRIPTIONS.c.reconcile_from
        day: Any = bindparam("s_day", type_=Date())
        session.execute(
            update(SUBSCRIPTIONS)
            .where(SUBSCRIPTIONS.c.id == bindparam("s_id"))
            .values(
                reconcile_from=case(
                    (column.is_(None), day),
                    else_=func.min(column, day)
                    if exact.is_sqlite(session)
                    else func.least(column, day),
                )
            ),
            late,
        )
    return len(late)
