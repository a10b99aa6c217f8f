"""Closed periods stay closed, on the real billing core and a real Beancount ledger.

One customer, 10 seats × 10.00 USD a month from Jan 1 2026 (no tax), billed and journaled month
by month and pushed to a ledger in ``tmp_path``; the books are then closed through Mar 31 on
Apr 2, and what comes later for March (a credit note, revenue caught up, a void, a payment
recorded late, an invoice still waiting in the outbox) is booked on Apr 1 with its own day in
``original_date``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from beancount import loader
from beancount.core import data
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connector.accounting.base import AccountingTarget, PostResult
from connector.accounting.ledger import Ledger
from connector.billing.revenue import month_end
from connector.db import books, outbox, tables
from connector.db.catalog import find_by_external_id
from connector.db.engine import transaction
from connector.settings import Settings
from connector.sync import closing, contracts, settlement
from connector.sync.billing_run import run_billing
from connector.sync.closing import ClosingRefusedError, PostingInFlightError, close_books
from connector.sync.importer import SYSTEM, import_file
from connector.sync.ledger_check import check_ledger
from connector.sync.push import make_target, push
from connector.sync.revenue_close import close_revenue
from tests import builders

D = Decimal
MAR31, APR1, APR2 = date(2026, 3, 31), date(2026, 4, 1), date(2026, 4, 2)
DEMO_FILE = Path(__file__).resolve().parents[2] / "connector" / "samples" / "demo.yaml"


def close(factory: sessionmaker[Session], through: date, today: date = APR2, **options: object):
    return close_books(factory, through, by="alice", today=today, **options)  # type: ignore[arg-type]


def entries_of(ledger: Ledger) -> list[data.Transaction]:
    loaded, errors, _ = loader.load_file(str(ledger.path))
    assert errors == []
    return [entry for entry in loaded if isinstance(entry, data.Transaction)]


def posted(ledger: Ledger) -> dict[tuple[str, str], data.Transaction]:
    """The connector's entries by (document_type, document_id)."""
    return {
        (str(e.meta["document_type"]), str(e.meta["document_id"])): e
        for e in entries_of(ledger)
        if "document_type" in e.meta
    }


def amounts(entry: data.Transaction) -> dict[str, Decimal]:
    """Account -> amount of each posting."""
    return {
        posting.account: posting.units.number or D(0)
        for posting in entry.postings
        if posting.units is not None
    }


def receivable(entry: data.Transaction) -> Decimal:
    return sum(
        (n for account, n in amounts(entry).items() if account.startswith("Assets:Accounts")),
        D(0),
    )


def document_id(factory: sessionmaker[Session], number: str) -> str:
    with factory() as session:
        return str(
            session.scalar(select(tables.Document.id).where(tables.Document.number == number))
        )


def billed_through_march(
    factory: sessionmaker[Session], settings: Settings, *, push_march: bool = True
) -> tuple[int, Ledger]:
    """INV-000001..3 (Jan, Feb, Mar, 100.00 each); revenue journaled through Feb 28 and, with
    ``push_march``, March's too, all pushed; without it, INV-000003 waits in the outbox."""
    subscription = builders.simple_subscription(factory, start=date(2026, 1, 1))
    target = make_target(settings)
    assert isinstance(target, Ledger)
    for month in (1, 2):
        run_billing(factory, settings, date(2026, month, 1))
    close_revenue(factory, date(2026, 2, 28))
    push(factory, settings, target)
    run_billing(factory, settings, date(2026, 3, 1))
    if push_march:
        close_revenue(factory, MAR31)
        push(factory, settings, target)
    return subscription, target


