"""Sales activity over time, for simulations such as ``connector demo``.

A seeded org holds a whole year of deals at once. A :class:`Timeline` takes back what has not
happened yet on a given day (deals won later go back to an open stage, cancellations dated
later are cleared) and replays it day by day, as sales would enter it. Each replayed change is
an ordinary update, stamped when it is replayed, so an incremental pull finds exactly the
deals that changed since the last one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sandbox.salesforce.store import Org

OPEN_STAGE = "Negotiation/Review"


@dataclass(frozen=True)
class HeldChange:
    day: date
    record_id: str
    values: dict[str, Any]


class Timeline:
    def __init__(self, org: Org, held: list[HeldChange]) -> None:
        self.org = org
        self.held = sorted(held, key=lambda change: (change.day, change.record_id))

    @classmethod
    def hold_after(cls, org: Org, day: date) -> Timeline:
        """Take back every win closed after ``day`` and every cancellation dated after it."""
        held: list[HeldChange] = []
        rows = org.db.execute(
            "SELECT Id, StageName, CloseDate, Cancellation_Date__c FROM Opportunity "
            "WHERE IsDeleted = 0 AND IsWon = 1 ORDER BY Id"
        ).fetchall()
        with org.transaction():
            for record_id, stage, closed, cancelled in rows:
                undo: dict[str, Any] = {}
                if cancelled and date.fromisoformat(cancelled) > day:
                    held.append(
                        HeldChange(
                            date.fromisoformat(cancelled),
                            record_id,
                            {"Cancellation_Date__c": cancelled},
                        )
                    )
                    undo["Cancellation_Date__c"] = None
                if date.fromisoformat(closed) > day:
                    held.append(
                        HeldChange(date.fromisoformat(closed), record_id, {"StageName": stage})
                    )
                    undo["StageName"] = OPEN_STAGE
                if undo:
                    org.update("Opportunity", record_id, undo)
        return cls(org, held)

    def replay_through(self, day: date) -> list[HeldChange]:
        """Apply every held change dated ``day`` or earlier, in date order; returns them."""
        due = [change for change in self.held if change.day <= day]
        if due:
            with self.org.transaction():
                for change in due:
                    self.org.update("Opportunity", change.record_id, change.values)
            self.held = self.held[len(due) :]
        return due
