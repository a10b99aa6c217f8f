"""Storage of the pull: staged CRM records, sync cursors and API usage per day."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, object_session

from connector.db import tables, writeback_queue

APPLIED = "applied"
QUARANTINED = "quarantined"
HELD = "held"
IGNORED = "ignored"
FINAL_STATES = frozenset({APPLIED, IGNORED, HELD})


VOLATILE = frozenset({"attributes", "SystemModstamp", "LastModifiedDate"})


def payload_hash(payload: dict[str, Any]) -> str:
    """A stable hash of a record's content, without the parts that change on every read or on
    every save: a record the write-back just updated (its stamp moved, nothing we read did)
    hashes as before and is skipped."""
    content = {key: value for key, value in payload.items() if key not in VOLATILE}
    text = json.dumps(content, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def stage(
    session: Session,
    system: str,
    obj: str,
    payload: dict[str, Any],
    *,
    modstamp: datetime | None,
    deleted: bool,
) -> tables.CrmRecord | None:
    """Store the record as it came; None when an identical payload was already handled.
    Numbers with a fraction are kept as their exact text."""
    payload = json.loads(json.dumps(payload, default=str))
    digest = payload_hash(payload)
    record_id = str(payload["Id"])
    row = session.scalar(
        select(tables.CrmRecord).where(
            tables.CrmRecord.system == system,
            tables.CrmRecord.object == obj,
            tables.CrmRecord.record_id == record_id,
        )
    )
    if row is None:
        row = tables.CrmRecord(
            system=system, object=obj, record_id=record_id, state=QUARANTINED, deleted=deleted
        )
        session.add(row)
    elif row.payload_hash == digest and row.state in FINAL_STATES:
        return None
    row.payload, row.payload_hash, row.modstamp, row.deleted = payload, digest, modstamp, deleted
    return row


def settle(row: tables.CrmRecord, state: str, reason: str | None = None) -> None:
    """Record what became of a staged record; a deal that starts or stops waiting, or waits
    for another reason, is queued for the write-back (its sync error)."""
    session = object_session(row)
    if row.object == "Opportunity" and (row.state, row.reason) != (state, reason) and session:
        writeback_queue.mark(session, writeback_queue.DEAL, [row.record_id])
    row.state, row.reason = state, reason
    if state in (APPLIED, IGNORED):
        row.applied_hash, row.applied_payload = row.payload_hash, row.payload


def staged(session: Session, system: str, obj: str, record_id: str) -> tables.CrmRecord | None:
    return session.scalar(
        select(tables.CrmRecord).where(
            tables.CrmRecord.system == system,
            tables.CrmRecord.object == obj,
            tables.CrmRecord.record_id == record_id,
        )
    )


def in_state(session: Session, system: str, state: str) -> Sequence[tables.CrmRecord]:
    return session.scalars(
        select(tables.CrmRecord)
        .where(tables.CrmRecord.system == system, tables.CrmRecord.state == state)
        .order_by(tables.CrmRecord.object, tables.CrmRecord.modstamp, tables.CrmRecord.id)
    ).all()


def state_counts(session: Session, system: str) -> dict[str, int]:
    rows = session.execute(
        select(tables.CrmRecord.state, func.count())
        .where(tables.CrmRecord.system == system)
        .group_by(tables.CrmRecord.state)
    )
    return {state: count for state, count in rows}


def cursor(session: Session, name: str) -> datetime | None:
    row = session.get(tables.SyncCursor, name)
    return None if row is None else row.position


def move_cursor(session: Session, name: str, position: datetime | None) -> None:
    """Advance a cursor (never backwards)."""
    row = session.get(tables.SyncCursor, name)
    if row is None:
        session.add(tables.SyncCursor(name=name, position=position))
    elif position is not None and (row.position is None or position > row.position):
        row.position = position
    session.flush()


def rewind_cursors(
    session: Session, prefix: str, limit: datetime, to: datetime
) -> dict[str, datetime]:
    """Put the cursors named ``prefix...`` that stand at or past ``limit`` back to ``to``; their
    former positions, by name."""
    ahead = {
        row.name: row.position
        for row in session.scalars(
            select(tables.SyncCursor).where(
                tables.SyncCursor.name.startswith(prefix), tables.SyncCursor.position >= limit
            )
        )
        if row.position is not None
    }
    if ahead:
        session.execute(
            update(tables.SyncCursor).where(tables.SyncCursor.name.in_(ahead)).values(position=to),
            execution_options={"synchronize_session": "fetch"},
        )
        session.flush()
    return ahead


def cursors(session: Session, prefix: str) -> dict[str, datetime | None]:
    rows = session.scalars(
        select(tables.SyncCursor).where(tables.SyncCursor.name.startswith(prefix))
    )
    return {row.name.removeprefix(prefix): row.position for row in rows}


def usage(session: Session, system: str, day: date) -> tables.ApiUsage:
    row = session.get(tables.ApiUsage, (system, day))
    if row is None:
        row = tables.ApiUsage(system=system, day=day, calls=0)
        session.add(row)
        session.flush()
    return row


def save_usage(
    session: Session, system: str, day: date, calls: int, org: tuple[int | None, int | None]
) -> None:
    row = usage(session, system, day)
    row.calls = max(row.calls, calls)
    row.org_used, row.org_limit = org
    session.flush()