# -- the closing itself ---------------------------------------------------------------------------
def test_closings_are_kept_with_who_and_when_and_only_move_forward(
    factory: sessionmaker[Session],
) -> None:
    first = close(factory, date(2026, 1, 31), today=date(2026, 2, 3))
    again = close(factory, date(2026, 1, 31), today=date(2026, 2, 3))
    later = close_books(factory, MAR31, by="bob", today=APR2, reason="Q1 filed")

    assert (first.changed, first.previous, first.books.closed_through) == (
        True,
        None,
        date(2026, 1, 31),
    )
    assert (again.changed, again.previous) == (False, date(2026, 1, 31))
    assert (later.previous, later.books.closed_through, later.books.first_open_day) == (
        date(2026, 1, 31),
        MAR31,
        APR1,
    )
    with pytest.raises(ClosingRefusedError) as backwards:
        close(factory, date(2026, 2, 28))
    assert str(backwards.value) == (
        "the books are closed through 2026-03-31; closing only moves forward: give --reopen "
        "to reopen the days after 2026-02-28"
    )
    with pytest.raises(ClosingRefusedError) as running:
        close(factory, APR2)
    assert str(running.value) == (
        "2026-04-02 has not ended yet (today is 2026-04-02): close a day before today"
    )
    with pytest.raises(ClosingRefusedError) as forward_reopen:
        close(factory, date(2026, 4, 1), reopen=True)
    assert str(forward_reopen.value) == (
        "--reopen moves the closing back, but 2026-04-01 is not before the day the books are "
        "closed through (2026-03-31)"
    )
    reopened = close(factory, date(2026, 2, 28), reopen=True, reason="correct March")

    assert (reopened.books.closed_through, reopened.books.reopened) == (date(2026, 2, 28), True)
    with factory() as session:
        history = [
            (c.closed_through, c.closed_by, c.reopened, c.reason) for c in books.history(session)
        ]
        latest = books.latest(session)
    assert history == [
        (date(2026, 1, 31), "alice", False, None),
        (MAR31, "bob", False, "Q1 filed"),
        (date(2026, 2, 28), "alice", True, "correct March"),
    ]
    assert latest is not None and latest.closed_at.tzinfo is UTC
    assert latest.closed_at <= datetime.now(UTC)


# -- what comes later for a closed period ---------------------------------------------------------
def test_a_late_credit_note_and_its_revenue_catch_up_are_booked_on_the_first_open_day(
    factory: sessionmaker[Session], ledger_settings: Settings
) -> None:
    subscription, ledger = billed_through_march(factory, ledger_settings)
    close(factory, MAR31)
    # Cancelled from Mar 21, entered late: the billing run for Mar 25 that was missed credits
    # Mar 21..31 (11/31 of 100.00 = 35.48), of which Mar 21..25 had been recognized already.
    with transaction(factory) as session:
        contracts.cancel_subscription(session, subscription, cancel_date=date(2026, 3, 21))
    run_billing(factory, ledger_settings, date(2026, 3, 25))
    close_revenue(factory, APR2)
    result = push(factory, ledger_settings, ledger)

    assert (result.posted, result.pending, result.parked) == (1, 0, {})
    assert builders.documents(factory)[0] == (
        "CN-000001",
        "credit_note",
        date(2026, 3, 25),
        D("35.48"),
        D("35.48"),
    )
    entries = posted(ledger)
    credit = entries[("credit_note", document_id(factory, "CN-000001"))]
    assert (credit.date, credit.narration, credit.meta["original_date"]) == (
        APR1,
        "Credit note CN-000001 for INV-000003 (for 2026-03, period closed)",
        date(2026, 3, 25),
    )
    assert credit.meta["original_period"] == "2026-03"
    assert receivable(credit) == D("-35.48")
    # INV-000003 had journaled all of March when the credit note was drafted: the credit note
    # takes its whole amount back from revenue itself, booked on the first open day; no journal.
    assert {a: n for a, n in amounts(credit).items() if not a.startswith("Assets:")} == {
        "Income:Subscriptions": D("35.48")
    }
    assert [e for (kind, _), e in entries.items() if kind == "revenue" and e.date == APR1] == []
    with factory() as session:
        check = check_ledger(session, ledger)
    assert (check.ok, check.differences) == (True, [])


