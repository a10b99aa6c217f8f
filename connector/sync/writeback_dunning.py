"""What collections show in Salesforce (see :mod:`connector.sync.dunning`):

- on ``Billing_Invoice__c``: ``Dunning_Step__c`` (the latest step taken),
  ``Last_Reminder_Date__c`` (the day of the latest reminder), ``Disputed__c`` and
  ``Dispute_Reason__c`` (while a dispute is open);
- on the Account: ``Billing_Status__c`` ``Past Due`` then ``Collections`` once an escalation of
  one of its invoices is taken, as long as that invoice still owes something and is not
  disputed (stronger than the status its invoices give otherwise; gone once it is paid);
- a ``Task`` per step taken, on the invoice record (``WhatId``) and for the account's owner
  (``OwnerId``: the field ``customer.owner`` of the mapping names on the Account): an
  escalation is an open Task due ``task_due_days`` after the step; a reminder is logged as a
  completed Task of type Email. Its external id ``Connector_Key__c`` (invoice number and step)
  makes the upsert idempotent: a retry after any crash finds the same Task. A Task is built
  once, when its step is taken, so that what the owner does with it (status, comments) stays.
  It waits for its invoice record to be in Salesforce (its Id is kept when it is written).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import and_, exists, select
from sqlalchemy.orm import Session

from connector.billing.dunning import Action, StepState, escalation_status
from connector.billing.payments import InvoiceStatus
from connector.db import tables
from connector.db.writeback_queue import SYSTEM, TASK
from connector.sync.mapping import value_at

TASK_RECORD = ("Task", "Connector_Key__c")
INVOICE_OBJECT = "Billing_Invoice__c"
Step = tables.DunningStep
Document = tables.Document
Dispute = tables.Dispute


# What these records send (besides what writeback_records builds): for the metadata's checks.
WRITTEN = {
    INVOICE_OBJECT: (
        "Dunning_Step__c",
        "Last_Reminder_Date__c",
        "Disputed__c",
        "Dispute_Reason__c",
    ),
    TASK_RECORD[0]: (
        "WhatId",
        "Type",
        "Subject",
        "ActivityDate",
        "Status",
        "Priority",
        "Description",
        "OwnerId",
        TASK_RECORD[1],
    ),
}


def task_key(number: str, step: str) -> str:
    """The write-back's key of the Task a step creates: the invoice number and the step."""
    return f"{number}:{step}"


def taken_tasks(session: Session) -> list[str]:
    """The keys of every Task the steps taken show (for a write-back of everything)."""
    rows = session.execute(
        select(Document.number, Step.step)
        .join(Document, Document.id == Step.document_id)
        .where(Step.state == StepState.TAKEN.value)
        .order_by(Step.id)
    )
    return [task_key(number, step) for number, step in rows]


@dataclass(frozen=True)
class TaskOptions:
    """How escalation Tasks are made: their priority, the days they are due after the step,
    and the Account field that holds the owner (the mapping's ``customer.owner``)."""

    priority: str = "High"
    due_days: int = 3
    owner_field: str = "OwnerId"


