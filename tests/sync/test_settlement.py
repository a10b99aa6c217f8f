from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

import pytest
from beancount import loader
from beancount.core import data
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connector.db import tables
from connector.db.engine import transaction
from connector.errors import BillingError, InvalidInputError, NotFoundError
from connector.settings import Settings
from connector.sync import contracts, push, settlement
from connector.sync.billing_run import run_billing
from tests import builders

D = Decimal


def _invoice(session: Session, number: str) -> tables.Document:
    return session.scalars(select(tables.Document).where(tables.Document.number == number)).one()


@pytest.fixture
def billed(factory: sessionmaker[Session], settings: Settings) -> int:
    """One customer with INV-000001 of 100.00 USD, issued 2026-01-01."""
    sub_id = builders.simple_subscription(factory, start=date(2026, 1, 1))
    run_billing(factory, settings, date(2026, 1, 1))
    return sub_id


def test_partial_payments_until_paid(factory: sessionmaker[Session], billed: int) -> None:
    with transaction(factory) as session:
        settlement.record_payment(
            session, amount="40.00", received_on=date(2026, 1, 10), invoice_number="INV-000001"
        )
        invoice = _invoice(session, "INV-000001")
        assert (invoice.amount_paid, settlement.due_of(invoice), invoice.status) == (
            D("40.00"),
            D("60.00"),
            "open",
        )
    with transaction(factory) as session:
        settlement.record_payment(
            session, amount="60.00", received_on=date(2026, 1, 20), invoice_number="INV-000001"
        )
        invoice = _invoice(session, "INV-000001")
        assert (invoice.amount_paid, settlement.due_of(invoice), invoice.status) == (
            D("100.00"),
            D("0"),
            "paid",
        )


def test_over_payment_becomes_credit_for_the_next_invoice(
    factory: sessionmaker[Session], settings: Settings, billed: int
) -> None:
    with transaction(factory) as session:
        payment = settlement.record_payment(
            session, amount="150.00", received_on=date(2026, 1, 10), invoice_number="INV-000001"
        )
        assert payment.unapplied == D("50.00")

    run_billing(factory, settings, date(2026, 2, 1))

    with factory() as session:
        second = _invoice(session, "INV-000002")
        assert (second.amount_paid, settlement.due_of(second), second.status) == (
            D("50.00"),
            D("50.00"),
            "open",
        )
        assert session.scalars(select(tables.Payment)).one().unapplied is None
        (balance,) = settlement.balances(session, second.customer_id)
    assert (balance.invoiced, balance.paid, balance.balance) == (
        D("200.00"),
        D("150.00"),
        D("50.00"),
    )


def test_refunds_come_out_of_credit_and_never_exceed_it(
    factory: sessionmaker[Session], billed: int
) -> None:
    with transaction(factory) as session:
        payment = settlement.record_payment(
            session, amount="150.00", received_on=date(2026, 1, 10), invoice_number="INV-000001"
        )
        customer_id = payment.customer_id
        settlement.record_refund(
            session, customer_id=customer_id, amount="30.00", refunded_on=date(2026, 1, 11)
        )
        assert payment.unapplied == D("20.00")
    with (
        transaction(factory) as session,
        pytest.raises(
            BillingError, match=re.escape("holds 20.00 USD of credit; cannot refund 30.00")
        ),
    ):
        settlement.record_refund(
            session, customer_id=customer_id, amount="30.00", refunded_on=date(2026, 1, 12)
        )
    with factory() as session:
        (balance,) = settlement.balances(session, customer_id)
    assert (balance.refunded, balance.balance) == (D("30.00"), D("-20.00"))


def test_a_payment_recorded_twice_under_its_reference_counts_once(
    factory: sessionmaker[Session], billed: int
) -> None:
    for _ in range(2):
        with transaction(factory) as session:
            settlement.record_payment(
                session,
                amount="25.00",
                received_on=date(2026, 1, 10),
                invoice_number="INV-000001",
                reference="WIRE-1",
            )
    with factory() as session:
        assert len(session.scalars(select(tables.Payment)).all()) == 1
        assert _invoice(session, "INV-000001").amount_paid == D("25.00")
    with (
        transaction(factory) as session,
        pytest.raises(InvalidInputError, match=re.escape("already recorded with amount 25.00")),
    ):
        settlement.record_payment(
            session,
            amount="26.00",
            received_on=date(2026, 1, 10),
            invoice_number="INV-000001",
            reference="WIRE-1",
        )


