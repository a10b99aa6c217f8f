"""The revenue close: monthly journals per invoice and credit note, each day recognized once.

Every expected figure is worked out by hand from the price, the service days and the rule of
:mod:`connector.billing.revenue`: what a line has recognized through a day is its amount × the
days served so far / its service days, rounded half up to the minor unit; a journal holds the
difference between two such figures.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from itertools import pairwise

import pytest
from alembic import command
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from connector.billing.periods import Frequency
from connector.billing.pricing import ChargeKind
from connector.db import tables
from connector.db.engine import transaction
from connector.db.migrate import alembic_config, upgrade
from connector.settings import Settings
from connector.sync import contracts, revenue_close
from connector.sync.billing_run import run_billing
from connector.sync.revenue_close import close_revenue
from tests import builders
from tests.builders import documents, lines
from tests.statements import counting

D = Decimal
Journal = tuple[str, date, date, date, Decimal, dict[str, str]]


def product_code(codes: dict[int, str], key: str) -> str:
    """The product code of a key of a journal's amounts (``SETUP:one_time`` for one-time)."""
    product_id, _, suffix = key.partition(":")
    return codes[int(product_id)] + (f":{suffix}" if suffix else "")


def journals(factory: sessionmaker[Session], kind: str | None = "deferred") -> list[Journal]:
    """(document number, period start, period end, journal date, amount, amounts by product
    code) of every revenue journal of ``kind`` (None: all), per document in number order, then
    by period."""
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
            .where(journal.kind == kind if kind else journal.kind.is_not(None))
            .order_by(
                tables.Document.kind.desc(),
                tables.Document.number,
                journal.period_start,
                journal.journal_date,
            )
        )
        return [
            (
                number,
                start,
                end,
                day,
                amount,
                {product_code(codes, k): v for k, v in amounts.items()},
            )
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


def due_dates(factory: sessionmaker[Session]) -> dict[str, date]:
    """The date from which each document still has revenue to journal, by number."""
    with factory() as session:
        return dict(
            session.execute(
                select(tables.Document.number, tables.RevenueDue.due_on).join(
                    tables.RevenueDue, tables.RevenueDue.document_id == tables.Document.id
                )
            ).all()
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
        # INV-000001, Jan 15..Feb 14 (31 days); Jan 15..31 is 17 days:
        # SEATS 100.00 × 17 / 31 = 54.838... -> 54.84, SUPPORT 31.00 × 17 / 31 = 17.00.
        (
            "INV-000001",
            date(2026, 1, 15),
            date(2026, 1, 31),
            date(2026, 1, 31),
            D("71.84"),
            {"SEATS": "54.84", "SUPPORT": "17.00"},
        ),
        # Feb 1..14, the rest: 100.00 - 54.84 and 31.00 - 17.00; dated the month's last day.
        (
            "INV-000001",
            date(2026, 2, 1),
            date(2026, 2, 14),
            date(2026, 2, 28),
            D("59.16"),
            {"SEATS": "45.16", "SUPPORT": "14.00"},
        ),
        # INV-000002, Feb 15..Mar 14 (28 days); Feb 15..28 is 14 days: half of each.
        (
            "INV-000002",
            date(2026, 2, 15),
            date(2026, 2, 28),
            date(2026, 2, 28),
            D("65.50"),
            {"SEATS": "50.00", "SUPPORT": "15.50"},
        ),
        # Mar 1..14: the other half.
        (
            "INV-000002",
            date(2026, 3, 1),
            date(2026, 3, 14),
            date(2026, 3, 31),
            D("65.50"),
            {"SEATS": "50.00", "SUPPORT": "15.50"},
        ),
        # INV-000003, Mar 15..Apr 14: Mar 15..31 as for January.
        (
            "INV-000003",
            date(2026, 3, 15),
            date(2026, 3, 31),
            date(2026, 3, 31),
            D("71.84"),
            {"SEATS": "54.84", "SUPPORT": "17.00"},
        ),
    ]
    with factory() as session:
        raw = session.scalars(select(tables.RevenueJournal.amounts)).first()
    assert raw is not None and raw[str(seats_id)] == "54.84"  # keyed by product id
    # Every journal is queued for accounting, in the same transaction as the journal.
    assert revenue_outbox(factory) == journal_ids(factory)
    assert due_dates(factory) == {"INV-000003": date(2026, 4, 1)}  # through Apr 14
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

    # Through each month's end, 1200.00 × the days so far / 365, rounded (tax is not revenue):
    # Jan 31 days 101.92; Feb 59 days 193.97; Mar 90 days 295.89; Apr 120 days 394.52; May 151
    # 496.44; Jun 181 595.07; Jul 212 696.99; Aug 243 798.90; Sep 273 897.53; Oct 304 999.45;
    # Nov 334 1098.08; Dec 1200.00. Each month journals the difference.
    amounts = [
        "101.92", "92.05", "101.92", "98.63", "101.92", "98.63",
        "101.92", "101.91", "98.63", "101.92", "98.63", "101.92",
    ]  # fmt: skip
    expected = [
        ("INV-000001", end.replace(day=1), end, end, D(amount), {"SEATS": amount})
        for end, amount in zip(ends, amounts, strict=True)
    ]
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
        # INV-000001 (USD, monthly): 100.00 × 10 / 31 = 32.258... -> 32.26; 20 days 64.52;
        # the running month is dated as-of.
        ("INV-000001", date(2026, 1, 1), date(2026, 1, 10), date(2026, 1, 10), D("32.26"), {"SEATS": "32.26"}),
        ("INV-000001", date(2026, 1, 11), date(2026, 1, 20), date(2026, 1, 20), D("32.26"), {"SEATS": "32.26"}),
        # Jan 21..31 ends the service: 100.00 - 64.52.
        ("INV-000001", date(2026, 1, 21), date(2026, 1, 31), date(2026, 1, 31), D("35.48"), {"SEATS": "35.48"}),
        # INV-000002 (EUR, annual, 365 days): 10 days 32.876... -> 32.88; 20 days 65.753... ->
        # 65.75; 31 days 101.92; 36 days 118.36; 59 days 193.97.
        ("INV-000002", date(2026, 1, 1), date(2026, 1, 10), date(2026, 1, 10), D("32.88"), {"SEATS": "32.88"}),
        ("INV-000002", date(2026, 1, 11), date(2026, 1, 20), date(2026, 1, 20), D("32.87"), {"SEATS": "32.87"}),
        # The Feb 5 close completes January (dated Jan 31) and starts February.
        ("INV-000002", date(2026, 1, 21), date(2026, 1, 31), date(2026, 1, 31), D("36.17"), {"SEATS": "36.17"}),
        ("INV-000002", date(2026, 2, 1), date(2026, 2, 5), date(2026, 2, 5), D("16.44"), {"SEATS": "16.44"}),
        ("INV-000002", date(2026, 2, 6), date(2026, 2, 28), date(2026, 2, 28), D("75.61"), {"SEATS": "75.61"}),
    ]  # fmt: skip
    rows = journals(factory)
    # No day twice, none missed: January of the monthly invoice is exactly its amount, and the
    # annual invoice's January and February are what a single close would have given.
    assert sum(r[4] for r in rows if r[0] == "INV-000001") == D("100.00")
    assert sum(r[4] for r in rows if r[0] == "INV-000002" and r[1].month == 1) == D("101.92")
    assert sum(r[4] for r in rows if r[0] == "INV-000002" and r[1].month == 2) == D("92.05")
    for number in ("INV-000001", "INV-000002"):
        stretches = [(r[1], r[2]) for r in rows if r[0] == number]
        for (_, end), (start, _) in pairwise(stretches):
            assert start == end + date.resolution