def test_waiting_documents_a_void_and_a_late_payment_are_booked_on_the_first_open_day(
    factory: sessionmaker[Session], ledger_settings: Settings
) -> None:
    _, ledger = billed_through_march(factory, ledger_settings, push_march=False)
    with factory() as session:
        assert outbox.depth(session, "ledger") == {"waiting": 1, "parked": 0}  # INV-000003

    closed = close(factory, MAR31)

    assert closed.waiting == {"ledger": 1}
    with transaction(factory) as session:
        settlement.record_payment(
            session, amount=D("100.00"), received_on=date(2026, 3, 20), invoice_number="INV-000002"
        )
        contracts.void_invoice(session, "INV-000003", "wrong quantity")
    close_revenue(factory, APR2)  # March, caught up (before the void is known to it: none)
    first = push(factory, ledger_settings, ledger)

    entries = posted(ledger)
    invoice_id = document_id(factory, "INV-000003")
    moved = {
        key: (e.date, e.meta["original_date"], receivable(e))
        for key, e in entries.items()
        if "original_date" in e.meta
    }
    with factory() as session:
        payment_id = str(session.scalar(select(tables.Payment.id)))
    assert moved == {
        ("invoice", invoice_id): (APR1, date(2026, 3, 1), D("100.00")),
        ("void", invoice_id): (APR1, date(2026, 3, 1), D("-100.00")),
        ("payment", payment_id): (APR1, date(2026, 3, 20), D("-100.00")),
    }
    assert entries[("void", invoice_id)].narration == (
        "Void of invoice INV-000003 (for 2026-03, period closed)"
    )
    assert first.parked == {}
    # Nothing the connector wrote after the close is dated on or before Mar 31.
    assert min(e.date for e in moved_entries(entries)) == APR1
    with factory() as session:
        check = check_ledger(session, ledger)
    assert (check.ok, check.waiting) == (True, 0)


def moved_entries(entries: dict[tuple[str, str], data.Transaction]) -> list[data.Transaction]:
    return [e for e in entries.values() if "original_date" in e.meta]


def test_revenue_of_a_closed_month_journaled_late_is_booked_on_the_first_open_day(
    factory: sessionmaker[Session], ledger_settings: Settings
) -> None:
    _, ledger = billed_through_march(factory, ledger_settings, push_march=False)
    push(factory, ledger_settings, ledger)  # INV-000003 on its own day, Mar 1
    close(factory, MAR31)

    run_billing(factory, ledger_settings, APR2)  # INV-000004, April
    close_revenue(factory, APR2)  # INV-000003: Mar 1..31 dated Mar 31; INV-000004: Apr 1..2
    push(factory, ledger_settings, ledger)

    revenue = sorted(
        (e.date, e.narration, e.meta.get("original_date"))
        for (kind, _), e in posted(ledger).items()
        if kind == "revenue" and e.date >= APR1
    )
    # INV-000004, issued Apr 2 for April: Apr 1 earned before it (the unbilled receivable,
    # cleared on Apr 2), Apr 2 from deferred revenue.
    assert revenue == [
        (
            APR1,
            "Revenue of INV-000003, 2026-03-01 to 2026-03-31 (for 2026-03, period closed)",
            MAR31,
        ),
        (APR1, "Revenue of INV-000004 earned before it was issued, 2026-04-01 to 2026-04-01", None),
        (APR2, "INV-000004 bills revenue earned 2026-04-01 to 2026-04-01", None),
        (APR2, "Revenue of INV-000004, 2026-04-02 to 2026-04-02", None),
    ]


class CrashingTarget:
    """A ledger whose process dies while it writes: the answer is never recorded."""

    def __init__(self, ledger: Ledger) -> None:
        self.name, self.max_batch = ledger.name, ledger.max_batch

    def upsert_customers(self, customers: object) -> list[PostResult]:
        raise AssertionError("not used")

    def post(self, documents: object, retried: frozenset[str] = frozenset()) -> list[PostResult]:
        raise SystemExit("killed while posting")

    def payments(self, since: str | None) -> tuple[list[object], str | None]:
        return [], since


def test_a_closing_waits_while_documents_are_in_flight(
    factory: sessionmaker[Session], ledger_settings: Settings
) -> None:
    _, ledger = billed_through_march(factory, ledger_settings, push_march=False)
    crashing: AccountingTarget = CrashingTarget(ledger)  # type: ignore[assignment]
    with pytest.raises(SystemExit):
        push(factory, ledger_settings, crashing)

    with pytest.raises(PostingInFlightError) as waiting:
        close(factory, MAR31)

    assert str(waiting.value) == (
        "documents were sent to accounting and their answer is not recorded yet (1 to "
        "ledger): a push is running, or was interrupted; run `connector push`, then close again"
    )
    with factory() as session:
        assert closing.books_state(session).in_flight == {"ledger": 1}
        assert books.closed_through(session) is None
    push(factory, ledger_settings, ledger)  # INV-000003 on Mar 1: the books were open
    closed = close(factory, MAR31)

    assert (closed.books.closed_through, closed.books.in_flight) == (MAR31, {})
    invoice = posted(ledger)[("invoice", document_id(factory, "INV-000003"))]
    assert (invoice.date, "original_date" in invoice.meta) == (date(2026, 3, 1), False)