def test_a_credit_note_on_a_paid_invoice_pays_the_next_one(
    factory: sessionmaker[Session], settings: Settings, billed: int
) -> None:
    with transaction(factory) as session:
        settlement.record_payment(
            session, amount="100.00", received_on=date(2026, 1, 5), invoice_number="INV-000001"
        )
        seats = session.scalars(select(tables.Price)).one()
        contracts.amend_subscription(
            session, billed, effective=date(2026, 1, 16), items=[builders.spec(session, seats, 5)]
        )
    run_billing(factory, settings, date(2026, 1, 16))  # credit note 25.81, nothing left to owe
    run_billing(factory, settings, date(2026, 2, 1))  # INV-000002: 50.00

    with factory() as session:
        note = session.scalars(
            select(tables.Document).where(tables.Document.kind == "credit_note")
        ).one()
        second = _invoice(session, "INV-000002")
        assert (note.total, note.unapplied) == (D("25.81"), None)
        assert (second.total, second.amount_credited, settlement.due_of(second)) == (
            D("50.00"),
            D("25.81"),
            D("24.19"),
        )


@pytest.mark.parametrize(
    ("amount", "error", "message"),
    [
        ("-5.00", InvalidInputError, "amount must be positive, not -5.00"),
        ("10.005", InvalidInputError, "amount 10.005 has more decimals than USD allows"),
        ("ten", InvalidInputError, "amount 'ten' is not a decimal number"),
    ],
)
def test_bad_payment_amounts_are_refused(
    factory: sessionmaker[Session], billed: int, amount: str, error: type[Exception], message: str
) -> None:
    with transaction(factory) as session, pytest.raises(error, match=message):
        settlement.record_payment(
            session, amount=amount, received_on=date(2026, 1, 5), invoice_number="INV-000001"
        )


def test_unknown_and_void_invoices_cannot_be_paid(
    factory: sessionmaker[Session], billed: int
) -> None:
    with (
        transaction(factory) as session,
        pytest.raises(NotFoundError, match="unknown invoice 'INV-999999'"),
    ):
        settlement.record_payment(
            session, amount="1.00", received_on=date(2026, 1, 5), invoice_number="INV-999999"
        )
    with transaction(factory) as session:
        contracts.void_invoice(session, "INV-000001")
    with (
        transaction(factory) as session,
        pytest.raises(BillingError, match="is void and cannot be paid"),
    ):
        settlement.record_payment(
            session, amount="1.00", received_on=date(2026, 1, 5), invoice_number="INV-000001"
        )


def test_a_paid_invoice_cannot_be_voided(factory: sessionmaker[Session], billed: int) -> None:
    with transaction(factory) as session:
        settlement.record_payment(
            session, amount="1.00", received_on=date(2026, 1, 5), invoice_number="INV-000001"
        )
    with (
        transaction(factory) as session,
        pytest.raises(BillingError, match="issue a credit note instead"),
    ):
        contracts.void_invoice(session, "INV-000001")


def _credited(factory: sessionmaker[Session], settings: Settings, sub_id: int) -> None:
    """Cancelled from Jan 16: CN-000001 (51.61, 16 of 31 days) applied to INV-000001."""
    with transaction(factory) as session:
        contracts.cancel_subscription(session, sub_id, cancel_date=date(2026, 1, 16))
    run_billing(factory, settings, date(2026, 1, 16))


def test_released_credit_goes_back_to_the_credit_note_and_the_invoice_owes_it_again(
    factory: sessionmaker[Session], settings: Settings, billed: int
) -> None:
    _credited(factory, settings, billed)
    with transaction(factory) as session:
        invoice, note = _invoice(session, "INV-000001"), _invoice(session, "CN-000001")
        assert (note.total, note.unapplied, invoice.amount_credited) == (
            D("51.61"),
            None,
            D("51.61"),
        )
        released = settlement.release_credit(
            session, invoice, D("20.00"), [note.id], date(2026, 1, 20)
        )
        assert released == [note.id]
        assert (note.unapplied, invoice.amount_credited, settlement.due_of(invoice)) == (
            D("20.00"),
            D("31.61"),
            D("68.39"),
        )
        assert settlement.credit_applied(session, invoice, [note.id]) == {note.id: D("31.61")}
        # No more than was applied is ever released.
        settlement.release_credit(session, invoice, D("100.00"), [note.id], date(2026, 1, 21))
        assert (note.unapplied, invoice.amount_credited, invoice.status) == (
            D("51.61"),
            D("0.00"),
            "open",
        )


