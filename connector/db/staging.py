"""Storage of the pull: staged CRM records, sync cursors and API usage per day."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

from sqlalchemy import case, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from connector.db import tables, writeback_queue
from connector.db.bulk import bulk_upsert
from connector.db.types import utc_now

APPLIED = "applied"
QUARANTINED = "quarantined"
HELD = "held"
IGNORED = "ignored"
OPPORTUNITY = "Opportunity"  # a deal: its sync error shows in Salesforce
FINAL_STATES = frozenset({APPLIED, IGNORED, HELD})


VOLATILE = frozenset({"attributes", "SystemModstamp", "LastModifiedDate"})


def payload_hash(payload: dict[str, Any]) -> str:
    """A stable hash of a record's content, without the parts that change on every read or on
    every save: a record the write-back just updated (its stamp moved, nothing we read did)
    hashes as before and is skipped."""
    content = {key: value for key, value in payload.items() if key not in VOLATILE}
    text = json.dumps(content, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class Staged:
    """A CRM record staged to be applied: as it came (``payload`` and its hash), and what
    became of it (``state``, ``reason``, and the payload last applied). ``stored``: a row of it
    was staged before."""

    object: str
    record_id: str
    payload: dict[str, Any]
    payload_hash: str
    modstamp: datetime | None
    deleted: bool
    state: str = QUARANTINED
    reason: str | None = None
    applied_hash: str | None = None
    applied_payload: dict[str, Any] | None = None
    stored: bool = False

    @classmethod
    def of(cls, row: tables.CrmRecord) -> Staged:
        return cls(
            row.object,
            row.record_id,
            row.payload,
            row.payload_hash,
            row.modstamp,
            row.deleted,
            row.state,
            row.reason,
            row.applied_hash,
            row.applied_payload,
            stored=True,
        )


def stage(
    session: Session,
    system: str,
    obj: str,
    records: Sequence[dict[str, Any]],
    *,
    modstamps: Sequence[datetime | None],
    deleted: Sequence[bool],
) -> tuple[list[Staged], int]:
    """The records of a page (one query reads what was staged of them), each as it came, but
    those whose identical payload was already handled; and how many those were. Numbers with
    a fraction are kept as their exact text. A record the page holds twice is applied once, as
    it came last."""
    ids = [str(record["Id"]) for record in records]
    columns = tables.table_of(tables.CrmRecord).c
    known = {
        row.record_id: row
        for row in session.execute(
            select(
                columns.record_id,
                columns.payload_hash,
                columns.state,
                columns.reason,
                columns.applied_hash,
                columns.applied_payload,
            ).where(
                columns.system == system,
                columns.object == obj,
                columns.record_id.in_(sorted(set(ids))),
            )
        )
    }
    staged: dict[str, Staged] = {}
    unchanged = 0
    for record, record_id, modstamp, gone in zip(records, ids, modstamps, deleted, strict=True):
        payload = json.loads(json.dumps(record, default=str))
        digest = payload_hash(payload)
        row = known.get(record_id)
        if staged.pop(record_id, None) is not None:
            unchanged += 1
        if row is None:
            staged[record_id] = Staged(obj, record_id, payload, digest, modstamp, gone)
        elif row.payload_hash == digest and row.state in FINAL_STATES:
            unchanged += 1
        else:
            staged[record_id] = Staged(
                obj,
                record_id,
                payload,
                digest,
                modstamp,
                gone,
                row.state,
                row.reason,
                row.applied_hash,
                row.applied_payload,
                stored=True,
            )
    return list(staged.values()), unchanged


def save_staged(session: Session, system: str, rows: Sequence[Staged]) -> None:
    """Store the staged records as they now stand (one statement)."""
    now = utc_now()
    bulk_upsert(
        session,
        tables.table_of(tables.CrmRecord),
        [
            {
                "system": system,
                "object": row.object,
                "record_id": row.record_id,
                "payload": row.payload,
                "payload_hash": row.payload_hash,
                "modstamp": row.modstamp,
                "deleted": row.deleted,
                "state": row.state,
                "reason": row.reason,
                "applied_hash": row.applied_hash,
                "applied_payload": row.applied_payload,
                "first_seen": now,
                "updated_at": now,
            }
            for row in rows
        ],
        keys=["system", "object", "record_id"],
        insert_only=["first_seen"],
    )
    for row in rows:
        row.stored = True


class Settled(Protocol):
    object: str
    record_id: str
    state: str
    reason: str | None
    payload_hash: str
    payload: dict[str, Any]
    applied_hash: str | None
    applied_payload: dict[str, Any] | None


def settle(
    row: Settled, state: str, reason: str | None = None, *, session: Session | None = None
) -> None:
    """Record what became of a staged record; with ``session``, a deal that starts or stops
    waiting, or waits for another reason, is queued for the write-back (its sync error)."""
    if (
        session is not None
        and row.object == OPPORTUNITY
        and (row.state, row.reason)
        != (
            state,
            reason,
        )
    ):
        writeback_queue.mark(session, writeback_queue.DEAL, [row.record_id])
    row.state, row.reason = state, reason
    if state in (APPLIED, IGNORED):
        row.applied_hash, row.applied_payload = row.payload_hash, row.payload


def states(
    session: Session, system: str, obj: str, record_ids: Collection[str]
) -> dict[str, tuple[str, str | None]]:
    """``(state, reason)`` of the staged records ``record_ids`` of ``obj`` (one query)."""
    if not record_ids:
        return {}
    row = tables.CrmRecord
    return {
        record_id: (state, reason)
        for record_id, state, reason in session.execute(
            select(row.record_id, row.state, row.reason).where(
                row.system == system, row.object == obj, row.record_id.in_(sorted(record_ids))
            )
        )
    }


def waiting(session: Session, system: str, state: str) -> list[Staged]:
    """The staged records in ``state``, ordered as :func:`in_state` orders them."""
    columns = tables.table_of(tables.CrmRecord).c
    return [
        Staged(**row._mapping, stored=True)
        for row in session.execute(
            select(
                columns.object,
                columns.record_id,
                columns.payload,
                columns.payload_hash,
                columns.modstamp,
                columns.deleted,
                columns.state,
                columns.reason,
                columns.applied_hash,
                columns.applied_payload,
            )
            .where(columns.system == system, columns.state == state)
            .order_by(columns.object, columns.modstamp, columns.id)
        )
    ]


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
    """Advance a cursor (never backwards), in one statement."""
    table = tables.table_of(tables.SyncCursor)
    dialect = sqlite if session.get_bind().dialect.name == "sqlite" else postgresql
    statement = dialect.insert(table).values(name=name, position=position, updated_at=utc_now())
    session.execute(
        statement.on_conflict_do_update(
            index_elements=[table.c.name],
            set_={
                "position": statement.excluded.position,
                "updated_at": statement.excluded.updated_at,
            },
            where=table.c.position.is_(None) | (statement.excluded.position > table.c.position),
        )
        if position is not None
        else statement.on_conflict_do_nothing(index_elements=[table.c.name])
    )


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
    """Record the calls made on ``day`` (never fewer than recorded) and the org's own count,
    in one statement."""
    table = tables.table_of(tables.ApiUsage)
    dialect = sqlite if session.get_bind().dialect.name == "sqlite" else postgresql
    statement = dialect.insert(table).values(
        system=system, day=day, calls=calls, org_used=org[0], org_limit=org[1]
    )
    session.execute(
        statement.on_conflict_do_update(
            index_elements=[table.c.system, table.c.day],
            set_={
                "calls": case(
                    (statement.excluded.calls > table.c.calls, statement.excluded.calls),
                    else_=table.c.calls,
                ),
                "org_used": statement.excluded.org_used,
                "org_limit": statement.excluded.org_limit,
            },
        )
    )