# -- nothing is ever dated in a closed period -----------------------------------------------------
def run_month(
    factory: sessionmaker[Session], settings: Settings, ledger: Ledger, day: date
) -> None:
    with transaction(factory) as session:
        result = import_file(session, DEMO_FILE, as_of=day, default_currency="USD")
    assert not result.errors
    run_billing(factory, settings, day)
    close_revenue(factory, day)
    push(factory, settings, ledger)


def month_ends() -> list[date]:
    return [month_end(date(2026, month, 1)) for month in range(1, 13)]


@pytest.mark.parametrize("closed_through", [date(2026, 5, 31), date(2026, 8, 15)])
def test_nothing_is_dated_in_a_closed_period_over_a_demo_year(
    factory: sessionmaker[Session], ledger_settings: Settings, closed_through: date
) -> None:
    """The demo's contracts and events (upgrades, a downgrade, a move to another product, a
    cancellation) billed month by month through 2026. The books are closed through
    ``closed_through`` three days later, while that month's billing run, its revenue close and
    its push have not run; then they run late, as of the closed day, with Acme's cancellation
    from the 20th of the last month billed entered late, a payment recorded late and a void of
    the last invoice that was still unpaid. Every entry written after the closing is dated after
    it, and the ledger still agrees with the billing core."""
    ledger = make_target(ledger_settings)
    assert isinstance(ledger, Ledger)
    last_run = closed_through
    for day in month_ends():
        if day >= closed_through:
            break
        run_month(factory, ledger_settings, ledger, day)
        last_run = day
    before = set(posted(ledger))

    close(factory, closed_through, today=date.fromordinal(closed_through.toordinal() + 3))
    with transaction(factory) as session:
        import_file(session, DEMO_FILE, as_of=closed_through, default_currency="USD")
        acme = find_by_external_id(session, tables.Subscription, SYSTEM, "ACME-2026")
        assert acme is not None
        contracts.cancel_subscription(session, acme.id, cancel_date=last_run.replace(day=20))
    run_billing(factory, ledger_settings, closed_through)
    with transaction(factory) as session:
        unpaid = session.scalars(
            select(tables.Document)
            .where(
                tables.Document.kind == "invoice",
                tables.Document.status == "open",
                tables.Document.amount_paid == 0,
                tables.Document.amount_credited == 0,
                tables.Document.issue_date <= closed_through,
            )
            .order_by(tables.Document.id)
        ).all()
        paid, voided = unpaid[0], unpaid[-1]
        settlement.record_payment(
            session,
            amount=paid.total,
            received_on=paid.issue_date,
            invoice_number=paid.number,
        )
        contracts.void_invoice(session, voided.number, "issued in error")
    close_revenue(factory, closed_through)
    push(factory, ledger_settings, ledger)
    for day in month_ends():
        if day > closed_through:
            run_month(factory, ledger_settings, ledger, day)

    after = {key: entry for key, entry in posted(ledger).items() if key not in before}
    assert after, "the year went on after the closing"
    assert min(entry.date for entry in after.values()) > closed_through
    moved = moved_entries(after)
    assert {entry.meta["document_type"] for entry in moved} >= {
        "invoice",
        "credit_note",
        "payment",
        "void",
        "revenue",
    }
    for entry in moved:
        assert entry.meta["original_date"] <= closed_through < entry.date
        assert entry.date == date.fromordinal(closed_through.toordinal() + 1)
        assert str(entry.narration).endswith(
            f"(for {entry.meta['original_date']:%Y-%m}, period closed)"
        )
    with factory() as session:
        check = check_ledger(session, ledger)
    assert (check.ok, check.differences, check.waiting) == (True, [], 0)
