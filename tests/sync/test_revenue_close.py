"""The revenue close: monthly journals per invoice and credit note, each day recognized once.

Every expected figure is worked out by hand from the price, the service days and the rule of
:mod:`connector.billing.revenue`: a line's daily amount is its amount divided by its service
days, truncated to the minor unit; the last day of service takes the residue.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from itertools import pairwise

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from connector.billing.periods import Frequency
from connector.billing.pricing import ChargeKind
from connector.db import tables
from connector.db.engine import transaction
from connector.settings import Settings
from connector.sync import contracts
from connector.sync.billing_run import run_billing
from connector.sync.revenue_close import close_revenue
from tests import builders
from tests.builders import documents, lines

D = Decimal
Journal = tuple[str, date, date, date, Decimal, dict[str, str]]


def journals(factory: sessionmaker[Session]) -> list[Journal]:
    """(document number, period start, period end, journal date, amount, amounts by product
    code) of every revenue journal, per document in number order, then by period."""
    journal = tables.RevenueJournal
    with factory() as session:
        codes = {
            row.id: row.code
            for row in session.execute(select(tables.Product.id, tables.Product.code))
        }
        rows = session.execute(
            select(
                tables.Document.number,
                journal.period_start,
                journal.period_end,
                journal.journal_date,
                journal.amount,
                journal.amounts,
            )
            .join(tables.Document, tables.Document.id == journal.document_id)
            .order_by(tables.Document.kind.desc(), tables.Document.number, journal.period_start)
        )
        return [
            (number, start, end, day, amount, {codes[int(k)]: v for k, v in amounts.items()})
            for number, start, end, day, amount, amounts in rows
        ]


def revenue_outbox(factory: sessionmaker[Session]) -> list[int]:
    """Ids of the journals queued for accounting."""
    with factory() as session:
        return list(
            session.scalars(
                select(tables.Outbox.document_id)
                .where(tables.Outbox.document_type == "revenue")
                .order_by(tables.Outbox.document_id)
            )
        )


def journal_ids(factory: sessionmaker[Session]) -> list[int]:
    with factory() as session:
        return list(
            session.scalars(select(tables.RevenueJournal.id).order_by(tables.RevenueJournal.id))
        )


def closed(result) -> tuple[int, int]:
    return result.documents, result.journals


def test_monthly_subscription_closed_at_month_ends(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    # Periods from Jan 15 straddle two months: Jan 15..Feb 14 (31 days), Feb 15..Mar 14 (28),
    # Mar 15..Apr 14 (31). Two recurring products: SEATS 10 × 10.00, SUPPORT 1 × 31.00.
    with transaction(factory) as session:
        buyer = builders.customer(session, "US1")
        seats = builders.price(session, "SEATS", unit_amount="10.00")
        support = builders.price(session, "SUPPORT", unit_amount="31.00")
        builders.subscription(
            session,
            buyer,
            [builders.spec(session, seats, 10), builders.spec(session, support, 1)],
            start=date(2026, 1, 15),
        )
        seats_id = seats.product_id
    run_billing(factory, settings, date(2026, 1, 15))

    assert closed(close_revenue(factory, date(2026, 1, 31))) == (1, 1)
    run_billing(factory, settings, date(2026, 2, 15))
    assert closed(close_revenue(factory, date(2026, 2, 28))) == (2, 2)
    run_billing(factory, settings, date(2026, 3, 15))
    assert closed(close_revenue(factory, date(2026, 3, 31))) == (2, 2)

    assert journals(factory) == [
        # INV-000001, Jan 15..Feb 14: SEATS 100.00/31 = 3.22 a day, SUPPORT 31.00/31 = 1.00.
        # Jan 15..31, 17 days: 54.74 + 17.00.
        (
            "INV-000001",
            date(2026, 1, 15),
            date(2026, 1, 31),
            date(2026, 1, 31),
            D("71.74"),
            {"SEATS": "54.74", "SUPPORT": "17.00"},
        ),
        # Feb 1..14, the rest: 100.00 - 54.74 and 31.00 - 17.00; dated the month's last day.
        (
            "INV-000001",
            date(2026, 2, 1),
            date(2026, 2, 14),
            date(2026, 2, 28),
            D("59.26"),
            {"SEATS": "45.26", "SUPPORT": "14.00"},
        ),
        # INV-000002, Feb 15..Mar 14 (28 days): 100.00/28 = 3.57, 31.00/28 = 1.10.
        # Feb 15..28, 14 days: 49.98 + 15.40.
        (
            "INV-000002",
            date(2026, 2, 15),
            date(2026, 2, 28),
            date(2026, 2, 28),
            D("65.38"),
            {"SEATS": "49.98", "SUPPORT": "15.40"},
        ),
        # Mar 1..14: 100.00 - 49.98, 31.00 - 15.40.
        (
            "INV-000002",
            date(2026, 3, 1),
            date(2026, 3, 14),
            date(2026, 3, 31),
            D("65.62"),
            {"SEATS": "50.02", "SUPPORT": "15.60"},
        ),
        # INV-000003, Mar 15..Apr 14: Mar 15..31 as for January.
        (
            "INV-000003",
            date(2026, 3, 15),
            date(2026, 3, 31),
            date(2026, 3, 31),
            D("71.74"),
            {"SEATS": "54.74", "SUPPORT": "17.00"},
        ),
    ]
    with factory() as session:
        raw = session.scalars(select(tables.RevenueJournal.amounts)).first()
    assert raw is not None and raw[str(seats_id)] == "54.74"  # keyed by product id
    # Every journal is queued for accounting, in the same transaction as the journal.
    assert revenue_outbox(factory) == journal_ids(factory)
    assert len(revenue_outbox(factory)) == 5


@pytest.mark.parametrize("closes", ["every month end", "once at the year end"])
def test_annual_invoice_recognized_daily_over_twelve_months(
    factory: sessionmaker[Session], settings: Settings, closes: str
) -> None:
    builders.simple_subscription(
        factory,
        start=date(2026, 1, 1),
        frequency=Frequency.ANNUAL,
        quantity=1,
        unit_amount="1200.00",
        currency="EUR",
        country="DE",
    )
    run_billing(factory, settings, date(2026, 1, 1))
    assert documents(factory) == [
        ("INV-000001", "invoice", date(2026, 1, 1), D("1200.00"), D("1428.00"))
    ]

    ends = [date(2026, m + 1, 1) - date.resolution for m in range(1, 12)] + [date(2026, 12, 31)]
    if closes == "every month end":
        assert [closed(close_revenue(factory, day)) for day in ends] == [(1, 1)] * 12
    else:
        assert closed(close_revenue(factory, date(2026, 12, 31))) == (1, 12)

    # 1200.00 / 365 = 3.2876... → 3.28 a day (tax is not revenue). Dec 31 takes the residue:
    # 1200.00 - 364 × 3.28 = 6.08, so December is 30 × 3.28 + 6.08 = 104.48.
    by_days = {31: D("101.68"), 30: D("98.40"), 28: D("91.84")}
    expected = []
    for end in ends:
        start = end.replace(day=1)
        amount = D("104.48") if end.month == 12 else by_days[end.day]
        expected.append(("INV-000001", start, end, end, amount, {"SEATS": format(amount, "f")}))
    assert journals(factory) == expected
    assert sum(row[4] for row in journals(factory)) == D("1200.00")
    # Nothing left: a later close finds nothing to do.
    assert closed(close_revenue(factory, date(2027, 1, 31))) == (0, 0)
    assert len(journals(factory)) == 12


def test_running_month_closed_mid_month_then_completed(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    builders.simple_subscription(factory, start=date(2026, 1, 1), ref="US1")  # 100.00 / month
    builders.simple_subscription(
        factory,
        start=date(2026, 1, 1),
        frequency=Frequency.ANNUAL,
        quantity=1,
        unit_amount="1200.00",
        currency="EUR",
        country="DE",
        ref="DE1",
    )
    run_billing(factory, settings, date(2026, 1, 1))

    assert closed(close_revenue(factory, date(2026, 1, 10))) == (2, 2)
    assert closed(close_revenue(factory, date(2026, 1, 10))) == (0, 0)
    assert closed(close_revenue(factory, date(2026, 1, 20))) == (2, 2)
    assert closed(close_revenue(factory, date(2026, 2, 5))) == (2, 3)
    assert closed(close_revenue(factory, date(2026, 2, 28))) == (1, 1)

    assert journals(factory) == [
        # INV-000001 (USD, monthly): 100.00 / 31 = 3.22 a day; the running month is dated as-of.
        ("INV-000001", date(2026, 1, 1), date(2026, 1, 10), date(2026, 1, 10), D("32.20"), {"SEATS": "32.20"}),
        ("INV-000001", date(2026, 1, 11), date(2026, 1, 20), date(2026, 1, 20), D("32.20"), {"SEATS": "32.20"}),
        # Jan 21..31 ends the service: 100.00 - 64.40 (10 × 3.22 + the residue 3.40).
        ("INV-000001", date(2026, 1, 21), date(2026, 1, 31), date(2026, 1, 31), D("35.60"), {"SEATS": "35.60"}),
        # INV-000002 (EUR, annual): 3.28 a day.
        ("INV-000002", date(2026, 1, 1), date(2026, 1, 10), date(2026, 1, 10), D("32.80"), {"SEATS": "32.80"}),
        ("INV-000002", date(2026, 1, 11), date(2026, 1, 20), date(2026, 1, 20), D("32.80"), {"SEATS": "32.80"}),
        # The Feb 5 close completes January (dated Jan 31) and starts February.
        ("INV-000002", date(2026, 1, 21), date(2026, 1, 31), date(2026, 1, 31), D("36.08"), {"SEATS": "36.08"}),
        ("INV-000002", date(2026, 2, 1), date(2026, 2, 5), date(2026, 2, 5), D("16.40"), {"SEATS": "16.40"}),
        ("INV-000002", date(2026, 2, 6), date(2026, 2, 28), date(2026, 2, 28), D("75.44"), {"SEATS": "75.44"}),
    ]  # fmt: skip
    rows = journals(factory)
    # No day twice, none missed: January of the monthly invoice is exactly its amount, and the
    # annual invoice's January and February are what a single close would have given.
    assert sum(r[4] for r in rows if r[0] == "INV-000001") == D("100.00")
    assert sum(r[4] for r in rows if r[0] == "INV-000002" and r[1].month == 1) == D("101.68")
    assert sum(r[4] for r in rows if r[0] == "INV-000002" and r[1].month == 2) == D("91.84")
    for number in ("INV-000001", "INV-000002"):
        stretches = [(r[1], r[2]) for r in rows if r[0] == number]
        for (_, end), (start, _) in pairwise(stretches):
            assert start == end + date.resolution


def test_credit_note_after_cancellation_is_recognized_from_the_day_after_its_issue(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    sub_id = builders.simple_subscription(factory, start=date(2026, 1, 1))  # 100.00 for January
    run_billing(factory, settings, date(2026, 1, 1))
    assert closed(close_revenue(factory, date(2026, 1, 15))) == (1, 1)
    with transaction(factory) as session:  # backdated: service ends Jan 10
        contracts.cancel_subscription(session, sub_id, cancel_date=date(2026, 1, 11))
    run_billing(factory, settings, date(2026, 1, 21))
    # Jan 11..31 unused: 100.00 × 21/31 = 67.74, issued Jan 21.
    assert documents(factory)[0] == (
        "CN-000001",
        "credit_note",
        date(2026, 1, 21),
        D("67.74"),
        D("67.74"),
    )
    assert [line[1:] for line in lines(factory, "CN-000001")] == [
        (date(2026, 1, 11), date(2026, 1, 31), D("67.74"))
    ]

    assert closed(close_revenue(factory, date(2026, 1, 25))) == (2, 2)
    assert closed(close_revenue(factory, date(2026, 1, 31))) == (2, 2)
    assert closed(close_revenue(factory, date(2026, 2, 28))) == (0, 0)

    assert journals(factory) == [
        # The invoice: 3.22 a day, the last day takes the residue.
        ("INV-000001", date(2026, 1, 1), date(2026, 1, 15), date(2026, 1, 15), D("48.30"), {"SEATS": "48.30"}),
        ("INV-000001", date(2026, 1, 16), date(2026, 1, 25), date(2026, 1, 25), D("32.20"), {"SEATS": "32.20"}),
        ("INV-000001", date(2026, 1, 26), date(2026, 1, 31), date(2026, 1, 31), D("19.50"), {"SEATS": "19.50"}),
        # The credit note: 67.74 / 21 = 3.22 a day. Its days through its issue date (Jan 11..21,
        # 11 × 3.22 = 35.42) are taken back from revenue when it is posted; its journals start
        # on Jan 22 and are negative: 4 × 3.22, then the rest 67.74 - 35.42 - 12.88.
        ("CN-000001", date(2026, 1, 22), date(2026, 1, 25), date(2026, 1, 25), D("-12.88"), {"SEATS": "-12.88"}),
        ("CN-000001", date(2026, 1, 26), date(2026, 1, 31), date(2026, 1, 31), D("-19.44"), {"SEATS": "-19.44"}),
    ]  # fmt: skip
    rows = journals(factory)
    assert sum(r[4] for r in rows if r[0] == "INV-000001") == D("100.00")
    assert sum(r[4] for r in rows if r[0] == "CN-000001") == D("-32.32")  # 67.74 - 35.42


def test_credit_note_issued_after_its_service_ended_gets_no_journal(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    sub_id = builders.simple_subscription(factory, start=date(2026, 1, 1))
    run_billing(factory, settings, date(2026, 1, 1))
    with transaction(factory) as session:
        contracts.cancel_subscription(session, sub_id, cancel_date=date(2026, 1, 11))
    run_billing(factory, settings, date(2026, 2, 3))
    assert [(d[0], d[2], d[4]) for d in documents(factory)] == [
        ("CN-000001", date(2026, 2, 3), D("67.74")),
        ("INV-000001", date(2026, 1, 1), D("100.00")),
    ]

    close_revenue(factory, date(2026, 2, 28))
    later = close_revenue(factory, date(2026, 3, 31))

    # All of the credit's days had passed when it was issued: the credit note takes its whole
    # amount back from revenue itself; no journal, and nothing left for later closes to do.
    assert journals(factory) == [
        ("INV-000001", date(2026, 1, 1), date(2026, 1, 31), date(2026, 1, 31), D("100.00"), {"SEATS": "100.00"}),
    ]  # fmt: skip
    assert closed(later) == (0, 0)


def test_one_time_lines_never_get_journals(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    with transaction(factory) as session:
        mixed = builders.customer(session, "GB1", country="GB", currency="GBP")
        seats = builders.price(session, "SEATS", currency="GBP", unit_amount="10.00")
        setup = builders.price(
            session, "SETUP", currency="GBP", unit_amount="50.00", kind=ChargeKind.ONE_TIME
        )
        builders.subscription(
            session,
            mixed,
            [
                builders.spec(session, seats, 3),
                builders.spec(session, setup, 1, service_date=date(2026, 1, 1)),
            ],
            start=date(2026, 1, 1),
        )
        only_fees = builders.customer(session, "GB2", country="GB", currency="GBP")
        training = builders.price(
            session, "TRAINING", currency="GBP", unit_amount="80.00", kind=ChargeKind.ONE_TIME
        )
        builders.subscription(
            session,
            only_fees,
            [builders.spec(session, training, 1, service_date=date(2026, 1, 5))],
            start=date(2026, 1, 1),
        )
    run_billing(factory, settings, date(2026, 1, 5))
    assert [(d[0], d[3]) for d in documents(factory)] == [
        ("INV-000001", D("80.00")),  # 30.00 seats + 50.00 setup
        ("INV-000002", D("80.00")),  # training only
    ]

    assert closed(close_revenue(factory, date(2026, 1, 31))) == (1, 1)
    assert closed(close_revenue(factory, date(2026, 2, 28))) == (0, 0)

    assert journals(factory) == [
        ("INV-000001", date(2026, 1, 1), date(2026, 1, 31), date(2026, 1, 31), D("30.00"), {"SEATS": "30.00"}),
    ]  # fmt: skip


def test_void_invoices_get_no_journal(factory: sessionmaker[Session], settings: Settings) -> None:
    builders.simple_subscription(factory, start=date(2026, 1, 1))
    run_billing(factory, settings, date(2026, 1, 1))
    with transaction(factory) as session:
        contracts.void_invoice(session, "INV-000001", "wrong quantity")
    run_billing(factory, settings, date(2026, 1, 2))  # bills January again: INV-000002

    assert closed(close_revenue(factory, date(2026, 1, 31))) == (1, 1)

    assert journals(factory) == [
        ("INV-000002", date(2026, 1, 1), date(2026, 1, 31), date(2026, 1, 31), D("100.00"), {"SEATS": "100.00"}),
    ]  # fmt: skip


def test_an_invoice_voided_after_a_close_leaves_each_day_recognized_once(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    builders.simple_subscription(factory, start=date(2026, 1, 1))
    run_billing(factory, settings, date(2026, 1, 1))
    assert closed(close_revenue(factory, date(2026, 1, 10))) == (1, 1)  # INV-000001: 32.20
    with transaction(factory) as session:
        contracts.void_invoice(session, "INV-000001", "wrong quantity")
    run_billing(factory, settings, date(2026, 1, 10))  # INV-000002 bills January again

    close_revenue(factory, date(2026, 1, 31))

    # The void invoice journals nothing more; what it had journaled (32.20) is taken back by its
    # void in accounting (tests/sync/test_push.py), and its replacement journals January whole.
    rows = journals(factory)
    assert [r[0] for r in rows] == ["INV-000001", "INV-000002"]
    assert [r[4] for r in rows] == [D("32.20"), D("100.00")]
    with factory() as session:
        voids = session.scalars(
            select(tables.Outbox.document_id).where(tables.Outbox.document_type == "void")
        ).all()
    assert voids == [1]


def test_closing_twice_at_the_same_date_adds_nothing(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    builders.simple_subscription(factory, start=date(2026, 1, 15))
    run_billing(factory, settings, date(2026, 2, 15))
    first = close_revenue(factory, date(2026, 2, 10))
    assert closed(first) == (1, 2)  # INV-000001 Jan 15..31 and Feb 1..10; INV-000002 not begun
    before = journals(factory)

    again = close_revenue(factory, date(2026, 2, 10))
    earlier = close_revenue(factory, date(2026, 1, 31))

    assert (closed(again), closed(earlier)) == ((0, 0), (0, 0))
    assert journals(factory) == before
    assert len(revenue_outbox(factory)) == 2
    with factory() as session:
        progress = session.execute(
            select(tables.Document.number, tables.RevenueProgress.recognized_through)
            .join(tables.Document, tables.Document.id == tables.RevenueProgress.document_id)
            .order_by(tables.Document.number)
        ).all()
        count = session.scalar(select(func.count()).select_from(tables.RevenueJournal))
    assert [tuple(p) for p in progress] == [("INV-000001", date(2026, 2, 10))]
    assert count == 2


def test_jpy_journals_have_no_minor_unit(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    builders.simple_subscription(
        factory,
        start=date(2026, 1, 15),
        quantity=1,
        unit_amount="3000",
        currency="JPY",
        country="JP",
    )
    run_billing(factory, settings, date(2026, 2, 15))
    assert [(d[0], d[3], d[4]) for d in documents(factory)] == [
        ("INV-000001", D("3000"), D("3300")),  # 10% tax, not revenue
        ("INV-000002", D("3000"), D("3300")),
    ]

    close_revenue(factory, date(2026, 1, 31))
    close_revenue(factory, date(2026, 2, 28))
    close_revenue(factory, date(2026, 3, 31))

    assert journals(factory) == [
        # Jan 15..Feb 14 (31 days): 3000 / 31 = 96.77 → 96 yen a day; 17 days in January.
        ("INV-000001", date(2026, 1, 15), date(2026, 1, 31), date(2026, 1, 31), D("1632"), {"SEATS": "1632"}),
        ("INV-000001", date(2026, 2, 1), date(2026, 2, 14), date(2026, 2, 28), D("1368"), {"SEATS": "1368"}),
        # Feb 15..Mar 14 (28 days): 3000 / 28 = 107.14 → 107; 14 days in February.
        ("INV-000002", date(2026, 2, 15), date(2026, 2, 28), date(2026, 2, 28), D("1498"), {"SEATS": "1498"}),
        ("INV-000002", date(2026, 3, 1), date(2026, 3, 14), date(2026, 3, 31), D("1502"), {"SEATS": "1502"}),
    ]  # fmt: skip
    with factory() as session:
        amounts = session.scalars(
            select(tables.RevenueJournal.amount).order_by(tables.RevenueJournal.id)
        ).all()
    assert [format(a, "f") for a in amounts] == ["1632", "1368", "1498", "1502"]
