"""``connector ledger check``: bean-check, then the ledger reconciled with the billing core.

A small ledger is billed and pushed for real (two customers, USD and GBP), then spoiled the
ways a ledger gets spoiled by hand; each difference must be reported exactly, with its place.
"""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path

import pytest
from beancount import loader
from beancount.core import data
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from connector.accounting.ledger import Ledger
from connector.cli import app
from connector.db.engine import transaction
from connector.settings import Settings
from connector.sync import settlement
from connector.sync.billing_run import run_billing
from connector.sync.ledger_check import CheckResult, check_ledger
from connector.sync.push import make_target, push, read_payments
from connector.sync.revenue_close import close_revenue
from tests import builders
from tests.accounting.documents import document_counts

ROOT = Path(__file__).resolve().parents[2]
MAPPING = ROOT / "mappings" / "accounting.yaml"
US1 = "customer 1"  # customer ids: US1 is created first, GB1 second


@pytest.fixture
def ledger(factory: sessionmaker[Session], ledger_settings: Settings) -> Ledger:
    """US1: 100.00 USD a month from Jan 1, INV-000001 paid on Jan 10, INV-000003 open.
    GB1: 2 × 25.00 GBP a month + 20% tax: INV-000002 and INV-000004, 60.00 each, open.
    January's revenue closed, everything pushed: 4 invoices, 1 payment, 2 journals."""
    builders.simple_subscription(factory, start=date(2026, 1, 1), ref="US1")
    builders.simple_subscription(
        factory,
        start=date(2026, 1, 1),
        quantity=2,
        unit_amount="25.00",
        currency="GBP",
        country="GB",
        ref="GB1",
    )
    run_billing(factory, ledger_settings, date(2026, 1, 1))
    with transaction(factory) as session:
        settlement.record_payment(
            session, amount="100.00", received_on=date(2026, 1, 10), invoice_number="INV-000001"
        )
    close_revenue(factory, date(2026, 1, 31))
    run_billing(factory, ledger_settings, date(2026, 2, 1))
    target = make_target(ledger_settings)
    assert isinstance(target, Ledger)
    assert push(factory, ledger_settings, target).posted == 7
    return target


def check(factory: sessionmaker[Session], ledger: Ledger) -> CheckResult:
    with transaction(factory) as session:
        return check_ledger(session, ledger)


def summary(result: CheckResult) -> tuple[list[str], int, int, int]:
    return result.differences, result.documents, result.customers, result.waiting


def locate(ledger: Ledger, document_type: str, document_id: int) -> tuple[Path, int]:
    """The batch file holding a document, and the line its transaction starts on."""
    marker = f'  document_type: "{document_type}"\n  document_id: "{document_id}"\n'
    for file in sorted(ledger.directory.rglob("*.beancount")):
        text = file.read_text()
        if marker in text:
            return file, text[: text.index(marker)].count("\n")
    raise AssertionError(f"{document_type} {document_id} is not in the ledger")


def block(file: Path, line: int) -> str:
    """The transaction starting on ``line`` of ``file``, through its last posting."""
    lines = file.read_text().splitlines(keepends=True)[line - 1 :]
    end = next((i for i, text in enumerate(lines) if not text.strip()), len(lines))
    return "".join(lines[:end])


def append(path: Path, text: str) -> int:
    """Append ``text`` to the main ledger file as finance would; returns its first line."""
    before = path.read_text()
    path.write_text(before + "\n" + text)
    return before.count("\n") + 2


def receivable_account(ledger: Ledger, customer_id: int) -> str:
    entries, _, _ = loader.load_file(str(ledger.path))
    (account,) = [
        entry.account
        for entry in entries
        if isinstance(entry, data.Open) and entry.meta.get("customer_id") == str(customer_id)
    ]
    return account


def hand_payment(ledger: Ledger, day: str = "2026-02-10", currency_twice: bool = False) -> str:
    account = receivable_account(ledger, 1)
    tail = " USD" if currency_twice else ""
    return (
        f'{day} * "Bank transfer" "US1 pays INV-000003" ^INV-000003\n'
        f"  Assets:Bank:USD  100.00 USD\n"
        f"  {account}   -100.00 USD{tail}\n"
    )


# -- check_ledger -------------------------------------------------------------------------------
def test_a_clean_ledger_is_ok_with_its_counts(
    factory: sessionmaker[Session], ledger: Ledger
) -> None:
    result = check(factory, ledger)

    assert result.ok
    assert summary(result) == ([], 4, 2, 0)
    assert result.to_dict() == {
        "ok": True,
        "documents": 4,
        "customers": 2,
        "waiting_to_post": 0,
        "differences": [],
    }


