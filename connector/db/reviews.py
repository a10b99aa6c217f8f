"""Storage of review approvals: which version of a held record a person approved, who, when."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.db import tables


def approved(session: Session, system: str, record_id: str, payload_hash: str) -> bool:
    """Whether this version of the record was approved."""
    found = session.scalar(
        select(tables.ReviewApproval.id).where(
            tables.ReviewApproval.system == system,
            tables.ReviewApproval.record_id == record_id,
            tables.ReviewApproval.payload_hash == payload_hash,
        )
    )
    return found is not None


def approve(
    session: Session, row: tables.CrmRecord, *, by: str, at: datetime
) -> tables.ReviewApproval:
    """Record the approval of the record's current version (once: approving it again keeps
    the first approval)."""
    existing = session.scalar(
        select(tables.ReviewApproval).where(
            tables.ReviewApproval.system == row.system,
            tables.ReviewApproval.record_id == row.record_id,
            tables.ReviewApproval.payload_hash == row.payload_hash,
        )
    )
    if existing is not None:
        return existing
    approval = tables.ReviewApproval(
        system=row.system,
        object=row.object,
        record_id=row.record_id,
        payload_hash=row.payload_hash,
        reason=row.reason,
        approved_by=by,
        approved_at=at,
    )
    session.add(approval)
    session.flush()
    return approval


def approvals(session: Session, system: str, limit: int = 50) -> Sequence[tables.ReviewApproval]:
    """The most recent approvals, newest first."""
    return session.scalars(
        select(tables.ReviewApproval)
        .where(tables.ReviewApproval.system == system)
        .order_by(tables.ReviewApproval.approved_at.desc(), tables.ReviewApproval.id.desc())
        .limit(limit)
    ).all()


def approved_versions(
    session: Session, system: str, record_ids: Collection[str]
) -> set[tuple[str, str]]:
    """``(record id, payload hash)`` of every approved version of the records (one query)."""
    if not record_ids:
        return set()
    row = tables.ReviewApproval
    return {
        (record_id, payload_hash)
        for record_id, payload_hash in session.execute(
            select(row.record_id, row.payload_hash).where(
                row.system == system, row.record_id.in_(sorted(record_ids))
            )
        )
    }
