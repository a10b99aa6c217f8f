"""The push to accounting, end to end: the billing core's documents in a real Beancount ledger.

Customers in USD, GBP, EUR and JPY are billed through January to March 2026 (an upgrade, a
cancellation, a payment and a refund), their revenue is closed at each month end and the whole
is pushed to a ledger in ``tmp_path``. The ledger is then loaded with Beancount's own loader
and its balances are compared with figures worked out by hand.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from beancount import loader
from beancount.core import data
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from connector.accounting import ledger_files as files_module
from connector.accounting.ledger import Ledger
from connector.billing.periods import Frequency
from connector.billing.pricing import ChargeKind
from connector.cli import app
from connector.db import outbox, tables
from connector.db.engine import transaction
from connector.db.types import utc_now
from connector.settings import Settings
from connector.sync import contracts, push_batch, settlement
from connector.sync.billing_run import run_billing
from connector.sync.ledger_check import check_ledger
from connector.sync.push import make_target, push, read_payments
from connector.sync.revenue_close import close_revenue
from tests import builders
from tests.statements import Statements, counting

D = Decimal
ROOT = Path(__file__).resolve().parents[2]
MAPPING = ROOT / "mappings" / "accounting.yaml"


# -- the scenario -------------------------------------------------------------------------------
@dataclass
class Scenario:
    target: Ledger
    us: int  # customer ids
    gb: int
    de: int
    jp: int


def bill_four_currencies(
    factory: sessionmaker[Session], settings: Settings, *, push_at_end: bool = True
) -> Scenario:
    """January to March 2026.

    - US1 (USD, no tax): 10 seats × 10.00 a month from Jan 1; upgraded to 15 seats on Feb 15
      (5 × 10.00 × 14/28 = 25.00 for Feb 15..28); pays INV-000001 (100.00) on Jan 10.
    - GB1 (GBP, 20%): 2 seats × 25.00 a month and a one-time setup of 30.00 on Jan 1; pays
      216.00 on Mar 5 (all three invoices); cancelled from Mar 11, billed on Mar 15: CN-000001
      for Mar 11..31 = 50.00 × 21/31 = 33.87 + 6.77 tax = 40.64, refunded on Mar 20.
    - DE1 (EUR, 19%): a platform at 1200.00 a year from Jan 1 (228.00 tax).
    - JP1 (JPY, 10%): 1 seat × 3000 a month from Jan 15 (300 tax).

    Revenue is closed on Jan 31, Feb 28 and Mar 31; a push runs mid-way (Feb 15) and, unless
    told otherwise, at the end. All writes go through one target, as in one long-running
    process.
    """
    target = make_target(settings)
    assert isinstance(target, Ledger)
    with transaction(factory) as session:
        us = builders.customer(session, "US1", country="US", currency="USD")
        seats_usd = builders.price(session, "SEATS", currency="USD", unit_amount="10.00")
        us_sub = builders.subscription(
            session, us, [builders.spec(session, seats_usd, 10)], start=date(2026, 1, 1)
        ).id
        gb = builders.customer(session, "GB1", country="GB", currency="GBP")
        seats_gbp = builders.price(session, "SEATS", currency="GBP", unit_amount="25.00")
        setup = builders.price(
            session, "SETUP", currency="GBP", unit_amount="30.00", kind=ChargeKind.ONE_TIME
        )
        gb_sub = builders.subscription(
            session,
            gb,
            [
                builders.spec(session, seats_gbp, 2),
                builders.spec(session, setup, 1, service_date=date(2026, 1, 1)),
            ],
            start=date(2026, 1, 1),
        ).id
        de = builders.customer(session, "DE1", country="DE", currency="EUR")
        platform = builders.price(session, "PLATFORM", currency="EUR", unit_amount="1200.00")
        builders.subscription(
            session,
            de,
            [builders.spec(session, platform, 1)],
            start=date(2026, 1, 1),
            frequency=Frequency.ANNUAL,
        )
        jp = builders.customer(session, "JP1", country="JP", currency="JPY")
        seats_jpy = builders.price(session, "SEATS", currency="JPY", unit_amount="3000")
        builders.subscription(
            session, jp, [builders.spec(session, seats_jpy, 1)], start=date(2026, 1, 15)
        )
        ids = (us.id, gb.id, de.id, jp.id)

    run_billing(factory, settings, date(2026, 1, 1))  # INV-000001..3
    with transaction(factory) as session:
        settlement.record_payment(
            session, amount="100.00", received_on=date(2026, 1, 10), invoice_number="INV-000001"
        )
    run_billing(factory, settings, date(2026, 1, 15))  # INV-000004 (JPY)
    close_revenue(factory, date(2026, 1, 31))
    run_billing(factory, settings, date(2026, 2, 1))  # INV-000005 (USD), INV-000006 (GBP)
    with transaction(factory) as session:
        contracts.amend_subscription(
            session,
            us_sub,
            effective=date(2026, 2, 15),
            items=[builders.spec(session, seats_usd, 15)],
        )
    run_billing(factory, settings, date(2026, 2, 15))  # INV-000007 (upgrade), INV-000008 (JPY)
    first = push(factory, settings, target)
    # 8 invoices, 1 payment, 4 January journals.
    assert (first.posted, first.already_there, first.pending, first.parked) == (13, 0, 0, {})
    close_revenue(factory, date(2026, 2, 28))
    run_billing(factory, settings, date(2026, 3, 1))  # INV-000009 (USD), INV-000010 (GBP)
    with transaction(factory) as session:
        settlement.record_payment(
            session, amount="216.00", received_on=date(2026, 3, 5), invoice_number="INV-000010"
        )
    with transaction(factory) as session:
        contracts.cancel_subscription(session, gb_sub, cancel_date=date(2026, 3, 11))
    run_billing(factory, settings, date(2026, 3, 15))  # CN-000001 (GBP), INV-000011 (JPY)
    with transaction(factory) as session:
        settlement.record_refund(
            session, customer_id=gb.id, amount="40.64", refunded_on=date(2026, 3, 20)
        )
    close_revenue(factory, date(2026, 3, 31))
    if push_at_end:
        second = push(factory, settings, target)
        # 3 invoices, 1 credit note, 1 payment, 1 refund, 12 journals of February and March.
        assert (second.posted, second.already_there, second.pending, second.parked) == (
            18,
            0,
            0,
            {},
        )
    return Scenario(target, *ids)


# -- reading the ledger -------------------------------------------------------------------------
def load(path: Path) -> list[Any]:
    entries, errors, _ = loader.load_file(str(path))
    assert [error.message for error in errors] == []
    return entries


def transactions(entries: list[Any]) -> list[data.Transaction]:
    return [entry for entry in entries if isinstance(entry, data.Transaction)]


def balances(entries: list[Any], root: str) -> dict[tuple[str, str], Decimal]:
    """Sum of postings per (account, currency) for the accounts under ``root``."""
    sums: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for entry in transactions(entries):
        for posting in entry.postings:
            if posting.account.startswith(root):
                sums[(posting.account, posting.units.currency)] += posting.units.number
    return dict(sums)


def monthly(entries: list[Any], account: str) -> dict[tuple[str, str], Decimal]:
    """Sum of postings to ``account`` per (month, currency)."""
    sums: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for entry in transactions(entries):
        for posting in entry.postings:
            if posting.account == account:
                month = entry.date.strftime("%Y-%m")
                sums[(month, posting.units.currency)] += posting.units.number
    return dict(sums)


def document_counts(entries: list[Any]) -> Counter[tuple[str, str]]:
    return Counter(
        (entry.meta["document_type"], entry.meta["document_id"])
        for entry in transactions(entries)
        if "document_type" in entry.meta
    )


def queued(factory: sessionmaker[Session]) -> Counter[tuple[str, str]]:
    """Every document the billing core queued for accounting, once each."""
    with factory() as session:
        rows = session.execute(select(tables.Outbox.document_type, tables.Outbox.document_id))
        return Counter((kind, str(doc_id)) for kind, doc_id in rows)


def receivable_accounts(entries: list[Any]) -> dict[int, str]:
    """Customer id → receivable account, from the ledger's open directives."""
    return {
        int(entry.meta["customer_id"]): entry.account
        for entry in entries
        if isinstance(entry, data.Open) and "customer_id" in entry.meta
    }


