"""Storage of the pull: staged CRM records, sync cursors and API usage per day."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

from sqlalchemy import JSON, case, func, or_, select, type_coerce, update
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
API_METADATA = "attributes"  # a REST record's type and URL (with the API version): not content
UTC_Z = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z")


def staged_form(record: dict[str, Any]) -> dict[str, Any]:
    """A CRM record as it is staged and hashed, the same whichever API read it: a REST query's
    JSON or a Bulk API job's CSV row (nested as REST nests it). Every field's value is text,
    as a Bulk CSV writes it: ``true``/``false`` for a checkbox, a number as Salesforce wrote
    it (``12``, ``3.0``: a fraction keeps its exact text), a date as it is, a datetime in UTC
    as REST writes it (``...+0000``, where a CSV writes ``...Z``), null for an empty value.
    The API's ``attributes`` are left out at every level; a parent whose fields are all null
    is null (a CSV row cannot tell it from no parent); child records come in Id order
    (neither API promises one)."""
    return {key: _staged_value(value) for key, value in record.items() if key != API_METADATA}


def _staged_value(value: Any) -> Any:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"{value[:-1]}+0000" if value[-1] == "Z" and UTC_Z.fullmatch(value) else value
    if isinstance(value, list):
        return [_staged_value(item) for item in value]
    if isinstance(value, dict):
        children = value.get("records")
        if isinstance(children, list):  # a child relationship: {"totalSize", "done", "records"}
            records = sorted((staged_form(child) for child in children), key=_record_id)
            return {**value, "records": records}
        parent = staged_form(value)
        return parent if any(field is not None for field in parent.values()) else None
    return str(value)  # a number: int, or Decimal (its exact text), or float


def _record_id(record: dict[str, Any]) -> str:
    return str(record.get("Id") or "")


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
    """The records of a page (one query reads what was staged of them), each in its
    :func:`staged_form`, but those whose identical payload was already handled; and how many
    those were. A record the page holds twice is applied once, as it came last.

    A payload staged by an earlier version in another form (JSON values, ``attributes``) is
    the same when its staged form is: such a record is unchanged, and keeps its row as it was
    until it changes."""
    ids = [str(record["Id"]) for record in records]
    columns = tables.table_of(tables.CrmRecord).c
    differs = or_(columns.applied_hash.is_(None), columns.applied_hash != columns.payload_hash)
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
                # the payload, where it is not the one applied (which is read already)
                type_coerce(case((differs, columns.payload)), JSON).label("payload"),
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
        payload = staged_form(record)
        digest = payload_hash(payload)
        row = known.get(record_id)
        if staged.pop(record_id, None) is not None:
            unchanged += 1
        if row is None:
            staged[record_id] = Staged(obj, record_id, payload, digest, modstamp, gone)
        elif row.state in FINAL_STATES and (
            row.payload_hash == digest or _staged_hash(row) == digest
        ):
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


def _staged_hash(row: Any) -> str | None:
    """The hash of a stored payload's :func:`staged_form` (it may have been staged in another
    form by an earlier version)."""
    stored = row.applied_payload if row.payload is None else row.payload
    return payload_hash(staged_form(stored)) if isinstance(stored, dict) else None


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


def waiting_counts(session: Session, system: str) -> dict[str, int]:
    """The records waiting (quarantined or held), by state: read from the index on system
    and state, never the records applied."""
    rows = session.execute(
        select(tables.CrmRecord.state, func.count())
        .where(tables.CrmRecord.system == system, tables.CrmRecord.state.in_([QUARANTINED, HELD]))
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
