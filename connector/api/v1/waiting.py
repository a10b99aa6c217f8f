"""``/v1/waiting``: records pulled from Salesforce that wait for a person, with why:
quarantined (could not be mapped; retried when the record changes) or held (mapped, but
implausible or reversing billed documents: applied once someone approves it, as
`connector review approve` does)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.api.auth import ReadKey, WriteKey, instance_of
from connector.api.problems import ApiProblem
from connector.api.v1 import idempotency
from connector.api.v1.idempotency import Answer, IdempotencyClaim
from connector.api.v1.pagination import Paging, paged
from connector.api.v1.schemas import PROBLEMS, Model, Page
from connector.db import staging, tables
from connector.db.engine import reading
from connector.db.types import utc_now
from connector.sync import review
from connector.sync.status import SYSTEM, waiting_record

router = APIRouter(tags=["waiting records"], responses=PROBLEMS)


class WaitingRecord(Model):
    object: str
    record_id: str
    name: str | None
    state: Literal["quarantined", "held"]
    reason: str | None
    modstamp: datetime | None


class Approval(Model):
    object: str
    record_id: str
    reason: str | None
    approved_by: str
    approved_at: datetime


class Approved(Model):
    approval: Approval
    state: str = Field(description="What became of the record: applied, or quarantined.")
    reason: str | None = Field(description="Why it still waits, when quarantined.")


class ApprovalRequest(Model):
    by: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        description="Who approves it (default: the API key, by its name).",
    )
    as_of: date | None = Field(default=None, description="Business date (default: today, UTC).")


@router.get("/waiting", response_model=Page[WaitingRecord], summary="Records waiting")
def list_waiting(
    request: Request,
    _key: ReadKey,
    page: Paging,
    state: Annotated[Literal["quarantined", "held"] | None, Query()] = None,
    object: Annotated[
        str | None, Query(max_length=80, description="Only records of this object.")
    ] = None,
) -> Page[WaitingRecord]:
    record = tables.CrmRecord
    query = select(record).where(
        record.system == SYSTEM,
        record.state.in_([state] if state else [staging.QUARANTINED, staging.HELD]),
        record.id > page.after,
    )
    if object is not None:
        query = query.where(record.object == object)
    with reading(instance_of(request).factory) as session:
        rows = session.scalars(query.order_by(record.id).limit(page.fetch)).all()
        kept, cursor = paged(rows, page, lambda row: row.id)
        data = [WaitingRecord.model_validate(vars(waiting_record(row))) for row in kept]
    return Page[WaitingRecord](data=data, next_cursor=cursor)


@router.post(
    "/waiting/{record_id}/approve",
    response_model=Approved,
    summary="Approve a held record",
    openapi_extra=idempotency.OPENAPI,
)
def approve(
    request: Request,
    key: WriteKey,
    claim: IdempotencyClaim,
    record_id: str,
    body: ApprovalRequest,
) -> JSONResponse:
    """Apply a record held for an implausible date or amount as it is; the approval is kept
    with who and when, for this version of the record."""
    applier = review.review_applier(instance_of(request).settings, body.as_of or utc_now().date())

    def work(session: Session) -> Answer:
        try:
            who = body.by or f"API key {key.name}"
            done = review.approve_in(session, applier, record_id, by=who)
        except review.StillHeldError as error:
            raise ApiProblem(409, str(error), slug="still-held") from None
        answer = Approved(
            approval=Approval.model_validate(vars(done.approval)),
            state=done.state,
            reason=done.reason,
        )
        return Answer(200, answer.model_dump(mode="json"))

    return idempotency.once(request, claim, work)