def test_documents_not_posted_yet_are_counted_not_reported(
    factory: sessionmaker[Session], ledger_settings: Settings, ledger: Ledger
) -> None:
    run_billing(factory, ledger_settings, date(2026, 3, 1))  # INV-000005 and INV-000006

    result = check(factory, ledger)

    assert summary(result) == ([], 4, 0, 2)
    push(factory, ledger_settings, ledger)
    assert summary(check(factory, ledger)) == ([], 6, 2, 0)


def test_a_hand_edited_amount_in_a_batch_file_is_a_document_total_mismatch(
    factory: sessionmaker[Session], ledger: Ledger
) -> None:
    file, line = locate(ledger, "invoice", 3)
    original = block(file, line)
    # Still balanced, so Beancount itself is content: only the reconciliation can tell.
    edited = original.replace("100.00 USD", "110.00 USD")
    assert edited.count("110.00 USD") == 2
    file.write_text(file.read_text().replace(original, edited))

    result = check(factory, ledger)

    assert summary(result) == (
        [
            f"{file}:{line}: INV-000003 moves receivables by 110.00 USD, its total is 100.00",
            f"{US1}: the ledger's receivable is 110.00 USD, the billing core's 100.00 USD",
        ],
        4,
        2,
        0,
    )


def test_a_duplicated_document_is_found(factory: sessionmaker[Session], ledger: Ledger) -> None:
    file, line = locate(ledger, "invoice", 3)
    copy_line = append(ledger.path, block(file, line))
    # Beancount orders a day's entries by line number, whatever their file: the later one is
    # the repeated document.
    original, copy = f"{file}:{line}", f"{ledger.path}:{copy_line}"
    assert line != copy_line
    first, second = (original, copy) if line < copy_line else (copy, original)

    result = check(factory, ledger)

    assert summary(result) == (
        [
            f"{second}: invoice 3 is already in the ledger at {first}",
            f"{US1}: the ledger's receivable is 200.00 USD, the billing core's 100.00 USD",
        ],
        5,
        2,
        0,
    )


def test_a_hand_payment_not_read_back_yet_is_a_balance_difference(
    factory: sessionmaker[Session], ledger_settings: Settings, ledger: Ledger
) -> None:
    append(ledger.path, hand_payment(ledger))

    before = check(factory, ledger)
    read = read_payments(factory, ledger_settings)
    after = check(factory, ledger)

    assert summary(before) == (
        [f"{US1}: the ledger's receivable is 0.00 USD, the billing core's 100.00 USD"],
        4,
        2,
        0,
    )
    assert (read.recorded, read.refused) == (1, {})
    assert summary(after) == ([], 4, 2, 0)


def test_broken_ledger_syntax_is_reported_with_its_place(
    factory: sessionmaker[Session], ledger: Ledger
) -> None:
    start = append(ledger.path, hand_payment(ledger, currency_twice=True))

    result = check(factory, ledger)

    # The broken transaction is left out, so the balances still agree.
    assert summary(result) == (
        [
            f"{ledger.path}:{start + 2}: syntax error, unexpected CURRENCY, expecting end of "
            "file or EOL or ATAT or AT"
        ],
        4,
        2,
        0,
    )


def test_several_differences_are_all_reported(
    factory: sessionmaker[Session], ledger: Ledger
) -> None:
    file, line = locate(ledger, "invoice", 4)
    original = block(file, line)
    edited = original.replace(" 60.00 GBP", " 66.00 GBP").replace("-10.00 GBP", "-16.00 GBP")
    file.write_text(file.read_text().replace(original, edited))
    append(ledger.path, hand_payment(ledger))
    bad_date = append(ledger.path, hand_payment(ledger, day="2026-02-30"))

    result = check(factory, ledger)

    assert summary(result) == (
        [
            f"{ledger.path}:{bad_date}: ValueError: day is out of range for month",
            f"{file}:{line}: INV-000004 moves receivables by 66.00 GBP, its total is 60.00",
            f"{US1}: the ledger's receivable is 0.00 USD, the billing core's 100.00 USD",
            "customer 2: the ledger's receivable is 126.00 GBP, the billing core's 120.00 GBP",
        ],
        4,
        2,
        0,
    )


def test_a_document_no_longer_in_the_ledger_is_named_by_its_number(
    factory: sessionmaker[Session], ledger: Ledger
) -> None:
    file, _ = locate(ledger, "invoice", 4)
    assert file.parent.name == "02"  # February's file: INV-000003 and INV-000004
    file.unlink()

    result = check(factory, ledger)

    assert summary(result) == (
        [
            "INV-000003 is not in the ledger any more: connector push posts it again",
            "INV-000004 is not in the ledger any more: connector push posts it again",
            f"{US1}: the ledger's receivable is 0.00 USD, the billing core's 100.00 USD",
            "customer 2: the ledger's receivable is 60.00 GBP, the billing core's 120.00 GBP",
        ],
        2,
        2,
        0,
    )


