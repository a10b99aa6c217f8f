"""Closed periods in Xero: its lock dates (GET /Organisation) and the books' closing, the later
applying; what would be dated on or before it is booked on the first open day, an invoice of a
closed period is credited in full rather than voided, and a lock date set in Xero after the
target read it costs one refused attempt, not a parked document."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connector.db import outbox, tables
from connector.db.engine import transaction
from connector.settings import Settings
from connector.sync import contracts, settlement
from connector.sync.billing_run import run_billing
from connector.sync.closing import close_books
from connector.sync.push import make_target, push
from connector.sync.revenue_close import close_revenue
from sandbox.xero.locks import date_of
from sandbox.xero.server import XeroSandbox
from tests import builders

D = Decimal
JAN31, FEB1 = date(2026, 1, 31), date(2026, 2, 1)
PERIOD_JAN31 = (
    "The document date cannot be before the period lock date, currently set at 31-Jan-2026"
)


def dated(store_table: dict[str, dict[str, Any]], number_field: str) -> dict[str, str]:
    """Number -> the day Xero holds the document on."""
    return {doc[number_field]: doc["DateString"][:10] for doc in store_table.values()}


def journals(xero: XeroSandbox) -> list[tuple[str, str, dict[str, Decimal]]]:
    """(narration without its digest, date, account -> amount) of each manual journal."""
    found = []
    for journal in xero.store.manual_journals.values():
        narration = journal["Narration"]
        head, _, tail = narration.partition(", billing connector ")
        suffix = tail.partition(" ")[2]
        found.append(
            (
                f"{head}{' ' + suffix if suffix else ''}",
                _day(journal["Date"]),
                {line["AccountCode"]: line["LineAmount"] for line in journal["JournalLines"]},
            )
        )
    return sorted(found)


def _day(ms_date: str) -> str:
    return date_of(ms_date).isoformat()


def january_and_february(factory: sessionmaker[Session], settings: Settings) -> int:
    """10 seats × 10.00 USD a month from Jan 1: INV-000001 (Jan 1), INV-000002 (Feb 1),
    INV-000001 paid on Jan 20, revenue journaled through Feb 28."""
    subscription = builders.simple_subscription(factory, start=date(2026, 1, 1))
    run_billing(factory, settings, date(2026, 1, 1))
    with transaction(factory) as session:
        settlement.record_payment(
            session, amount=D("100.00"), received_on=date(2026, 1, 20), invoice_number="INV-000001"
        )
    run_billing(factory, settings, FEB1)
    close_revenue(factory, date(2026, 2, 28))
    return subscription


def test_documents_dated_before_xeros_lock_date_are_booked_on_the_first_open_day(
    factory: sessionmaker[Session], xero_settings: Settings, xero_sandbox: XeroSandbox
) -> None:
    january_and_february(factory, xero_settings)
    xero_sandbox.store.set_lock_dates(period=JAN31, end_of_year=date(2025, 12, 31))

    result = push(factory, xero_settings, make_target(xero_settings, factory))

    assert (result.posted, result.pending, result.parked) == (5, 0, {})
    store = xero_sandbox.store
    assert dated(store.invoices, "InvoiceNumber") == {
        "INV-000001": "2026-02-01",  # its own day, Jan 1, is locked
        "INV-000002": "2026-02-01",
    }
    [paid] = store.payments.values()
    assert (_day(paid["Date"]), paid["Reference"], paid["Amount"]) == (
        "2026-02-01",
        "PAY-1",
        D("100.00"),
    )
    assert journals(xero_sandbox) == [
        (
            "Revenue recognized 2026-01 (USD) (for 2026-01, period closed)",
            "2026-02-01",
            {"200": D("-100.00"), "835": D("100.00")},
        ),
        (
            "Revenue recognized 2026-02 (USD)",
            "2026-02-28",
            {"200": D("-100.00"), "835": D("100.00")},
        ),
    ]


def test_the_books_closing_applies_when_it_is_later_than_xeros_lock_dates(
    factory: sessionmaker[Session], xero_settings: Settings, xero_sandbox: XeroSandbox
) -> None:
    january_and_february(factory, xero_settings)
    xero_sandbox.store.set_lock_dates(period=date(2025, 12, 31))
    close_books(factory, date(2026, 2, 10), by="alice", today=date(2026, 3, 2))

    push(factory, xero_settings, make_target(xero_settings, factory))

    assert dated(xero_sandbox.store.invoices, "InvoiceNumber") == {
        "INV-000001": "2026-02-11",
        "INV-000002": "2026-02-11",
    }
    assert [date_ for _, date_, _ in journals(xero_sandbox)] == ["2026-02-11", "2026-02-28"]


def test_a_lock_date_set_in_xero_after_it_was_read_costs_one_refused_attempt(
    factory: sessionmaker[Session], xero_settings: Settings, xero_sandbox: XeroSandbox
) -> None:
    builders.simple_subscription(factory, start=date(2026, 1, 1))
    run_billing(factory, xero_settings, date(2026, 1, 1))
    target = make_target(xero_settings, factory)
    assert push(factory, xero_settings, target).posted == 1  # read the organisation: no lock
    run_billing(factory, xero_settings, FEB1)  # INV-000002, Feb 1
    xero_sandbox.store.set_lock_dates(period=date(2026, 2, 5))

    refused = push(factory, xero_settings, target)

    assert (refused.posted, refused.pending, refused.parked) == (0, 1, {})
    with factory() as session:
        errors = session.scalars(
            select(tables.Delivery.error).where(tables.Delivery.state == outbox.PENDING)
        ).all()
    assert errors == [
        "Xero: The document date cannot be before the period lock date, currently set at "
        "05-Feb-2026"
    ]
    again = push(factory, xero_settings, target)  # reads the lock dates again
    assert (again.posted, again.pending, again.parked) == (1, 0, {})
    assert dated(xero_sandbox.store.invoices, "InvoiceNumber") == {
        "INV-000001": "2026-01-01",
        "INV-000002": "2026-02-06",
    }


def test_an_invoice_of_a_closed_period_is_credited_in_full_instead_of_voided(
    factory: sessionmaker[Session], xero_settings: Settings, xero_sandbox: XeroSandbox
) -> None:
    builders.simple_subscription(factory, start=date(2026, 1, 1))
    run_billing(factory, xero_settings, date(2026, 1, 1))
    close_revenue(factory, date(2026, 1, 10))  # INV-000001: 100.00 × 10 / 31 = 32.258... -> 32.26
    target = make_target(xero_settings, factory)
    push(factory, xero_settings, target)
    close_books(factory, JAN31, by="alice", today=date(2026, 2, 2))
    with transaction(factory) as session:
        contracts.void_invoice(session, "INV-000001", "wrong quantity")

    result = push(factory, xero_settings, target)

    assert (result.posted, result.pending, result.parked) == (1, 0, {})
    store = xero_sandbox.store
    invoice = store.invoice_by_number("INV-000001")
    assert invoice is not None
    assert (invoice["Status"], invoice["AmountDue"], invoice["AmountCredited"]) == (
        "PAID",
        D("0.00"),
        D("100.00"),
    )
    [credit] = store.credit_notes.values()
    assert (
        credit["CreditNoteNumber"],
        credit["Reference"],
        credit["DateString"],
        credit["Total"],
        credit["RemainingCredit"],
    ) == ("INV-000001-VOID", "INV-000001-VOID", "2026-02-01T00:00:00", D("100.00"), D("0.00"))
    assert sorted((line["AccountCode"], line["LineAmount"]) for line in credit["LineItems"]) == [
        ("200", D("32.26")),  # the revenue already recognized, taken back
        ("835", D("67.74")),  # the rest, from deferred revenue
    ]
    assert [(a["Amount"], _day(a["Date"])) for a in credit["Allocations"]] == [
        (D("100.00"), "2026-02-01")
    ]
    assert [j for j in journals(xero_sandbox) if "reversed" in j[0]] == []
    with factory() as session:
        void_delivery = session.scalar(
            select(tables.Delivery.external_id)
            .join(tables.Outbox, tables.Outbox.id == tables.Delivery.outbox_id)
            .where(tables.Outbox.document_type == "void")
        )
    assert void_delivery == credit["CreditNoteID"]
