"""A ledger file lost or spoiled after it was written: found and healed by the next push.

Two customers are billed in January and February 2026 and everything is pushed: January's file
holds the accounts the documents need, INV-000001 (US1), INV-000002 (GB1), the payment of
INV-000001 and January's two revenue journals; February's holds INV-000003 and INV-000004.
Then a file is deleted, cut in half, given a byte that is not UTF-8 or a syntax error, and the
next push must leave the ledger as it was, each document once, with what it did said exactly.
"""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path

import pytest
from beancount.core import data
from beancount.parser import parser
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from connector.accounting.ledger import Ledger
from connector.cli import app
from connector.db.engine import transaction
from connector.errors import LedgerFileError
from connector.settings import Settings
from connector.sync import settlement
from connector.sync.billing_run import run_billing
from connector.sync.ledger_check import CheckResult, check_ledger, load_uncached
from connector.sync.push import make_target, push, read_payments
from connector.sync.revenue_close import close_revenue
from tests import builders
from tests.accounting.documents import document_counts, plain_beancount
from tests.statements import counting

ROOT = Path(__file__).resolve().parents[2]
MAPPING = ROOT / "mappings" / "accounting.yaml"
JANUARY = [
    "INV-000001",
    "INV-000002",
    "payment 1 for INV-000001",
    "revenue of INV-000001 (2026-01-01 to 2026-01-31)",
    "revenue of INV-000002 (2026-01-01 to 2026-01-31)",
]
FEBRUARY = ["INV-000003", "INV-000004"]
EVERY_DOCUMENT = {
    ("invoice", "1"): 1,
    ("invoice", "2"): 1,
    ("invoice", "3"): 1,
    ("invoice", "4"): 1,
    ("payment", "1"): 1,
    ("revenue", "1"): 1,
    ("revenue", "2"): 1,
}


@pytest.fixture
def ledger(factory: sessionmaker[Session], ledger_settings: Settings) -> Ledger:
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


def month_file(ledger: Ledger, month: str) -> Path:
    [path] = sorted((ledger.directory / "2026" / month).glob("*.beancount"))
    return path


def check(factory: sessionmaker[Session], ledger: Ledger) -> CheckResult:
    with transaction(factory) as session:
        return check_ledger(session, ledger)


def assert_whole(factory: sessionmaker[Session], ledger: Ledger) -> None:
    """Every document once, every account opened once, the check clean, and the ledger loads
    in a plain Beancount."""
    entries, errors, _ = load_uncached(ledger.path)
    assert [error.message for error in errors] == []
    assert document_counts(entries) == EVERY_DOCUMENT
    opens = [entry.account for entry in entries if isinstance(entry, data.Open)]
    assert len(opens) == len(set(opens))
    result = check(factory, ledger)
    assert (result.differences, result.documents, result.customers) == ([], 4, 2)
    assert plain_beancount(ledger.path, "bean-check") == (0, "")


