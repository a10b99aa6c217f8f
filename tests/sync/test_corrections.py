"""Corrections by hand: a credit note on an invoice, paid or not, and a refund of the credit.

Every test runs on SQLite and, when configured, PostgreSQL. A GB customer is billed 10 seats at
10.00 GBP a month, taxed 20%: INV-000001 is 100.00 + 20.00 = 120.00 GBP for January.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from connector.accounting.chart import load_chart
from connector.accounting.ledger import Ledger
from connector.billing.periods import Frequency
from connector.db import tables
from connector.db.engine import transaction
from connector.errors import BillingError, InvalidInputError
from connector.settings import Settings
from connector.sync import contracts, corrections, push, settlement
from connector.sync.billing_run import run_billing
from connector.sync.ledger_check import check_ledger
from connector.sync.revenue_close import close_revenue
from tests import builders
from tests.conftest import ACCOUNTING_MAPPING

D = Decimal
JAN = (date(2026, 1, 1), date(2026, 1, 31))


@pytest.fixture
def january(factory: sessionmaker[Session], settings: Settings) -> int:
    """INV-000001: January, 10 × 10.00 GBP + 20% = 120.00 GBP, issued 2026-01-01."""
    sub_id = builders.simple_subscription(
        factory, start=date(2026, 1, 1), currency="GBP", country="GB"
    )
    run_billing(factory, settings, date(2026, 1, 1))
    return sub_id


def credit(
    factory: sessionmaker[Session],
    settings: Settings,
    number: str = "INV-000001",
    **options: object,
) -> corrections.Credited:
    options.setdefault("reason", "service outage")
    options.setdefault("on", date(2026, 1, 20))
    return corrections.credit_invoice(factory, settings, number, **options)  # type: ignore[arg-type]


def document(factory: sessionmaker[Session], number: str) -> tables.Document:
    with factory() as session:
        return session.scalars(
            select(tables.Document).where(tables.Document.number == number)
        ).one()


def lines(factory: sessionmaker[Session], number: str) -> list[tuple[object, ...]]:
    with factory() as session:
        line = tables.DocumentLine
        return [
            tuple(row)
            for row in session.execute(
                select(
                    line.description,
                    line.service_start,
                    line.service_end,
                    line.amount,
                    line.tax_rate,
                    line.charge_id,
                    line.credited_line_id,
                )
                .join(tables.Document, tables.Document.id == line.document_id)
                .where(tables.Document.number == number)
                .order_by(line.id)
            )
        ]


def count(factory: sessionmaker[Session], model: type[tables.Base]) -> int:
    with factory() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_a_paid_invoice_is_credited_and_the_credit_refunded_through_the_books(
    factory: sessionmaker[Session], settings: Settings, january: int, tmp_path: Path
) -> None:
    with transaction(factory) as session:
        settlement.record_payment(
            session, amount="120.00", received_on=date(2026, 1, 10), invoice_number="INV-000001"
        )

    done = credit(factory, settings, amount=D("30.00"))

    note = done.credit_note
    assert (done.issued, note.number, done.invoice.number, done.customer) == (
        True,
        "CN-000001",
        "INV-000001",
        "Customer C1",
    )
    assert (note.issue_date, note.due_date, (note.period_start, note.period_end)) == (
        date(2026, 1, 20),
        date(2026, 1, 20),
        JAN,
    )
    assert (note.subtotal, note.tax_total, note.total, note.status) == (
        D("30.00"),
        D("6.00"),
        D("36.00"),
        "issued",
    )
    assert (note.reason, note.reference) == (
        "service outage",
        corrections.natural_reference("INV-000001", "service outage"),
    )
    # The invoice was paid: all of it is the customer's credit, nothing applied to it.
    assert (note.credit_kept, note.unapplied) == (D("36.00"), D("36.00"))
    invoice = document(factory, "INV-000001")
    assert (invoice.status, invoice.amount_paid, invoice.amount_credited) == (
        "paid",
        D("120.00"),
        D("0.00"),
    )
    (invoice_line,) = lines(factory, "INV-000001")
    with factory() as session:
        line_id = session.scalar(
            select(tables.DocumentLine.id).where(tables.DocumentLine.document_id == invoice.id)
        )
        credited = session.scalar(
            select(tables.DocumentLine.credited_amount).where(tables.DocumentLine.id == line_id)
        )
        queued = session.scalars(
            select(tables.Outbox.document_type).where(tables.Outbox.document_id == note.id)
        ).all()
    # Over the invoice line's own service, naming the line it credits; no charge behind it.
    assert lines(factory, "CN-000001") == [
        (
            f"{invoice_line[0]} (credited: service outage)",
            *JAN,
            D("30.00"),
            D("20"),
            None,
            line_id,
        )
    ]
    assert credited == D("30.00")
    assert queued == ["credit_note"]

    refunded = corrections_refund(factory, "CN-000001", "36.00")

    assert (refunded.refund.amount, refunded.refund.kind, refunded.credit_left) == (
        D("36.00"),
        "refund",
        D("0.00"),
    )
    with factory() as session:
        (balance,) = settlement.balances(session, invoice.customer_id)
    assert (balance.invoiced, balance.credited, balance.paid, balance.refunded) == (
        D("120.00"),
        D("36.00"),
        D("120.00"),
        D("36.00"),
    )
    assert balance.balance == 0

    # Posted like any other credit note and refund; the ledger agrees with the billing core.
    ledger = Ledger(tmp_path / "books" / "ledger.beancount", load_chart(ACCOUNTING_MAPPING))
    close_revenue(factory, date(2026, 1, 31))
    posted = push.push(factory, settings, ledger)
    assert (posted.parked, posted.pending) == ({}, 0)
    with transaction(factory) as session:
        checked = check_ledger(session, ledger)
    assert (checked.ok, checked.differences, checked.waiting) == (True, [], 0)


def corrections_refund(
    factory: sessionmaker[Session], number: str, amount: str, **options: object
) -> corrections.Refunded:
    with transaction(factory) as session:
        return corrections.refund(
            session,
            number,
            amount=amount,
            on=options.pop("on", date(2026, 1, 21)),  # type: ignore[arg-type]
            **options,  # type: ignore[arg-type]
        )


def test_issuing_the_same_correction_again_finds_the_credit_note_issued(
    factory: sessionmaker[Session], settings: Settings, january: int
) -> None:
    first = credit(factory, settings, amount=D("30.00"))
    again = credit(factory, settings, amount=D("30.00"))
    same_reason_later = credit(factory, settings, amount=D("30.00"), on=date(2026, 1, 25))

    assert (first.issued, again.issued, same_reason_later.issued) == (True, False, False)
    assert {first.credit_note.id, again.credit_note.id, same_reason_later.credit_note.id} == {
        first.credit_note.id
    }
    assert count(factory, tables.Document) == 2  # the invoice and one credit note
    with pytest.raises(
        InvalidInputError, match=re.escape("already credited by CN-000001 (subtotal 30.00")
    ):
        credit(factory, settings, amount=D("40.00"))

    # Another reason, or another reference, is another correction; a reference names one.
    other = credit(factory, settings, amount=D("10.00"), reason="late delivery")
    by_reference = credit(factory, settings, amount=D("10.00"), reference="RMA-7")
    assert credit(factory, settings, amount=D("10.00"), reference="RMA-7").issued is False
    assert [other.credit_note.number, by_reference.credit_note.number] == [
        "CN-000002",
        "CN-000003",
    ]
    assert by_reference.credit_note.reference == "RMA-7"
    with pytest.raises(InvalidInputError, match=r"already credited by CN-000003"):
        credit(factory, settings, lines={1: "5.00"}, reference="RMA-7")


def test_a_reference_belongs_to_one_invoice(
    factory: sessionmaker[Session], settings: Settings, january: int
) -> None:
    run_billing(factory, settings, date(2026, 2, 1))
    credit(factory, settings, amount=D("1.00"), reference="RMA-1", on=date(2026, 2, 1))

    with pytest.raises(InvalidInputError, match="'RMA-1' was used for CN-000001, a credit of"):
        credit(factory, settings, "INV-000002", reference="RMA-1", on=date(2026, 2, 1))


def test_a_full_credit_line_by_line_gives_back_exactly_the_invoices_tax(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    """Three lines of 0.33 GBP: the invoice's tax is 20% of 0.99, 0.20; each line alone would
    be taxed 0.07, three times 0.21. Each credit note is taxed on all credited so far."""
    with transaction(factory) as session:
        customer = builders.customer(session, "C1", country="GB", currency="GBP")
        items = [
            builders.spec(
                session, builders.price(session, code, currency="GBP", unit_amount="0.33")
            )
            for code in ("A", "B", "C")
        ]
        builders.subscription(session, customer, items, start=date(2026, 1, 1))
    run_billing(factory, settings, date(2026, 1, 1))
    assert document(factory, "INV-000001").tax_total == D("0.20")

    taxes = [
        credit(
            factory, settings, lines={position: None}, reason=f"line {position}"
        ).credit_note.tax_total
        for position in (1, 2, 3)
    ]

    assert taxes == [D("0.07"), D("0.06"), D("0.07")]
    invoice = document(factory, "INV-000001")
    assert (invoice.amount_credited, invoice.status) == (D("1.19"), "paid")
    with pytest.raises(BillingError, match="INV-000001 has nothing left to credit"):
        credit(factory, settings, reason="once more")


def test_an_amount_is_spread_over_the_lines_in_proportion_to_what_each_holds(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    with transaction(factory) as session:
        customer = builders.customer(session, "C1", country="GB", currency="GBP")
        items = [
            builders.spec(session, builders.price(session, "SEATS", currency="GBP"), 10),
            builders.spec(session, builders.price(session, "SUPPORT", currency="GBP"), 5),
        ]
        builders.subscription(session, customer, items, start=date(2026, 1, 1))
    run_billing(factory, settings, date(2026, 1, 1))

    done = credit(factory, settings, amount=D("10.01"))

    assert [line[3] for line in lines(factory, "CN-000001")] == [D("6.67"), D("3.34")]
    # Of an unpaid invoice, the credit note reduces what is due.
    assert (done.credit_note.total, done.credit_note.credit_kept) == (D("12.01"), D("0.00"))
    invoice = document(factory, "INV-000001")
    assert (invoice.total, invoice.amount_credited, settlement.due_of(invoice)) == (
        D("180.00"),
        D("12.01"),
        D("167.99"),
    )
    with pytest.raises(
        BillingError, match=re.escape("has 139.99 GBP left to credit (before tax), not 140")
    ):
        credit(factory, settings, amount=D("140"), reason="too much")
    with pytest.raises(BillingError, match=re.escape("line 2 of INV-000001 has 46.66 GBP left")):
        credit(factory, settings, lines={2: "50"}, reason="too much")
    with pytest.raises(InvalidInputError, match="INV-000001 has no line 3"):
        credit(factory, settings, lines={3: None}, reason="no such line")
    with pytest.raises(
        InvalidInputError, match=re.escape("amount 1.001 has more decimals than GBP allows")
    ):
        credit(factory, settings, amount="1.001", reason="cents")
    with pytest.raises(InvalidInputError, match="a credit note needs a reason"):
        credit(factory, settings, reason="  ")


def test_revenue_is_taken_back_on_the_invoices_days(
    factory: sessionmaker[Session], settings: Settings, january: int
) -> None:
    """January's revenue is journaled through the 15th (48.39 of 100.00); a credit of 31.00 on
    the 16th takes back at once what it takes of those days, and the rest over the days left,
    so that January ends with 69.00 of revenue."""
    close_revenue(factory, date(2026, 1, 15))
    invoice_line = lines(factory, "INV-000001")[0]
    assert invoice_line[3] == D("100.00")

    note = credit(factory, settings, amount=D("31.00"), on=date(2026, 1, 16)).credit_note
    assert note.revenue_from == date(2026, 1, 16)
    close_revenue(factory, date(2026, 1, 31))

    with factory() as session:
        recognized = dict(
            session.execute(
                select(tables.Document.number, tables.DocumentLine.recognized).join(
                    tables.Document, tables.Document.id == tables.DocumentLine.document_id
                )
            ).all()
        )
        journals = session.execute(
            select(
                tables.RevenueJournal.period_start,
                tables.RevenueJournal.period_end,
                tables.RevenueJournal.amount,
            ).where(tables.RevenueJournal.document_id == note.id)
        ).all()
    # The group (100.00 and -31.00 over January) recognizes 69 × 15/31 = 33.39 through the
    # 15th: 15.00 of what was journaled is taken back at issue, 16.00 by the credit's journal.
    assert recognized == {"INV-000001": D("100.00"), "CN-000001": D("-31.00")}
    assert journals == [(date(2026, 1, 16), date(2026, 1, 31), D("-16.00"))]


def test_the_billing_run_neither_takes_a_credit_back_nor_bills_it_again(
    factory: sessionmaker[Session], settings: Settings, january: int
) -> None:
    """Two seats more from January 16th: the run bills the 16 days of the two seats, whatever
    was credited by hand."""
    credit(factory, settings, amount=D("50.00"), on=date(2026, 1, 2))
    with transaction(factory) as session:
        seats = session.scalars(select(tables.Price)).one()
        contracts.amend_subscription(
            session,
            january,
            effective=date(2026, 1, 16),
            items=[builders.spec(session, seats, 12, key="SEATS")],
        )

    billed = run_billing(factory, settings, date(2026, 1, 16))

    assert (billed.invoices, billed.credit_notes) == (1, 0)
    assert builders.documents(factory)[-1][3:] == (D("10.32"), D("12.38"))  # 20 × 16/31


def test_a_void_invoice_is_not_credited(
    factory: sessionmaker[Session], settings: Settings, january: int
) -> None:
    with transaction(factory) as session:
        contracts.void_invoice(session, "INV-000001", "wrong customer")

    with pytest.raises(BillingError, match="invoice INV-000001 is void: there is nothing to"):
        credit(factory, settings)


def test_a_credit_note_is_not_dated_before_the_last_document(
    factory: sessionmaker[Session], settings: Settings, january: int
) -> None:
    with pytest.raises(BillingError, match="as-of date 2025-12-31 is before the last issued"):
        credit(factory, settings, on=date(2025, 12, 31))
    assert count(factory, tables.Document) == 1


def test_a_refund_is_recorded_once(
    factory: sessionmaker[Session], settings: Settings, january: int
) -> None:
    with transaction(factory) as session:
        settlement.record_payment(
            session, amount="200.00", received_on=date(2026, 1, 10), invoice_number="INV-000001"
        )

    first = corrections_refund(factory, "INV-000001", "30.00")
    with pytest.raises(
        settlement.DuplicatePaymentError, match=re.escape("a refund of 30.00 GBP on")
    ):
        corrections_refund(factory, "INV-000001", "30.00")
    second = corrections_refund(factory, "INV-000001", "30.00", again=True)
    by_reference = corrections_refund(factory, "INV-000001", "20.00", reference="BACS-1")
    same = corrections_refund(factory, "INV-000001", "20.00", reference="BACS-1")

    assert (first.credit_left, second.credit_left, by_reference.credit_left) == (
        D("50.00"),
        D("20.00"),
        D("0.00"),
    )
    assert same.refund.id == by_reference.refund.id
    assert count(factory, tables.Payment) == 4  # the payment and three refunds
    with pytest.raises(
        BillingError, match=re.escape("holds 0.00 GBP of credit; cannot refund 0.01")
    ):
        corrections_refund(factory, "INV-000001", "0.01")


def test_a_quarterly_invoice_credited_in_part_keeps_its_period(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    builders.simple_subscription(
        factory, start=date(2026, 1, 1), currency="GBP", country="GB", frequency=Frequency.QUARTERLY
    )
    run_billing(factory, settings, date(2026, 1, 1))

    note = credit(factory, settings, lines={1: "0.01"}).credit_note

    assert ((note.period_start, note.period_end), note.total) == (
        (date(2026, 1, 1), date(2026, 3, 31)),
        D("0.01"),  # the tax on 0.01 at 20% rounds to nothing
    )