def ledger_files(path: Path) -> dict[Path, str]:
    return {file: file.read_text() for file in sorted(path.parent.rglob("*.beancount"))}


def core_balance(factory: sessionmaker[Session], customer_id: int) -> tuple[str, Decimal]:
    with factory() as session:
        (balance,) = settlement.balances(session, customer_id)
    return balance.currency, balance.balance


class _AnotherProcess:
    """``os`` as seen by a new process: another pid. Batch files are named after the pid, so
    the next cycle run in this process stands for a new ``connector push``."""

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    @staticmethod
    def getpid() -> int:
        return os.getpid() + 1


def as_another_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(files_module, "os", _AnotherProcess())


def append(path: Path, text: str) -> int:
    """Append ``text`` to the main ledger file as finance would; returns its first line."""
    before = path.read_text()
    path.write_text(before + "\n" + text)
    return before.count("\n") + 2


# -- the tests ----------------------------------------------------------------------------------
def test_push_posts_every_document_once_with_exact_balances(
    factory: sessionmaker[Session], ledger_settings: Settings
) -> None:
    scenario = bill_four_currencies(factory, ledger_settings)
    path = ledger_settings.ledger.path

    entries = load(path)

    # Every document exactly once, and nothing the billing core did not queue.
    counts = document_counts(entries)
    assert set(counts.values()) == {1}
    assert counts == queued(factory)
    assert Counter(kind for kind, _ in counts.elements()) == {
        "invoice": 11,
        "credit_note": 1,
        "payment": 2,
        "refund": 1,
        "revenue": 16,
    }

    # Receivables per customer: the billing core's balance.
    accounts = receivable_accounts(entries)
    assert accounts == {
        scenario.us: f"Assets:AccountsReceivable:Customer-US1-{scenario.us}",
        scenario.gb: f"Assets:AccountsReceivable:Customer-GB1-{scenario.gb}",
        scenario.de: f"Assets:AccountsReceivable:Customer-DE1-{scenario.de}",
        scenario.jp: f"Assets:AccountsReceivable:Customer-JP1-{scenario.jp}",
    }
    receivable = balances(entries, "Assets:AccountsReceivable")
    expected = {
        scenario.us: ("USD", D("275.00")),  # 100 + 100 + 25 + 150 invoiced - 100 paid
        scenario.gb: ("GBP", D("0.00")),  # 96 + 60 + 60 - 40.64 credit - 216 paid + 40.64 refund
        scenario.de: ("EUR", D("1428.00")),
        scenario.jp: ("JPY", D("9900")),  # 3 × 3300
    }
    assert receivable == {
        (accounts[customer], currency): amount for customer, (currency, amount) in expected.items()
    }
    for customer, (currency, amount) in expected.items():
        assert core_balance(factory, customer) == (currency, amount)

    # Deferred revenue, per month and currency: invoices credit it, revenue journals and the
    # credit note debit it. Monthly USD and GBP periods are calendar months: nothing stays.
    assert monthly(entries, "Liabilities:DeferredRevenue") == {
        ("2026-01", "USD"): D("0.00"),
        ("2026-02", "USD"): D("0.00"),
        ("2026-03", "USD"): D("0.00"),
        ("2026-01", "GBP"): D("0.00"),
        ("2026-02", "GBP"): D("0.00"),
        # -50.00 invoiced, +50.00 recognized; INV-000010 had journaled nothing when the credit
        # note was drafted: it puts its 33.87 back in deferred revenue and its journal takes it
        # out again.
        ("2026-03", "GBP"): D("0.00"),
        # 1200.00 × days / 365, rounded: 31 days 101.92; 59 days 193.97; 90 days 295.89.
        ("2026-01", "EUR"): D("-1098.08"),  # -1200.00 + 101.92
        ("2026-02", "EUR"): D("92.05"),
        ("2026-03", "EUR"): D("101.92"),
        # INV-000004 Jan 15..Feb 14 (31 days): -3000 + 3000 × 17 / 31 (1645.16... -> 1645).
        ("2026-01", "JPY"): D("-1355"),
        # -3000 (INV-000008) + 1355 (rest of INV-000004) + 1500 (half of INV-000008's 28 days).
        ("2026-02", "JPY"): D("-145"),
        # -3000 (INV-000011) + 1500 (rest of INV-000008) + 1645 (17 of INV-000011's 31 days).
        ("2026-03", "JPY"): D("145"),
    }
    assert balances(entries, "Liabilities:DeferredRevenue") == {
        ("Liabilities:DeferredRevenue", "USD"): D("0.00"),
        ("Liabilities:DeferredRevenue", "GBP"): D("0.00"),
        ("Liabilities:DeferredRevenue", "EUR"): D("-904.11"),  # 1200.00 - 295.89
        ("Liabilities:DeferredRevenue", "JPY"): D("-1355"),  # INV-000011 from Apr 1 to 14
    }

    # Recognized revenue per month and currency (credits are negative).
    assert monthly(entries, "Income:Subscriptions") == {
        ("2026-01", "USD"): D("-100.00"),
        ("2026-02", "USD"): D("-125.00"),  # 100.00 + the upgrade's 25.00
        ("2026-03", "USD"): D("-150.00"),
        ("2026-01", "GBP"): D("-50.00"),
        ("2026-02", "GBP"): D("-50.00"),
        # 50.00 for March less the 33.87 credited for Mar 11..31, taken back by the credit
        # note's journal on the days INV-000010's journal recognizes them.
        ("2026-03", "GBP"): D("-16.13"),
        ("2026-01", "EUR"): D("-101.92"),
        ("2026-02", "EUR"): D("-92.05"),
        ("2026-03", "EUR"): D("-101.92"),
        ("2026-01", "JPY"): D("-1645"),
        ("2026-02", "JPY"): D("-2855"),  # 1355 + 1500
        ("2026-03", "JPY"): D("-3145"),  # 1500 + 1645
    }
    assert monthly(entries, "Income:OneTime") == {("2026-01", "GBP"): D("-30.00")}

    # Tax payable per jurisdiction, rate and currency.
    assert balances(entries, "Liabilities:SalesTax") == {
        ("Liabilities:SalesTax:GB:20", "GBP"): D("-29.23"),  # 16.00 + 10.00 + 10.00 - 6.77
        ("Liabilities:SalesTax:DE:19", "EUR"): D("-228.00"),
        ("Liabilities:SalesTax:JP:10", "JPY"): D("-900"),
    }
    assert balances(entries, "Assets:Bank") == {
        ("Assets:Bank:USD", "USD"): D("100.00"),
        ("Assets:Bank:GBP", "GBP"): D("175.36"),  # 216.00 - 40.64
    }

    # The credit note, posting by posting, tied to its invoice.
    (note,) = [t for t in transactions(entries) if t.meta["document_type"] == "credit_note"]
    assert (note.date, note.links) == (date(2026, 3, 15), {"CN-000001", "INV-000010"})
    # INV-000010 was paid: the whole credit is the customer's, a liability until refunded.
    assert {p.account: (p.units.number, p.units.currency) for p in note.postings} == {
        f"Liabilities:CustomerCredit:Customer-GB1-{scenario.gb}": (D("-40.64"), "GBP"),
        "Liabilities:DeferredRevenue": (D("33.87"), "GBP"),
        "Liabilities:SalesTax:GB:20": (D("6.77"), "GBP"),
    }
    # Payments and revenue journals carry their invoice's link.
    assert {
        (t.meta["document_type"], t.date) for t in transactions(entries) if "INV-000010" in t.links
    } == {
        ("invoice", date(2026, 3, 1)),
        ("payment", date(2026, 3, 5)),
        ("credit_note", date(2026, 3, 15)),
        ("revenue", date(2026, 3, 31)),
    }
    with transaction(factory) as session:
        check = check_ledger(session, scenario.target)
    assert (check.differences, check.documents, check.customers, check.waiting) == ([], 12, 4, 0)


