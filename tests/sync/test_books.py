"""Books an accountant signs: revenue on the days of service, never after it ends; revenue earned
before its invoice on the unbilled receivable; deferred revenue never a debit.

Each scenario is billed, closed and pushed to a real Beancount ledger, then the ledger is loaded
with Beancount and read back by date. Figures are worked out by hand from the prices and days.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from beancount import loader
from beancount.core import data
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connector.billing.periods import Frequency
from connector.billing.pricing import ChargeKind
from connector.billing.revenue import month_end
from connector.db import tables
from connector.db.engine import transaction
from connector.settings import Settings
from connector.sync import contracts, settlement
from connector.sync.billing_run import run_billing
from connector.sync.ledger_check import check_ledger
from connector.sync.push import make_target, push, read_payments
from connector.sync.revenue_close import close_revenue
from connector.sync.status import status
from tests import builders

D = Decimal
INCOME = "Income:"
DEFERRED = "Liabilities:DeferredRevenue"
UNBILLED = "Assets:UnbilledReceivable"


def ledger(settings: Settings) -> list[Any]:
    entries, errors, _ = loader.load_file(str(settings.ledger.path))
    assert [error.message for error in errors] == []
    return entries


def by_date(entries: list[Any], prefix: str) -> dict[date, Decimal]:
    """Sum of postings to accounts starting with ``prefix``, per date (one currency here)."""
    sums: dict[date, Decimal] = defaultdict(Decimal)
    for entry in entries:
        if isinstance(entry, data.Transaction):
            for posting in entry.postings:
                if posting.account.startswith(prefix):
                    sums[entry.date] += posting.units.number
    return dict(sums)


def balance_on(daily: dict[date, Decimal], day: date) -> Decimal:
    return sum((amount for when, amount in daily.items() if when <= day), D(0))


def month_ends(first: date, last: date) -> list[date]:
    ends, day = [], month_end(first)
    while day <= last:
        ends.append(day)
        day = month_end(day + timedelta(days=1))
    return ends


def assert_contract_balances_hold(entries: list[Any], first: date, last: date) -> None:
    """On every day (month ends included): deferred revenue, a liability, is never a debit;
    the unbilled receivable, an asset, never a credit."""
    deferred, unbilled = by_date(entries, DEFERRED), by_date(entries, UNBILLED)
    day = first
    while day <= last:
        assert balance_on(deferred, day) <= 0, (day, balance_on(deferred, day))
        assert balance_on(unbilled, day) >= 0, (day, balance_on(unbilled, day))
        day += timedelta(days=1)


def close_and_push(
    factory: sessionmaker[Session], settings: Settings, first: date, last: date
) -> None:
    for day in month_ends(first, last):
        close_revenue(factory, day)
    push(factory, settings)


def test_revenue_of_a_cancelled_annual_plan_stops_on_its_last_day_of_service(
    factory: sessionmaker[Session], ledger_settings: Settings
) -> None:
    # 1,200.00 a year from 2028-01-01 (366 days), cancelled from 2028-03-01: the credit note
    # takes back 1,200 × 306 / 366 = 1,003.278... -> 1,003.28 of it.
    sub = builders.simple_subscription(
        factory,
        start=date(2028, 1, 1),
        frequency=Frequency.ANNUAL,
        quantity=1,
        unit_amount="1200.00",
    )
    run_billing(factory, ledger_settings, date(2028, 1, 1))
    close_and_push(factory, ledger_settings, date(2028, 1, 1), date(2028, 2, 29))
    with transaction(factory) as session:
        contracts.cancel_subscription(session, sub, cancel_date=date(2028, 3, 1))
    run_billing(factory, ledger_settings, date(2028, 3, 1))
    close_and_push(factory, ledger_settings, date(2028, 3, 1), date(2029, 1, 31))

    entries = ledger(ledger_settings)
    income = by_date(entries, INCOME)
    # Through the last day of service: 1,200 × 60 / 366 = 196.721... (the invoice less the
    # credit), recognized at the month ends.
    assert income == {
        date(2028, 1, 31): D("-101.64"),  # 1,200 × 31 / 366 = 101.639...
        date(2028, 2, 29): D("-95.08"),  # 196.72 - 101.64
        # Every later month end: the invoice's journal and the credit note's cancel out.
        **dict.fromkeys(month_ends(date(2028, 3, 1), date(2028, 12, 31)), D("0.00")),
    }
    assert balance_on(income, date(2028, 12, 31)) == D("-196.72")
    assert balance_on(by_date(entries, DEFERRED), date(2029, 1, 31)) == 0
    assert_contract_balances_hold(entries, date(2028, 1, 1), date(2029, 1, 31))


def _upgraded_and_cancelled_together(
    factory: sessionmaker[Session], settings: Settings, seats: int, cancel_date: date
) -> None:
    """350.00 a quarter from 2026-06-23 (Jun 23..Sep 22, 92 days), closed and pushed through
    June; on Jul 31 upgraded to ``seats`` seats from that day and cancelled from
    ``cancel_date``, both billed by the same run as one line; closed and pushed to the end of
    October."""
    sub = builders.simple_subscription(
        factory,
        start=date(2026, 6, 23),
        frequency=Frequency.QUARTERLY,
        quantity=1,
        unit_amount="350.00",
    )
    run_billing(factory, settings, date(2026, 6, 23))
    close_and_push(factory, settings, date(2026, 6, 1), date(2026, 6, 30))
    with transaction(factory) as session:
        price = session.scalars(select(tables.Price)).one()
        contracts.amend_subscription(
            session, sub, effective=date(2026, 7, 31), items=[builders.spec(session, price, seats)]
        )
        contracts.cancel_subscription(session, sub, cancel_date=cancel_date)
    run_billing(factory, settings, date(2026, 7, 31))
    close_and_push(factory, settings, date(2026, 7, 1), date(2026, 10, 31))


def test_an_upgrade_and_a_cancellation_credited_as_one_line_stop_revenue_with_the_service(
    factory: sessionmaker[Session], ledger_settings: Settings
) -> None:
    # Two seats from Jul 31 (+350 × 54 / 92 = 205.43), none from Aug 24 (-700 × 30 / 92 =
    # -228.26): one credit of 22.83 over Jul 31..Sep 22, the days from the first change. The
    # quarter is worth 350.00 - 22.83 = 327.17: 38 days of one seat, 24 of two, nothing after
    # Aug 23.
    _upgraded_and_cancelled_together(factory, ledger_settings, 2, date(2026, 8, 24))
    assert [line[1:] for line in builders.lines(factory, "CN-000001")] == [
        (date(2026, 7, 31), date(2026, 9, 22), D("22.83"))
    ]

    entries = ledger(ledger_settings)
    income = by_date(entries, INCOME)
    assert income == {
        date(2026, 6, 30): D("-30.43"),  # 350 × 8 / 92 = 30.434...
        # Through Jul 30, 350 × 38 / 92 = 144.565... -> 144.57; from Jul 31 the 182.60 left
        # of the quarter over the 24 days to Aug 23: 144.57 + 182.60 / 24 = 152.178... ->
        # 152.18 through Jul 31, less June's 30.43.
        date(2026, 7, 31): D("-121.75"),
        date(2026, 8, 31): D("-174.99"),  # 327.17 - 152.18
        # The invoice's September (83.70) is the credit note's to take back: nothing is left.
        date(2026, 9, 30): D("0.00"),
    }
    assert balance_on(income, date(2026, 10, 31)) == D("-327.17")
    assert balance_on(by_date(entries, DEFERRED), date(2026, 10, 31)) == 0
    assert_contract_balances_hold(entries, date(2026, 6, 23), date(2026, 10, 31))


def test_an_upgrade_and_a_cancellation_invoiced_as_one_line_stop_revenue_with_the_service(
    factory: sessionmaker[Session], ledger_settings: Settings
) -> None:
    # Three seats from Jul 31 (+700 × 54 / 92 = 410.87), none from Sep 1 (-1,050 × 22 / 92 =
    # -251.09): one invoice line of 159.78 over Jul 31..Sep 22. The quarter is worth 509.78:
    # 38 days of one seat, 32 of three, nothing after Aug 31.
    _upgraded_and_cancelled_together(factory, ledger_settings, 3, date(2026, 9, 1))
    assert [line[1:] for line in builders.lines(factory, "INV-000002")] == [
        (date(2026, 7, 31), date(2026, 9, 22), D("159.78"))
    ]

    entries = ledger(ledger_settings)
    income = by_date(entries, INCOME)
    assert income == {
        date(2026, 6, 30): D("-30.43"),
        # 144.57 through Jul 30, then the 365.21 left over the 32 days to Aug 31: 155.98
        # through Jul 31 (144.57 + 11.412...), less June's 30.43.
        date(2026, 7, 31): D("-125.55"),
        date(2026, 8, 31): D("-353.80"),  # 509.78 - 155.98
        # The new invoice line takes back the first invoice's September (83.70).
        date(2026, 9, 30): D("0.00"),
    }
    assert balance_on(income, date(2026, 10, 31)) == D("-509.78")
    assert balance_on(by_date(entries, DEFERRED), date(2026, 10, 31)) == 0
    assert_contract_balances_hold(entries, date(2026, 6, 23), date(2026, 10, 31))


def test_a_plan_emptied_before_its_first_invoice_stops_revenue_when_it_is_cancelled(
    factory: sessionmaker[Session], ledger_settings: Settings
) -> None:
    # 1,200.00 a year from 2026-01-01 (365 days), its seat removed from Mar 1 before the first
    # billing run on Mar 31: one invoice of 1,200 - 1,200 × 306 / 365 = 193.97 over the whole
    # year. Cancelled from Jun 1, which changes nothing owed: no new document. The invoice is
    # then the newest line of its period, and its revenue is complete on May 31.
    sub = builders.simple_subscription(
        factory,
        start=date(2026, 1, 1),
        frequency=Frequency.ANNUAL,
        quantity=1,
        unit_amount="1200.00",
    )
    with transaction(factory) as session:
        price = session.scalars(select(tables.Price)).one()
        contracts.amend_subscription(
            session, sub, effective=date(2026, 3, 1), items=[builders.spec(session, price, 0)]
        )
    run_billing(factory, ledger_settings, date(2026, 3, 31))
    assert [line[1:] for line in builders.lines(factory, "INV-000001")] == [
        (date(2026, 1, 1), date(2026, 12, 31), D("193.97"))
    ]
    close_and_push(factory, ledger_settings, date(2026, 1, 1), date(2026, 4, 30))
    with transaction(factory) as session:
        contracts.cancel_subscription(session, sub, cancel_date=date(2026, 6, 1))
    run_billing(factory, ledger_settings, date(2026, 5, 31))
    assert len(builders.documents(factory)) == 1
    close_and_push(factory, ledger_settings, date(2026, 5, 1), date(2026, 12, 31))

    entries = ledger(ledger_settings)
    income = by_date(entries, INCOME)
    assert income == {
        # Through Apr 30 the invoice over its year: 193.97 × 31 / 365 = 16.474... -> 16.47;
        # 59 days 31.35; 89 days 47.30 (earned before the invoice, through Mar 30); 90 days
        # 47.83; 120 days 63.77.
        date(2026, 1, 31): D("-16.47"),
        date(2026, 2, 28): D("-14.88"),
        date(2026, 3, 30): D("-15.95"),
        date(2026, 3, 31): D("-0.53"),
        date(2026, 4, 30): D("-15.94"),
        date(2026, 5, 31): D("-130.20"),  # the rest, by the last day of service
    }  # and nothing after
    assert balance_on(income, date(2026, 12, 31)) == D("-193.97")
    assert balance_on(by_date(entries, DEFERRED), date(2026, 12, 31)) == 0
    assert_contract_balances_hold(entries, date(2026, 1, 1), date(2026, 12, 31))


def test_revenue_earned_before_the_first_invoice_sits_on_the_unbilled_receivable(
    factory: sessionmaker[Session], ledger_settings: Settings
) -> None:
    # 100.00 a month from 2025-11-01; the first billing run is on 2025-12-10 and bills
    # November and December then.
    builders.simple_subscription(factory, start=date(2025, 11, 1), unit_amount="10.00")
    run_billing(factory, ledger_settings, date(2025, 12, 10))
    close_and_push(factory, ledger_settings, date(2025, 11, 1), date(2025, 12, 31))

    entries = ledger(ledger_settings)
    unbilled = by_date(entries, UNBILLED)
    # November, and December 1..9 of the second invoice (100 × 9 / 31 = 29.032... -> 29.03),
    # earned before Dec 10; both invoices clear them on Dec 10.
    assert unbilled == {
        date(2025, 11, 30): D("100.00"),
        date(2025, 12, 9): D("29.03"),
        date(2025, 12, 10): D("-129.03"),
    }
    assert by_date(entries, INCOME) == {
        date(2025, 11, 30): D("-100.00"),
        date(2025, 12, 9): D("-29.03"),
        date(2025, 12, 31): D("-70.97"),
    }
    deferred = by_date(entries, DEFERRED)
    # Dec 10: two invoices (-200.00), less what they clear of the unbilled receivable (129.03).
    assert deferred == {date(2025, 12, 10): D("-70.97"), date(2025, 12, 31): D("70.97")}
    assert balance_on(deferred, date(2025, 11, 30)) == 0  # never a debit, as it was before
    assert_contract_balances_hold(entries, date(2025, 11, 1), date(2025, 12, 31))


def test_a_one_time_charge_billed_late_is_revenue_on_its_service_date(
    factory: sessionmaker[Session], ledger_settings: Settings
) -> None:
    with transaction(factory) as session:
        buyer = builders.customer(session, "US1")
        onboarding = builders.price(
            session, "ONBOARDING", unit_amount="2500.00", kind=ChargeKind.ONE_TIME
        )
        builders.subscription(
            session,
            buyer,
            [builders.spec(session, onboarding, 1, service_date=date(2026, 1, 1))],
            start=date(2026, 1, 1),
        )
    run_billing(factory, ledger_settings, date(2026, 3, 1))  # billed for the first time
    close_and_push(factory, ledger_settings, date(2026, 1, 1), date(2026, 3, 31))

    entries = ledger(ledger_settings)
    assert by_date(entries, "Income:OneTime") == {date(2026, 1, 1): D("-2500.00")}
    assert by_date(entries, UNBILLED) == {
        date(2026, 1, 1): D("2500.00"),
        date(2026, 3, 1): D("-2500.00"),
    }
    assert_contract_balances_hold(entries, date(2026, 1, 1), date(2026, 3, 31))


def test_an_over_payment_is_the_customers_credit_until_it_pays_a_later_invoice(
    factory: sessionmaker[Session], ledger_settings: Settings
) -> None:
    sub = builders.simple_subscription(factory, start=date(2026, 1, 1))  # 100.00 a month
    run_billing(factory, ledger_settings, date(2026, 1, 1))  # INV-000001
    with transaction(factory) as session:
        paid = settlement.record_payment(
            session, amount="250.00", received_on=date(2026, 1, 10), invoice_number="INV-000001"
        )
        assert paid.credit_kept == D("150.00")
    run_billing(factory, ledger_settings, date(2026, 2, 1))  # INV-000002, paid from credit
    with transaction(factory) as session:
        contracts.cancel_subscription(session, sub, cancel_date=date(2026, 2, 15))
    run_billing(factory, ledger_settings, date(2026, 2, 20))  # CN-000001 on the paid invoice
    with transaction(factory) as session:
        settlement.record_refund(
            session, customer_id=1, amount="100.00", refunded_on=date(2026, 2, 25)
        )
    push(factory, ledger_settings)

    entries = ledger(ledger_settings)
    receivable = by_date(entries, "Assets:AccountsReceivable")
    credit = by_date(entries, "Liabilities:CustomerCredit")
    assert receivable == {
        date(2026, 1, 1): D("100.00"),  # INV-000001
        date(2026, 1, 10): D("-100.00"),  # paid by 100.00 of the 250.00
        date(2026, 2, 1): D("0.00"),  # INV-000002 (100.00), paid at once from credit (-100.00)
    }
    # 14 unused days of February's 28 are credited: 50.00, all kept as credit (paid invoice).
    assert credit == {
        date(2026, 1, 10): D("-150.00"),
        date(2026, 2, 1): D("100.00"),
        date(2026, 2, 20): D("-50.00"),
        date(2026, 2, 25): D("100.00"),  # refunded out of the credit
    }
    assert balance_on(credit, date(2026, 2, 25)) == 0
    assert by_date(entries, "Assets:Bank") == {
        date(2026, 1, 10): D("250.00"),
        date(2026, 2, 25): D("-100.00"),
    }
    # The receivable never goes below zero: what the customer is owed is a liability.
    for day in receivable:
        assert balance_on(receivable, day) >= 0
    with transaction(factory) as session:
        check = check_ledger(session, make_target(ledger_settings))
    assert (check.differences, check.waiting) == ([], 0)


def test_payments_finance_records_that_cannot_be_applied_are_listed_with_file_and_line(
    factory: sessionmaker[Session], ledger_settings: Settings
) -> None:
    builders.simple_subscription(factory, start=date(2026, 1, 1), ref="C1")  # 100.00 a month
    run_billing(factory, ledger_settings, date(2026, 1, 1))
    push(factory, ledger_settings)
    main = ledger_settings.ledger.path
    receivable = "Assets:AccountsReceivable:Customer-C1-1"
    lines = main.read_text(encoding="utf-8").count("\n")
    main.write_text(
        main.read_text(encoding="utf-8") + '2026-01-05 * "Customer C1" "Wire" ^INV-000099\n'
        f"  Assets:Bank:USD   40.00 USD\n  {receivable}\n\n"
        + '2026-01-06 * "Customer C1" "Wire, booked to the wrong account" ^INV-000001\n'
        "  Assets:Bank:USD   30.00 USD\n  Income:OneTime\n\n"
        + '2026-01-07 * "Customer C1" "Wire, paying more than is due" ^INV-000001\n'
        f"  Assets:Bank:USD   130.00 USD\n  {receivable}\n",
        encoding="utf-8",
    )

    result = read_payments(factory, ledger_settings)

    assert result.recorded == 1
    assert result.refused == {
        f"{main}:{lines + 1}": "no invoice INV-000099",
        f"{main}:{lines + 5}": "is linked to INV-000001 but credits no account under "
        "Assets:AccountsReceivable",
    }
    with transaction(factory) as session:
        session.add(
            tables.JobRun(
                job="payments",
                started_at=datetime(2026, 1, 8, tzinfo=UTC),
                finished_at=datetime(2026, 1, 8, tzinfo=UTC),
                ok=True,
                summary=result.to_dict(),
            )
        )
    with factory() as session:
        listed = [r.to_dict() for r in status(session, date(2026, 1, 8)).refused]
    assert listed == [
        {"where": "accounting payment", "what": f"{main}:{lines + 1}", "error": "no invoice INV-000099"},
        {
            "where": "accounting payment",
            "what": f"{main}:{lines + 5}",
            "error": "is linked to INV-000001 but credits no account under Assets:AccountsReceivable",
        },
    ]  # fmt: skip
    # The over-payment (30.00 of the 130.00) moves to the customer's credit in the ledger.
    push(factory, ledger_settings)
    entries = ledger(ledger_settings)
    assert by_date(entries, "Liabilities:CustomerCredit") == {date(2026, 1, 7): D("-30.00")}
    # 100.00 owed - 130.00 received + 30.00 moved to credit; the 40.00 linked to no invoice of
    # ours stays where finance put it, listed above until someone fixes it.
    assert by_date(entries, "Assets:AccountsReceivable") == {
        date(2026, 1, 1): D("100.00"),
        date(2026, 1, 5): D("-40.00"),
        date(2026, 1, 7): D("-100.00"),
    }
