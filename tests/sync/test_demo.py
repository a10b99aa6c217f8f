"""The demo: a simulated stretch of monthly cycles against the sandbox's demo org."""

from __future__ import annotations

import sqlite3
from collections import Counter
from contextlib import closing
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
from beancount import loader
from beancount.core import data
from sqlalchemy import func, select

from connector.accounting.chart import load_chart
from connector.accounting.ledger import Ledger
from connector.billing.vat import NOTE
from connector.db import tables
from connector.db.engine import make_engine, session_factory
from connector.errors import ConfigError
from connector.settings import load_settings
from connector.sync.closing import books_state
from connector.sync.demo import DEMO_START, MARKER, DemoReport, reset_directory, run_demo
from connector.sync.demo_usage import METERED_DEALS, UNIT_PRICES, usage_events
from connector.sync.ledger_check import check_ledger
from connector.sync.status import tax_id_warnings
from sandbox.salesforce.schema import default_schema
from sandbox.salesforce.seed import seed_org
from sandbox.salesforce.store import Org
from tests.conftest import owner_only, tree_modes

MONTHS = 3
TAX_AND_BANK_ACCOUNTS = {
    "Assets:Bank:USD": ["USD"],
    "Assets:Bank:EUR": ["EUR"],
    "Assets:Bank:GBP": ["GBP"],
    "Assets:Bank:JPY": ["JPY"],
    "Liabilities:SalesTax:DE:19": ["EUR"],
    "Liabilities:SalesTax:FR:20": ["EUR"],  # the French customer whose VAT id is invalid
    "Liabilities:SalesTax:GB:20": ["GBP"],
    "Liabilities:SalesTax:JP:10": ["JPY"],
    "Liabilities:SalesTax:US-NY:4": ["USD"],
    "Liabilities:SalesTax:US-TX:6-25": ["USD"],
}


def _won_by_month() -> Counter[str]:
    """Won deals of the demo org by close month, read from a freshly seeded org."""
    org = Org(default_schema(), None)
    seed_org(org, "demo")
    rows = org.db.execute("SELECT CloseDate FROM Opportunity WHERE IsWon = 1").fetchall()
    return Counter(closed[:7] for (closed,) in rows)


def test_a_simulated_quarter_bills_posts_and_writes_back_every_document(tmp_path: Path) -> None:
    months = []
    settings = load_settings()
    report = run_demo(settings, tmp_path / "demo", months=MONTHS, on_month=months.append)

    assert report.errors == []
    assert [m.label for m in months] == ["2026-01", "2026-02", "2026-03"]
    assert [(m.first_day, m.last_day) for m in months] == [
        (date(2026, 1, 1), date(2026, 1, 31)),
        (date(2026, 2, 1), date(2026, 2, 28)),
        (date(2026, 3, 1), date(2026, 3, 31)),
    ]
    # Each month's cycle finds the deals closed that month, and only those.
    won = _won_by_month()
    assert [m.deals_won for m in months] == [won["2026-01"], won["2026-02"], won["2026-03"]]
    assert report.invoices == sum(m.invoices for m in months)
    assert report.credit_notes == sum(m.credit_notes for m in months)
    # Every document is in Salesforce as a Billing_Invoice__c.
    assert report.written_back == report.invoices + report.credit_notes
    # The account without a country waits, with why (the demo org's two imperfect deals
    # close later in the year).
    assert report.waiting == [
        ("Account Harbor Pharma Corp.", "account has no BillingCountry (needed for tax)")
    ]
    # Payments recorded in the ledger reached the billing core: the ledger and the core agree
    # on every document and every customer's balance.
    assert months[0].payments == 0  # nothing was 14 days old before the first cycle
    assert months[1].payments > 0 and months[2].payments > 0
    engine = make_engine(f"sqlite:///{report.database}")
    try:
        ledger = Ledger(report.ledger, load_chart(Path("mappings/accounting.yaml")))
        with session_factory(engine)() as session:
            checked = check_ledger(session, ledger)
            reverse_charged = session.scalars(
                select(func.count()).where(tables.DocumentTax.reverse_charge)
            ).one()
            noted = session.scalars(
                select(func.count()).where(tables.Document.tax_note == NOTE)
            ).one()
            warned = [w.customer for w in tax_id_warnings(session, "US")]
    finally:
        engine.dispose()
    assert checked.differences == []
    assert checked.documents >= report.invoices + report.credit_notes
    assert set(report.paid) == set(report.outstanding) == {"EUR", "GBP", "JPY", "USD"}

    # The books as an accountant keeps them: each month closed once the next one's cycle ran;
    # deferred revenue never a debit and the unbilled receivable never a credit at a month end;
    # the over-payer's 10% kept as its credit, then applied to its next invoices.
    engine = make_engine(f"sqlite:///{report.database}")
    try:
        with session_factory(engine)() as session:
            assert books_state(session).closed_through == date(2026, 2, 28)
    finally:
        engine.dispose()
    entries, errors, _ = loader.load_file(str(report.ledger))
    assert errors == []
    postings = [
        (entry.date, posting.account, posting.units.currency, posting.units.number)
        for entry in entries
        if isinstance(entry, data.Transaction)
        for posting in entry.postings
    ]
    for month in months:
        for root, sign in (("Liabilities:DeferredRevenue", -1), ("Assets:UnbilledReceivable", 1)):
            balances = Counter[str]()
            for day, account, currency, number in postings:
                if day <= month.last_day and account.startswith(root):
                    balances[currency] += number
            assert all(sign * amount >= 0 for amount in balances.values()), (month, root)
    credit = sorted(
        (day, number)
        for day, account, _, number in postings
        if account.startswith("Liabilities:CustomerCredit")
    )
    assert credit[0][1] < 0 and sum(number for _, number in credit) <= 0
    # Tax payable per jurisdiction and rate, one currency each; payments per currency.
    entries, _, _ = loader.load_file(str(report.ledger))
    assert {
        entry.account: entry.currencies
        for entry in entries
        if isinstance(entry, data.Open)
        and entry.account.startswith(("Liabilities:SalesTax", "Assets:Bank"))
    } == TAX_AND_BANK_ACCOUNTS
    # EU businesses with a valid VAT id are reverse-charged (the seller is in the US); the two
    # customers whose VAT id is invalid are taxed, and listed by status.
    assert reverse_charged == noted > 0
    assert warned == ["Silverline Health AG", "Summit Textiles SA"]
    _usage_is_billed_in_arrears_to_the_unit(report)


