"""What the connector knows about its own state: cursors, staged records, API usage today."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy.orm import Session

from connector.db import staging, tables

SYSTEM = "salesforce"


@dataclass(frozen=True)
class WaitingRecord:
    object: str
    record_id: str
    state: str
    reason: str | None
    modstamp: datetime | None
    name: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "object": self.object,
            "record_id": self.record_id,
            "name": self.name,
            "state": self.state,
            "reason": self.reason,
            "modstamp": self.modstamp.isoformat() if self.modstamp else None,
        }


@dataclass
class Status:
    cursors: dict[str, datetime | None]
    records: dict[str, int]
    waiting: list[WaitingRecord] = field(default_factory=list)
    api_day: date | None = None
    api_calls: int = 0
    org_used: int | None = None
    org_limit: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "cursors": {
                name: position.isoformat() if position else None
                for name, position in self.cursors.items()
            },
            "records": dict(self.records),
            "quarantined": [r.to_dict() for r in self.waiting if r.state == staging.QUARANTINED],
            "held": [r.to_dict() for r in self.waiting if r.state == staging.HELD],
            "api_usage": {
                "day": self.api_day.isoformat() if self.api_day else None,
                "connector_calls": self.api_calls,
                "org_used": self.org_used,
                "org_limit": self.org_limit,
            },
        }


def _waiting(row: tables.CrmRecord) -> WaitingRecord:
    name = row.payload.get("Name") if isinstance(row.payload, dict) else None
    return WaitingRecord(row.object, row.record_id, row.state, row.reason, row.modstamp, name)


def status(session: Session, today: date) -> Status:
    usage = session.get(tables.ApiUsage, (SYSTEM, today))
    waiting = [
        _waiting(row)
        for state in (staging.QUARANTINED, staging.HELD)
        for row in staging.in_state(session, SYSTEM, state)
    ]
    return Status(
        cursors=staging.cursors(session, f"{SYSTEM}:"),
        records=staging.state_counts(session, SYSTEM),
        waiting=waiting,
        api_day=today,
        api_calls=usage.calls if usage else 0,
        org_used=usage.org_used if usage else None,
        org_limit=usage.org_limit if usage else None,
    )
