"""The ``dunning`` stage: record the collections steps open invoices reach on the as-of day.

The rules are :mod:`connector.billing.dunning`'s; this stage reads what they need and records
what they decide, set-based. Open invoices are found by due date (an index on status and due
date): for each offset of the schedule, the invoices whose latest step reached has no record
yet, and that are not disputed. Once the latest step of an invoice is recorded, every earlier
one is too (taken or skipped), so a cycle on a day on which no step falls due reads nothing but
index entries. A batch costs four statements: the invoices, the steps they already have, one
insert of the steps reached (unique per invoice and step: exactly once, whatever runs twice)
and one of the reminders' messages. The steps reached mark their invoice for the write-back
(its dunning fields, its account's billing status) and, for an escalation or a reminder taken,
its Salesforce Task, in the same transaction.

Reminders (``email`` steps taken) are recorded with their template, and their messages
(``reminder:<step>``) queued for the send stage in the same transaction, one per invoice and
step.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from connector.billing.dunning import Action, OpenInvoice, Reached, Schedule, StepState, reached
from connector.billing.invoicing import DocumentKind
from connector.billing.payments import InvoiceStatus, amount_due
from connector.db import tables
from connector.db import writeback_queue as queue
from connector.db.engine import transaction
from connector.email.queue import REMINDER, MessageRequest, queue_messages
from connector.settings import DunningSettings
from connector.sync.overdue import announce_overdue
from connector.sync.stopping import no_stop
from connector.sync.writeback_dunning import task_key

BATCH = 2000
Document = tables.Document
Step = tables.DunningStep


@dataclass
class DunningResult:
    enabled: bool = True
    invoices: int = 0  # invoices that reached a step
    taken: dict[str, int] = field(default_factory=dict)  # step -> invoices
    skipped: int = 0
    overdue: int = 0  # invoices announced overdue (webhooks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "invoices": self.invoices,
            "taken": dict(self.taken),
            "skipped": self.skipped,
            "overdue": self.overdue,
        }


def _latest_unrecorded(schedule: Schedule, as_of: date) -> Any:
    """Invoices whose latest step reached on ``as_of`` has no record: one window of due dates
    per distinct offset (the steps of that offset are the latest reached in it)."""
    offsets = sorted({step.offset_days for step in schedule.steps})
    windows = []
    for position, offset in enumerate(offsets):
        latest = [step.name for step in schedule.steps if step.offset_days == offset]
        due_by = as_of - timedelta(days=offset)
        recorded = exists().where(Step.document_id == Document.id, Step.step.in_(latest))
        window = [Document.due_date <= due_by, ~recorded]
        if position + 1 < len(offsets):
            window.append(Document.due_date > as_of - timedelta(days=offsets[position + 1]))
        windows.append(and_(*window))
    return or_(*windows)


def _candidates(session: Session, schedule: Schedule, as_of: date, after: int) -> Sequence[Any]:
    disputed = exists().where(
        tables.Dispute.document_id == Document.id, tables.Dispute.resolved_at.is_(None)
    )
    first = as_of - timedelta(days=schedule.first_offset or 0)
    return session.execute(
        select(
            Document.id,
            Document.number,
            Document.issue_date,
            Document.due_date,
            Document.total,
            Document.amount_paid,
            Document.amount_credited,
        )
        .where(
            Document.status == InvoiceStatus.OPEN.value,
            Document.due_date <= first,
            Document.kind == DocumentKind.INVOICE.value,
            Document.id > after,
            ~disputed,
            _latest_unrecorded(schedule, as_of),
        )
        .order_by(Document.id)
        .limit(BATCH)
    ).all()


def _recorded(session: Session, ids: Sequence[int]) -> dict[int, set[str]]:
    done: dict[int, set[str]] = defaultdict(set)
    for document_id, step in session.execute(
        select(Step.document_id, Step.step).where(Step.document_id.in_(ids))
    ):
        done[document_id].add(step)
    return done


def _insert(session: Session, rows: list[dict[str, Any]]) -> None:
    """One statement: each step once per invoice (a step recorded meanwhile stays as it is)."""
    table = tables.table_of(tables.DunningStep)
    dialect = sqlite if session.get_bind().dialect.name == "sqlite" else postgresql
    statement = dialect.insert(table).on_conflict_do_nothing(
        index_elements=[table.c.document_id, table.c.step]
    )
    session.execute(statement, rows)


def _batch(
    session: Session, schedule: Schedule, as_of: date, after: int, result: DunningResult
) -> int | None:
    """Record the steps of the next batch of invoices; the last id read (None: no more)."""
    rows = _candidates(session, schedule, as_of, after)
    if not rows:
        return None
    done = _recorded(session, [row.id for row in rows])
    numbers = {row.id: row.number for row in rows}
    found: list[Reached] = []
    for row in rows:
        owed = amount_due(row.total, row.amount_paid, row.amount_credited)
        state = OpenInvoice(
            row.id, row.issue_date, row.due_date, owed, False, frozenset(done[row.id])
        )
        found.extend(reached(schedule, state, as_of))
    if found:
        _insert(session, [_row(item, as_of) for item in found])
        touched = sorted({item.document_id for item in found})
        result.invoices += len(touched)
        queue.mark(session, queue.DOCUMENT, touched)
        taken = [item for item in found if item.state is StepState.TAKEN]
        queue.mark(
            session,
            queue.TASK,
            [task_key(numbers[item.document_id], item.step.name) for item in taken],
        )
        queue_messages(  # the reminders, e-mailed by the send stage
            session,
            [
                MessageRequest(item.document_id, f"{REMINDER}{item.step.name}", template)
                for item in taken
                if item.step.action is Action.EMAIL and (template := item.step.template)
            ],
        )
        for item in taken:
            result.taken[item.step.name] = result.taken.get(item.step.name, 0) + 1
        result.skipped += len(found) - len(taken)
    return int(rows[-1].id)


def _row(item: Reached, as_of: date) -> dict[str, Any]:
    step = item.step
    return {
        "document_id": item.document_id,
        "step": step.name,
        "reached_on": as_of,
        "action": step.action.value,
        "state": item.state.value,
        "template": step.template if step.action is Action.EMAIL else None,
        "account_status": step.account_status if step.action is Action.ESCALATE else None,
    }


def run_dunning(
    factory: sessionmaker[Session],
    settings: DunningSettings,
    as_of: date,
    checkpoint: Callable[[], None] = no_stop,
) -> DunningResult:
    """Record the steps reached on ``as_of``, a batch a transaction (``checkpoint`` between
    batches; it raises to stop there). The first transaction also announces the invoices that
    became overdue (:mod:`connector.sync.overdue`), whether dunning is enabled or not."""
    schedule = settings.schedule()
    enabled = settings.enabled and bool(schedule.steps)
    result = DunningResult(enabled=enabled)
    after: int | None = 0
    first = True
    while after is not None:
        with transaction(factory) as session:
            if first:
                result.overdue = announce_overdue(session, as_of)
                first = False
            after = _batch(session, schedule, as_of, after, result) if enabled else None
        if after is not None:
            checkpoint()
    return result