def test_a_second_push_posts_nothing(
    factory: sessionmaker[Session], ledger_settings: Settings
) -> None:
    scenario = bill_four_currencies(factory, ledger_settings)
    files = ledger_files(ledger_settings.ledger.path)

    again = push(factory, ledger_settings, scenario.target)
    fresh = push(factory, ledger_settings)  # a new process: the ledger read from disk

    assert (
        again.to_dict()
        == fresh.to_dict()
        == {
            "target": "ledger",
            "posted": 0,
            "already_there": 0,
            "pending": 0,
            "parked": {},
            "reposted": [],
            "moved_aside": {},
        }
    )
    assert ledger_files(ledger_settings.ledger.path) == files
    with factory() as session:
        assert outbox.depth(session, "ledger") == {"waiting": 0, "parked": 0}


def test_payments_recorded_in_the_ledger_are_read_back_once(
    factory: sessionmaker[Session], ledger_settings: Settings
) -> None:
    scenario = bill_four_currencies(factory, ledger_settings)
    path = ledger_settings.ledger.path
    accounts = receivable_accounts(load(path))
    before = len(transactions(load(path)))
    append(
        path,
        f'2026-03-25 * "Bank transfer" "JP1 pays INV-000004" ^INV-000004\n'
        f"  Assets:Bank:JPY            3300 JPY\n"
        f"  {accounts[scenario.jp]}   -3300 JPY\n"
        f"\n"
        f'2026-03-26 * "Bank transfer" "DE1 pays part of INV-000003" ^INV-000003\n'
        f"  Assets:Bank:EUR            500.00 EUR\n"
        f"  {accounts[scenario.de]}   -500.00 EUR\n",
    )

    first = read_payments(factory, ledger_settings)
    again = read_payments(factory, ledger_settings)

    nothing = {"refused": {}, "stopped": None, "reconciled": 0}
    assert first.to_dict() == {"recorded": 2, "known": 0, **nothing}
    assert again.to_dict() == {"recorded": 0, "known": 2, **nothing}
    with factory() as session:
        invoices = {
            doc.number: (doc.status, doc.amount_paid, settlement.due_of(doc))
            for doc in session.scalars(
                select(tables.Document).where(
                    tables.Document.number.in_(["INV-000003", "INV-000004"])
                )
            )
        }
        recorded = session.execute(
            select(
                tables.Payment.customer_id,
                tables.Payment.amount,
                tables.Payment.currency,
                tables.Payment.received_on,
            ).where(tables.Payment.reference.like("ledger:%"))
        ).all()
    assert invoices == {
        "INV-000003": ("open", D("500.00"), D("928.00")),  # partly paid: 1428.00 - 500.00
        "INV-000004": ("paid", D("3300"), D("0")),
    }
    assert sorted(tuple(row) for row in recorded) == sorted(
        [
            (scenario.jp, D("3300"), "JPY", date(2026, 3, 25)),
            (scenario.de, D("500.00"), "EUR", date(2026, 3, 26)),
        ]
    )
    assert core_balance(factory, scenario.jp) == ("JPY", D("6600"))
    assert core_balance(factory, scenario.de) == ("EUR", D("928.00"))

    # The payments came from the ledger: they are not posted back to it.
    after = push(factory, ledger_settings, scenario.target)
    assert (after.posted, after.already_there) == (0, 0)
    entries = load(path)
    assert len(transactions(entries)) == before + 2
    paying = [
        t for t in transactions(entries) if any(p.account == "Assets:Bank:JPY" for p in t.postings)
    ]
    assert [(t.date, t.links, "document_type" in t.meta) for t in paying] == [
        (date(2026, 3, 25), {"INV-000004"}, False)
    ]
    receivable = balances(entries, "Assets:AccountsReceivable")
    assert receivable[(accounts[scenario.jp], "JPY")] == D("6600")
    assert receivable[(accounts[scenario.de], "EUR")] == D("928.00")
    with transaction(factory) as session:
        assert check_ledger(session, scenario.target).differences == []


