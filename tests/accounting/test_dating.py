"""Closed periods stay closed: the day a document is booked on, and what its entry says of the
day and period it belongs to."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

from beancount import loader

from connector.accounting import dating, entries
from connector.accounting.base import VOID, Line, RevenueAmount, RevenueJournal, document_key
from tests.accounting.documents import (
    ALICE,
    ALICE_AR,
    CHART,
    credit_note,
    invoice,
    payment,
)

D = Decimal
MAR15, MAR31, APR1 = date(2026, 3, 15), date(2026, 3, 31), date(2026, 4, 1)

LATE_CREDIT = credit_note(
    12,
    "CN-000012",
    "INV-000011",
    ALICE,
    MAR15,
    lines=[Line("PRO", "Platform", True, D("100.00"), recognized=D("48.39"))],
    taxes=[],
    total="100.00",
)


def test_a_document_dated_in_a_closed_period_is_booked_on_the_first_open_day() -> None:
    booked = dating.book(LATE_CREDIT, MAR31)

    assert booked.booking_date == APR1
    assert (booked.issue_date, dating.own_date(booked), dating.booked_on(booked)) == (
        MAR15,
        MAR15,
        APR1,
    )
    assert dating.moved(booked)
    assert dating.closed_suffix(booked) == " (for 2026-03, period closed)"
    assert dating.ledger_metadata(booked) == {
        "original_date": "2026-03-15",
        "original_period": '"2026-03"',
    }


def test_the_closed_through_day_itself_is_closed_and_the_next_one_open() -> None:
    on_the_day = replace(LATE_CREDIT, issue_date=MAR31)
    next_day = replace(LATE_CREDIT, issue_date=APR1)

    assert dating.book(on_the_day, MAR31).booking_date == APR1
    assert dating.book(next_day, MAR31) is next_day
    assert dating.book(LATE_CREDIT, None) is LATE_CREDIT
    assert dating.book(LATE_CREDIT, date(2026, 3, 14)) is LATE_CREDIT
    assert not dating.moved(LATE_CREDIT)
    assert dating.closed_suffix(LATE_CREDIT) == ""
    assert dating.ledger_metadata(LATE_CREDIT) == {}


def test_the_later_closing_applies_whichever_comes_first() -> None:
    ours, theirs = MAR31, date(2026, 4, 30)  # the books, Xero's lock date

    assert dating.book(dating.book(LATE_CREDIT, ours), theirs).booking_date == date(2026, 5, 1)
    assert dating.book(dating.book(LATE_CREDIT, theirs), ours).booking_date == date(2026, 5, 1)
    assert dating.later(ours, None, theirs) == theirs
    assert dating.later(None, None) is None


def test_a_late_credit_note_enters_the_ledger_on_the_first_open_day_with_its_own_date() -> None:
    text = entries.entry(dating.book(LATE_CREDIT, MAR31), CHART, ALICE_AR)

    assert text.splitlines()[:5] == [
        '2026-04-01 * "Alice Inc." "Credit note CN-000012 for INV-000011 (for 2026-03, '
        'period closed)" ^CN-000012 ^INV-000011',
        '  document_type: "credit_note"',
        '  document_id: "12"',
        "  original_date: 2026-03-15",
        '  original_period: "2026-03"',
    ]
    # The amounts do not move: the same postings as on its own day.
    assert text.splitlines()[5:] == entries.entry(LATE_CREDIT, CHART, ALICE_AR).splitlines()[3:]


def test_moved_payments_revenue_and_voids_carry_their_own_day(tmp_path: Path) -> None:
    issued = invoice(
        11,
        "INV-000011",
        ALICE,
        date(2026, 3, 1),
        lines=[Line("PRO", "Platform", True, D("100.00"))],
        taxes=[],
        total="100.00",
        due=MAR31,
    )
    void = replace(
        issued,
        key=document_key(VOID, 11),
        document_type=VOID,
        lines=(Line("PRO", "Platform", True, D("100.00"), recognized=D("48.39")),),
    )
    paid = payment(13, ALICE, date(2026, 3, 20), "100.00", "INV-000011", reference="wire 7")
    journal = RevenueJournal(
        key=document_key("revenue", 14),
        document_id=14,
        journal_date=MAR31,
        period_start=date(2026, 3, 1),
        period_end=MAR31,
        customer=ALICE,
        currency="USD",
        source_number="INV-000011",
        invoice_number=None,
        amounts=(RevenueAmount("PRO", "Platform", D("100.00")),),
    )
    texts = [
        entries.entry(dating.book(doc, MAR31), CHART, ALICE_AR)
        for doc in (issued, void, paid, journal)
    ]

    assert [text.splitlines()[0] for text in texts] == [
        '2026-04-01 * "Alice Inc." "Invoice INV-000011 (for 2026-03, period closed)" ^INV-000011',
        '2026-04-01 * "Alice Inc." "Void of invoice INV-000011 (for 2026-03, period closed)" '
        "^INV-000011",
        '2026-04-01 * "Alice Inc." "Payment for INV-000011 (wire 7) (for 2026-03, period '
        'closed)" ^INV-000011',
        '2026-04-01 * "Alice Inc." "Revenue of INV-000011, 2026-03-01 to 2026-03-31 (for '
        '2026-03, period closed)" ^INV-000011',
    ]
    ledger = tmp_path / "ledger.beancount"
    opens = "".join(
        f"2026-01-01 open {account}\n"
        for account in (
            ALICE_AR,
            "Assets:Bank:USD",
            "Liabilities:DeferredRevenue",
            "Income:Subscriptions",
        )
    )
    ledger.write_text(opens + "\n" + "\n".join(texts), encoding="utf-8")
    loaded, errors, _ = loader.load_file(str(ledger))

    assert errors == []
    moved = [entry for entry in loaded if "original_date" in entry.meta]
    assert [
        (e.date, e.meta["original_date"], e.meta["original_period"], e.meta["document_type"])
        for e in moved
    ] == [
        (APR1, date(2026, 3, 1), "2026-03", "invoice"),
        (APR1, date(2026, 3, 1), "2026-03", "void"),
        (APR1, date(2026, 3, 20), "2026-03", "payment"),
        (APR1, MAR31, "2026-03", "revenue"),
    ]
