"""Kill ``connector push`` (SIGKILL) while it writes to Xero, run it again, and compare Xero with
the billing core: every document exactly once, nothing lost, amounts to the cent.

The push runs as ``python -m connector push`` in a subprocess; the fake Xero runs in the test
process, so it outlives the kill. A ``slow`` fault holds one chosen write at the fake: once the
fault has fired, the write is in flight and the push is killed; the fake then applies the write
all the same. That is the window exactly-once is about: Xero holds the documents, the outbox
only knows they were sent (``begin_attempt``), and the next push must find them instead of
sending them again.

The scenario is long enough for two batches (the target takes 500 outbox rows at a time):
100 customers in USD (tax 0%, 20%, 19% or 10% by country), billed monthly from January to
March 2026, half of them paying, two cancellations (a credit note on a paid invoice, refunded,
and one applied to its unpaid invoice), revenue closed for January and February. 603 rows:
batch 1 is everything up to the first 44 March invoices, batch 2 the other 54 March invoices
and the 49 March payments (on invoices batch 1 delivered).

Pushes killed again and again are killed at counts of invoices Xero holds (the fake is in the
test process, so the test reads them itself): each kill waits for a count drawn at random
strictly between the count the push started from and all 298, so it lands while the push posts
invoices, after some and before the last.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connector.db import tables
from connector.db.engine import transaction
from connector.settings import Settings
from connector.sync import contracts, settlement
from connector.sync.billing_run import run_billing
from connector.sync.revenue_close import close_revenue
from sandbox.xero.server import XeroSandbox
from tests import builders
from tests.accounting.xero.test_xero_faults import deliveries, depth
from tests.conftest import xero_mapping, xero_overrides
from tests.kills import Progress, empty, kill_repeatedly

pytestmark = pytest.mark.xero(minute_limit=10_000)  # several pushes a minute: not the point

D = Decimal
CUSTOMERS = 100
COUNTRIES = ("US", "GB", "DE", "JP")  # 0%, 20%, 19%, 10%
ROWS = 603
BATCH = 500
INVOICES = 298
PUSH_KILLS = 4
STALL = 0.5  # seconds a held write waits at the fake before it is applied


# -- the scenario -------------------------------------------------------------------------------
def _pay_in_full(session: Session, number: str, on: date) -> None:
    invoice = session.scalars(select(tables.Document).where(tables.Document.number == number)).one()
    settlement.record_payment(session, amount=invoice.total, received_on=on, invoice_number=number)


def bill_a_hundred_customers(factory: sessionmaker[Session], settings: Settings) -> None:
    """Customer n (0..99) has n % 5 + 1 seats at 10.00 a month; even customers pay."""
    subscriptions = []
    with transaction(factory) as session:
        seats = builders.price(session, "SEATS", unit_amount="10.00")
        for n in range(CUSTOMERS):
            customer = builders.customer(session, f"C{n:03d}", country=COUNTRIES[n % 4])
            subscriptions.append(
                builders.subscription(
                    session,
                    customer,
                    [builders.spec(session, seats, n % 5 + 1)],
                    start=date(2026, 1, 1),
                ).id
            )
    run_billing(factory, settings, date(2026, 1, 1))  # INV-000001..100
    close_revenue(factory, date(2026, 1, 31))  # 100 journals
    run_billing(factory, settings, date(2026, 2, 1))  # INV-000101..200
    with transaction(factory) as session:
        for n in range(0, CUSTOMERS, 2):  # 50 payments of January's invoices
            _pay_in_full(session, f"INV-{n + 1:06d}", date(2026, 2, 5))
        _pay_in_full(session, "INV-000105", date(2026, 2, 10))  # C004 pays February too
        for n in (4, 5):  # C004: US, 5 seats, paid; C005: GB, 1 seat, unpaid
            contracts.cancel_subscription(session, subscriptions[n], cancel_date=date(2026, 2, 15))
    # CN-000001: 25.00 for C004 (customer credit); CN-000002: 5.00 + 1.00 tax for C005,
    # applied to INV-000106.
    run_billing(factory, settings, date(2026, 2, 15))
    with transaction(factory) as session:
        credited = session.scalars(
            select(tables.Document.customer_id).where(tables.Document.number == "CN-000001")
        ).one()
        settlement.record_refund(
            session, customer_id=credited, amount="25.00", refunded_on=date(2026, 2, 20)
        )
    close_revenue(factory, date(2026, 2, 28))  # 102 journals
    run_billing(factory, settings, date(2026, 3, 1))  # INV-000201..298
    with transaction(factory) as session:
        for n in range(0, CUSTOMERS, 2):  # 49 payments of February's invoices
            if n != 4:
                _pay_in_full(session, f"INV-{n + 101:06d}", date(2026, 3, 5))


# -- running connector push ---------------------------------------------------------------------
@dataclass
class Push:
    command: list[str]
    env: dict[str, str]
    cwd: Path
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.cwd / "push.log"

    def kill_when(self, ready: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
        """Start a push and SIGKILL it as soon as ``ready()``."""
        with self.log.open("w") as log:
            process = subprocess.Popen(
                self.command,
                env=self.env,
                cwd=self.cwd,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
            deadline = time.monotonic() + timeout
            while not ready():
                if process.poll() is not None:
                    pytest.fail(
                        f"the push ended (exit {process.returncode}) before {what}:\n"
                        + self.log.read_text()
                    )
                if time.monotonic() > deadline:
                    process.kill()
                    process.wait()
                    pytest.fail(f"no {what} after {timeout} s:\n" + self.log.read_text())
                time.sleep(0.002)
            process.send_signal(signal.SIGKILL)
            assert process.wait() == -signal.SIGKILL

    def start(self) -> subprocess.Popen[bytes]:
        """Start a push (its errors readable once it has ended)."""
        return subprocess.Popen(
            self.command,
            env=self.env,
            cwd=self.cwd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def complete(self) -> dict[str, Any]:
        """Run a push to its end; its JSON report."""
        finished = subprocess.run(
            self.command,
            env=self.env,
            cwd=self.cwd,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert finished.returncode == 0, finished.stdout + finished.stderr
        report: dict[str, Any] = json.loads(finished.stdout)
        return report


def connector_push(database_url: str, tmp_path: Path, xero: XeroSandbox) -> Push:
    env = {name: value for name, value in os.environ.items() if not name.startswith("CONNECTOR_")}
    env |= {
        "CONNECTOR_DATABASE_URL": database_url,
        "CONNECTOR_ACCOUNTING__TARGET": "xero",
        "CONNECTOR_ACCOUNTING__MAPPING_FILE": str(xero_mapping(tmp_path)),
        "CONNECTOR_LEDGER__PATH": str(tmp_path / "ledger.beancount"),
    }
    env |= {
        f"CONNECTOR_XERO__{key.upper()}": str(value) for key, value in xero_overrides(xero).items()
    }
    return Push([sys.executable, "-m", "connector", "push", "--json"], env, tmp_path)


def wait_until_idle(xero: XeroSandbox, timeout: float = 10.0) -> None:
    """Until the fake has applied (and answered, to no one) every write in flight."""
    deadline = time.monotonic() + timeout
    while xero.limits.in_flight():
        assert time.monotonic() < deadline, "a write is still in flight at the fake"
        time.sleep(0.01)


def fired(xero: XeroSandbox) -> Callable[[], bool]:
    """True once every fault rule has fired (a held write is in flight)."""
    return lambda: not xero.faults.rules()


# -- comparing Xero with the billing core -------------------------------------------------------
def assert_xero_equals_the_billing_core(factory: sessionmaker[Session], xero: XeroSandbox) -> None:
    store = xero.store
    with factory() as session:
        documents = session.scalars(select(tables.Document)).all()
        allocations = session.scalars(select(tables.Allocation)).all()
        payments = session.scalars(select(tables.Payment)).all()
        journals = session.scalars(select(tables.RevenueJournal)).all()
        customers = session.scalars(select(tables.Customer.id)).all()

    # Each document exactly once.
    contacts = Counter(c["ContactNumber"] for c in store.contacts.values())
    assert contacts == Counter(f"CUST-{customer}" for customer in customers)
    invoices = Counter(i["InvoiceNumber"] for i in store.invoices.values())
    assert invoices == Counter(d.number for d in documents if d.kind == "invoice")
    notes = Counter(n["CreditNoteNumber"] for n in store.credit_notes.values())
    assert notes == Counter(d.number for d in documents if d.kind == "credit_note")
    references = Counter(str(p.get("Reference")) for p in store.payments.values())
    assert references == Counter(
        f"{'REFUND' if p.kind == 'refund' else 'PAY'}-{p.id}" for p in payments
    )
    narrations = Counter(j["Narration"] for j in store.manual_journals.values())
    assert set(narrations.values()) == {1}

    # The same amounts, to the cent.
    applied: dict[int, Decimal] = {}
    for allocation in allocations:
        if allocation.credit_note_id is not None:
            key = allocation.credit_note_id
            applied[key] = applied.get(key, D(0)) + allocation.amount
    assert {
        i["InvoiceNumber"]: (i["Contact"]["ContactNumber"], i["Total"], i["AmountDue"])
        for i in store.invoices.values()
    } == {
        d.number: (f"CUST-{d.customer_id}", d.total, settlement.due_of(d))
        for d in documents
        if d.kind == "invoice"
    }
    assert {
        n["CreditNoteNumber"]: (n["Total"], n["RemainingCredit"])
        for n in store.credit_notes.values()
    } == {
        d.number: (d.total, d.total - applied.get(d.id, D(0)))
        for d in documents
        if d.kind == "credit_note"
    }
    assert {str(p["Reference"]): p["Amount"] for p in store.payments.values()} == {
        f"{'REFUND' if p.kind == 'refund' else 'PAY'}-{p.id}": p.amount for p in payments
    }
    # Manual journals move the revenue the billing core journaled from 835 to 200.
    lines: dict[str, Decimal] = {}
    for journal in store.manual_journals.values():
        for line in journal["JournalLines"]:
            lines[line["AccountCode"]] = lines.get(line["AccountCode"], D(0)) + line["LineAmount"]
    recognized = sum((D(a) for j in journals for a in j.amounts.values()), D(0))
    assert lines == {"200": -recognized, "835": recognized}

    # Nothing lost: every outbox row delivered.
    assert deliveries(factory) == {"done": ROWS}
    assert depth(factory) == {"waiting": 0, "parked": 0}


def recover_and_check(push: Push, factory: sessionmaker[Session], xero: XeroSandbox) -> None:
    report = push.complete()
    assert report["push"]["pending"] == 0
    assert report["push"]["parked"] == {}
    assert_xero_equals_the_billing_core(factory, xero)
    again = push.complete()  # and the push after that has nothing to do
    assert (again["push"]["posted"], again["push"]["pending"]) == (0, 0)


# -- the tests ----------------------------------------------------------------------------------
def _remaining_credit(xero: XeroSandbox, number: str) -> Decimal:
    [note] = [n for n in xero.store.credit_notes.values() if n["CreditNoteNumber"] == number]
    remaining: Decimal = note["RemainingCredit"]
    return remaining


@dataclass(frozen=True)
class Stall:
    """Hold the ``count``-th write to ``path`` at the fake; kill the push while it waits.
    ``holds`` reads what Xero holds once the held write was applied."""

    path: str
    count: int
    holds: Callable[[XeroSandbox], Any]
    expected: Any


STALLS = {
    # the first 50 contacts (a crash leaves them "sending": looked up by ContactNumber)
    "contacts": Stall("Contacts", 1, lambda x: len(x.store.contacts), 50),
    # INV-000001..50 (looked up by Reference)
    "invoices": Stall("Invoices", 1, lambda x: len(x.store.invoices), 50),
    # both credit notes, CN-000002 not applied yet (the next push finds it whole: applies it)
    "credit-notes": Stall("CreditNotes", 1, lambda x: _remaining_credit(x, "CN-000002"), D("6.00")),
    # the allocation of CN-000002 (found used up: not applied twice)
    "allocation": Stall("CreditNotes", 2, lambda x: _remaining_credit(x, "CN-000002"), D("0.00")),
    # the first 50 payments (looked up by Reference)
    "payments": Stall("Payments", 1, lambda x: len(x.store.payments), 50),
    # January's and February's manual journals (found by the narration noted before the write)
    "manual-journals": Stall("ManualJournals", 1, lambda x: len(x.store.manual_journals), 2),
}


@pytest.mark.parametrize("stall", list(STALLS.values()), ids=list(STALLS))
def test_killed_while_xero_applies_a_write_then_the_next_push_completes_exactly_once(  # noqa: PLR0917 - fixtures
    factory: sessionmaker[Session],
    xero_settings: Settings,
    database_url: str,
    tmp_path: Path,
    xero_sandbox: XeroSandbox,
    stall: Stall,
) -> None:
    bill_a_hundred_customers(factory, xero_settings)
    push = connector_push(database_url, tmp_path, xero_sandbox)
    xero_sandbox.faults.add(
        {"kind": "slow", "delay": STALL, "count": stall.count, "method": "PUT", "path": stall.path}
    )

    push.kill_when(fired(xero_sandbox), f"the held PUT {stall.path}")
    wait_until_idle(xero_sandbox)

    # Xero applied the write; the outbox knows only that batch 1 was sent.
    assert stall.holds(xero_sandbox) == stall.expected
    assert deliveries(factory) == {"pending": BATCH}
    recover_and_check(push, factory, xero_sandbox)


def test_killed_between_batches_then_the_next_push_completes_exactly_once(
    factory: sessionmaker[Session],
    xero_settings: Settings,
    database_url: str,
    tmp_path: Path,
    xero_sandbox: XeroSandbox,
) -> None:
    bill_a_hundred_customers(factory, xero_settings)
    push = connector_push(database_url, tmp_path, xero_sandbox)
    # Batch 1's last write (its manual journals) is held a moment, long enough to hold batch
    # 2's first write (its first PUT Invoices) too; the push is killed while that one waits.
    xero_sandbox.faults.add(
        {"kind": "slow", "delay": 0.3, "count": 1, "method": "PUT", "path": "ManualJournals"}
    )
    stage: list[str] = []

    def second_batch_writing() -> bool:
        if not stage and not xero_sandbox.faults.rules():
            xero_sandbox.faults.add(
                {"kind": "slow", "delay": STALL, "count": 1, "method": "PUT", "path": "Invoices"}
            )
            stage.append("batch 2 held")
            return False
        return bool(stage) and not xero_sandbox.faults.rules()

    push.kill_when(second_batch_writing, "batch 2's first PUT Invoices")
    wait_until_idle(xero_sandbox)

    assert deliveries(factory) == {"done": BATCH, "pending": ROWS - BATCH}
    assert len(xero_sandbox.store.invoices) == 244 + 50  # batch 1's and 50 of batch 2's
    recover_and_check(push, factory, xero_sandbox)


def test_pushes_killed_while_posting_invoices_end_with_each_document_once(
    factory: sessionmaker[Session],
    xero_settings: Settings,
    database_url: str,
    tmp_path: Path,
    xero_sandbox: XeroSandbox,
) -> None:
    """Four pushes, each killed at a count of invoices in Xero drawn at random (seeded), each
    next push resuming what the last one left; then a push completes. Should a push post every
    invoice before its kill lands, the scenario is set up again on a fresh organisation."""
    fakes: list[XeroSandbox] = []
    with ExitStack() as stack:

        def set_up() -> None:
            fake = stack.enter_context(XeroSandbox(xero_sandbox.config)) if fakes else xero_sandbox
            fakes.append(fake)
            empty(database_url)
            bill_a_hundred_customers(factory, xero_settings)  # billing does not call Xero

        kills = kill_repeatedly(
            lambda: connector_push(database_url, tmp_path, fakes[-1]).start(),
            Progress(
                lambda: len(fakes[-1].store.invoices),
                total=INVOICES,
                settle=lambda: wait_until_idle(fakes[-1]),
            ),
            set_up,
            kills=PUSH_KILLS,
            attempts=2 * PUSH_KILLS,  # a kill that does not land mid-run is tried again
            rng=random.Random(20260301),
        )

        # Every kill landed while invoices were being posted: Xero held some, not all.
        assert len(kills) == PUSH_KILLS
        for kill in kills:
            assert 0 <= kill.start < kill.before <= kill.after < INVOICES, kill
        recover_and_check(connector_push(database_url, tmp_path, fakes[-1]), factory, fakes[-1])