def test_a_stale_pickle_cache_is_never_read(
    factory: sessionmaker[Session], ledger_settings: Settings, ledger: Ledger
) -> None:
    """``bean-check`` (Beancount's cached loader) leaves ``.ledger.beancount.picklecache``,
    keyed on the files it loaded: it does not see batch files added since. The check loads the
    ledger itself, so it sees March's documents, and a document copied into a new file."""
    cache = ledger.path.with_name(f".{ledger.path.name}.picklecache")
    cached_load = loader.pickle_cache_function(  # bean-check's loader, caching even a fast load
        lambda name: str(Path(name).with_name(f".{Path(name).name}.picklecache")),
        0,
        loader._uncached_load_file,
    )
    cached_load(str(ledger.path), None, None, None)
    assert cache.exists()
    run_billing(factory, ledger_settings, date(2026, 3, 1))  # INV-000005 and INV-000006
    push(factory, ledger_settings, ledger)
    file, line = locate(ledger, "invoice", 5)
    assert file.parent.name == "03"
    copy = file.with_name("copied-by-hand.beancount")
    copy.write_text(block(file, line))

    stale, _, _ = cached_load(str(ledger.path), None, None, None)
    result = check(factory, ledger)

    assert len(document_counts(stale)) == 7  # the cache still answers as before March
    assert summary(result) == (
        [
            f"{copy}:1: invoice 5 is already in the ledger at {file}:{line}",
            f"{US1}: the ledger's receivable is 300.00 USD, the billing core's 200.00 USD",
        ],
        7,
        2,
        0,
    )
    copy.unlink()
    assert summary(check(factory, ledger)) == ([], 6, 2, 0)


# -- the command --------------------------------------------------------------------------------
@pytest.fixture
def cli_env(
    ledger_settings: Settings, database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> dict[str, str]:
    for name in list(os.environ):
        if name.startswith("CONNECTOR_") and name != "CONNECTOR_TEST_POSTGRES_URL":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return {
        "CONNECTOR_DATABASE_URL": database_url,
        "CONNECTOR_LEDGER__PATH": str(ledger_settings.ledger.path),
        "CONNECTOR_ACCOUNTING__MAPPING_FILE": str(MAPPING),
    }


def spoil(ledger: Ledger) -> list[str]:
    """A hand-edited invoice and a hand payment not read back; the differences expected."""
    file, line = locate(ledger, "invoice", 3)
    original = block(file, line)
    file.write_text(file.read_text().replace(original, original.replace("100.00", "110.00")))
    append(ledger.path, hand_payment(ledger))
    return [
        f"{file}:{line}: INV-000003 moves receivables by 110.00 USD, its total is 100.00",
        f"{US1}: the ledger's receivable is 10.00 USD, the billing core's 100.00 USD",
    ]


def test_cli_ledger_check_exits_0_when_clean_and_1_with_differences(
    ledger: Ledger, cli_env: dict[str, str]
) -> None:
    runner = CliRunner()

    clean = runner.invoke(app, ["ledger", "check", "--json"], env=cli_env)
    assert clean.exit_code == 0, clean.output
    assert json.loads(clean.stdout) == {
        "ok": True,
        "documents": 4,
        "customers": 2,
        "waiting_to_post": 0,
        "differences": [],
    }

    expected = spoil(ledger)
    spoiled = runner.invoke(app, ["ledger", "check", "--json"], env=cli_env)
    assert spoiled.exit_code == 1, spoiled.output
    assert json.loads(spoiled.stdout) == {
        "ok": False,
        "documents": 4,
        "customers": 2,
        "waiting_to_post": 0,
        "differences": expected,
    }


def test_cli_ledger_check_prints_each_difference_on_its_own_line(
    ledger: Ledger, cli_env: dict[str, str]
) -> None:
    runner = CliRunner()
    clean = runner.invoke(app, ["ledger", "check"], env=cli_env)
    expected = spoil(ledger)
    spoiled = runner.invoke(app, ["ledger", "check"], env=cli_env)

    assert (clean.exit_code, spoiled.exit_code) == (0, 1)
    assert clean.stdout.splitlines() == [
        f"{ledger.path}: 4 documents, 2 customers, 0 differences, 0 waiting to be posted"
    ]
    assert spoiled.stdout.splitlines() == [
        *expected,
        f"{ledger.path}: 4 documents, 2 customers, 2 differences, 0 waiting to be posted",
    ]