@pytest.fixture
def cli_env(
    ledger_settings: Settings, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    for name in list(os.environ):
        if name.startswith("CONNECTOR_") and name != "CONNECTOR_TEST_POSTGRES_URL":
            monkeypatch.delenv(name)
    return {
        "CONNECTOR_DATABASE_URL": database_url,
        "CONNECTOR_LEDGER__PATH": str(ledger_settings.ledger.path),
        "CONNECTOR_ACCOUNTING__MAPPING_FILE": str(MAPPING),
    }


def missing(names: list[str]) -> list[str]:
    return [
        f"{name} is not in the ledger any more: connector push posts it again" for name in names
    ]


# -- nothing changed ----------------------------------------------------------------------------
def test_a_push_after_a_complete_one_reads_neither_deliveries_nor_what_the_files_hold(
    factory: sessionmaker[Session], ledger_settings: Settings, ledger: Ledger, engine: Engine
) -> None:
    """The files are those the last push left: nothing can be missing. A new process's ledger
    reads neither what its files hold nor the deliveries the connector made."""
    fresh = make_target(ledger_settings)
    assert isinstance(fresh, Ledger)

    with counting(engine) as seen:
        result = push(factory, ledger_settings, fresh)

    assert (result.posted, result.reposted, result.moved_aside) == (0, [], {})
    assert not [sql for sql in seen.sql if "deliveries.attempts" in sql]
    assert fresh._loaded is False

    os.utime(month_file(fresh, "02"))  # a file touched: looked at again, nothing missing
    with counting(engine) as seen:
        assert push(factory, ledger_settings, fresh).reposted == []
    assert len([sql for sql in seen.sql if "deliveries.attempts" in sql]) == 1
    assert_whole(factory, fresh)


# -- a deleted file -----------------------------------------------------------------------------
def test_a_deleted_file_is_named_by_the_check_and_posted_again_by_the_push(
    factory: sessionmaker[Session], ledger: Ledger, cli_env: dict[str, str]
) -> None:
    month_file(ledger, "01").unlink()
    runner = CliRunner()

    checked = runner.invoke(app, ["ledger", "check", "--json"], env=cli_env)
    assert checked.exit_code == 1, checked.output
    assert [
        line for line in json.loads(checked.stdout)["differences"] if "not in the ledger" in line
    ] == missing(JANUARY)

    pushed = runner.invoke(app, ["push"], env=cli_env)
    assert pushed.exit_code == 0, pushed.output
    lines = pushed.stdout.splitlines()
    assert lines[0].startswith("ledger: 5 posted, 0 already there, 0 to retry, 0 parked;")
    assert lines[-1] == f"no longer in the ledger, posted again: {', '.join(JANUARY)}"
    assert_whole(factory, ledger)
    again = runner.invoke(app, ["push", "--json"], env=cli_env)
    assert json.loads(again.stdout)["push"] == {
        "target": "ledger",
        "posted": 0,
        "already_there": 0,
        "pending": 0,
        "parked": {},
        "reposted": [],
        "moved_aside": {},
    }


def test_documents_lost_with_their_file_come_back_without_opening_accounts_twice(
    factory: sessionmaker[Session], ledger_settings: Settings, ledger: Ledger
) -> None:
    """February's file opened nothing (January's opened every account): neither does the file
    that replaces it, written by the same long-lived target."""
    february = month_file(ledger, "02")
    february.unlink()

    result = push(factory, ledger_settings, ledger)

    assert (result.reposted, result.posted, result.moved_aside) == (FEBRUARY, 2, {})
    again = month_file(ledger, "02")
    assert again != february
    entries, errors, _ = parser.parse_file(str(again))
    assert errors == []
    assert [type(entry).__name__ for entry in entries] == ["Transaction", "Transaction"]
    assert_whole(factory, ledger)


def test_a_payment_finance_recorded_is_not_looked_for_in_the_connectors_files(
    factory: sessionmaker[Session], ledger_settings: Settings, ledger: Ledger
) -> None:
    account = ledger.customer_accounts[1]
    with ledger.path.open("a", encoding="utf-8") as handle:
        handle.write(
            '\n2026-02-10 * "Bank transfer" "US1 pays INV-000003" ^INV-000003\n'
            f"  Assets:Bank   100.00 USD\n  {account}   -100.00 USD\n"
        )
    assert read_payments(factory, ledger_settings, ledger).recorded == 1

    result = push(factory, ledger_settings, ledger)

    assert (result.reposted, result.posted, result.already_there) == ([], 0, 0)


# -- a damaged file -----------------------------------------------------------------------------
def damage(path: Path, how: str) -> tuple[int, str]:
    """Spoil ``path`` as a disk, a copy or a hand would: the line of its problem, and what
    Beancount (or the connector) says of it."""
    raw = path.read_bytes()
    if how == "half":  # cut at the end of a line: what is left still parses
        half = raw[: raw.rindex(b"\n", 0, len(raw) // 2) + 1]
        path.write_bytes(half)
        return half.count(b"\n"), "cut short: the batch's last line (; end of batch) is missing"
    if how == "non-UTF-8 byte":
        at = raw.index(b'"Customer US1"')
        path.write_bytes(raw[:at] + b'"Customer US\xb9"' + raw[at + len('"Customer US1"') :])
        return raw[:at].count(b"\n") + 1, (
            "UnicodeDecodeError: 'utf-8' codec can't decode byte 0xb9 in position 11: invalid "
            "start byte"
        )
    at = raw.index(b"100.00 USD")  # the amount of INV-000001, its currency written twice
    path.write_bytes(raw[:at] + b"100.00 USD USD" + raw[at + len("100.00 USD") :])
    return raw[:at].count(b"\n") + 1, (
        "syntax error, unexpected CURRENCY, expecting end of file or EOL or ATAT or AT"
    )


@pytest.mark.parametrize("how", ["half", "non-UTF-8 byte", "syntax error"])
def test_a_damaged_file_stops_the_ledger_stages_until_the_push_moves_it_aside(
    factory: sessionmaker[Session],
    ledger_settings: Settings,
    ledger: Ledger,
    cli_env: dict[str, str],
    how: str,
) -> None:
    january = month_file(ledger, "01")
    line, message = damage(january, how)
    spoiled = january.read_bytes()
    problem = f"{january}:{line}: {message}"
    aside = january.with_name(january.name + ".damaged")
    runner = CliRunner()

    # what Beancount says of the file, or that it was cut short: the check names the place
    checked = check(factory, ledger)
    assert problem in checked.differences
    assert not checked.ok
    # the payments read-back cannot trust a ledger that does not load
    with pytest.raises(LedgerFileError) as caught:
        read_payments(factory, ledger_settings, ledger)
    assert str(caught.value) == problem

    # the push moves the file aside, beside itself, and posts its documents again
    pushed = runner.invoke(app, ["push", "--json"], env=cli_env)
    assert pushed.exit_code == 1, pushed.output + pushed.stderr
    assert json.loads(pushed.stdout)["push"] == {
        "target": "ledger",
        "posted": 5,
        "already_there": 0,
        "pending": 0,
        "parked": {},
        "reposted": JANUARY,
        "moved_aside": {str(january): f"{problem}; moved aside to {aside.name}"},
    }
    assert pushed.stderr.splitlines() == [f"error: {problem}; moved aside to {aside.name}"]
    assert not january.exists()
    assert aside.read_bytes() == spoiled  # nothing deleted

    # the ledger is whole again; the check names the moved file until a person deletes it
    assert check(factory, ledger).differences == [
        f"{aside}: a damaged batch file moved aside by connector push, which posted its "
        "documents again; delete it once checked"
    ]
    again = runner.invoke(app, ["push"], env=cli_env)
    assert again.exit_code == 0, again.output
    aside.unlink()
    assert_whole(factory, ledger)


def test_a_main_file_that_does_not_load_stops_the_ledger_stages_and_is_never_touched(
    factory: sessionmaker[Session],
    ledger_settings: Settings,
    ledger: Ledger,
    cli_env: dict[str, str],
) -> None:
    """Finance's file is theirs: a byte that is not UTF-8 there stops the push and the
    payments read-back, with its file and line, until a person fixes it."""
    text = ledger.path.read_bytes()
    ledger.path.write_bytes(text + b'2026-02-01 note Assets:Bank "Caf\xe9 receipts"\n')
    line = text.count(b"\n") + 1
    problem = (
        f"{ledger.path}:{line}: UnicodeDecodeError: 'utf-8' codec can't decode byte 0xe9 in "
        "position 3: invalid continuation byte"
    )
    runner = CliRunner()

    pushed = runner.invoke(app, ["push"], env=cli_env)

    assert (pushed.exit_code, pushed.stdout, pushed.stderr) == (1, "", f"error: {problem}\n")
    with pytest.raises(LedgerFileError) as caught:
        push(factory, ledger_settings, ledger)
    assert str(caught.value) == problem
    with pytest.raises(LedgerFileError):
        read_payments(factory, ledger_settings, ledger)
    assert problem in check(factory, ledger).differences
    assert ledger.path.read_bytes().endswith(b'"Caf\xe9 receipts"\n')

    ledger.path.write_bytes(text)  # fixed
    assert runner.invoke(app, ["push"], env=cli_env).exit_code == 0
    assert_whole(factory, ledger)
