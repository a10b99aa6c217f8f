"""Documents built by hand for the accounting tests, and helpers to read a ledger back.

The scenario: three customers billed in USD, EUR and JPY in January 2026, paid in part, a credit
note with its refund in February, and the monthly revenue journals of January and February.
Its balances are worked out by hand in ``test_ledger.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from beancount.core import data

from connector.accounting import ledger_files, ledger_index
from connector.accounting.base import (
    CREDIT_NOTE,
    INVOICE,
    PAYMENT,
    REFUND,
    REVENUE,
    Customer,
    Document,
    Invoice,
    Line,
    Payment,
    RevenueAmount,
    RevenueJournal,
    Tax,
    document_key,
)
from connector.accounting.chart import Chart

D = Decimal

CHART = Chart(
    revenue_by_product={"SETUP": "Income:Setup"},
    revenue_by_family={"Services": "Income:Services"},
)

ALICE = Customer(1, "Alice Inc.", "US", "USD")
MULLER = Customer(2, "Bäckerei Müller GmbH", "DE", "EUR", tax_id="DE123456789")
TANAKA = Customer(3, "株式会社 Tanaka", "JP", "JPY")

ALICE_AR = "Assets:AccountsReceivable:Alice-Inc-1"
MULLER_AR = "Assets:AccountsReceivable:Backerei-Muller-GmbH-2"
TANAKA_AR = "Assets:AccountsReceivable:Tanaka-3"


def invoice(
    document_id: int,
    number: str,
    customer: Customer,
    issued: date,
    *,
    lines: Iterable[Line],
    taxes: Iterable[Tax],
    total: str,
    due: date | None = None,
) -> Invoice:
    return Invoice(
        key=document_key(INVOICE, document_id),
        document_type=INVOICE,
        document_id=document_id,
        number=number,
        customer=customer,
        issue_date=issued,
        due_date=due or issued,
        currency=customer.currency,
        lines=tuple(lines),
        taxes=tuple(taxes),
        total=D(total),
    )


def credit_note(
    document_id: int,
    number: str,
    invoice_number: str,
    customer: Customer,
    issued: date,
    *,
    lines: Iterable[Line],
    taxes: Iterable[Tax],
    total: str,
) -> Invoice:
    return Invoice(
        key=document_key(CREDIT_NOTE, document_id),
        document_type=CREDIT_NOTE,
        document_id=document_id,
        number=number,
        customer=customer,
        issue_date=issued,
        due_date=issued,
        currency=customer.currency,
        lines=tuple(lines),
        taxes=tuple(taxes),
        total=D(total),
        invoice_number=invoice_number,
    )


def payment(
    document_id: int,
    customer: Customer,
    paid_on: date,
    amount: str,
    invoice_number: str | None,
    *,
    refund: bool = False,
    reference: str | None = None,
) -> Payment:
    kind = REFUND if refund else PAYMENT
    return Payment(
        key=document_key(kind, document_id),
        document_type=kind,
        document_id=document_id,
        customer=customer,
        paid_on=paid_on,
        currency=customer.currency,
        amount=D(amount),
        invoice_number=invoice_number,
        reference=reference,
    )


def revenue(
    document_id: int,
    customer: Customer,
    source_number: str,
    start: date,
    end: date,
    *,
    amounts: Iterable[tuple[str, str | None, str]],
    invoice_number: str | None = None,
    journal_date: date | None = None,
) -> RevenueJournal:
    return RevenueJournal(
        key=document_key(REVENUE, document_id),
        document_id=document_id,
        journal_date=journal_date or end,
        period_start=start,
        period_end=end,
        customer=customer,
        currency=customer.currency,
        source_number=source_number,
        invoice_number=invoice_number,
        amounts=tuple(RevenueAmount(code, family, D(amount)) for code, family, amount in amounts),
    )


def scenario() -> list[Document]:
    """Every document of the scenario, in the order the billing core makes them."""
    jan1, jan10, jan31, feb1, feb9, feb28 = (
        date(2026, 1, 1),
        date(2026, 1, 10),
        date(2026, 1, 31),
        date(2026, 2, 1),
        date(2026, 2, 9),
        date(2026, 2, 28),
    )
    return [
        # a quarter of the platform (400.00 a month) and a setup fee; 7.25 % California sales tax
        invoice(
            1,
            "INV-000001",
            ALICE,
            jan1,
            lines=[
                Line("PRO", "Platform", True, D("1200.00"), tax_rate=D("7.25")),
                Line("SETUP", None, False, D("300.00"), tax_rate=D("7.25")),
            ],
            taxes=[Tax(D("7.25"), D("108.75"), "US-CA")],
            total="1608.75",
            due=jan31,
        ),
        # a month of the platform from 10 January, and a training (family Services)
        invoice(
            2,
            "INV-000002",
            MULLER,
            jan10,
            lines=[
                Line("PRO", "Platform", True, D("100.00"), tax_rate=D("19")),
                Line("TRAINING", "Services", False, D("50.00"), tax_rate=D("7")),
            ],
            taxes=[Tax(D("19"), D("19.00"), "DE"), Tax(D("7"), D("3.50"), "DE")],
            total="172.50",
            due=date(2026, 2, 9),
        ),
        # a quarter of the platform (4000 yen a month) and a setup fee; 10 % consumption tax
        invoice(
            3,
            "INV-000003",
            TANAKA,
            jan1,
            lines=[
                Line("PRO", "Platform", True, D("12000"), tax_rate=D("10")),
                Line("SETUP", None, False, D("3000"), tax_rate=D("10")),
            ],
            taxes=[Tax(D("10"), D("1500"), "JP")],
            total="16500",
            due=jan31,
        ),
        payment(5, ALICE, date(2026, 1, 15), "1000.00", "INV-000001", reference="wire-1"),
        payment(6, MULLER, date(2026, 1, 20), "172.50", "INV-000002"),
        payment(7, TANAKA, date(2026, 1, 25), "10000", "INV-000003"),
        revenue(9, ALICE, "INV-000001", jan1, jan31, amounts=[("PRO", "Platform", "400.00")]),
        revenue(11, MULLER, "INV-000002", jan10, jan31, amounts=[("PRO", "Platform", "70.97")]),
        revenue(14, TANAKA, "INV-000003", jan1, jan31, amounts=[("PRO", "Platform", "4000")]),
        # the platform of INV-000002 credited in full on 1 February: 22 of its 31 days (70.97)
        # were recognized already, the rest (29.03) is still deferred
        credit_note(
            4,
            "CN-000001",
            "INV-000002",
            MULLER,
            feb1,
            lines=[
                Line("PRO", "Platform", True, D("100.00"), recognized=D("70.97"), tax_rate=D("19"))
            ],
            taxes=[Tax(D("19"), D("19.00"), "DE")],
            total="119.00",
        ),
        payment(8, MULLER, date(2026, 2, 5), "119.00", "INV-000002", refund=True),
        revenue(10, ALICE, "INV-000001", feb1, feb28, amounts=[("PRO", "Platform", "400.00")]),
        revenue(12, MULLER, "INV-000002", feb1, feb9, amounts=[("PRO", "Platform", "29.03")]),
        revenue(
            13,
            MULLER,
            "CN-000001",
            feb1,
            feb9,
            amounts=[("PRO", "Platform", "-29.03")],
            invoice_number="INV-000002",
            journal_date=feb28,
        ),
        revenue(15, TANAKA, "INV-000003", feb1, feb28, amounts=[("PRO", "Platform", "4000")]),
    ]


# -- reading a ledger back -----------------------------------------------------------------


def transactions(entries: Iterable[Any]) -> list[data.Transaction]:
    return [entry for entry in entries if isinstance(entry, data.Transaction)]


def balances(
    entries: Iterable[Any], *, start: date | None = None, end: date | None = None
) -> dict[tuple[str, str], Decimal]:
    """Sum of the postings per ``(account, currency)`` dated in ``[start, end]``; zero sums
    are left out."""
    totals: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for entry in transactions(entries):
        if (start and entry.date < start) or (end and entry.date > end):
            continue
        for posting in entry.postings:
            totals[(posting.account, posting.units.currency)] += posting.units.number
    return {key: value for key, value in totals.items() if value != 0}


def document_counts(entries: Iterable[Any]) -> Counter[tuple[str, str]]:
    """How many transactions carry each ``(document_type, document_id)``."""
    return Counter(
        (str(entry.meta["document_type"]), str(entry.meta["document_id"]))
        for entry in transactions(entries)
        if "document_type" in entry.meta
    )


def identities(documents: Iterable[Document]) -> Counter[tuple[str, str]]:
    return Counter((doc.document_type, str(doc.document_id)) for doc in documents)


def batch_files(main: Path) -> list[Path]:
    """The files the main file's include (``ledger.d/**/*.beancount``) matches."""
    return sorted(main.with_name(main.stem + ".d").rglob("*.beancount"))