def test_hand_payments_for_unknown_invoices_or_in_another_currency_are_refused(
    factory: sessionmaker[Session], ledger_settings: Settings
) -> None:
    scenario = bill_four_currencies(factory, ledger_settings)
    path = ledger_settings.ledger.path
    accounts = receivable_accounts(load(path))
    unknown = append(
        path,
        f'2026-03-25 * "Bank transfer" "a typo in the invoice number" ^INV-009999\n'
        f"  Assets:Bank:USD            100.00 USD\n"
        f"  {accounts[scenario.us]}   -100.00 USD\n",
    )
    wrong_currency = append(
        path,
        f'2026-03-26 * "Bank transfer" "paid in euros" ^INV-000005\n'
        f"  Assets:Bank:EUR            100.00 EUR\n"
        f"  {accounts[scenario.us]}   -100.00 EUR\n",
    )
    with factory() as session:
        payments = session.scalar(select(func.count()).select_from(tables.Payment))

    result = read_payments(factory, ledger_settings)

    assert result.to_dict() == {
        "recorded": 0,
        "known": 0,
        "refused": {
            f"{path}:{unknown}": "no invoice INV-009999",
            f"{path}:{wrong_currency}": "paid in EUR, but INV-000005 is in USD",
        },
        "stopped": None,
        "reconciled": 0,
    }
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(tables.Payment)) == payments
        invoice = session.scalars(
            select(tables.Document).where(tables.Document.number == "INV-000005")
        ).one()
        assert (invoice.status, invoice.amount_paid) == ("open", D("0"))


