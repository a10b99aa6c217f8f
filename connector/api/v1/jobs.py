"""``POST /v1/jobs/{stage}/run``: run one stage of the cycle now, on the active instance, under
the scheduler's own lock (never beside a scheduled job); a standby answers 503."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from connector.api.auth import WriteKey, instance_of
from connector.api.v1 import idempotency
from connector.api.v1.idempotency import Answer, IdempotencyClaim
from connector.api.v1.schemas import PROBLEMS, Model
from connector.sync.cycle import STAGES, JobRun

router = APIRouter(tags=["jobs"], responses=PROBLEMS)

Stage = Literal[
    "pull", "payments", "bill", "revenue", "push", "dunning", "send", "webhooks", "writeback"
]
if set(Stage.__args__) != set(STAGES):  # type: ignore[attr-defined]
    raise ImportError("the API's Stage names differ from connector.sync.cycle.STAGES")


class RunRequest(Model):
    as_of: date | None = Field(default=None, description="Business date (default: today, UTC).")


class StageRun(Model):
    """One run of a stage, as the job log records it."""

    job: str
    as_of: date
    ok: bool
    seconds: float
    api_calls: int
    counts: dict[str, Any] | None = Field(description="What the stage did.")
    error: str | None


@router.post(
    "/jobs/{stage}/run",
    response_model=StageRun,
    summary="Run a stage now",
    responses={503: {"description": "This instance stands by: ask the active one."}},
    openapi_extra=idempotency.OPENAPI,
)
def run_stage(
    request: Request,
    _key: WriteKey,
    claim: IdempotencyClaim,
    stage: Stage,
    body: RunRequest | None = None,
) -> JSONResponse:
    """A stage that fails answers 200 with ``ok`` false and its ``error`` (it is recorded as a
    failed run, as a scheduled one would be)."""
    instance = instance_of(request)
    as_of = body.as_of if body is not None else None

    def work() -> Answer:
        run = instance.run_stage(stage, as_of)
        assert isinstance(run, JobRun)
        record = run.log_record()
        answer = StageRun.model_validate(record)
        return Answer(200, answer.model_dump(mode="json"))

    return idempotency.once_apart(request, claim, work)
