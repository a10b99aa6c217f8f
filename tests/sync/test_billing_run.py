from __future__ import annotations

import threading
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from connector.billing.periods import Frequency
from connector.billing.pricing import ChargeKind, PricingModel
from connector.db import tables
from connector.db.engine import make_engine, session_factory, transaction
from connector.errors import BillingError
from connector.settings import Settings, load_settings
from connector.sync import billing_run, contracts, issuing
from connector.sync.billing_run import run_billing
from connector.sync.settlement import record_payment
from tests import builders
from tests.builders import documents, lines

D = Decimal


def test_bills_each_started_period_once_with_month_end_anchor(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    builders.simple_subscription(factory, start=date(2026, 1, 31))

    result = run_billing(factory, settings, date(2026, 3, 31))

    assert (result.invoices, result.credit_notes, result.invoiced["USD"]) == (3, 0, D("300.00"))
    assert documents(factory) == [
        ("INV-000001", "invoice", date(2026, 3, 31), D("100.00"), D("100.00")),
        ("INV-000002", "invoice", date(2026, 3, 31), D("100.00"), D("100.00")),
        ("INV-000003", "invoice", date(2026, 3, 31), D("100.00"), D("100.00")),
    ]
    assert [
        line[1:3] for n in ("INV-000001", "INV-000002", "INV-000003") for line in lines(factory, n)
    ] == [
        (date(2026, 1, 31), date(2026, 2, 27)),
        (date(2026, 2, 28), date(2026, 3, 30)),
        (date(2026, 3, 31), date(2026, 4, 29)),
    ]

    again = run_billing(factory, settings, date(2026, 3, 31))
    assert (again.subscriptions, again.invoices, again.credit_notes) == (0, 0, 0)
    assert len(documents(factory)) == 3


def test_tax_is_chosen_by_country_and_rounded_per_rate(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    builders.simple_subscription(
        factory,
        start=date(2026, 1, 1),
        currency="GBP",
        country="GB",
        ref="GB1",
        quantity=3,
        unit_amount="33.33",
    )
    builders.simple_subscription(
        factory,
        start=date(2026, 1, 1),
        currency="JPY",
        country="JP",
        ref="JP1",
        quantity=1,
        unit_amount="3333",
    )
    builders.simple_subscription(
        factory,
        start=date(2026, 1, 1),
        currency="USD",
        country="FR",
        ref="FR1",
        quantity=1,
        unit_amount="50.00",
    )

    run_billing(factory, settings, date(2026, 1, 1))

    with factory() as session:
        rows = session.execute(
            select(
                tables.Document.currency,
                tables.Document.subtotal,
                tables.Document.tax_total,
                tables.Document.total,
            ).order_by(tables.Document.id)
        ).all()
    # GBP: 99.99 × 20% = 19.998 → 20.00; JPY: 3333 × 10% = 333.3 → 333; FR not configured: 0.
    assert [tuple(r) for r in rows] == [
        ("GBP", D("99.99"), D("20.00"), D("119.99")),
        ("JPY", D("3333"), D("333"), D("3666")),
        ("USD", D("50.00"), D("0.00"), D("50.00")),
    ]


def test_product_tax_code_gives_a_second_rate_on_one_invoice(
    factory: sessionmaker[Session], database_url: str, tmp_path
) -> None:
    settings = load_settings(
        database_url=database_url,
        tax={"rates": {"DE": "19"}, "code_rates": {"reduced": {"DE": "7"}}},
    )
    with transaction(factory) as session:
        buyer = builders.customer(session, "DE1", country="DE", currency="EUR")
        standard = builders.price(session, "SEATS", currency="EUR", unit_amount="10.05")
        reduced = builders.price(
            session, "BOOKS", currency="EUR", unit_amount="10.05", tax_code="reduced"
        )
        builders.subscription(
            session,
            buyer,
            [builders.spec(session, standard, 3), builders.spec(session, reduced, 3)],
            start=date(2026, 1, 1),
        )

    run_billing(factory, settings, date(2026, 1, 1))

    with factory() as session:
        taxes = session.execute(
            select(tables.DocumentTax.rate, tables.DocumentTax.taxable, tables.DocumentTax.tax)
        ).all()
        total = session.scalar(select(tables.Document.total))
    # 30.15 × 7% = 2.1105 → 2.11; 30.15 × 19% = 5.7285 → 5.73.
    assert sorted(tuple(t) for t in taxes) == [
        (D("7"), D("30.15"), D("2.11")),
        (D("19"), D("30.15"), D("5.73")),
    ]
    assert total == D("68.14")


def test_upgrade_mid_period_invoices_the_rest_of_the_period(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    sub_id = builders.simple_subscription(factory, start=date(2026, 1, 1))
    run_billing(factory, settings, date(2026, 1, 1))
    with transaction(factory) as session:
        seats = session.scalars(select(tables.Price)).one()
        contracts.amend_subscription(
            session, sub_id, effective=date(2026, 1, 16), items=[builders.spec(session, seats, 15)]
        )

    result = run_billing(factory, settings, date(2026, 1, 16))

    # 5 more seats × 10.00 × 16/31 days = 25.806… → 25.81, for Jan 16 through Jan 31.
    assert (result.invoices, result.credit_notes) == (1, 0)
    assert lines(factory, "INV-000002") == [
        (
            "Seats × 5: change for 2026-01-16..2026-01-31",
            date(2026, 1, 16),
            date(2026, 1, 31),
            D("25.81"),
        )
    ]
    run_billing(factory, settings, date(2026, 2, 1))
    assert documents(factory)[-1] == (
        "INV-000003",
        "invoice",
        date(2026, 2, 1),
        D("150.00"),
        D("150.00"),
    )


def test_downgrade_credits_unused_days_against_its_invoice(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    sub_id = builders.simple_subscription(factory, start=date(2026, 1, 1))
    run_billing(factory, settings, date(2026, 1, 1))
    with transaction(factory) as session:
        seats = session.scalars(select(tables.Price)).one()
        contracts.amend_subscription(
            session, sub_id, effective=date(2026, 1, 16), items=[builders.spec(session, seats, 5)]
        )

    run_billing(factory, settings, date(2026, 1, 20))

    with factory() as session:
        note = session.scalars(
            select(tables.Document).where(tables.Document.kind == "credit_note")
        ).one()
        invoice = session.scalars(
            select(tables.Document).where(tables.Document.number == "INV-000001")
        ).one()
        line = session.scalars(
            select(tables.DocumentLine).where(tables.DocumentLine.document_id == note.id)
        ).one()
        invoice_line = session.get_one(tables.DocumentLine, line.credited_line_id)
    assert (note.number, note.total, note.invoice_id) == ("CN-000001", D("25.81"), invoice.id)
    assert (line.service_start, line.service_end, line.amount) == (
        date(2026, 1, 16),
        date(2026, 1, 31),
        D("25.81"),
    )
    assert (invoice_line.document_id, invoice_line.credited_amount) == (invoice.id, D("25.81"))
    assert (invoice.amount_credited, invoice.status, note.unapplied) == (D("25.81"), "open", None)


def test_backdated_cancellation_credits_every_period_it_touches(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    sub_id = builders.simple_subscription(factory, start=date(2026, 1, 1))
    run_billing(factory, settings, date(2026, 4, 1))
    with transaction(factory) as session:
        contracts.cancel_subscription(session, sub_id, cancel_date=date(2026, 2, 15))

    result = run_billing(factory, settings, date(2026, 4, 2))

    # February has 28 days: Feb 15–28 is 14 unused days → 50.00; March and April in full.
    assert (result.invoices, result.credit_notes, result.credited["USD"]) == (0, 3, D("250.00"))
    assert [doc[4] for doc in documents(factory) if doc[1] == "credit_note"] == [
        D("50.00"),
        D("100.00"),
        D("100.00"),
    ]
    assert run_billing(factory, settings, date(2026, 8, 1)).invoices == 0
    with factory() as session:
        assert session.get_one(tables.Subscription, sub_id).next_billing_date is None


def test_amendment_with_no_net_effect_bills_nothing(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    sub_id = builders.simple_subscription(factory, start=date(2026, 1, 1))
    run_billing(factory, settings, date(2026, 1, 1))
    with transaction(factory) as session:
        seats = session.scalars(select(tables.Price)).one()
        contracts.amend_subscription(
            session, sub_id, effective=date(2026, 1, 10), items=[builders.spec(session, seats, 10)]
        )

    result = run_billing(factory, settings, date(2026, 1, 10))

    assert (result.subscriptions, result.invoices, result.credit_notes) == (1, 0, 0)
    with factory() as session:
        assert session.get_one(tables.Subscription, sub_id).reconcile_from is None


def test_trial_then_one_time_fee_on_its_own_date(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    with transaction(factory) as session:
        buyer = builders.customer(session)
        seats = builders.price(session)
        setup = builders.price(
            session,
            "SETUP",
            unit_amount=None,
            kind=ChargeKind.ONE_TIME,
            model=PricingModel.FLAT,
            flat_amount="500.00",
        )
        builders.subscription(
            session,
            buyer,
            [
                builders.spec(session, seats, 10),
                builders.spec(session, setup, 1, service_date=date(2026, 1, 5)),
            ],
            start=date(2026, 1, 1),
            trial_days=14,
        )

    first = run_billing(factory, settings, date(2026, 1, 10))
    second = run_billing(factory, settings, date(2026, 1, 15))

    assert (first.invoices, second.invoices) == (1, 1)
    assert lines(factory, "INV-000001") == [
        ("Setup × 1", date(2026, 1, 5), date(2026, 1, 5), D("500.00"))
    ]
    assert lines(factory, "INV-000002") == [
        ("Seats × 10, 2026-01-15..2026-02-14", date(2026, 1, 15), date(2026, 2, 14), D("100.00"))
    ]


def test_void_invoice_is_billed_again_from_the_current_state(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    builders.simple_subscription(factory, start=date(2026, 1, 1))
    run_billing(factory, settings, date(2026, 1, 1))
    with transaction(factory) as session:
        contracts.void_invoice(session, "INV-000001", "wrong customer address")

    run_billing(factory, settings, date(2026, 1, 2))

    with factory() as session:
        rows = session.execute(
            select(
                tables.Document.number,
                tables.Document.status,
                tables.Document.period_start,
                tables.Document.total,
            ).order_by(tables.Document.id)
        ).all()
    assert [tuple(r) for r in rows] == [
        ("INV-000001", "void", date(2026, 1, 1), D("100.00")),
        ("INV-000002", "open", date(2026, 1, 1), D("100.00")),
    ]


def test_as_of_before_the_last_document_is_refused(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    builders.simple_subscription(factory, start=date(2026, 1, 1))
    run_billing(factory, settings, date(2026, 2, 1))
    with pytest.raises(BillingError, match="before the last issued document"):
        run_billing(factory, settings, date(2026, 1, 15))


def test_a_subscription_that_cannot_be_billed_waits_visibly(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    broken = builders.simple_subscription(factory, start=date(2026, 1, 1), ref="B")
    healthy = builders.simple_subscription(factory, start=date(2026, 1, 1), ref="H")
    with transaction(factory) as session:  # corrupt the stored record behind the core's back
        session.execute(
            update(tables.Subscription)
            .where(tables.Subscription.id == broken)
            .values(currency="EUR")
        )

    result = run_billing(factory, settings, date(2026, 1, 1))

    assert result.failed == {
        broken: "item SEATS: price is in USD but the subscription bills in EUR"
    }
    assert result.invoices == 1
    with factory() as session:
        assert session.get_one(tables.Subscription, broken).billing_error == result.failed[broken]
        assert session.get_one(tables.Subscription, healthy).billing_error is None
    with transaction(factory) as session:  # fixed at the source: the next run bills it
        session.execute(
            update(tables.Subscription)
            .where(tables.Subscription.id == broken)
            .values(currency="USD")
        )
    assert run_billing(factory, settings, date(2026, 1, 1)).invoices == 1


def test_the_database_refuses_a_second_charge_for_the_same_period(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    builders.simple_subscription(factory, start=date(2026, 1, 1))
    run_billing(factory, settings, date(2026, 1, 1))
    with factory() as session:
        charge = session.scalars(select(tables.Charge)).one()
        with pytest.raises(IntegrityError):
            session.execute(
                insert(tables.Charge).values(
                    subscription_item_id=charge.subscription_item_id,
                    period_start=charge.period_start,
                    revision=charge.revision,
                    amount=D("100.00"),
                )
            )


# Each step of a batch's transaction, and the call at which the crash strikes (the customer
# with credit is settled in the first batch only; the others run once per batch).
FAULT_POINTS = [
    ("insert_charges", 2),
    ("insert_documents", 2),
    ("record_credited_lines", 2),
    ("apply_credit_note", 3),
    ("settle_customer", 1),
    ("_tally", 2),  # after every write, just before the commit
]


@pytest.mark.parametrize(("fault", "crash_at"), FAULT_POINTS)
def test_a_crash_at_any_step_leaves_no_duplicate_and_no_gap(
    factory: sessionmaker[Session],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    fault: str,
    crash_at: int,
) -> None:
    settings = settings.model_copy(
        update={"billing": settings.billing.model_copy(update={"batch_size": 4})}
    )
    ids = [
        builders.simple_subscription(factory, start=date(2026, 1, 1), ref=f"C{n}")
        for n in range(10)
    ]
    run_billing(factory, settings, date(2026, 1, 1))
    with transaction(factory) as session:  # credit notes and customer credit in the next run
        for sub_id in ids[:6]:
            contracts.cancel_subscription(session, sub_id, cancel_date=date(2026, 1, 16))
        record_payment(
            session, amount="300.00", received_on=date(2026, 1, 2), invoice_number="INV-000001"
        )

    calls = {"n": 0}
    module = billing_run if hasattr(billing_run, fault) else issuing  # where the run calls it
    original = getattr(module, fault)

    def crash(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == crash_at:
            raise RuntimeError("simulated crash")
        return original(*args, **kwargs)

    monkeypatch.setattr(module, fault, crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_billing(factory, settings, date(2026, 2, 1))
    monkeypatch.setattr(module, fault, original)
    run_billing(factory, settings, date(2026, 2, 1))

    numbers = [doc[0] for doc in documents(factory)]
    assert numbers == [f"CN-{n:06d}" for n in range(1, 7)] + [f"INV-{n:06d}" for n in range(1, 15)]
    with factory() as session:
        charges = session.execute(
            select(
                tables.Charge.subscription_item_id, tables.Charge.period_start, tables.Charge.amount
            ).order_by(tables.Charge.id)
        ).all()
    assert len(charges) == 20
    assert sorted(c.amount for c in charges if c.amount < 0) == [D("-51.61")] * 6
    assert sum(c.amount for c in charges) == D("1090.34")  # 14 × 100.00 − 6 × 51.61 (16/31 of 100)


def test_concurrent_runs_never_bill_twice(
    factory: sessionmaker[Session], settings: Settings, database_url: str
) -> None:
    settings = settings.model_copy(
        update={"billing": settings.billing.model_copy(update={"batch_size": 3})}
    )
    for n in range(24):
        builders.simple_subscription(
            factory, start=date(2026, 1, 1), ref=f"C{n}", frequency=Frequency.WEEKLY
        )
    failures: list[BaseException] = []

    def bill() -> None:
        engine = make_engine(database_url)
        try:
            run_billing(session_factory(engine), settings, date(2026, 1, 29))
        except BaseException as error:  # pragma: no cover - reported below
            failures.append(error)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=bill) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    numbers = [doc[0] for doc in documents(factory)]
    assert numbers == [f"INV-{n:06d}" for n in range(1, 24 * 5 + 1)]


def _one_time_setup(factory: sessionmaker[Session]) -> tuple[int, int, int]:
    """Seats from Jan 1; an amendment adds a one-time SETUP fee (500.00) on Mar 10."""
    with transaction(factory) as session:
        buyer = builders.customer(session)
        seats = builders.price(session)
        setup = builders.price(session, "SETUP", kind=ChargeKind.ONE_TIME, unit_amount="500.00")
        sub = builders.subscription(
            session, buyer, [builders.spec(session, seats, 10)], start=date(2026, 1, 1)
        )
        ids = (sub.id, seats.id, setup.id)
    settings = load_settings(database_url="sqlite://")
    run_billing(factory, settings, date(2026, 3, 1))
    with transaction(factory) as session:
        seats_row, setup_row = session.get(tables.Price, ids[1]), session.get(tables.Price, ids[2])
        contracts.amend_subscription(
            session,
            ids[0],
            effective=date(2026, 3, 10),
            items=[builders.spec(session, seats_row, 10), builders.spec(session, setup_row, 1)],
        )
    run_billing(factory, settings, date(2026, 3, 15))
    return ids


def test_a_backdated_amendment_never_bills_a_one_time_fee_twice(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    sub_id, seats_id, setup_id = _one_time_setup(factory)
    with transaction(factory) as session:
        seats, setup = session.get(tables.Price, seats_id), session.get(tables.Price, setup_id)
        contracts.amend_subscription(
            session,
            sub_id,
            effective=date(2026, 3, 5),
            items=[builders.spec(session, seats, 12), builders.spec(session, setup, 1)],
        )

    result = run_billing(factory, settings, date(2026, 3, 20))

    # Only the seats change: 2 seats × 10.00 × 27/31 days (Mar 5–31) = 17.42.
    assert (result.invoices, result.invoiced["USD"], result.credit_notes) == (1, D("17.42"), 0)


def test_a_one_time_fee_removed_by_a_backdated_amendment_is_credited(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    sub_id, seats_id, _ = _one_time_setup(factory)
    with transaction(factory) as session:
        seats = session.get(tables.Price, seats_id)
        contracts.amend_subscription(
            session, sub_id, effective=date(2026, 3, 5), items=[builders.spec(session, seats, 10)]
        )

    result = run_billing(factory, settings, date(2026, 3, 20))

    assert (result.invoices, result.credit_notes, result.credited["USD"]) == (0, 1, D("500.00"))


def test_moving_a_one_time_fee_takes_it_back_from_the_old_date(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    sub_id, seats_id, setup_id = _one_time_setup(factory)
    with transaction(factory) as session:
        seats, setup = session.get(tables.Price, seats_id), session.get(tables.Price, setup_id)
        contracts.amend_subscription(
            session,
            sub_id,
            effective=date(2026, 4, 15),
            items=[
                builders.spec(session, seats, 10),
                builders.spec(session, setup, 1, service_date=date(2026, 4, 20)),
            ],
        )

    result = run_billing(factory, settings, date(2026, 4, 20))

    # April's seats (100.00) and the fee on its new date; the March fee is credited.
    assert (result.invoiced["USD"], result.credited["USD"]) == (D("600.00"), D("500.00"))
    assert lines(factory, "CN-000001") == [
        ("Setup: one-time charge credited", date(2026, 3, 10), date(2026, 3, 10), D("500.00"))
    ]


def test_credit_notes_never_take_back_more_tax_than_the_invoice_charged(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    with transaction(factory) as session:
        buyer = builders.customer(session, "GB1", country="GB", currency="GBP")
        first = builders.price(
            session,
            "A",
            currency="GBP",
            unit_amount=None,
            model=PricingModel.FLAT,
            flat_amount="50.03",
        )
        second = builders.price(
            session,
            "B",
            currency="GBP",
            unit_amount=None,
            model=PricingModel.FLAT,
            flat_amount="49.98",
        )
        sub_id = builders.subscription(
            session,
            buyer,
            [builders.spec(session, first), builders.spec(session, second)],
            start=date(2026, 3, 1),
        ).id
        second_id = second.id
    run_billing(factory, settings, date(2026, 3, 1))  # 100.01 + 20% = 20.002 → 20.00 tax
    with transaction(factory) as session:
        contracts.amend_subscription(
            session,
            sub_id,
            effective=date(2026, 3, 1),
            items=[builders.spec(session, session.get_one(tables.Price, second_id))],
        )
    run_billing(factory, settings, date(2026, 3, 2))
    with transaction(factory) as session:
        contracts.amend_subscription(session, sub_id, effective=date(2026, 3, 1), items=[])
    run_billing(factory, settings, date(2026, 3, 3))

    # 50.03 × 20% = 10.006 → 10.01; then all 100.01 credited → 20.00 in all, so 9.99 more.
    with factory() as session:
        notes = session.execute(
            select(tables.Document.number, tables.Document.tax_total, tables.Document.total)
            .where(tables.Document.kind == "credit_note")
            .order_by(tables.Document.number)
        ).all()
        invoice = session.scalars(
            select(tables.Document).where(tables.Document.number == "INV-000001")
        ).one()
    assert [tuple(n) for n in notes] == [
        ("CN-000001", D("10.01"), D("60.04")),
        ("CN-000002", D("9.99"), D("59.97")),
    ]
    assert (invoice.total, invoice.amount_credited, invoice.status) == (
        D("120.01"),
        D("120.01"),
        "paid",
    )