def test_a_crash_between_the_write_and_its_record_ends_with_each_document_once(
    factory: sessionmaker[Session], ledger_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario = bill_four_currencies(factory, ledger_settings, push_at_end=False)
    path = ledger_settings.ledger.path
    with transaction(factory) as session:
        rows = push_batch.read_rows(session, "ledger", 1000)
        loader_ = push_batch.Loader(session, rows)
        documents = [loader_.document(row) for row in rows]
    assert len(documents) == 18
    # The writer posts the first ten and dies before recording anything.
    written = scenario.target.post(documents[:10])
    assert all(result.ok for result in written)
    as_another_process(monkeypatch)

    result = push(factory, ledger_settings)  # the next cycle

    assert (result.posted, result.already_there, result.pending) == (8, 10, 0)
    counts = document_counts(load(path))
    assert set(counts.values()) == {1}
    assert counts == queued(factory)
    with factory() as session:
        assert outbox.depth(session, "ledger") == {"waiting": 0, "parked": 0}
        states = Counter(session.scalars(select(tables.Delivery.state)))
    assert states == {"done": 31}
    again = push(factory, ledger_settings)
    assert (again.posted, again.already_there) == (0, 0)


def test_a_batch_cut_short_by_a_crash_is_written_again_whole(
    factory: sessionmaker[Session], ledger_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    bill_four_currencies(factory, ledger_settings, push_at_end=False)
    path = ledger_settings.ledger.path
    folder = path.parent / "ledger.d" / "2026-03"
    folder.mkdir(parents=True)
    # The writer died while writing its temporary file: half a transaction, never renamed.
    stale = folder / ".20260331T235959-1-000001.beancount.tmp"
    stale.write_text(
        '2026-03-01 * "Customer US1" "Invoice INV-000009" ^INV-000009\n'
        '  document_type: "invoice"\n  document_id: "9"\n  Assets:Acc'
    )
    as_another_process(monkeypatch)

    result = push(factory, ledger_settings)

    assert (result.posted, result.already_there) == (18, 0)
    assert not stale.exists()
    counts = document_counts(load(path))
    assert set(counts.values()) == {1}
    assert counts == queued(factory)


def test_pushes_in_the_same_second_keep_every_document(
    factory: sessionmaker[Session], ledger_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two pushes of one process within one second (a scheduler's cycle, a retry, a test):
    each makes its own target; the batch files they write must not replace each other."""
    now = time.time_ns()
    monkeypatch.setattr(files_module, "time", SimpleNamespace(time_ns=lambda: now))
    builders.simple_subscription(factory, start=date(2026, 1, 1))
    run_billing(factory, ledger_settings, date(2026, 1, 1))
    first = push(factory, ledger_settings)
    run_billing(factory, ledger_settings, date(2026, 2, 1))

    second = push(factory, ledger_settings)

    assert (first.posted, second.posted) == (1, 1)
    entries = load(ledger_settings.ledger.path)
    assert document_counts(entries) == {("invoice", "1"): 1, ("invoice", "2"): 1}
    assert balances(entries, "Assets:AccountsReceivable") == {
        ("Assets:AccountsReceivable:Customer-C1-1", "USD"): D("200.00")
    }


def test_overlapping_pushes_post_each_document_once(
    factory: sessionmaker[Session], ledger_settings: Settings, database_url: str
) -> None:
    """``connector push`` from cron while another push is still writing."""
    builders.simple_subscription(factory, start=date(2026, 1, 1))
    run_billing(factory, ledger_settings, date(2026, 1, 1))
    path = ledger_settings.ledger.path
    target = make_target(ledger_settings)
    assert isinstance(target, Ledger)
    post = target.post
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")},
        "CONNECTOR_DATABASE_URL": database_url,
        "CONNECTOR_LEDGER__PATH": str(path),
        "CONNECTOR_ACCOUNTING__MAPPING_FILE": str(MAPPING),
    }

    def post_while_another_push_runs(documents, retried):  # type: ignore[no-untyped-def]
        other = subprocess.run(
            [sys.executable, "-m", "connector", "push", "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert other.returncode == 0, other.stderr
        return post(documents, retried)

    target.post = post_while_another_push_runs  # type: ignore[method-assign]

    push(factory, ledger_settings, target)

    entries, errors, _ = loader.load_file(str(path))
    assert [error.message for error in errors] == []
    assert document_counts(entries) == {("invoice", "1"): 1}


def test_a_void_invoice_leaves_the_receivable_equal_to_the_billing_core(
    factory: sessionmaker[Session], ledger_settings: Settings
) -> None:
    builders.simple_subscription(factory, start=date(2026, 1, 1))
    run_billing(factory, ledger_settings, date(2026, 1, 1))
    with transaction(factory) as session:
        contracts.void_invoice(session, "INV-000001", "wrong quantity")
    run_billing(factory, ledger_settings, date(2026, 1, 2))  # INV-000002 bills January again
    target = make_target(ledger_settings)
    assert isinstance(target, Ledger)

    push(factory, ledger_settings, target)

    assert core_balance(factory, 1) == ("USD", D("100.00"))
    entries = load(ledger_settings.ledger.path)
    assert balances(entries, "Assets:AccountsReceivable") == {
        ("Assets:AccountsReceivable:Customer-C1-1", "USD"): D("100.00")
    }
    with transaction(factory) as session:
        assert check_ledger(session, target).differences == []


def test_revenue_of_an_invoice_voided_after_a_close_is_taken_back(
    factory: sessionmaker[Session], ledger_settings: Settings
) -> None:
    builders.simple_subscription(factory, start=date(2026, 1, 1))
    run_billing(factory, ledger_settings, date(2026, 1, 1))
    close_revenue(factory, date(2026, 1, 10))  # INV-000001: 10 days, 32.20
    with transaction(factory) as session:
        contracts.void_invoice(session, "INV-000001", "wrong quantity")
    run_billing(factory, ledger_settings, date(2026, 1, 10))  # INV-000002 bills January again
    close_revenue(factory, date(2026, 1, 31))
    target = make_target(ledger_settings)

    push(factory, ledger_settings, target)

    # The void reverses INV-000001 whole: its receivable, and the 32.20 already recognized
    # (from revenue) with the 67.80 still deferred; January's revenue is INV-000002's 100.00.
    entries = load(ledger_settings.ledger.path)
    assert balances(entries, "Income") == {("Income:Subscriptions", "USD"): D("-100.00")}
    assert balances(entries, "Liabilities:DeferredRevenue") == {
        ("Liabilities:DeferredRevenue", "USD"): D("0.00")
    }
    assert balances(entries, "Assets:AccountsReceivable") == {
        ("Assets:AccountsReceivable:Customer-C1-1", "USD"): D("100.00")
    }
    with transaction(factory) as session:
        assert check_ledger(session, target).differences == []


def test_cli_close_record_and_push(
    factory: sessionmaker[Session],
    ledger_settings: Settings,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    for name in list(os.environ):
        if name.startswith("CONNECTOR_") and name != "CONNECTOR_TEST_POSTGRES_URL":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    env = {
        "CONNECTOR_DATABASE_URL": database_url,
        "CONNECTOR_LEDGER__PATH": str(ledger_settings.ledger.path),
        "CONNECTOR_ACCOUNTING__MAPPING_FILE": str(MAPPING),
        "CONNECTOR_TAX__RATES": '{"GB": "20"}',
    }
    builders.simple_subscription(factory, start=date(2026, 1, 1), currency="GBP", country="GB")
    runner = CliRunner()

    def invoke(*args: str):  # type: ignore[no-untyped-def]
        result = runner.invoke(app, list(args), env=env)
        assert result.exit_code == 0, result.output
        return result

    invoke("bill", "--as-of", "2026-01-01")
    closed = invoke("revenue", "close", "--as-of", "2026-01-20", "--json")
    paid = invoke("payment", "record", "INV-000001", "50.00", "--date", "2026-01-10")
    pushed = invoke("push", "--json")

    assert (closed.stdout.replace(" ", "").replace("\n", "")) == (
        '{"as_of":"2026-01-20","documents":1,"journals":1}'
    )
    assert paid.stdout.strip() == "INV-000001: paid 50.00 GBP, due 70.00 GBP, open"
    assert '"posted": 3' in pushed.stdout
    entries = load(ledger_settings.ledger.path)
    assert sorted(document_counts(entries)) == [
        ("invoice", "1"),
        ("payment", "1"),
        ("revenue", "1"),
    ]
    # 100.00 × 20 / 31 = 64.516... recognized; 120.00 invoiced (20% tax), 50.00 paid.
    assert monthly(entries, "Income:Subscriptions") == {("2026-01", "GBP"): D("-64.52")}
    assert balances(entries, "Assets:AccountsReceivable") == {
        ("Assets:AccountsReceivable:Customer-C1-1", "GBP"): D("70.00")
    }


def test_customer_names_that_are_no_account_names_still_make_a_valid_ledger(
    factory: sessionmaker[Session], ledger_settings: Settings
) -> None:
    names = ["3M Company", "émile & fils", "株式会社テスト", 'Acme "Best" \\ Co']
    with transaction(factory) as session:
        seats = builders.price(session, "SEATS", unit_amount="10.00")
        for n, name in enumerate(names, 1):
            buyer = contracts.upsert_customer(
                session, name=name, country="US", currency="USD", system="test", external_id=f"X{n}"
            )
            builders.subscription(
                session, buyer, [builders.spec(session, seats, n)], start=date(2026, 1, 1)
            )
    run_billing(factory, ledger_settings, date(2026, 1, 1))

    push(factory, ledger_settings, make_target(ledger_settings))

    entries = load(ledger_settings.ledger.path)
    accounts = {
        1: "Assets:AccountsReceivable:3M-Company-1",
        2: "Assets:AccountsReceivable:Emile-fils-2",
        3: "Assets:AccountsReceivable:Customer-3",  # nothing ASCII in the name
        4: "Assets:AccountsReceivable:Acme-Best-Co-4",
    }
    assert receivable_accounts(entries) == accounts
    assert balances(entries, "Assets:AccountsReceivable") == {
        (account, "USD"): D(10 * n) for n, account in accounts.items()
    }
    assert sorted(t.payee for t in transactions(entries)) == sorted(names)


# -- statements ---------------------------------------------------------------------------------
BATCH_READ = "SELECT outbox.id, outbox.document_type, outbox.document_id"


def per_batch(seen: Statements) -> list[list[str]]:
    """The statements sent from each batch's read of the outbox to the next one's (the last:
    the read that found nothing left)."""
    starts = [n for n, sql in enumerate(seen.sql) if BATCH_READ in sql]
    return [seen.sql[a:b] for a, b in zip(starts, [*starts[1:], len(seen.sql)], strict=True)]


def test_a_push_costs_a_handful_of_statements_per_batch(
    factory: sessionmaker[Session],
    ledger_settings: Settings,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Seven customers billed on Jan 1 and Feb 1, their revenue closed at each month end: 28
    documents pushed five at a time. A batch reads its outbox rows (with their journals and
    the closing in force), its documents (with customers and taxes) and, for invoices, their
    lines (with products); it marks them sent and in flight, then records the answers, one
    statement each, whatever the number of documents in it."""
    for n in range(7):
        builders.simple_subscription(factory, start=date(2026, 1, 1), ref=f"C{n}")
    run_billing(factory, ledger_settings, date(2026, 1, 1))
    close_revenue(factory, date(2026, 1, 31))
    run_billing(factory, ledger_settings, date(2026, 2, 1))
    close_revenue(factory, date(2026, 2, 28))
    target = make_target(ledger_settings)
    target.max_batch = 5
    monkeypatch.setattr(outbox, "FLOOR_LAG", timedelta(0))  # PostgreSQL: as old as it need be

    with counting(engine) as seen:
        result = push(factory, ledger_settings, target)

    assert (result.posted, result.pending, result.parked) == (28, 0, {})
    batches = per_batch(seen)
    assert [sum(BATCH_READ in sql for sql in batch) for batch in batches] == [1] * 7
    sizes = [len(batch) for batch in batches[:-1]]
    assert max(sizes) <= 10, sizes
    # Nothing left: the read, the target's floor raised to the last row, then the ledger's
    # files noted as holding all that was delivered. (SQLite's BEGIN IMMEDIATE is a
    # statement; PostgreSQL's driver begins on its own.)
    last = [sql for sql in batches[-1] if not sql.startswith("BEGIN")]
    assert [sql.split()[0] for sql in last] == [
        "SELECT",
        "SELECT",
        "SELECT",
        "INSERT",
        "SELECT",
        "DELETE",
        "INSERT",
    ]
    assert "outbox_floors" in last[1] and "outbox_floors" in last[3]
    assert all("sync_cursors" in sql for sql in last[4:])
    verbs = seen.by_verb()
    # Sent and in flight (two upserts), then the answers (an upsert) and in flight no more.
    assert (verbs["INSERT"], verbs["DELETE"], verbs["UPDATE"]) == (3 * 6 + 2, 6 + 1, 0)
    assert queued(factory) == document_counts(load(ledger_settings.ledger.path))


def test_a_batch_of_every_kind_of_document_costs_a_bounded_number_of_statements(
    factory: sessionmaker[Session], ledger_settings: Settings, engine: Engine
) -> None:
    """Invoices, a credit note, payments, a refund and journals in batches of four: what a
    kind of document needs beyond its row, its document and lines is read once per batch."""
    bill_four_currencies(factory, ledger_settings, push_at_end=False)
    target = make_target(ledger_settings)
    target.max_batch = 4

    with counting(engine) as seen:
        result = push(factory, ledger_settings, target)

    assert (result.posted, result.pending, result.parked) == (18, 0, {})
    sizes = [len(batch) for batch in per_batch(seen)]
    assert len(sizes) == 6, sizes  # 18 documents in 5 batches, and the read that ends it
    # The batch of the credit note, its refund and a payment: two reads more (the schedule of
    # the credit note's line; the allocations of the credit note and of the refund); and with
    # the answers, one read of the deals whose documents were refused (the write-back's queue).
    assert max(sizes) <= 12, sizes


def test_rows_a_target_has_received_are_not_read_again(
    factory: sessionmaker[Session],
    ledger_settings: Settings,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Once a push found nothing left, the target's floor stands at the last row it holds: the
    next push reads only above it (nothing, when nothing was made since). A delivery put back
    to pending below the floor is still found and tried again."""
    for n in range(3):
        builders.simple_subscription(factory, start=date(2026, 1, 1), ref=f"C{n}")
    run_billing(factory, ledger_settings, date(2026, 1, 1))
    target = make_target(ledger_settings)
    monkeypatch.setattr(outbox, "FLOOR_LAG", timedelta(0))
    assert push(factory, ledger_settings, target).posted == 3
    with factory() as session:
        last = session.scalar(select(func.max(tables.Outbox.id)))
        assert outbox.received_through(session, target.name) == last

    with counting(engine) as seen:
        assert push(factory, ledger_settings, target).posted == 0
    reads = [sql for sql in seen.sql if BATCH_READ in sql]
    assert len(reads) == 1

    with transaction(factory) as session:
        first = session.scalar(select(func.min(tables.Outbox.id)))
        session.execute(
            update(tables.Delivery)
            .where(tables.Delivery.outbox_id == first)
            .values(state=outbox.PENDING)
        )
        assert outbox.received_through(session, target.name) == first - 1
    again = push(factory, ledger_settings, target)
    assert (again.posted, again.already_there) == (0, 1)  # read again; the ledger holds it
    with factory() as session:
        assert outbox.received_through(session, target.name) == last


def test_on_postgresql_the_floor_stays_below_the_rows_of_the_last_hour(
    factory: sessionmaker[Session], ledger_settings: Settings, engine: Engine
) -> None:
    """PostgreSQL draws an id before its transaction commits, so a row may appear below ids
    already read: the floor rises only over rows an hour old. SQLite's writers take turns."""
    builders.simple_subscription(factory, start=date(2026, 1, 1))
    run_billing(factory, ledger_settings, date(2026, 1, 1))
    target = make_target(ledger_settings)
    assert push(factory, ledger_settings, target).posted == 1
    postgresql = engine.dialect.name == "postgresql"
    with transaction(factory) as session:
        last = session.scalar(select(func.max(tables.Outbox.id)))
        assert outbox.received_through(session, target.name) == (0 if postgresql else last)
        session.execute(update(tables.Outbox).values(created_at=utc_now() - timedelta(hours=2)))
    push(factory, ledger_settings, target)
    with factory() as session:
        assert outbox.received_through(session, target.name) == last
