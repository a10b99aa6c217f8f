"""The dunning stage on the real database: steps recorded once each, set-based (three
statements a batch of invoices, two queries when no step falls due: the steps, and whether a
webhook endpoint exists), none for paid or disputed invoices, the write-back marked in the same
transaction."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine, func, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from connector.db import tables
from connector.db import writeback_queue as queue
from connector.errors import InvalidInputError, NotFoundError
from connector.settings import DunningSettings
from connector.sync import disputes
from connector.sync.dunning import BATCH, run_dunning
from tests import builders
from tests.statements import counting

DUE = date(2026, 3, 31)
SETTINGS = DunningSettings()


def invoices(factory: sessionmaker[Session], count: int, due: date = DUE) -> list[int]:
    """``count`` open invoices of one customer, due on ``due``, issued 30 days before."""
    with factory.begin() as session:
        customer = builders.customer(session).id
        rows = [
            {
                "kind": "invoice",
                "number": f"INV-{n:06d}",
                "customer_id": customer,
                "currency": "USD",
                "issue_date": due - timedelta(days=30),
                "due_date": due,
                "period_start": due - timedelta(days=30),
                "period_end": due,
                "subtotal": Decimal(100),
                "tax_total": Decimal(0),
                "total": Decimal(100),
                "amount_paid": Decimal(0),
                "amount_credited": Decimal(0),
                "status": "open",
            }
            for n in range(1, count + 1)
        ]
        session.execute(insert(tables.Document), rows)
        return list(session.scalars(select(tables.Document.id).order_by(tables.Document.id)))


def steps(factory: sessionmaker[Session]) -> list[tuple[str, str, date, str]]:
    with factory() as session:
        rows = session.execute(
            select(
                tables.Document.number,
                tables.DunningStep.step,
                tables.DunningStep.reached_on,
                tables.DunningStep.state,
            )
            .join(tables.Document, tables.Document.id == tables.DunningStep.document_id)
            .order_by(tables.DunningStep.id)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


def test_each_step_once_on_its_day(factory: sessionmaker[Session]) -> None:
    invoices(factory, 1)
    assert run_dunning(factory, SETTINGS, date(2026, 3, 27)).to_dict()["invoices"] == 0
    first = run_dunning(factory, SETTINGS, date(2026, 3, 28))
    again = run_dunning(factory, SETTINGS, date(2026, 3, 28))
    assert first.to_dict() == {
        "enabled": True,
        "invoices": 1,
        "taken": {"friendly": 1},
        "skipped": 0,
        "overdue": 0,
    }
    assert again.invoices == 0
    run_dunning(factory, SETTINGS, date(2026, 4, 10))  # reminder_1 was missed: skipped
    assert steps(factory) == [
        ("INV-000001", "friendly", date(2026, 3, 28), "taken"),
        ("INV-000001", "reminder_1", date(2026, 4, 10), "skipped"),
        ("INV-000001", "reminder_2", date(2026, 4, 10), "taken"),
        ("INV-000001", "past_due", date(2026, 4, 10), "taken"),
    ]
    with factory() as session:
        marked = queue.due(session, date(2026, 4, 10))
    assert set(marked) == {
        ("customer", "1"),  # when it was made
        ("document", "1"),
        ("task", "INV-000001:friendly"),
        ("task", "INV-000001:reminder_2"),
        ("task", "INV-000001:past_due"),
    }


def test_paid_void_and_disputed_invoices_reach_nothing(factory: sessionmaker[Session]) -> None:
    ids = invoices(factory, 4)
    with factory.begin() as session:
        session.execute(
            update(tables.Document).where(tables.Document.id == ids[0]).values(status="paid")
        )
        session.execute(
            update(tables.Document).where(tables.Document.id == ids[1]).values(status="void")
        )
        disputes.open_dispute(session, "INV-000003", "wrong quantity")
    run_dunning(factory, SETTINGS, date(2026, 4, 3))
    assert steps(factory) == [
        ("INV-000004", "friendly", date(2026, 4, 3), "skipped"),
        ("INV-000004", "reminder_1", date(2026, 4, 3), "taken"),
    ]


def test_disabled_records_nothing(factory: sessionmaker[Session]) -> None:
    invoices(factory, 1)
    result = run_dunning(factory, DunningSettings(enabled=False), date(2026, 5, 1))
    assert result.to_dict()["enabled"] is False
    assert steps(factory) == []


def test_a_batch_costs_four_statements_and_an_idle_day_two(
    factory: sessionmaker[Session], engine: Engine
) -> None:
    count = BATCH + 500
    invoices(factory, count)
    with counting(engine) as first:
        result = run_dunning(factory, SETTINGS, date(2026, 3, 28))
    assert result.taken == {"friendly": count}
    # Per batch: the invoices, the steps they have, one insert; then the empty read; and once,
    # whether a webhook endpoint exists (invoice.overdue).
    assert first.by_verb()["SELECT"] == 2 * 2 + 1 + 1
    # The steps, the reminders' messages (the send stage e-mails them), the write-back's marks.
    assert first.by_verb()["INSERT"] == 3 * 2
    assert len(first.touching("INSERT INTO email_messages")) == 2
    assert first.rows[first.sql.index(first.touching("INSERT INTO dunning_steps")[0])] == BATCH
    with counting(engine) as idle:
        assert run_dunning(factory, SETTINGS, date(2026, 3, 29)).invoices == 0
    assert {verb: n for verb, n in idle.by_verb().items() if verb != "BEGIN"} == {"SELECT": 2}
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(tables.DunningStep)) == count


def test_dispute_errors_are_clear(factory: sessionmaker[Session]) -> None:
    ids = invoices(factory, 2)
    with factory.begin() as session:
        session.execute(
            update(tables.Document).where(tables.Document.id == ids[1]).values(status="paid")
        )
        with pytest.raises(NotFoundError, match="unknown document 'INV-999999'"):
            disputes.open_dispute(session, "INV-999999", "x")
        with pytest.raises(InvalidInputError, match="INV-000002 is paid: only an open invoice"):
            disputes.open_dispute(session, "INV-000002", "x")
        with pytest.raises(InvalidInputError, match="give the reason"):
            disputes.open_dispute(session, "INV-000001", "  ")
        with pytest.raises(InvalidInputError, match="INV-000001 has no open dispute"):
            disputes.resolve_dispute(session, "INV-000001")
        disputes.open_dispute(session, "INV-000001", "not delivered")
        with pytest.raises(InvalidInputError, match="INV-000001 is already disputed since"):
            disputes.open_dispute(session, "INV-000001", "again")
        resolved = disputes.resolve_dispute(session, "INV-000001")
    assert resolved.resolved_at is not None and resolved.reason == "not delivered"
