"""What the connector knows about its own state: the last run of each job, cursors, staged
records (quarantined and held ones with their reasons), the outbox per accounting target
(waiting, parked, and why), write-backs Salesforce refused, API usage today, the day the books
are closed through, the mail outbox, and customers whose VAT id was not accepted for the EU
reverse charge."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from connector.accounting import base
from connector.billing.vat import EU_MEMBER_STATES, treatment
from connector.db import outbox, staging, tables
from connector.documents import store
from connector.sync.closing import Books, books_state
from connector.sync.email_status import EmailState, email_state
from connector.sync.webhook_status import WebhookState, webhook_state

SYSTEM = "salesforce"
DOCUMENT_TYPES = (base.INVOICE, base.CREDIT_NOTE, base.VOID)  # outbox rows of documents


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


@dataclass(frozen=True)
class LastRun:
    job: str
    started_at: datetime
    finished_at: datetime | None
    ok: bool
    error: str | None
    summary: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "ok": self.ok,
            "error": self.error,
            "summary": self.summary,
        }


@dataclass(frozen=True)
class Refusal:
    """A document a target refused, or a write-back Salesforce refused: waiting, with why."""

    where: str
    what: str
    error: str

    def to_dict(self) -> dict[str, Any]:
        return {"where": self.where, "what": self.what, "error": self.error}


@dataclass(frozen=True)
class TaxIdWarning:
    """A customer in the EU whose VAT id was not accepted: taxed at the normal rate."""

    customer_id: int
    customer: str
    country: str
    tax_id: str
    warning: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "customer_id": self.customer_id,
            "customer": self.customer,
            "country": self.country,
            "tax_id": self.tax_id,
            "warning": self.warning,
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
    jobs: dict[str, LastRun | None] = field(default_factory=dict)
    outbox: dict[str, dict[str, int]] = field(default_factory=dict)
    refused: list[Refusal] = field(default_factory=list)
    connections: dict[str, dict[str, Any]] = field(default_factory=dict)
    books: Books = field(default_factory=Books)
    tax_ids: list[TaxIdWarning] = field(default_factory=list)
    unbilled: int = 0  # subscriptions the last billing run could not bill (billing_error)
    email: EmailState | None = None  # the mail outbox
    unrendered: list[tuple[str, str]] = field(default_factory=list)  # (document, why)
    webhooks: WebhookState | None = None  # None: no webhook endpoint

    def attention(self) -> list[str]:
        """What waits for a person, one line each: records waiting for a fix or a review,
        documents parked and other refusals, subscriptions that cannot be billed, a stage whose
        last run failed, an accounting connection to renew. Empty when all is well (VAT ids not
        accepted are billed, taxed normally: listed, not waiting)."""
        lines = []
        for state, what in (
            (staging.QUARANTINED, "(waiting for a fix)"),
            (staging.HELD, "for review"),
        ):
            count = sum(1 for record in self.waiting if record.state == state)
            if count:
                lines.append(f"{count} {'record' if count == 1 else 'records'} {state} {what}")
        parked = {target: depth.get("parked", 0) for target, depth in self.outbox.items()}
        for target, count in parked.items():
            if count:
                lines.append(f"{target}: {count} documents parked")
        others = [r for r in self.refused if r.where not in parked]
        if others:
            lines.append(f"{len(others)} refused by Salesforce or accounting (see refused)")
        if self.unbilled:
            lines.append(f"{self.unbilled} subscriptions cannot be billed")
        for job, run in self.jobs.items():
            if run is not None and not run.ok:
                lines.append(f"the last {job} run failed: {run.error}")
        for target, connection in self.connections.items():
            if connection.get("state") != "connected":
                lines.append(f"{target}: {connection.get('state')} ({connection.get('error')})")
        if self.email is not None:
            lines.extend(self.email.attention())
        for number, why in self.unrendered:
            lines.append(f"{number}: its PDF could not be rendered ({why})")
        if self.webhooks is not None:
            lines.extend(self.webhooks.attention())
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {
            "jobs": {
                name: run.to_dict() if run is not None else None for name, run in self.jobs.items()
            },
            "connections": {target: dict(state) for target, state in self.connections.items()},
            "outbox": {target: dict(depth) for target, depth in self.outbox.items()},
            "refused": [refusal.to_dict() for refusal in self.refused],
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
            "books": self.books.to_dict(),
            "tax_ids": [warning.to_dict() for warning in self.tax_ids],
            "email": self.email.to_dict() if self.email is not None else None,
            "unrendered": [{"document": n, "reason": why} for n, why in self.unrendered],
            "webhooks": self.webhooks.to_dict() if self.webhooks is not None else None,
        }


def waiting_record(row: tables.CrmRecord) -> WaitingRecord:
    """A staged record waiting, as reports show it."""
    name = row.payload.get("Name") if isinstance(row.payload, dict) else None
    return WaitingRecord(row.object, row.record_id, row.state, row.reason, row.modstamp, name)


def waiting_records(session: Session) -> list[WaitingRecord]:
    """Records quarantined (waiting for a fix) or held (waiting for a review), with why."""
    return [
        waiting_record(row)
        for state in (staging.QUARANTINED, staging.HELD)
        for row in staging.in_state(session, SYSTEM, state)
    ]


def last_runs(session: Session, jobs: Sequence[str]) -> dict[str, LastRun | None]:
    """The latest run of each of ``jobs`` (None for a job that never ran)."""
    runs: dict[str, LastRun | None] = {}
    for job in jobs:
        row = session.scalars(
            select(tables.JobRun)
            .where(tables.JobRun.job == job)
            .order_by(tables.JobRun.started_at.desc(), tables.JobRun.id.desc())
            .limit(1)
        ).first()
        runs[job] = (
            None
            if row is None
            else LastRun(job, row.started_at, row.finished_at, row.ok, row.error, row.summary)
        )
    return runs


def refusals(session: Session) -> list[Refusal]:
    """Documents parked by an accounting target, records Salesforce refused, and payments
    recorded in accounting that the last read could not apply (where they are), with why."""
    parked = session.execute(
        select(tables.Delivery.target, tables.Document.number, tables.Outbox, tables.Delivery.error)
        .join(tables.Outbox, tables.Outbox.id == tables.Delivery.outbox_id)
        .outerjoin(
            tables.Document,
            (tables.Document.id == tables.Outbox.document_id)
            & tables.Outbox.document_type.in_(DOCUMENT_TYPES),
        )
        .where(tables.Delivery.state == outbox.PARKED)
        .order_by(tables.Delivery.outbox_id)
    ).all()
    found = [
        Refusal(target, number or f"{row.document_type} {row.document_id}", error or "")
        for target, number, row, error in parked
    ]
    for state in session.scalars(
        select(tables.WritebackState)
        .where(tables.WritebackState.error.is_not(None))
        .order_by(tables.WritebackState.object, tables.WritebackState.key)
    ):
        found.append(Refusal(f"salesforce {state.object}", state.key, state.error or ""))
    payments = last_runs(session, ["payments"])["payments"]
    refused_payments = (payments.summary or {}).get("refused") if payments else None
    for where, why in sorted((refused_payments or {}).items()):
        found.append(Refusal("accounting payment", where, why))
    for contact in session.scalars(
        select(tables.AccountingContact)
        .where(tables.AccountingContact.error.is_not(None))
        .order_by(tables.AccountingContact.target, tables.AccountingContact.customer_id)
    ):
        found.append(
            Refusal(
                f"{contact.target} contact", f"customer {contact.customer_id}", contact.error or ""
            )
        )
    return found


def connections(session: Session) -> dict[str, dict[str, Any]]:
    """The sign-in state of each remote accounting target: ``connected``, or ``reconnect``
    with the reason (never a token)."""
    return {
        row.target: {
            "state": row.state,
            "error": row.error,
            "updated_at": row.updated_at.isoformat() if row.updated_at else None,
        }
        for row in session.scalars(
            select(tables.AccountingConnection).order_by(tables.AccountingConnection.target)
        )
    }


def tax_id_warnings(session: Session, home_country: str) -> list[TaxIdWarning]:
    """Customers in the EU whose VAT id is not accepted for the reverse charge, with why."""
    customer = tables.Customer
    rows = session.execute(
        select(customer.id, customer.name, customer.country, customer.tax_id)
        .where(customer.country.in_(sorted(EU_MEMBER_STATES)), customer.tax_id.is_not(None))
        .order_by(customer.id)
    )
    warnings = []
    for row in rows:
        warning = treatment(row.country, row.tax_id, home_country).warning
        if warning:
            warnings.append(TaxIdWarning(row.id, row.name, row.country, row.tax_id, warning))
    return warnings


def status(
    session: Session,
    today: date,
    jobs: Sequence[str] = (),
    targets: Sequence[str] = (),
    home_country: str | None = None,
    *,
    email_enabled: bool = False,
) -> Status:
    """The state of everything; ``jobs`` and ``targets`` name what to report even before its
    first run or delivery; with the seller's ``home_country``, the VAT ids not accepted;
    the mail outbox (``email_enabled``: whether sending is on)."""
    usage = session.get(tables.ApiUsage, (SYSTEM, today))
    known_targets = set(targets) | set(session.scalars(select(tables.Delivery.target).distinct()))
    return Status(
        cursors=staging.cursors(session, f"{SYSTEM}:"),
        records=staging.state_counts(session, SYSTEM),
        waiting=waiting_records(session),
        api_day=today,
        api_calls=usage.calls if usage else 0,
        org_used=usage.org_used if usage else None,
        org_limit=usage.org_limit if usage else None,
        jobs=last_runs(session, jobs),
        outbox={target: outbox.depth(session, target) for target in sorted(known_targets)},
        refused=refusals(session),
        connections=connections(session),
        books=books_state(session),
        tax_ids=tax_id_warnings(session, home_country) if home_country else [],
        email=email_state(session, email_enabled),
        unrendered=store.held(session),
        webhooks=webhook_state(session),
        unbilled=session.scalar(
            select(func.count())
            .select_from(tables.Subscription)
            .where(tables.Subscription.billing_error.is_not(None))
        )
        or 0,
    )