def test_a_cancellation_credit_takes_back_on_the_invoices_days_and_revenue_stops(
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
    with factory() as session:  # the invoice had journaled through Jan 15 when it was drafted
        revenue_from = session.scalar(
            select(tables.Document.revenue_from).where(tables.Document.number == "CN-000001")
        )
    assert revenue_from == date(2026, 1, 16)

    assert closed(close_revenue(factory, date(2026, 1, 25))) == (2, 2)
    assert closed(close_revenue(factory, date(2026, 1, 31))) == (2, 2)
    assert closed(close_revenue(factory, date(2026, 2, 28))) == (0, 0)

    assert journals(factory) == [
        # The invoice: 100.00 × 15 / 31 = 48.387... -> 48.39; 25 days 80.65; then the rest.
        ("INV-000001", date(2026, 1, 1), date(2026, 1, 15), date(2026, 1, 15), D("48.39"), {"SEATS": "48.39"}),
        ("INV-000001", date(2026, 1, 16), date(2026, 1, 25), date(2026, 1, 25), D("32.26"), {"SEATS": "32.26"}),
        ("INV-000001", date(2026, 1, 26), date(2026, 1, 31), date(2026, 1, 31), D("19.35"), {"SEATS": "19.35"}),
        # Service ended Jan 10, worth 100.00 - 67.74 = 32.26 (100.00 × 10 / 31 = 32.258...).
        # The credit note takes back what the invoice recognizes after that, on the same days:
        # what it had journaled through Jan 15 (48.39 - 32.26 = 16.13) when the credit note is
        # issued, then exactly the invoice's later journals.
        ("CN-000001", date(2026, 1, 16), date(2026, 1, 25), date(2026, 1, 25), D("-32.26"), {"SEATS": "-32.26"}),
        ("CN-000001", date(2026, 1, 26), date(2026, 1, 31), date(2026, 1, 31), D("-19.35"), {"SEATS": "-19.35"}),
    ]  # fmt: skip
    rows = journals(factory)
    assert sum(r[4] for r in rows if r[0] == "INV-000001") == D("100.00")
    assert sum(r[4] for r in rows if r[0] == "CN-000001") == D("-51.61")  # 67.74 - 16.13
    # Net revenue on every journal date after the last day of service is zero.
    for day in (date(2026, 1, 25), date(2026, 1, 31)):
        assert sum(r[4] for r in rows if r[3] == day) == 0
    with factory() as session:
        recognized = dict(
            session.execute(
                select(tables.Document.number, tables.DocumentLine.recognized).join(
                    tables.Document, tables.Document.id == tables.DocumentLine.document_id
                )
            ).all()
        )
    assert recognized == {"INV-000001": D("100.00"), "CN-000001": D("-67.74")}


def test_a_credit_note_never_takes_back_revenue_before_its_issue_date(
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

    # Nothing had been journaled of the invoice when the credit note was drafted: the credit
    # note takes back its days with its own journal, dated on its issue date, not in January.
    assert journals(factory) == [
        ("INV-000001", date(2026, 1, 1), date(2026, 1, 31), date(2026, 1, 31), D("100.00"), {"SEATS": "100.00"}),
        ("CN-000001", date(2026, 1, 1), date(2026, 1, 31), date(2026, 2, 3), D("-67.74"), {"SEATS": "-67.74"}),
    ]  # fmt: skip
    assert closed(later) == (0, 0)


def test_one_time_lines_are_revenue_on_their_service_date(
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

    assert closed(close_revenue(factory, date(2026, 1, 31))) == (1, 4)
    assert closed(close_revenue(factory, date(2026, 2, 28))) == (0, 0)

    # The training, billed on its day, is revenue on its invoice: no journal. The setup and the
    # first four days of seats were earned before INV-000001 was issued on Jan 5: the setup on
    # Jan 1 (with a day of seats, 30.00 / 31 = 0.967... -> 0.97), the seats through Jan 4
    # (30.00 × 4 / 31 = 3.870... -> 3.87), from the unbilled receivable, which the invoice
    # clears on Jan 5 from deferred revenue; the rest of January from deferred revenue.
    assert journals(factory, "unbilled") == [
        ("INV-000001", date(2026, 1, 1), date(2026, 1, 1), date(2026, 1, 1), D("50.97"), {"SEATS": "0.97", "SETUP:one_time": "50.00"}),
        ("INV-000001", date(2026, 1, 2), date(2026, 1, 4), date(2026, 1, 4), D("2.90"), {"SEATS": "2.90"}),
    ]  # fmt: skip
    assert journals(factory, "invoiced") == [
        ("INV-000001", date(2026, 1, 1), date(2026, 1, 4), date(2026, 1, 5), D("53.87"), {"SEATS": "3.87", "SETUP:one_time": "50.00"}),
    ]  # fmt: skip
    assert journals(factory) == [
        ("INV-000001", date(2026, 1, 5), date(2026, 1, 31), date(2026, 1, 31), D("26.13"), {"SEATS": "26.13"}),
    ]  # fmt: skip


def test_void_invoices_get_no_journal(factory: sessionmaker[Session], settings: Settings) -> None:
    builders.simple_subscription(factory, start=date(2026, 1, 1))
    run_billing(factory, settings, date(2026, 1, 1))
    with transaction(factory) as session:
        contracts.void_invoice(session, "INV-000001", "wrong quantity")
    run_billing(factory, settings, date(2026, 1, 2))  # bills January again: INV-000002

    assert closed(close_revenue(factory, date(2026, 1, 31))) == (1, 3)

    # INV-000002, issued Jan 2: Jan 1 was earned before it (100.00 / 31 = 3.225... -> 3.23).
    assert journals(factory, None) == [
        ("INV-000002", date(2026, 1, 1), date(2026, 1, 1), date(2026, 1, 1), D("3.23"), {"SEATS": "3.23"}),
        ("INV-000002", date(2026, 1, 1), date(2026, 1, 1), date(2026, 1, 2), D("3.23"), {"SEATS": "3.23"}),
        ("INV-000002", date(2026, 1, 2), date(2026, 1, 31), date(2026, 1, 31), D("96.77"), {"SEATS": "96.77"}),
    ]  # fmt: skip


def test_an_invoice_voided_after_a_close_leaves_each_day_recognized_once(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    builders.simple_subscription(factory, start=date(2026, 1, 1))
    run_billing(factory, settings, date(2026, 1, 1))
    assert closed(close_revenue(factory, date(2026, 1, 10))) == (1, 1)  # INV-000001: 32.26
    with transaction(factory) as session:
        contracts.void_invoice(session, "INV-000001", "wrong quantity")
    run_billing(factory, settings, date(2026, 1, 10))  # INV-000002 bills January again

    close_revenue(factory, date(2026, 1, 31))

    # The void invoice journals nothing more; what it had journaled (32.26) is taken back by its
    # void in accounting (tests/sync/test_push.py), and its replacement journals January whole:
    # Jan 1..9 earned before it was issued (100.00 × 9 / 31 = 29.032... -> 29.03), the rest after.
    rows = journals(factory, None)
    assert [(r[0], r[4]) for r in rows] == [
        ("INV-000001", D("32.26")),
        ("INV-000002", D("29.03")),
        ("INV-000002", D("29.03")),
        ("INV-000002", D("70.97")),
    ]
    assert [r[4] for r in journals(factory, "unbilled")] == [D("29.03")]
    with factory() as session:
        voids = session.scalars(
            select(tables.Outbox.document_id).where(tables.Outbox.document_type == "void")
        ).all()
        recognized = session.scalar(
            select(tables.DocumentLine.recognized).where(tables.DocumentLine.document_id == 1)
        )
    assert voids == [1]
    assert recognized == D("32.26")  # what the void takes back


def test_closing_twice_at_the_same_date_adds_nothing(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    builders.simple_subscription(factory, start=date(2026, 1, 15))
    run_billing(factory, settings, date(2026, 2, 15))
    first = close_revenue(factory, date(2026, 2, 10))
    # INV-000001 (issued Feb 15) earned Jan 15..31 and Feb 1..10 before it was issued;
    # INV-000002 not begun.
    assert closed(first) == (1, 2)
    before = journals(factory, None)
    assert [r[4] for r in journals(factory, "unbilled")] == [D("54.84"), D("32.26")]

    again = close_revenue(factory, date(2026, 2, 10))
    earlier = close_revenue(factory, date(2026, 1, 31))

    assert (closed(again), closed(earlier)) == ((0, 0), (0, 0))
    assert journals(factory, None) == before
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
    assert [(d[0], d[2], d[3], d[4]) for d in documents(factory)] == [
        ("INV-000001", date(2026, 2, 15), D("3000"), D("3300")),  # 10% tax, not revenue
        ("INV-000002", date(2026, 2, 15), D("3000"), D("3300")),
    ]

    close_revenue(factory, date(2026, 1, 31))
    close_revenue(factory, date(2026, 2, 28))
    close_revenue(factory, date(2026, 3, 31))

    # Both invoices were issued on Feb 15: INV-000001's service (Jan 15..Feb 14, 31 days) was
    # all earned before it. 3000 × 17 / 31 = 1645.16... -> 1645 yen in January, 1355 after.
    assert journals(factory, "unbilled") == [
        ("INV-000001", date(2026, 1, 15), date(2026, 1, 31), date(2026, 1, 31), D("1645"), {"SEATS": "1645"}),
        ("INV-000001", date(2026, 2, 1), date(2026, 2, 14), date(2026, 2, 14), D("1355"), {"SEATS": "1355"}),
    ]  # fmt: skip
    assert journals(factory, "invoiced") == [
        ("INV-000001", date(2026, 1, 15), date(2026, 2, 14), date(2026, 2, 15), D("3000"), {"SEATS": "3000"}),
    ]  # fmt: skip
    assert journals(factory) == [
        # Feb 15..Mar 14 (28 days): 14 days in February, half.
        ("INV-000002", date(2026, 2, 15), date(2026, 2, 28), date(2026, 2, 28), D("1500"), {"SEATS": "1500"}),
        ("INV-000002", date(2026, 3, 1), date(2026, 3, 14), date(2026, 3, 31), D("1500"), {"SEATS": "1500"}),
    ]  # fmt: skip
    with factory() as session:
        amounts = session.scalars(
            select(tables.RevenueJournal.amount).order_by(tables.RevenueJournal.id)
        ).all()
    assert [format(a, "f") for a in amounts] == ["1645", "1355", "3000", "1500", "1500"]


def test_a_close_costs_a_handful_of_statements_per_batch_of_documents(
    factory: sessionmaker[Session],
    settings: Settings,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Seven monthly subscriptions from Jan 1, one cancelled from Jan 11 (a credit note issued
    Jan 21): eight documents, closed three at a time. The candidates are read once; a batch
    reads its documents with their progress, their lines and (credit notes) their schedules,
    and writes its journals, their outbox rows, the lines' and the documents' progress with
    one statement each, whatever the number of documents in it."""
    subscriptions = [
        builders.simple_subscription(factory, start=date(2026, 1, 1), ref=f"C{n}") for n in range(7)
    ]
    run_billing(factory, settings, date(2026, 1, 1))
    monkeypatch.setattr(revenue_close, "BATCH", 3)
    assert closed(close_revenue(factory, date(2026, 1, 15))) == (7, 7)
    with transaction(factory) as session:
        contracts.cancel_subscription(session, subscriptions[0], cancel_date=date(2026, 1, 11))
    run_billing(factory, settings, date(2026, 1, 21))

    with counting(engine) as seen:
        result = close_revenue(factory, date(2026, 1, 31))

    assert closed(result) == (8, 8)  # each invoice Jan 16..31, the credit note Jan 16..31
    batches = 3  # 3 + 3 + 2 documents
    assert len(seen.touching("SELECT revenue_due.document_id")) == 1  # the candidates, read once
    verbs = seen.by_verb()
    # Journals, their outbox rows, the documents' progress (an upsert); the lines' progress;
    # the documents done with, out of revenue_due (every one: their service ends Jan 31).
    assert (verbs["INSERT"], verbs["UPDATE"], verbs["DELETE"]) == (
        3 * batches,
        batches,
        batches,
    )
    # A transaction to read the candidates, then per batch: documents, lines, the journals'
    # ids, the writes above, and once the credit note's schedule; BEGIN on SQLite only.
    begins = verbs["BEGIN"]
    assert begins in (0, 1 + batches)
    assert len(seen) == begins + 1 + 8 * batches + 1
    assert len(seen) <= 2 + 10 * batches
    inserts = [rows for sql, rows in zip(seen.sql, seen.rows, strict=True) if "INSERT" in sql]
    assert sum(inserts) == 8 + 8 + 8  # journals, outbox rows, progress: one row each per document
    assert revenue_outbox(factory) == journal_ids(factory)
    assert due_dates(factory) == {}


def test_a_close_reads_only_the_documents_due(
    factory: sessionmaker[Session], settings: Settings, engine: Engine
) -> None:
    """A document is due from its first day of service, then from the day after its last
    journal; a close on a day that journaled everything already reads the due dates and
    nothing else, however many documents there are, and one after the service ended drops
    the document for good."""
    builders.simple_subscription(factory, start=date(2026, 1, 10), ref="C1")
    builders.simple_subscription(factory, start=date(2026, 1, 20), ref="C2")
    run_billing(factory, settings, date(2026, 1, 20))
    numbers = sorted(due_dates(factory))
    assert due_dates(factory) == {numbers[0]: date(2026, 1, 10), numbers[1]: date(2026, 1, 20)}

    assert closed(close_revenue(factory, date(2026, 1, 15))) == (1, 1)
    assert due_dates(factory) == {numbers[0]: date(2026, 1, 16), numbers[1]: date(2026, 1, 20)}

    with counting(engine) as seen:
        assert closed(close_revenue(factory, date(2026, 1, 15))) == (0, 0)
    assert [sql for sql in seen.sql if not sql.startswith("BEGIN")] == [
        sql for sql in seen.sql if "SELECT revenue_due.document_id" in sql
    ]
    assert len(seen.touching("SELECT revenue_due.document_id")) == 1

    # The first: Jan 16..19 earned before its invoice of Jan 20, the invoice clearing Jan
    # 10..19, then Jan 20..31 and Feb 1..9; the second: Jan 20..31 and Feb 1..19.
    assert closed(close_revenue(factory, date(2026, 3, 31))) == (2, 6)
    assert due_dates(factory) == {}  # both periods ended in February: nothing left to journal


def test_the_upgrade_enters_every_document_with_revenue_left(
    factory: sessionmaker[Session], settings: Settings, engine: Engine
) -> None:
    """A database from before ``revenue_due``: each document with revenue left is entered, due
    from the day after its last journal, or from its first day of service."""
    builders.simple_subscription(factory, start=date(2026, 1, 1), ref="C1")
    builders.simple_subscription(factory, start=date(2026, 1, 10), ref="C2")
    builders.simple_subscription(factory, start=date(2025, 12, 1), ref="C3")
    run_billing(factory, settings, date(2026, 1, 10))
    close_revenue(factory, date(2026, 1, 5))
    expected = {
        "INV-000001": date(2026, 1, 6),  # C1, Jan 1..31: Jan 1..5 journaled
        "INV-000002": date(2026, 1, 10),  # C2, from Jan 10: nothing journaled yet
        # C3's December (INV-000003) is journaled whole; its January as C1's.
        "INV-000004": date(2026, 1, 6),
    }
    assert due_dates(factory) == expected
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0011")

    upgrade(engine)

    assert due_dates(factory) == expected
