"""A credit note issued by hand, and its refund, in Xero: the same outbox and customer credit
as a billing run's (see ``test_push_xero``)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy.orm import Session, sessionmaker

from connector.db import outbox
from connector.db.engine import transaction
from connector.settings import Settings
from connector.sync import corrections, settlement
from connector.sync.cycle import Runtime
from sandbox.xero.server import XeroSandbox
from tests.sync.test_push_xero import CREDIT, SETTLED_APART, sides, stages, subscribe_gb1

D = Decimal


def test_a_credit_note_by_hand_on_an_invoice_paid_in_xero_is_the_customers_credit_there(
    factory: sessionmaker[Session], xero_settings: Settings, xero_sandbox: XeroSandbox
) -> None:
    runtime = Runtime(factory, xero_settings)
    subscribe_gb1(factory)
    stages(runtime, date(2026, 1, 1))  # INV-000001, 24.00 + 4.80, in Xero
    xero_sandbox.store.record_payment("INV-000001", D("28.80"), date(2026, 1, 20), "bank feed")
    assert stages(runtime, date(2026, 1, 20))["payments"]["recorded"] == 1

    done = corrections.credit_invoice(
        factory, xero_settings, "INV-000001", reason="outage", amount="12.39", on=date(2026, 1, 20)
    )
    cycle = stages(runtime, date(2026, 1, 20))

    assert (done.credit_note.number, done.credit_note.total) == ("CN-000001", CREDIT)
    assert cycle["push"]["parked"] == {}
    assert sides(factory, xero_sandbox) == SETTLED_APART  # unallocated: the customer's credit
    with factory() as session:
        assert outbox.depth(session, "xero") == {"waiting": 0, "parked": 0}

    with transaction(factory) as session:
        refunded = corrections.refund(session, "CN-000001", amount=CREDIT, on=date(2026, 1, 25))
    stages(runtime, date(2026, 1, 31))

    assert refunded.credit_left == D("0.00")
    [xero_note] = xero_sandbox.store.credit_notes.values()
    assert (xero_note["RemainingCredit"], xero_note["Status"]) == (D("0.00"), "PAID")
    refund = next(p for p in xero_sandbox.store.payments.values() if p["Reference"] != "bank feed")
    assert (refund["PaymentType"], refund["Amount"]) == ("ARCREDITPAYMENT", CREDIT)
    with factory() as session:
        [balance] = settlement.balances(session, refunded.refund.customer_id)
        assert balance.balance == 0
