"""The demo: a simulated stretch of monthly cycles against the sandbox's demo org."""

from __future__ import annotations

from collections import Counter
from datetime import date
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
from connector.sync.demo import MARKER, reset_directory, run_demo
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