def index_differences(main: Path) -> list[str]:
    """Where the ledger's index does not describe its files as a parse finds them: a file
    listed with another signature, or what it holds other than what Beancount's parser finds
    in it (files with a problem are never listed)."""
    index = ledger_index.Index(main.parent, main.with_name(main.stem + ".d"))
    listing = index.read()
    differences = []
    for path in [main, *batch_files(main)]:
        key = index.key(path)
        parsed = ledger_files.inspect(path, CHART.accounts.receivable)
        assert parsed is not None
        if parsed.problem is not None:
            if key in listing.files:
                differences.append(f"{key}: listed, but {parsed.problem}")
            continue
        if listing.files.get(key) != parsed.signature:
            differences.append(f"{key}: listed as {listing.files.get(key)}")
            continue
        held = index.read_held(key, parsed.signature)
        if held is None:
            differences.append(f"{key}: what it holds is not in the index")
            continue
        for name in ("documents", "opened", "customers", "used_receivables"):
            if getattr(held, name) != getattr(parsed, name):
                differences.append(f"{key}: {name} {getattr(held, name)}")
    keys = {index.key(path) for path in [main, *batch_files(main)]}
    differences += [f"{key}: listed, not there" for key in sorted(set(listing.files) - keys)]
    return differences


PLAIN = r"""
import importlib.util
import sys

assert importlib.util.find_spec("connector") is None, "the connector is importable"
path, tool = sys.argv[1], sys.argv[2]
if tool == "bean-check":
    from beancount.scripts.check import main

    sys.argv = ["bean-check", "--no-cache", path]
    main()
elif tool == "fava":
    from fava.core import FavaLedger

    ledger = FavaLedger(path)
    for error in ledger.errors:
        print(f"{error.source['filename']}:{error.source['lineno']}: {error.message}")
    print(f"{len(ledger.all_entries)} entries")
    sys.exit(1 if ledger.errors else 0)
"""


def plain_beancount(main: Path, tool: str) -> tuple[int, str]:
    """Run ``bean-check`` or Fava's loader on ``main`` in a Python that cannot import the
    connector (no site initialisation, so no editable install; the installed packages only):
    its exit code and output."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    env["PYTHONPATH"] = os.pathsep.join(
        dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    )
    result = subprocess.run(
        [sys.executable, "-S", "-c", PLAIN, str(main), tool],
        cwd=main.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return result.returncode, result.stdout + result.stderr
