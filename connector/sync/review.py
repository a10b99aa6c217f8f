"""Review of held records: what waits for a person and why, and approving a record as it is.

A record is held (state ``held`` of its staged row, with the reason) when applying it needs a
person: an implausible date or amount (:mod:`connector.billing.plausibility`), a change after a
later amendment, a deal withdrawn after it was billed. Holds are shown by ``connector status``
and written back to the deal (``Billing_Sync_Error__c``).

Approving applies the staged version of the record now, with the limits on dates and amounts
waived for that version (its payload hash) and the approval recorded with who and when. What
an approval cannot waive stays held and the approval is not kept: a date before the books
open, or a hold of another kind. A later change in Salesforce is checked again; what it keeps
of the approved version (the service start, an item's terms) is not checked again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from functools import partial
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connector.db import reviews, staging, tables, webhook_events
from connector.db.engine import transaction
from connector.db.types import utc_now
from connector.errors import InvalidInputError, NotFoundError
from connector.settings import Settings, mapping_path
from connector.sync.applier import SYSTEM, Applier
from connector.sync.limits import plausibility_limits
from connector.sync.mapping import load_mapping
from connector.sync.status import WaitingRecord, waiting_records
from connector.sync.usage_mapping import usage_mapping_of


class StillHeldError(InvalidInputError):
    """The record stays held after an approval: what holds it cannot be approved."""


@dataclass(frozen=True)
class Approval:
    object: str
    record_id: str
    reason: str | None
    approved_by: str
    approved_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "object": self.object,
            "record_id": self.record_id,
            "reason": self.reason,
            "approved_by": self.approved_by,
            "approved_at": self.approved_at.isoformat(),
        }


@dataclass(frozen=True)
class Review:
    held: list[WaitingRecord]
    approved: list[Approval]

    def to_dict(self) -> dict[str, Any]:
        return {
            "held": [record.to_dict() for record in self.held],
            "approved": [approval.to_dict() for approval in self.approved],
        }


def _approval(row: tables.ReviewApproval) -> Approval:
    return Approval(row.object, row.record_id, row.reason, row.approved_by, row.approved_at)


def review(session: Session, approvals: int = 20) -> Review:
    """Every held record with why, and the ``approvals`` most recent approvals."""
    return Review(
        held=[record for record in waiting_records(session) if record.state == staging.HELD],
        approved=[_approval(row) for row in reviews.approvals(session, SYSTEM, approvals)],
    )


@dataclass(frozen=True)
class Approved:
    approval: Approval
    state: str  # what became of the record: applied, or quarantined (waiting for something)
    reason: str | None


def approve(
    factory: sessionmaker[Session],
    settings: Settings,
    record_id: str,
    *,
    by: str,
    as_of: date,
    now: datetime | None = None,
) -> Approved:
    """Apply the held record ``record_id`` as it is and record who approved it, when. Raises
    :class:`StillHeldError` (nothing changed) when what holds it is not for a person to
    approve."""
    applier = review_applier(settings, as_of)
    with transaction(factory) as session:
        return approve_in(session, applier, record_id, by=by, now=now)


def review_applier(settings: Settings, as_of: date) -> Applier:
    """What applies an approved record as of ``as_of``: the mapping and limits of ``settings``."""
    mapping = load_mapping(mapping_path(settings.salesforce.mapping_file))
    return Applier(
        mapping.mapping,
        settings.billing.default_currency,
        as_of,
        plausibility_limits(settings),
        partial(usage_mapping_of, settings),
    )


def approve_in(
    session: Session,
    applier: Applier,
    record_id: str,
    *,
    by: str,
    now: datetime | None = None,
) -> Approved:
    """:func:`approve` in the caller's transaction: when the record stays held, the error is
    raised and the caller's transaction must roll back (the approval with it)."""
    if not by.strip():
        raise InvalidInputError("an approval needs the name of who approves it")
    row = session.scalar(
        select(tables.CrmRecord).where(
            tables.CrmRecord.system == SYSTEM, tables.CrmRecord.record_id == record_id
        )
    )
    if row is None:
        raise NotFoundError(f"no record {record_id} was pulled from Salesforce")
    if row.state != staging.HELD:
        why = f" ({row.reason})" if row.reason else ""
        raise InvalidInputError(f"{row.object} {record_id} is {row.state}, not held{why}")
    approval = _approval(reviews.approve(session, row, by=by.strip(), at=now or utc_now()))
    outcome = applier.settle(session, row)
    if outcome.state == staging.HELD:  # rolls the approval back with everything else
        raise StillHeldError(f"{row.object} {record_id} stays held: {outcome.reason}")
    webhook_events.emit_records(session, SYSTEM, [row])
    return Approved(approval, outcome.state, outcome.reason)
