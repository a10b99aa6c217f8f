"""Properties of the books over random histories: deals in four currencies with tax, late first
billing, one-time charges, upgrades, downgrades, cancellations, payments short and over, billed,
closed and pushed to a real ledger month after month, on a real database.

Finance closes the books now and then. Whatever happened, the ledger loads with a plain
Beancount and balances per currency; nothing posted after a closing is dated in the closed
period; at every month end deferred revenue is never a debit, the unbilled receivable never a
credit, no receivable below zero and no customer credit a debit; a cancelled subscription's
revenue is exactly what was billed less what was credited, and nothing is recognized in any
month after its service ended; the ledger's receivables and credits agree with the billing
core.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from beancount import loader
from beancount.core import data
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from connector.billing.periods import Frequency
from connector.billing.pricing import ChargeKind
from connector.billing.revenue import month_end
from connector.db import tables
from connector.db.engine import make_engine, session_factory, transaction
from connector.settings import load_settings
from connector.sync import contracts, settlement
from connector.sync.billing_run import run_billing
from connector.sync.closing import close_books
from connector.sync.ledger_check import check_ledger
from connector.sync.push import make_target, push
from connector.sync.revenue_close import close_revenue
from tests import builders
from tests.conftest import ACCOUNTING_MAPPING, TEST_TAX_RATES

D = Decimal
CUSTOMERS = {"US": "USD", "GB": "GBP", "DE": "EUR", "JP": "JPY"}
CYCLES = [month_end(date(2026, month, 1)) for month in range(1, 13)]


@dataclass(frozen=True)
class Deal:
    country: str
    frequency: Frequency
    start: date
    quantity: int
    unit: int  # in whole currency units
    setup: int  # a one-time charge on the start date (0: none)


@dataclass(frozen=True)
class Event:
    cycle: int  # entered at this cycle's date
    deal: int
    kind: str  # cancel, amend, pay
    days: int  # cancel / amend: effective so many days after the cycle date
    value: int  # amend: new quantity; pay: percent of what is due


DEALS = st.builds(
    Deal,
    country=st.sampled_from(sorted(CUSTOMERS)),
    frequency=st.sampled_from([Frequency.MONTHLY, Frequency.QUARTERLY, Frequency.ANNUAL]),
    start=st.dates(date(2026, 1, 1), date(2026, 4, 30)),
    quantity=st.integers(1, 5),
    unit=st.integers(7, 400),
    setup=st.sampled_from([0, 0, 250]),
)
EVENTS = st.builds(
    Event,
    cycle=st.integers(0, len(CYCLES) - 1),
    deal=st.integers(0, 2),
    kind=st.sampled_from(["cancel", "amend", "pay", "pay", "close"]),
    days=st.integers(0, 45),
    value=st.sampled_from([0, 1, 3, 6, 50, 100, 150]),
)


def _postings(entries: list[Any]) -> list[tuple[date, str, str, Decimal, frozenset[str]]]:
    """Postings by the day their entry belongs to: its own, or the day of the closed period
    it was moved out of (``original_date``)."""
    return [
        (
            entry.meta.get("original_date", entry.date),
            posting.account,
            posting.units.currency,
            posting.units.number,
            entry.links,
        )
        for entry in entries
        if isinstance(entry, data.Transaction)
        for posting in entry.postings
    ]


def _balance(postings: list[Any], prefix: str, day: date) -> dict[tuple[str, str], Decimal]:
    sums: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for when, account, currency, amount, _ in postings:
        if when <= day and account.startswith(prefix):
            sums[(account, currency)] += amount
    return sums


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    deals=st.lists(DEALS, min_size=1, max_size=3),
    events=st.lists(EVENTS, max_size=8),
    cancel=st.tuples(st.integers(0, 9), st.integers(0, 45)),
    first_billing=st.integers(0, 3),
)
def test_the_books_hold_whatever_happens(
    sqlite_template: Path,
    deals: list[Deal],
    events: list[Event],
    cancel: tuple[int, int],
    first_billing: int,
) -> None:
    # The first deal is always cancelled, some time in the first ten months.
    events = [*events, Event(cancel[0], 0, "cancel", cancel[1], 0)]
    with tempfile.TemporaryDirectory() as folder:
        database = Path(folder) / "connector.db"
        shutil.copy(sqlite_template, database)
        engine = make_engine(f"sqlite:///{database}")
        try:
            _run(engine, Path(folder), deals, events, first_billing)
        finally:
            engine.dispose()


def _run(
    engine: Any, folder: Path, deals: list[Deal], events: list[Event], first_billing: int
) -> None:
    factory = session_factory(engine)
    config = load_settings(
        None,
        database_url=str(engine.url),
        ledger={"path": folder / "ledger.beancount"},
        accounting={"mapping_file": str(ACCOUNTING_MAPPING)},
        tax={"rates": TEST_TAX_RATES},
    )
    subscriptions: list[int] = []
    prices: list[int] = []
    with transaction(factory) as session:
        for number, deal in enumerate(deals):
            currency = CUSTOMERS[deal.country]
            buyer = builders.customer(
                session, f"{deal.country}{number}", country=deal.country, currency=currency
            )
            seats = builders.price(
                session, f"SEATS{number}", currency=currency, unit_amount=str(deal.unit)
            )
            prices.append(seats.id)
            items = [builders.spec(session, seats, deal.quantity)]
            if deal.setup:
                setup = builders.price(
                    session,
                    f"SETUP{number}",
                    currency=currency,
                    unit_amount=str(deal.setup),
                    kind=ChargeKind.ONE_TIME,
                )
                items.append(builders.spec(session, setup, 1, service_date=deal.start))
            subscriptions.append(
                builders.subscription(
                    session, buyer, items, start=deal.start, frequency=deal.frequency
                ).id
            )
    cancelled: dict[int, date] = {}
    closed_through: date | None = None
    seen: set[tuple[str, str]] = set()
    for index, day in enumerate(CYCLES):
        if index and any(e.cycle == index and e.kind == "close" for e in events):
            closed_through = CYCLES[index - 1]  # the month before, once this one is under way
            close_books(factory, closed_through, by="finance", today=day)
        with transaction(factory) as session:
            for event in (
                e for e in events if e.cycle == index and e.deal < len(deals) and e.kind != "close"
            ):
                _apply(
                    session,
                    event,
                    day=day,
                    deal=deals[event.deal],
                    ids=(subscriptions, prices),
                    cancelled=cancelled,
                )
        if index >= first_billing:
            run_billing(factory, config, day)
        close_revenue(factory, day)
        push(factory, config)
        # Nothing posted after a closing is dated in the closed period.
        entries, _, _ = loader.load_file(str(config.ledger.path))
        for entry in entries:
            if isinstance(entry, data.Transaction) and "document_type" in entry.meta:
                key = (entry.meta["document_type"], entry.meta["document_id"])
                if key not in seen:
                    seen.add(key)
                    assert closed_through is None or entry.date > closed_through, (key, entry)

    entries, errors, _ = loader.load_file(str(config.ledger.path))
    assert [error.message for error in errors] == []
    postings = _postings(entries)

    # The trial balance is zero in every currency.
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for _, _, currency, amount, _ in postings:
        totals[currency] += amount
    assert all(amount == 0 for amount in totals.values()), totals

    for day in CYCLES:
        for (account, _), amount in _balance(postings, "Liabilities:DeferredRevenue", day).items():
            assert amount <= 0, (day, account, amount)
        for (account, _), amount in _balance(postings, "Assets:UnbilledReceivable", day).items():
            assert amount >= 0, (day, account, amount)
        for (account, _), amount in _balance(postings, "Assets:AccountsReceivable", day).items():
            assert amount >= 0, (day, account, amount)
        for (account, _), amount in _balance(postings, "Liabilities:CustomerCredit", day).items():
            assert amount <= 0, (day, account, amount)

    _check_cancelled_revenue(factory, postings, cancelled)
    with transaction(factory) as session:
        check = check_ledger(session, make_target(config))
    assert (check.differences, check.waiting) == ([], 0)


def _apply(
    session: Any,
    event: Event,
    *,
    day: date,
    deal: Deal,
    ids: tuple[list[int], list[int]],
    cancelled: dict[int, date],
) -> None:
    subscription_id, price_id = ids[0][event.deal], ids[1][event.deal]
    if subscription_id in cancelled:
        return
    effective = max(day + timedelta(days=event.days), deal.start)
    if event.kind == "cancel":
        contracts.cancel_subscription(session, subscription_id, cancel_date=effective)
        cancelled[subscription_id] = effective
    elif event.kind == "amend":
        seats = session.get_one(tables.Price, price_id)
        contracts.amend_subscription(
            session,
            subscription_id,
            effective=effective,
            items=[builders.spec(session, seats, event.value % 7)],
        )
    else:
        invoice = session.scalars(
            select(tables.Document)
            .where(
                tables.Document.subscription_id == subscription_id,
                tables.Document.kind == "invoice",
                tables.Document.status == "open",
            )
            .order_by(tables.Document.id)
        ).first()
        if invoice is not None:
            due = settlement.due_of(invoice)
            amount = (due * event.value / 100).quantize(Decimal(1).scaleb(-_exponent(invoice)))
            if amount > 0:
                settlement.record_payment(
                    session, amount=amount, received_on=day, invoice_number=invoice.number
                )


def _exponent(invoice: tables.Document) -> int:
    return 0 if invoice.currency == "JPY" else 2


def _check_cancelled_revenue(factory: Any, postings: list[Any], cancelled: dict[int, date]) -> None:
    """A subscription whose service ended before the last close: its revenue is what it was
    billed less what it was credited, and none is recognized after the month it ended in."""
    with factory() as session:
        documents = session.execute(
            select(
                tables.Document.number,
                tables.Document.subscription_id,
                tables.Document.kind,
                tables.Document.subtotal,
            ).where(tables.Document.status != "void")
        ).all()
    owner = {row.number: row.subscription_id for row in documents}
    for subscription_id, cancel_date in cancelled.items():
        last_day = cancel_date - timedelta(days=1)
        if month_end(last_day) >= CYCLES[-1]:
            continue
        billed = sum(
            (
                row.subtotal if row.kind == "invoice" else -row.subtotal
                for row in documents
                if row.subscription_id == subscription_id
            ),
            D(0),
        )
        income: dict[date, Decimal] = defaultdict(Decimal)
        for when, account, _, amount, links in postings:  # by the day each belongs to
            if account.startswith("Income:") and any(
                owner.get(link) == subscription_id for link in links
            ):
                income[when] += amount
        assert -sum(income.values(), D(0)) == billed, (subscription_id, income, billed)
        after = {when: amount for when, amount in income.items() if when > month_end(last_day)}
        assert all(amount == 0 for amount in after.values()), (subscription_id, after)
