"""The write-back of collections: the invoice record's Salesforce Id kept when it is written,
a Task per step taken on that record (waiting a day while the record is not in Salesforce),
each Task once, and a crash after Salesforce took the Tasks sending the same keys again."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connector.db import tables
from connector.db import writeback_queue as queue
from connector.settings import DunningSettings, Settings
from connector.sync.billing_run import run_billing
from connector.sync.dunning import run_dunning
from tests.sync.test_writeback import (
    DUE,
    FIRST,
    FakeSalesforce,
    LostAnswerError,
    invoice_of,
    open_deals,
    write,
)

REMINDED = DUE + timedelta(days=3)  # friendly skipped, reminder_1 taken


@dataclass
class IdentifyingSalesforce(FakeSalesforce):
    """Answers each accepted record with its Id, as Salesforce does."""

    ids: dict[tuple[str, str], str] | None = None

    def _take(self, obj: str, key_field: str, records: list[dict[str, Any]]) -> list[Any]:
        answers = super()._take(obj, key_field, records)
        self.ids = self.ids if self.ids is not None else {}
        for record, answer in zip(records, answers, strict=True):
            if answer.get("success"):
                key = (obj, str(record[key_field]))
                self.ids.setdefault(key, f"a02{len(self.ids) + 1:015d}")
                answer["id"] = self.ids[key]
        return answers


def billed(factory: sessionmaker[Session], settings: Settings) -> str:
    (subscription,) = open_deals(factory, 1)
    run_billing(factory, settings, FIRST)
    return invoice_of(factory, subscription).number


def test_a_task_per_step_taken_on_the_invoice_record(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    number = billed(factory, settings)
    client = IdentifyingSalesforce()
    write(factory, client, FIRST)
    record = client.ids[("Billing_Invoice__c", number)]  # type: ignore[index]
    with factory() as session:
        kept = session.scalar(
            select(tables.WritebackState.record_id).where(
                tables.WritebackState.object == "Billing_Invoice__c",
                tables.WritebackState.key == number,
            )
        )
    assert kept == record

    run_dunning(factory, DunningSettings(), REMINDED)
    result = write(factory, client, REMINDED)

    assert result.sent["Task"] == 1
    assert client.org[("Task", f"{number}:reminder_1")] == {
        "WhatId": record,
        "Type": "Email",
        "Subject": f"Reminder: {number} 3 days overdue",
        "ActivityDate": REMINDED.isoformat(),
        "Status": "Completed",
        "Priority": "Normal",
        "Description": f"Invoice {number} for 100.00 USD, due {DUE}, unpaid on {REMINDED}: "
        "collections step reminder_1; reminder reminder_first to the customer.",
    }  # no OwnerId: the pull did not read the account's (the Task is the integration user's)
    assert client.org[("Billing_Invoice__c", number)]["Dunning_Step__c"] == "reminder_1"
    assert write(factory, client, REMINDED).sent == {}  # each Task once


def test_a_task_waits_a_day_for_its_invoice_record(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    number = billed(factory, settings)
    run_dunning(factory, DunningSettings(), REMINDED)
    client = FakeSalesforce()  # answers without Ids: the invoice record's is not known

    result = write(factory, client, REMINDED)

    assert "Task" not in result.sent
    with factory() as session:
        waiting = queue.due(session, REMINDED + timedelta(days=1))
        assert queue.due(session, REMINDED) == {}
    assert (queue.TASK, f"{number}:reminder_1") in waiting


def test_a_crash_after_salesforce_took_the_tasks_sends_the_same_keys_again(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    number = billed(factory, settings)
    client = IdentifyingSalesforce()
    write(factory, client, FIRST)
    run_dunning(factory, DunningSettings(), date(2026, 3, 5))  # +33: the last two taken
    crashing = IdentifyingSalesforce(org=client.org, ids=client.ids, crash_on=3)
    # the invoice and the account, then the Tasks: their answer lost

    with pytest.raises(LostAnswerError):
        write(factory, crashing, date(2026, 3, 5))
    again = IdentifyingSalesforce(org=client.org, ids=client.ids)
    write(factory, again, date(2026, 3, 5))

    tasks = sorted(key for obj, key in client.org if obj == "Task")
    assert tasks == [f"{number}:collections", f"{number}:final_notice"]
    assert again.sent_of("Task") == tasks  # the same upserts again: one Task each
    assert client.org[("Task", f"{number}:collections")]["Subject"] == (
        f"Collections: {number} 33 days overdue"
    )
