"""The console's state pages: the overview (stages, API quota, what needs a person), the
records waiting with their reasons, and the outbox of every target. Everything is read in one
read-only transaction through :func:`connector.sync.status.status`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from connector.api.auth import instance_of
from connector.api.console import views
from connector.api.console.guard import User
from connector.api.instance import Instance
from connector.db import staging, writeback_queue
from connector.db.engine import reading
from connector.db.types import utc_now
from connector.documents import store
from connector.sync import review
from connector.sync.cycle import STAGES
from connector.sync.status import LastRun, Status, status
from jobs.scheduler import next_run, schedule_of

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class StageRow:
    name: str
    schedule: str
    last: LastRun | None
    next_run: datetime | None

    @property
    def result(self) -> str:
        """ok, failed, running, or never (for the badge)."""
        if self.last is None:
            return "never"
        if self.last.finished_at is None:
            return "running"
        return "ok" if self.last.ok else "failed"

    @property
    def seconds(self) -> str:
        if self.last is None or self.last.finished_at is None:
            return ""
        return f"{(self.last.finished_at - self.last.started_at).total_seconds():.1f} s"


def read_status(instance: Instance, session: Session, now: datetime) -> Status:
    settings = instance.settings
    return status(
        session,
        now.date(),
        jobs=STAGES,
        targets=[settings.accounting.target],
        home_country=settings.tax.home_country,
        email_enabled=settings.email.enabled,
    )


def stage_rows(instance: Instance, report: Status, now: datetime) -> list[StageRow]:
    specs = schedule_of(instance.settings.schedule)
    rows = []
    for name in STAGES:
        last = report.jobs.get(name)
        started = last.started_at if last is not None else None
        rows.append(StageRow(name, specs[name], last, next_run(specs[name], started, now)))
    return rows


@router.get("/")
def overview(request: Request, user: User) -> Response:
    instance = instance_of(request)
    now = utc_now()
    with reading(instance.factory) as session:
        report = read_status(instance, session, now)
    waiting = {state: 0 for state in (staging.QUARANTINED, staging.HELD)}
    for record in report.waiting:
        waiting[record.state] = waiting.get(record.state, 0) + 1
    return views.page(
        request,
        "overview.html",
        user,
        report=report,
        stages=stage_rows(instance, report, now),
        role=instance.role,
        attention=report.attention(),
        waiting=waiting,
        now=now,
    )


@router.get("/waiting")
def waiting(request: Request, user: User, state: str | None = None) -> Response:
    instance = instance_of(request)
    with reading(instance.factory) as session:
        report = read_status(instance, session, utc_now())
        approvals = review.review(session, approvals=10).approved
    shown = state if state in (staging.QUARANTINED, staging.HELD) else None
    records = [r for r in report.waiting if shown is None or r.state == shown]
    salesforce = instance.settings.salesforce
    return views.page(
        request,
        "waiting.html",
        user,
        records=records,
        links={r.record_id: views.salesforce_url(salesforce, r.record_id) for r in records},
        counts={
            s: sum(1 for r in report.waiting if r.state == s)
            for s in (staging.QUARANTINED, staging.HELD)
        },
        total=len(report.waiting),
        state=shown,
        approvals=approvals,
    )


@router.get("/outbox")
def outbox(request: Request, user: User) -> Response:
    instance = instance_of(request)
    now = utc_now()
    with reading(instance.factory) as session:
        report = read_status(instance, session, now)
        writeback = writeback_queue.depth(session, now.date())
        renders = store.queue_depth(session)
    targets = set(report.outbox)
    return views.page(
        request,
        "outbox.html",
        user,
        report=report,
        writeback=writeback,
        writeback_due=sum(n for entity, n in writeback.items() if entity != "later"),
        renders=renders,
        document_refusals=[r for r in report.refused if r.where in targets],
        salesforce_refusals=[r for r in report.refused if r.where.startswith("salesforce ")],
        other_refusals=[
            r
            for r in report.refused
            if r.where not in targets and not r.where.startswith("salesforce ")
        ],
    )