def invoice_fields(session: Session, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """Per invoice, its collections fields (two queries)."""
    fields: dict[int, dict[str, Any]] = {
        i: {
            "Dunning_Step__c": None,
            "Last_Reminder_Date__c": None,
            "Disputed__c": False,
            "Dispute_Reason__c": None,
        }
        for i in ids
    }
    if not fields:
        return fields
    rows = session.execute(
        select(Step.document_id, Step.step, Step.action, Step.reached_on)
        .where(Step.document_id.in_(ids), Step.state == StepState.TAKEN.value)
        .order_by(Step.document_id, Step.reached_on, Step.id)
    )
    for document_id, step, action, reached_on in rows:
        fields[document_id]["Dunning_Step__c"] = step
        if action == Action.EMAIL.value:
            fields[document_id]["Last_Reminder_Date__c"] = reached_on.isoformat()
    for document_id, reason in session.execute(
        select(Dispute.document_id, Dispute.reason).where(
            Dispute.document_id.in_(ids), Dispute.resolved_at.is_(None)
        )
    ):
        fields[document_id].update(Disputed__c=True, Dispute_Reason__c=reason[:1000])
    return fields


def escalated(session: Session, customer_ids: Sequence[int]) -> dict[int, str]:
    """Per customer, the strongest escalation status of its invoices still owing something
    and not disputed (one query)."""
    disputed = exists().where(Dispute.document_id == Document.id, Dispute.resolved_at.is_(None))
    found: dict[int, list[str | None]] = {}
    if not customer_ids:
        return {}
    for customer_id, status in session.execute(
        select(Document.customer_id, Step.account_status)
        .join(Document, Document.id == Step.document_id)
        .where(
            Document.customer_id.in_(customer_ids),
            Document.status == InvoiceStatus.OPEN.value,
            Step.action == Action.ESCALATE.value,
            Step.state == StepState.TAKEN.value,
            ~disputed,
        )
    ):
        found.setdefault(customer_id, []).append(status)
    return {c: s for c, statuses in found.items() if (s := escalation_status(statuses))}


def _when(offset: int) -> str:
    if offset > 0:
        return f"{offset} days overdue"
    return "due today" if offset == 0 else f"due in {-offset} days"


def _owners(session: Session, customer_ids: Iterable[int], field: str) -> dict[int, str]:
    """The owner of each customer's Account, as the pull last read it."""
    link, crm = tables.ExternalId, tables.CrmRecord
    rows = session.execute(
        select(link.entity_id, crm.payload)
        .join(
            crm,
            and_(
                crm.system == SYSTEM,
                crm.object == "Account",
                crm.record_id == link.external_id,
            ),
        )
        .where(
            link.system == SYSTEM,
            link.entity == tables.Customer.__tablename__,
            link.entity_id.in_(sorted(set(customer_ids))),
        )
    )
    return {i: str(owner) for i, payload in rows if (owner := value_at(payload, field))}


def task_records(
    session: Session, keys: Sequence[str], as_of: date, options: TaskOptions
) -> list[tuple[str, Any, date | None]]:
    """Per queued Task key: (key, its record's fields or None, the day to try again or
    None). A Task whose invoice record Salesforce does not hold yet is tried again the next
    day."""
    if not keys:
        return []
    numbers = sorted({key.rpartition(":")[0] for key in keys})
    rows = {
        (row.number, row.step): row
        for row in session.execute(
            select(
                Document.number,
                Document.customer_id,
                Document.due_date,
                Document.total,
                Document.currency,
                Step.step,
                Step.action,
                Step.reached_on,
                Step.account_status,
                Step.template,
            )
            .join(Document, Document.id == Step.document_id)
            .where(Document.number.in_(numbers), Step.state == StepState.TAKEN.value)
        )
    }
    state = tables.WritebackState
    record_ids = dict(
        session.execute(
            select(state.key, state.record_id).where(
                state.object == INVOICE_OBJECT, state.key.in_(numbers)
            )
        ).all()
    )
    owners = _owners(session, (row.customer_id for row in rows.values()), options.owner_field)
    built: list[tuple[str, Any, date | None]] = []
    for key in keys:
        number, _, step = key.rpartition(":")
        row = rows.get((number, step))
        if row is None:
            built.append((key, None, None))
            continue
        what = record_ids.get(number)
        if what is None:
            built.append((key, None, as_of + timedelta(days=1)))
            continue
        built.append((key, _task(row, what, owners.get(row.customer_id), options), None))
    return built


def _task(row: Any, what: str, owner: str | None, options: TaskOptions) -> dict[str, Any]:
    offset = (row.reached_on - row.due_date).days
    escalation = row.action == Action.ESCALATE.value
    summary = (
        f"Invoice {row.number} for {row.total} {row.currency}, due {row.due_date}, unpaid on "
        f"{row.reached_on}: collections step {row.step}"
    )
    fields: dict[str, Any] = {
        "WhatId": what,
        "Type": "Other" if escalation else "Email",
    }
    if escalation:
        fields.update(
            Subject=f"Collections: {row.number} {_when(offset)}",
            ActivityDate=(row.reached_on + timedelta(days=options.due_days)).isoformat(),
            Status="Not Started",
            Priority=options.priority,
            Description=f"{summary}; the account is {row.account_status}.",
        )
    else:
        fields.update(
            Subject=f"Reminder: {row.number} {_when(offset)}",
            ActivityDate=row.reached_on.isoformat(),
            Status="Completed",
            Priority="Normal",
            Description=f"{summary}; reminder {row.template} to the customer.",
        )
    if owner is not None:
        fields["OwnerId"] = owner
    return fields


__all__ = [
    "TASK",
    "TASK_RECORD",
    "TaskOptions",
    "escalated",
    "invoice_fields",
    "taken_tasks",
    "task_key",
    "task_records",
]
