"""``/v1/status``: what `connector status --json` reports (the last run of each stage, records
waiting, the outbox of each target, refusals, API usage today, the books, the mail outbox), with
what waits for a person and this instance's role."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from fastapi import APIRouter, Request

from connector.api.auth import ReadKey, instance_of
from connector.api.v1.schemas import PROBLEMS, Model
from connector.api.v1.waiting import WaitingRecord
from connector.db.engine import reading
from connector.db.types import utc_now
from connector.sync import status as sync_status
from connector.sync.cycle import STAGES

router = APIRouter(tags=["status"], responses=PROBLEMS)


class LastRun(Model):
    started_at: datetime
    finished_at: datetime | None
    ok: bool
    error: str | None
    summary: dict[str, Any] | None


class Refusal(Model):
    where: str
    what: str
    error: str


class ApiUsage(Model):
    day: date | None
    connector_calls: int
    org_used: int | None
    org_limit: int | None


class Books(Model):
    closed_through: date | None
    first_open_day: date | None
    closed_by: str | None
    closed_at: datetime | None
    reopened: bool | None
    in_flight: dict[str, int]


class TaxIdWarning(Model):
    customer_id: int
    customer: str
    country: str
    tax_id: str
    warning: str


class WaitingMessage(Model):
    number: str
    kind: str
    customer: str
    state: str
    answer: str


class Email(Model):
    enabled: bool
    counts: dict[str, int]
    messages: list[WaitingMessage]


class Unrendered(Model):
    document: str
    reason: str


class WebhookEndpoint(Model):
    id: int
    url: str
    enabled: bool
    disabled_reason: str | None
    deliveries: dict[str, int]  # per state, and "failing": pending after a refused attempt


class Webhooks(Model):
    endpoints: list[WebhookEndpoint]


class Status(Model):
    role: Literal["active", "standby"]
    attention: list[str]
    jobs: dict[str, LastRun | None]
    connections: dict[str, dict[str, Any]]
    outbox: dict[str, dict[str, int]]
    refused: list[Refusal]
    cursors: dict[str, datetime | None]
    records: dict[str, int]
    quarantined: list[WaitingRecord]
    held: list[WaitingRecord]
    api_usage: ApiUsage
    books: Books
    tax_ids: list[TaxIdWarning]
    email: Email | None
    unrendered: list[Unrendered]
    webhooks: Webhooks | None


@router.get("/status", response_model=Status, summary="The connector's state")
def status(request: Request, _key: ReadKey) -> Status:
    """``attention`` lists what waits for a person, one line each (empty when all is well):
    the lines `connector status` prints before exiting 1."""
    instance = instance_of(request)
    settings = instance.settings
    with reading(instance.factory) as session:
        report = sync_status.status(
            session,
            utc_now().date(),
            jobs=STAGES,
            targets=[settings.accounting.target],
            home_country=settings.tax.home_country,
            email_enabled=settings.email.enabled,
        )
    return Status.model_validate(
        {**report.to_dict(), "role": instance.role, "attention": report.attention()}
    )