def _usage_is_billed_in_arrears_to_the_unit(report: DemoReport) -> None:
    """Every metered deal's usage of each period is on the first invoice after its end: per
    region, the sum of the GB of the egress events its customer reported for its days of
    service (from the demo's first day; the ingress ones filtered out), priced by usage.yaml's tiers in USD, at the line's unit price
    per GB in other currencies."""
    assert len(report.metered_deals) == METERED_DEALS
    engine = make_engine(f"sqlite:///{report.database}")
    try:
        with session_factory(engine)() as session:
            lines = session.execute(
                select(
                    tables.Document.customer_id,
                    tables.Document.issue_date,
                    tables.Document.currency,
                    tables.DocumentLine.description,
                    tables.DocumentLine.quantity,
                    tables.DocumentLine.amount,
                    tables.DocumentLine.service_start,
                    tables.DocumentLine.service_end,
                )
                .join(tables.DocumentLine)
                .where(tables.DocumentLine.kind == "metered")
                .order_by(tables.Document.id, tables.DocumentLine.id)
            ).all()
    finally:
        engine.dispose()
    # Billed on the cycle after each period's end, whole: no adjustment followed.
    assert {line.issue_date for line in lines} == {date(2026, 2, 28), date(2026, 3, 31)}
    assert not [line for line in lines if "usage change" in line.description]
    assert all(line.service_end < line.issue_date for line in lines)
    for line in lines:
        region = "us-east" if "[us-east]" in line.description else "eu-west"
        reported_from = max(line.service_start, DEMO_START)  # the demo's first day
        expected = sum(
            (
                Decimal(event["properties"]["gb"])
                for event in usage_events(line.customer_id, reported_from, line.service_end)
                if event["properties"]["region"] == region
                and event["properties"]["direction"] == "egress"
            ),
            Decimal(0),
        )
        assert line.quantity == expected, line
        if line.currency == "USD":  # 0.09 for the first 1,000 GB, 0.07 to 10,000
            price = min(expected, 1000) * Decimal("0.09")
            price += max(expected - 1000, 0) * Decimal("0.07")
        else:
            price = expected * UNIT_PRICES[line.currency]
        minor = Decimal(1) if line.currency == "JPY" else Decimal("0.01")
        assert line.amount == price.quantize(minor, ROUND_HALF_UP), line
    # Each item's usage of a period is a Billing_Usage__c record in Salesforce: Billed for each
    # period billed, and Accruing for the current period of each metered deal, whose usage
    # of the last month was reported on its last day.
    billed = len({(line.customer_id, line.service_start) for line in lines})
    with closing(sqlite3.connect(report.directory / "salesforce.db")) as org:
        rows = org.execute("SELECT Status__c FROM Billing_Usage__c WHERE IsDeleted = 0")
        by_status = Counter(status for (status,) in rows)
    assert by_status == {"Billed": billed, "Accruing": METERED_DEALS}
    assert report.usage_written_back == billed + METERED_DEALS == 20
    assert sum(line.amount for line in lines if line.currency == "USD") == report.usage_billed.get(
        "USD", Decimal(0)
    )


@pytest.mark.usefixtures("open_umask")
def test_every_file_and_folder_of_the_demo_is_owner_only(tmp_path: Path) -> None:
    report = run_demo(load_settings(), tmp_path / "var" / "demo", months=1)
    assert report.errors == []
    modes = tree_modes(tmp_path / "var")
    assert set(modes) >= {
        "var",
        "var/demo",
        "var/demo/connector.db",
        "var/demo/ledger.beancount",
        "var/demo/ledger.d/.lock",
        "var/demo/ledger.d/2026/01",
        "var/demo/salesforce.db",
        "var/demo/salesforce.db.d/ca.pem",
        "var/demo/salesforce.db.d/jwt-public.pem",
    }
    assert modes == owner_only(modes, tmp_path)


def test_the_demo_resets_only_a_directory_it_made(tmp_path: Path) -> None:
    made = tmp_path / "demo"
    reset_directory(made)  # new: made and marked
    assert [p.name for p in made.iterdir()] == [MARKER]
    (made / "connector.db").write_bytes(b"last run")
    reset_directory(made)  # its own: emptied and marked again
    assert [p.name for p in made.iterdir()] == [MARKER]

    empty = tmp_path / "empty"
    empty.mkdir()
    reset_directory(empty)
    assert [p.name for p in empty.iterdir()] == [MARKER]

    foreign = tmp_path / "books"
    foreign.mkdir()
    (foreign / "ledger.beancount").write_text("; finance's own\n")
    with pytest.raises(ConfigError, match="holds files the demo did not make"):
        reset_directory(foreign)
    assert [p.name for p in foreign.iterdir()] == ["ledger.beancount"]
    link = tmp_path / "link"
    link.symlink_to(made)
    with pytest.raises(ConfigError, match="is not a directory"):
        reset_directory(link)
    assert (made / MARKER).is_file()