def test_a_payment_held_in_full_elsewhere_takes_the_place_of_credit_applied_here(
    factory: sessionmaker[Session], settings: Settings, billed: int
) -> None:
    _credited(factory, settings, billed)
    with transaction(factory) as session:
        payment = settlement.record_payment(
            session, amount="100.00", received_on=date(2026, 1, 20), invoice_number="INV-000001"
        )
        invoice, note = _invoice(session, "INV-000001"), _invoice(session, "CN-000001")
        assert (payment.unapplied, note.unapplied) == (D("51.61"), None)

        released = settlement.pay_instead_of_credit(
            session, payment, invoice, [note.id], date(2026, 1, 20)
        )

        assert released == [note.id]
        assert (payment.unapplied, note.unapplied) == (None, D("51.61"))
        assert (invoice.amount_paid, invoice.amount_credited, invoice.status) == (
            D("100.00"),
            D("0.00"),
            "paid",
        )
        assert (
            settlement.pay_instead_of_credit(
                session, payment, invoice, [note.id], date(2026, 1, 20)
            )
            == []
        )  # nothing left to move


def test_the_same_payment_without_a_reference_is_refused_unless_it_is_another(
    factory: sessionmaker[Session], billed: int
) -> None:
    def pay(amount: str, day: int, **options: object) -> tables.Payment:
        with transaction(factory) as session:
            return settlement.record_payment(
                session,
                amount=amount,
                received_on=date(2026, 1, day),
                invoice_number="INV-000001",
                **options,  # type: ignore[arg-type]
            )

    first = pay("40.00", 10)
    with pytest.raises(
        settlement.DuplicatePaymentError,
        match=re.escape(
            "a payment of 40.00 USD on 2026-01-10 for INV-000001 is already recorded: "
            "not recorded twice"
        ),
    ):
        pay("40.00", 10)
    pay("10.00", 11, reference="WIRE-1")  # the same money without its reference: refused
    with pytest.raises(settlement.DuplicatePaymentError, match=re.escape("(reference WIRE-1)")):
        pay("10.00", 11)
    another = pay("40.00", 10, again=True)
    other_day = pay("5.00", 12)
    other_amount = pay("5.01", 12)
    by_reference = pay("5.00", 12, reference="WIRE-2")

    assert pay("5.00", 12, reference="WIRE-2").id == by_reference.id  # the same, once
    assert len({first.id, another.id, other_day.id, other_amount.id, by_reference.id}) == 5
    with factory() as session:
        invoice = _invoice(session, "INV-000001")
        # 40 + 10 + 40 + 5 + 5.01 + 5 = 105.01 paid on an invoice of 100.00.
        assert invoice.amount_paid == D("100.00")
        assert settlement.credit_held(session, invoice.customer_id, "USD") == D("5.01")


def test_payments_read_back_from_accounting_never_collide_with_one_recorded_here(
    factory: sessionmaker[Session], settings: Settings, billed: int
) -> None:
    """Finance records in the ledger a payment of the same amount, day and invoice as one
    recorded with the connector: it is read back (it has its own reference), not refused."""
    target = push.make_target(settings, factory)
    push.push(factory, settings, target)
    with transaction(factory) as session:
        settlement.record_payment(
            session, amount="60.00", received_on=date(2026, 1, 10), invoice_number="INV-000001"
        )
    path = settings.ledger.path
    entries, problems, _ = loader.load_file(str(path))
    assert problems == []
    receivable = next(
        entry.account
        for entry in entries
        if isinstance(entry, data.Open) and "customer_id" in entry.meta
    )
    path.write_text(
        path.read_text() + '\n2026-01-10 * "Bank transfer" "pays INV-000001" ^INV-000001\n'
        f"  Assets:Bank:USD   60.00 USD\n  {receivable}  -60.00 USD\n"
    )

    read = push.read_payments(factory, settings, target)

    assert read.to_dict() == {
        "recorded": 1,
        "known": 0,
        "refused": {},
        "stopped": None,
        "reconciled": 0,
    }
    with factory() as session:
        invoice = _invoice(session, "INV-000001")
        assert (invoice.amount_paid, invoice.status) == (D("100.00"), "paid")
