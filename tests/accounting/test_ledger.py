"""The Beancount ledger target on real files, read back with Beancount's own loader.

The main file is made once and never rewritten (but for the lines of an earlier version);
batches go to ``ledger.d/YYYY/MM/`` by the month of their entries; a document already in the
ledger is never written again, by the same or a new :class:`Ledger`; a document written twice is
found (what ``connector ledger check`` runs); balances come out exactly; and payments finance
records by hand in the main file come back as :class:`ExternalPayment`.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from beancount import loader
from beancount.core import data, realization
from beancount.parser import parser

from connector.accounting import ledger as ledger_module
from connector.accounting import ledger_files
from connector.accounting.base import Customer, ExternalPayment, Invoice, Line, PostResult, Tax
from connector.accounting.beancount_plugin import DuplicateDocumentError, unique_document_ids
from connector.accounting.chart import Chart
from connector.accounting.ledger import Ledger
from connector.errors import LedgerFileError
from tests.accounting.documents import (
    ALICE,
    ALICE_AR,
    CHART,
    MULLER,
    MULLER_AR,
    TANAKA,
    TANAKA_AR,
    balances,
    batch_files,
    document_counts,
    identities,
    invoice,
    payment,
    plain_beancount,
    scenario,
    transactions,
)
from tests.conftest import owner_only, tree_modes

D = Decimal
PLUGIN_LINE = 'plugin "connector.accounting.beancount_plugin"'
RETIRED_PLUGIN_LINE = (
    '; plugin "connector.accounting.beancount_plugin"  ; retired: connector ledger check finds '
    "a document posted twice"
)
INCLUDE_LINE = 'include "ledger.d/**/*.beancount"'
LEGACY_INCLUDE_LINE = 'include "ledger.d/*/*.beancount"'
END = "\n; end of batch\n"

MAIN_TEXT = f"""\
; The billing connector's ledger. Open it with: fava ledger.beancount
; The connector writes its entries to ledger.d/ (a folder per year and month) and never rewrites
; this file: add your own entries (payments, adjustments) below.
; Check it against the billing core with: connector ledger check

option "title" "Billing"
option "operating_currency" "USD"
{INCLUDE_LINE}

"""

CHART_OPENS = (
    """\
2000-01-01 open Assets:Bank:USD USD

2000-01-01 open Assets:UnbilledReceivable

2000-01-01 open Liabilities:DeferredRevenue

2000-01-01 open Income:Subscriptions

2000-01-01 open Income:OneTime

2000-01-01 open Income:Setup

2000-01-01 open Income:Services
"""
    + END
)

ALICE_BATCH = (
    """\
2000-01-01 open Assets:AccountsReceivable:Alice-Inc-1
  customer_id: "1"
  name: "Alice Inc."

2000-01-01 open Liabilities:SalesTax:US-CA:7-25 USD

2026-01-01 * "Alice Inc." "Invoice INV-000001" ^INV-000001
  document_type: "invoice"
  document_id: "1"
  due: 2026-01-31
  Assets:AccountsReceivable:Alice-Inc-1             1608.75 USD
  Liabilities:DeferredRevenue                      -1200.00 USD
  Income:Setup                                      -300.00 USD
  Liabilities:SalesTax:US-CA:7-25                   -108.75 USD

2026-01-15 * "Alice Inc." "Payment for INV-000001 (wire-1)" ^INV-000001
  document_type: "payment"
  document_id: "5"
  Assets:Bank:USD                                   1000.00 USD
  Assets:AccountsReceivable:Alice-Inc-1            -1000.00 USD

2026-01-31 * "Alice Inc." "Revenue of INV-000001, 2026-01-01 to 2026-01-31" ^INV-000001
  document_type: "revenue"
  document_id: "9"
  Liabilities:DeferredRevenue              400.00 USD
  Income:Subscriptions                    -400.00 USD
"""
    + END
)

# Finance's own ledger, from before the connector: options, comments, an account, a transaction,
# and no newline at the end.
HAND_WRITTEN = """\
; Books of Example Ltd — kept by hand since 2025
option "title" "Example Ltd"
option "operating_currency" "EUR"

2000-01-01 open Assets:Bank
2000-01-01 open Equity:Opening-Balances

2025-12-31 * "Opening balance"  ; carried over
  Assets:Bank                 5000.00 EUR
  Equity:Opening-Balances    -5000.00 EUR"""


@pytest.fixture
def main(tmp_path: Path) -> Path:
    return tmp_path / "ledger.beancount"


def _load(main: Path) -> tuple[list[Any], list[Any]]:
    entries, errors, _ = loader.load_file(str(main))
    return entries, errors


def _load_clean(main: Path) -> list[Any]:
    entries, errors = _load(main)
    assert [error.message for error in errors] == []
    return entries


def _append(main: Path, text: str) -> int:
    """Append ``text`` to the main file; the line number its first line lands on."""
    before = main.read_text(encoding="utf-8")
    if not before.endswith("\n"):
        before += "\n"
    main.write_text(before + text, encoding="utf-8")
    return before.count("\n") + 1


def _snapshot(main: Path) -> dict[Path, bytes]:
    """Every file of the ledger but its index (what the files hold: written when a file of
    the ledger is new or changed; see test_ledger_index)."""
    index = main.parent / f"{main.stem}.d" / ".index"
    return {
        path: path.read_bytes()
        for path in main.parent.rglob("*")
        if path.is_file() and index not in path.parents
    }


def _opened(entries: list[Any]) -> dict[str, date]:
    return {entry.account: entry.date for entry in entries if isinstance(entry, data.Open)}


# -- the main file -------------------------------------------------------------------------


def test_main_file_is_created_with_options_and_include(main: Path) -> None:
    Ledger(main, CHART)
    assert main.read_text(encoding="utf-8") == MAIN_TEXT
    [chart_batch] = batch_files(main)
    # accounts opened alone go to the month of their opening date (the chart's, 2000-01-01)
    assert chart_batch.parent == main.parent / "ledger.d" / "2000" / "01"
    assert chart_batch.read_text(encoding="utf-8") == CHART_OPENS
    _, errors, options = loader.load_file(str(main))
    assert errors == []
    assert options["title"] == "Billing"
    assert options["operating_currency"] == ["USD"]
    assert options["include"] == [str(main), str(chart_batch)]


@pytest.mark.usefixtures("open_umask")
def test_every_file_and_folder_the_ledger_creates_is_owner_only(tmp_path: Path) -> None:
    main = tmp_path / "books" / "ledger.beancount"
    ledger = Ledger(main, CHART)
    assert all(result.ok for result in ledger.post(scenario()))
    modes = tree_modes(tmp_path / "books")
    assert set(modes) >= {
        "books",
        "books/ledger.beancount",
        "books/ledger.d",
        "books/ledger.d/.lock",
        "books/ledger.d/2000",
        "books/ledger.d/2000/01",
        "books/ledger.d/2026",
        "books/ledger.d/2026/01",
        "books/ledger.d/2026/02",
    }
    assert len([name for name in modes if name.endswith(".beancount")]) == 4  # main, 3 batches
    assert modes == owner_only(modes, tmp_path)


@pytest.mark.usefixtures("open_umask")
def test_a_main_file_of_an_earlier_version_keeps_its_mode_when_brought_up_to_date(
    main: Path,
) -> None:
    main.write_text(f'option "title" "Ours"\n{PLUGIN_LINE}\n', encoding="utf-8")
    os.chmod(main, 0o664)
    Ledger(main, CHART)
    assert main.stat().st_mode & 0o777 == 0o664


def test_operating_currency_of_a_new_ledger(main: Path) -> None:
    Ledger(main, CHART, operating_currency="JPY")
    assert 'option "operating_currency" "JPY"\n' in main.read_text(encoding="utf-8")
    _, _, options = loader.load_file(str(main))
    assert options["operating_currency"] == ["JPY"]


def test_main_file_is_never_rewritten(main: Path) -> None:
    ledger = Ledger(main, CHART)
    stat = main.stat()
    ledger.post(scenario())
    Ledger(main, CHART).post(scenario())
    assert main.read_text(encoding="utf-8") == MAIN_TEXT
    assert (main.stat().st_ino, main.stat().st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns)


def test_existing_main_file_keeps_every_byte_and_gets_the_include_once(main: Path) -> None:
    main.write_text(HAND_WRITTEN, encoding="utf-8")
    Ledger(main, CHART)
    expected = HAND_WRITTEN + "\n" + INCLUDE_LINE + "\n"
    assert main.read_text(encoding="utf-8") == expected
    Ledger(main, CHART).post(scenario())
    Ledger(main, CHART)
    assert main.read_text(encoding="utf-8") == expected

    entries = _load_clean(main)
    # finance's bank account is not opened a second time; the rest of the chart is, and a bank
    # account per currency
    opened = _opened(entries)
    assert opened["Assets:Bank"] == date(2000, 1, 1)
    bank_opens = [e for e in entries if isinstance(e, data.Open) and e.account == "Assets:Bank"]
    assert [entry.meta["filename"] for entry in bank_opens] == [str(main)]
    assert "Income:Subscriptions" in opened
    assert {"Assets:Bank:USD", "Assets:Bank:EUR", "Assets:Bank:JPY"} <= set(opened)
    [opening] = [entry for entry in transactions(entries) if entry.narration == "Opening balance"]
    assert opening.meta["filename"] == str(main)
    assert balances(entries)[("Equity:Opening-Balances", "EUR")] == D("-5000.00")
    assert balances(entries)[("Assets:Bank", "EUR")] == D("5000.00")
    assert balances(entries)[("Assets:Bank:EUR", "EUR")] == D("172.50") - D("119.00")


def test_existing_main_file_that_opens_the_whole_chart_passes_bean_check(main: Path) -> None:
    """Finance's ledger already opens every account of the chart: the connector writes no batch
    at start, and the include it added must not make the ledger fail to load."""
    opens = "".join(
        f"2000-01-01 open {account}\n"
        for account in (
            "Assets:Bank",
            "Assets:UnbilledReceivable",
            "Liabilities:DeferredRevenue",
            "Income:Subscriptions",
            "Income:OneTime",
        )
    )
    main.write_text(opens, encoding="utf-8")
    Ledger(main, Chart())
    assert main.read_text(encoding="utf-8") == opens + "\n" + INCLUDE_LINE + "\n"
    _load_clean(main)


def test_existing_main_file_with_the_plugin_has_it_turned_into_a_comment(main: Path) -> None:
    """An earlier version added the plugin line to finance's own file: it becomes a comment in
    place, every other byte stays, and the include is added once."""
    before = HAND_WRITTEN.replace(
        'option "operating_currency" "EUR"\n', f'option "operating_currency" "EUR"\n{PLUGIN_LINE}\n'
    )
    main.write_text(before + "\n", encoding="utf-8")
    os.chmod(main, 0o640)
    Ledger(main, CHART)
    expected = (
        HAND_WRITTEN.replace(
            'option "operating_currency" "EUR"\n',
            f'option "operating_currency" "EUR"\n{RETIRED_PLUGIN_LINE}\n',
        )
        + "\n\n"
        + INCLUDE_LINE
        + "\n"
    )
    assert main.read_text(encoding="utf-8") == expected
    assert main.stat().st_mode & 0o777 == 0o640
    Ledger(main, CHART)
    assert main.read_text(encoding="utf-8") == expected
    _load_clean(main)


def test_chart_accounts_are_open_before_any_document(main: Path) -> None:
    Ledger(main, CHART)
    line = _append(
        main,
        '2026-01-02 * "Bank" "Interest"\n'
        "  Assets:Bank:USD   1.25 USD\n"
        "  Income:OneTime   -1.25 USD\n",
    )
    entries = _load_clean(main)
    assert _opened(entries) == {
        "Assets:Bank:USD": date(2000, 1, 1),
        "Assets:UnbilledReceivable": date(2000, 1, 1),
        "Liabilities:DeferredRevenue": date(2000, 1, 1),
        "Income:Subscriptions": date(2000, 1, 1),
        "Income:OneTime": date(2000, 1, 1),
        "Income:Setup": date(2000, 1, 1),
        "Income:Services": date(2000, 1, 1),
    }
    [interest] = transactions(entries)
    assert interest.meta["lineno"] == line
    # a new instance opens nothing more
    before = _snapshot(main)
    Ledger(main, CHART)
    assert _snapshot(main) == before


def test_chart_open_date_is_used(main: Path) -> None:
    chart = Chart(open_date=date(2019, 7, 1))
    ledger = Ledger(main, chart)
    ledger.post(scenario()[:1])
    assert set(_opened(_load_clean(main)).values()) == {date(2019, 7, 1)}


def test_an_account_added_to_the_chart_is_opened_by_the_next_instance(main: Path) -> None:
    Ledger(main, Chart())
    Ledger(main, CHART)
    Ledger(main, CHART)
    opened = _opened(_load_clean(main))
    assert sorted(opened) == sorted(
        [
            "Assets:Bank:USD",
            "Assets:UnbilledReceivable",
            "Liabilities:DeferredRevenue",
            "Income:Subscriptions",
            "Income:OneTime",
            "Income:Setup",
            "Income:Services",
        ]
    )
    assert len(batch_files(main)) == 2


# -- posting ---------------------------------------------------------------------------------


def test_post_writes_one_batch_file(main: Path) -> None:
    ledger = Ledger(main, CHART)
    before = batch_files(main)
    docs = scenario()
    alice = [docs[0], docs[3], docs[6]]
    results = ledger.post(alice)
    [written] = [path for path in batch_files(main) if path not in before]
    assert written.read_text(encoding="utf-8") == ALICE_BATCH
    assert written.parent == main.parent / "ledger.d" / "2026" / "01"
    assert results == [PostResult(doc.key, True, external_id=str(written)) for doc in alice]
    assert [path.name for path in written.parent.iterdir() if path.name.startswith(".")] == []
    entries = _load_clean(main)
    assert document_counts(entries) == identities(alice)


def test_post_of_nothing_writes_nothing(main: Path) -> None:
    ledger = Ledger(main, CHART)
    before = _snapshot(main)
    assert ledger.post([]) == []
    assert _snapshot(main) == before


def test_posting_again_with_the_same_ledger_writes_nothing(main: Path) -> None:
    ledger = Ledger(main, CHART)
    docs = scenario()
    assert all(result.ok for result in ledger.post(docs))
    before = _snapshot(main)
    assert ledger.post(docs) == [
        PostResult(doc.key, True, external_id="already in the ledger") for doc in docs
    ]
    assert _snapshot(main) == before
    assert document_counts(_load_clean(main)) == identities(docs)


def test_posting_again_with_a_new_ledger_writes_nothing(main: Path) -> None:
    docs = scenario()
    Ledger(main, CHART).post(docs)
    before = _snapshot(main)
    fresh = Ledger(main, CHART)
    assert fresh.post(docs) == [
        PostResult(doc.key, True, external_id="already in the ledger") for doc in docs
    ]
    assert fresh.post(list(reversed(docs))) == [
        PostResult(doc.key, True, external_id="already in the ledger") for doc in reversed(docs)
    ]
    assert _snapshot(main) == before
    assert document_counts(_load_clean(main)) == identities(docs)


def test_a_batch_of_old_and_new_documents_writes_only_the_new(main: Path) -> None:
    docs = scenario()
    Ledger(main, CHART).post(docs[:6])
    ledger = Ledger(main, CHART)
    before = batch_files(main)
    results = ledger.post(docs)
    # the rest of January (three journals) and February: a file for each month
    january, february = [path for path in batch_files(main) if path not in before]
    assert (january.parent.name, february.parent.name) == ("01", "02")
    assert results == (
        [PostResult(doc.key, True, external_id="already in the ledger") for doc in docs[:6]]
        + [PostResult(doc.key, True, external_id=str(january)) for doc in docs[6:9]]
        + [PostResult(doc.key, True, external_id=str(february)) for doc in docs[9:]]
    )
    assert document_counts(_load_clean(main)) == identities(docs)


def test_a_document_twice_in_one_batch_is_written_once(main: Path) -> None:
    docs = scenario()
    ledger = Ledger(main, CHART)
    results = ledger.post([docs[0], docs[0], docs[3]])
    [written] = {result.external_id for result in results} - {"already in the ledger"}
    assert results == [
        PostResult(docs[0].key, True, external_id=written),
        PostResult(docs[0].key, True, external_id="already in the ledger"),
        PostResult(docs[3].key, True, external_id=written),
    ]
    assert document_counts(_load_clean(main)) == identities([docs[0], docs[3]])


def test_another_version_of_a_document_in_the_ledger_is_not_written(main: Path) -> None:
    first = payment(5, ALICE, date(2026, 1, 15), "1000.00", "INV-000001")
    Ledger(main, CHART).post([first])
    again = replace(first, key="payment:5:v2", paid_on=date(2026, 1, 16), amount=D("999.00"))
    assert Ledger(main, CHART).post([again]) == [
        PostResult("payment:5:v2", True, external_id="already in the ledger")
    ]
    [only] = transactions(_load_clean(main))
    assert only.date == date(2026, 1, 15)


def test_two_ledgers_writing_in_the_same_second_lose_nothing(
    main: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batch files are named after the second (UTC), the process and a counter of the instance:
    an instance made later in the same process and second (a scheduler's next cycle, a CLI
    command run by the sync engine) must not replace the files of the one before."""
    frozen = time.time_ns()
    monkeypatch.setattr(ledger_files, "time", SimpleNamespace(time_ns=lambda: frozen))
    docs = scenario()
    Ledger(main, CHART).post(docs[:6])  # the chart's accounts, then January's first documents
    Ledger(main, CHART).post(docs[6:])  # more of January's, and February's
    Ledger(main, CHART)  # the next cycle starts
    entries = _load_clean(main)
    assert document_counts(entries) == identities(docs)
    assert "Assets:Bank:USD" in _opened(entries)
    stamp = datetime.fromtimestamp(frozen / 1e9, UTC).strftime("%Y%m%dT%H%M%SZ")
    pid = os.getpid()
    assert [str(path.relative_to(main.parent)) for path in batch_files(main)] == [
        f"ledger.d/2000/01/{stamp}-{pid}-000001.beancount",
        f"ledger.d/2026/01/{stamp}-{pid}-000001.beancount",
        f"ledger.d/2026/01/{stamp}-{pid}-000002.beancount",
        f"ledger.d/2026/02/{stamp}-{pid}-000002.beancount",
    ]


def test_a_failed_write_can_be_retried_by_the_same_ledger(
    main: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk refuses the first batch (full); the same instance posts it again later: the
    accounts it had to open must be opened by the batch that is written."""
    ledger = Ledger(main, CHART)
    docs = scenario()
    real_fsync = os.fsync
    failures = [OSError(28, "No space left on device")]

    def fsync(fd: int) -> None:
        if failures:
            raise failures.pop()
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    try:
        results = ledger.post(docs)
    except OSError:
        pass
    else:  # refusing the batch with retriable results is fine too
        assert all(not result.ok and result.retriable for result in results)
    assert document_counts(_load_clean(main)) == {}
    results = ledger.post(docs)
    assert all(result.ok for result in results)
    entries = _load_clean(main)
    assert document_counts(entries) == identities(docs)


# -- files by month ----------------------------------------------------------------------------


def _dates_and_opens(path: Path) -> tuple[set[str], list[str]]:
    """The months a batch file's transactions are dated in, and the accounts it opens."""
    entries, errors, _ = parser.parse_file(str(path))
    assert errors == []
    months = {e.date.strftime("%Y-%m") for e in entries if isinstance(e, data.Transaction)}
    return months, [e.account for e in entries if isinstance(e, data.Open)]


def test_a_batch_of_two_months_is_a_file_per_month_the_accounts_in_the_first(main: Path) -> None:
    ledger = Ledger(main, CHART)
    before = batch_files(main)
    docs = scenario()
    results = ledger.post(docs)
    january, february = [path for path in batch_files(main) if path not in before]
    assert [str(path.parent.relative_to(main.parent)) for path in (january, february)] == [
        "ledger.d/2026/01",
        "ledger.d/2026/02",
    ]
    assert _dates_and_opens(january) == (
        {"2026-01"},
        [
            ALICE_AR,
            "Liabilities:SalesTax:US-CA:7-25",
            MULLER_AR,
            "Assets:Bank:EUR",
            "Liabilities:SalesTax:DE:19",
            "Liabilities:SalesTax:DE:7",
            TANAKA_AR,
            "Assets:Bank:JPY",
            "Liabilities:SalesTax:JP:10",
        ],
    )
    assert _dates_and_opens(february) == ({"2026-02"}, [])
    assert february.read_text(encoding="utf-8").endswith("\n\n; end of batch\n")
    assert [result.external_id for result in results] == [str(january)] * 9 + [str(february)] * 6
    assert document_counts(_load_clean(main)) == identities(docs)


def test_accounts_opened_alone_go_to_the_month_of_their_opening_date(main: Path) -> None:
    ledger = Ledger(main, Chart(open_date=date(2019, 7, 1)))
    ledger.upsert_customers([ALICE])
    assert [str(path.relative_to(main.parent)).rsplit("/", 1)[0] for path in batch_files(main)] == [
        "ledger.d/2019/07",  # the chart's accounts
        "ledger.d/2019/07",  # Alice's receivable
    ]


def test_a_failed_write_of_the_second_month_keeps_the_first(
    main: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk refuses February's file after January's was written: January's documents are
    done, February's are tried again and written alone, with no account opened twice."""
    ledger = Ledger(main, CHART)
    docs = scenario()
    real_fsync = os.fsync
    calls = itertools.count(1)

    def fsync(fd: int) -> None:
        if next(calls) == 3:  # January: the file, its folder; then February's file
            raise OSError(28, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    results = ledger.post(docs)
    [january] = {result.external_id for result in results[:9]}
    assert results[:9] == [PostResult(doc.key, True, external_id=january) for doc in docs[:9]]
    assert results[9:] == [
        PostResult(doc.key, False, error="[Errno 28] No space left on device", retriable=True)
        for doc in docs[9:]
    ]
    assert document_counts(_load_clean(main)) == identities(docs[:9])
    again = ledger.post(docs)
    [february] = {result.external_id for result in again[9:]}
    assert Path(february).parent.name == "02"
    assert _dates_and_opens(Path(february)) == ({"2026-02"}, [])
    assert document_counts(_load_clean(main)) == identities(docs)


# -- lost and damaged files ------------------------------------------------------------------


def _posted(main: Path) -> tuple[Ledger, Path, Path]:
    """A ledger holding the scenario: its January and February files."""
    ledger = Ledger(main, CHART)
    results = ledger.post(scenario())
    return ledger, Path(results[0].external_id or ""), Path(results[-1].external_id or "")


def test_a_deleted_file_is_noticed_and_written_again_by_the_same_instance(main: Path) -> None:
    ledger, january, _ = _posted(main)
    january.unlink()
    assert ledger.refresh() == []
    docs = scenario()
    assert ledger.documents == set(identities(docs[9:]))
    results = ledger.post(docs)
    [again] = {result.external_id for result in results[:9]}
    assert again != str(january)
    assert results[9:] == [
        PostResult(doc.key, True, external_id="already in the ledger") for doc in docs[9:]
    ]
    entries = _load_clean(main)  # the receivables and tax accounts are open again, once
    assert document_counts(entries) == identities(docs)
    assert balances(entries) == FEB


def test_a_deleted_chart_file_is_opened_again_by_heal(main: Path) -> None:
    ledger, _, _ = _posted(main)
    [chart_file] = [path for path in batch_files(main) if path.parent.name == "01"][:1]
    assert chart_file.parent.parent.name == "2000"
    chart_file.unlink()
    assert ledger.heal() == {}
    [again] = [path for path in batch_files(main) if path.parent.parent.name == "2000"]
    assert again.read_text(encoding="utf-8") == CHART_OPENS
    _load_clean(main)


def _damage(path: Path, how: str) -> int:
    """Spoil a batch file as a disk, a copy or a hand would; the line its problem is on."""
    raw = path.read_bytes()
    if how == "deleted half":
        path.write_bytes(raw[: len(raw) // 2])
        return raw[: len(raw) // 2].count(b"\n") + 1
    if how == "non-UTF-8 byte":
        at = raw.index(b"Alice Inc.")
        path.write_bytes(raw[:at] + b"Alice Inc\xe9" + raw[at + len("Alice Inc.") :])
        return raw[:at].count(b"\n") + 1
    at = raw.index(b"1608.75 USD")  # a syntax error: the currency twice
    path.write_bytes(raw[:at] + b"1608.75 USD USD" + raw[at + len("1608.75 USD") :])
    return raw[:at].count(b"\n") + 1


PROBLEMS = {
    "deleted half": "cut short: the batch's last line (; end of batch) is missing",
    "non-UTF-8 byte": "UnicodeDecodeError: 'utf-8' codec can't decode byte 0xe9 in position 9: "
    "unexpected end of data",
    "syntax error": "syntax error, unexpected CURRENCY, expecting end of file or EOL or ATAT or AT",
}


@pytest.mark.parametrize("how", sorted(PROBLEMS))
def test_a_damaged_file_of_ours_stops_writes_and_heal_moves_it_aside(main: Path, how: str) -> None:
    ledger, january, _ = _posted(main)
    line = _damage(january, how)
    damaged = january.read_bytes()
    problem = f"{january}:{line}: {PROBLEMS[how]}"

    assert [str(found) for found in ledger.refresh()] == [problem]
    with pytest.raises(LedgerFileError) as caught:
        ledger.post(scenario())
    assert str(caught.value) == problem
    with pytest.raises(LedgerFileError):
        ledger.payments(None)
    assert [str(found) for found in Ledger(main, CHART).problems] == [problem]  # no traceback

    aside = january.with_name(january.name + ".damaged")
    assert ledger.heal() == {str(january): f"{problem}; moved aside to {aside.name}"}
    assert not january.exists()
    assert aside.read_bytes() == damaged  # nothing is lost: beside the file it was
    assert ledger.problems == []
    docs = scenario()
    assert ledger.documents == set(identities(docs[9:]))  # January's are missing now
    ledger.post(docs)
    entries = _load_clean(main)
    assert document_counts(entries) == identities(docs)
    assert balances(entries) == FEB


def test_a_file_finance_wrote_is_never_moved(main: Path) -> None:
    """A file of finance's (the main file, or one of their own in the folder) that does not
    load stops the ledger until a person fixes it: its entries are theirs alone."""
    ledger, _, _ = _posted(main)
    theirs = main.parent / "ledger.d" / "2026" / "01" / "adjustments.beancount"
    theirs.write_text('2026-01-31 * "Rounding"\n  Assets:Bank  0.01 USD USD\n', encoding="utf-8")
    problem = (
        f"{theirs}:2: syntax error, unexpected CURRENCY, expecting end of file or EOL or ATAT or AT"
    )
    with pytest.raises(LedgerFileError) as caught:
        ledger.heal()
    assert str(caught.value) == problem
    assert theirs.exists()
    theirs.unlink()
    main.write_bytes(main.read_bytes() + b'2026-02-01 note Assets:Bank "caf\xe9"\n')
    with pytest.raises(LedgerFileError) as caught:
        ledger.heal()
    assert str(caught.value) == (
        f"{main}:10: UnicodeDecodeError: 'utf-8' codec can't decode byte 0xe9 in position 3: "
        "unexpected end of data"
    )
    assert main.read_bytes().endswith(b'"caf\xe9"\n')


# -- upserting customers -------------------------------------------------------------------


def test_upsert_customers_opens_their_receivables_once(main: Path) -> None:
    ledger = Ledger(main, CHART)
    assert ledger.upsert_customers([ALICE, MULLER, TANAKA]) == [
        PostResult("customer:1", True, external_id=ALICE_AR),
        PostResult("customer:2", True, external_id=MULLER_AR),
        PostResult("customer:3", True, external_id=TANAKA_AR),
    ]
    before = _snapshot(main)
    ledger.upsert_customers([ALICE])
    Ledger(main, CHART).upsert_customers([ALICE, MULLER, TANAKA])
    assert _snapshot(main) == before
    entries = _load_clean(main)
    opens = {entry.account: entry.meta for entry in entries if isinstance(entry, data.Open)}
    assert opens[MULLER_AR]["customer_id"] == "2"
    assert opens[MULLER_AR]["name"] == "Bäckerei Müller GmbH"


def test_a_renamed_customer_keeps_its_receivable(main: Path) -> None:
    Ledger(main, CHART).post(scenario()[:1])
    renamed = replace(ALICE, name="Alice Holdings")
    late = payment(50, renamed, date(2026, 3, 1), "608.75", "INV-000001")
    assert Ledger(main, CHART).upsert_customers([renamed]) == [
        PostResult("customer:1", True, external_id=ALICE_AR)
    ]
    Ledger(main, CHART).post([late])
    entries = _load_clean(main)
    assert balances(entries)[(ALICE_AR, "USD")] == D("1000.00")
    assert not any(
        account.startswith("Assets:AccountsReceivable:Alice-Holdings")
        for account in _opened(entries)
    )


# -- a document posted twice --------------------------------------------------------------


def _transaction_text(path: Path, document_id: str) -> str:
    """The text of the transaction with ``document_id`` in the batch file ``path``."""
    for block in path.read_text(encoding="utf-8").split("\n\n"):
        if f'  document_id: "{document_id}"' in block:
            return block.rstrip("\n") + "\n"
    raise AssertionError(f"no document {document_id} in {path}")


def _duplicates(main: Path) -> list[Any]:
    entries = _load_clean(main)  # Beancount itself has nothing to say
    _, errors = unique_document_ids(entries, {})
    return errors


def test_a_document_copied_by_hand_is_found(main: Path) -> None:
    results = Ledger(main, CHART).post(scenario())
    written = Path(results[0].external_id or "")
    copy = _transaction_text(written, "1")
    line = _append(main, "\n" + copy)
    [error] = _duplicates(main)
    assert isinstance(error, DuplicateDocumentError)
    original_line = written.read_text(encoding="utf-8").split("\n").index(copy.splitlines()[0]) + 1
    places = {f"{written}:{original_line}", f"{main}:{line + 1}"}
    where = f"{error.source['filename']}:{error.source['lineno']}"
    assert where in places
    assert error.message == f"invoice 1 is already in the ledger at {(places - {where}).pop()}"


def test_a_document_written_twice_with_another_narration_is_found(main: Path) -> None:
    Ledger(main, CHART).post(scenario())
    _append(
        main,
        '2026-01-16 * "Alice" "typed again"\n'
        '  document_type: "payment"\n'
        '  document_id: "5"\n'
        "  Assets:Bank:USD                        1.00 USD\n"
        f"  {ALICE_AR}         -1.00 USD\n",
    )
    assert [error.message.split(" at ")[0] for error in _duplicates(main)] == [
        "payment 5 is already in the ledger"
    ]


def test_the_same_id_for_different_document_types_is_no_duplicate(main: Path) -> None:
    Ledger(main, CHART).post(scenario())
    _append(
        main,
        '2026-01-16 * "Alice" "an adjustment numbered like invoice 1"\n'
        '  document_type: "adjustment"\n'
        '  document_id: "1"\n'
        "  Assets:Bank:USD                        1.00 USD\n"
        "  Income:OneTime                        -1.00 USD\n",
    )
    assert _duplicates(main) == []


# -- a plain Beancount and Fava ----------------------------------------------------------------


def test_bean_check_and_fava_without_the_connector_installed(main: Path) -> None:
    """A Python that cannot import the connector loads the ledger: no plugin of ours."""
    Ledger(main, CHART).post(scenario())
    assert plain_beancount(main, "bean-check") == (0, "")
    assert plain_beancount(main, "fava") == (0, f"{len(_load_clean(main))} entries\n")


def test_the_main_file_of_an_earlier_version_fails_there_before_its_upgrade(main: Path) -> None:
    """What finance met: the plugin line of an earlier version, in a plain Beancount."""
    main.write_text(OLD_MAIN_TEXT, encoding="utf-8")
    (main.parent / "ledger.d" / "2026-01").mkdir(parents=True)
    (main.parent / "ledger.d" / "2026-01" / OLD_NAME).write_text(OLD_BATCH, encoding="utf-8")
    code, output = plain_beancount(main, "bean-check")
    assert code == 1
    assert "ModuleNotFoundError: No module named 'connector'" in output


# A ledger of an earlier version: the plugin line, the include of one folder per month of
# writing, and a batch in it (named after the nanosecond, process and counter) holding the chart,
# Alice's receivable and her invoice.
OLD_MAIN_TEXT = f"""\
; The billing connector's ledger. Open it with: fava ledger.beancount
; The connector writes its entries to ledger.d/ and never rewrites this file:
; add your own entries (payments, adjustments) below.

option "title" "Billing"
option "operating_currency" "USD"
{PLUGIN_LINE}
{LEGACY_INCLUDE_LINE}

2026-01-20 * "Alice Inc." "Wire" ^INV-000001
  Assets:Bank                              100.00 USD
  {ALICE_AR}                   -100.00 USD
"""
OLD_NAME = "1768000000000000000-4242-000001.beancount"
# An earlier version opened one bank account for every currency, and no unbilled receivable.
OLD_CHART_OPENS = (
    CHART_OPENS.removesuffix(END)
    .replace("open Assets:Bank:USD USD\n", "open Assets:Bank\n")
    .replace("2000-01-01 open Assets:UnbilledReceivable\n\n", "")
)
OLD_BATCH = OLD_CHART_OPENS + "\n" + ALICE_BATCH.split("\n2026-01-15 ")[0]


def test_a_ledger_of_an_earlier_version_is_upgraded_in_place(main: Path) -> None:
    main.write_text(OLD_MAIN_TEXT, encoding="utf-8")
    old = main.parent / "ledger.d" / "2026-01" / OLD_NAME
    old.parent.mkdir(parents=True)
    old.write_text(OLD_BATCH, encoding="utf-8")

    ledger = Ledger(main, CHART)

    # our two lines changed in place, every other byte as finance left it
    assert main.read_text(encoding="utf-8") == OLD_MAIN_TEXT.replace(
        PLUGIN_LINE, RETIRED_PLUGIN_LINE
    ).replace(LEGACY_INCLUDE_LINE, INCLUDE_LINE)
    assert old.read_text(encoding="utf-8") == OLD_BATCH  # the old files stay where they are
    assert plain_beancount(main, "bean-check") == (0, "")
    assert ledger.problems == []
    # what the old files hold is known: only the new documents are written, in the new layout
    docs = scenario()
    results = ledger.post(docs)
    assert results[0] == PostResult(docs[0].key, True, external_id="already in the ledger")
    assert {Path(result.external_id or "").parent for result in results[1:]} == {
        main.parent / "ledger.d" / "2026" / "01",
        main.parent / "ledger.d" / "2026" / "02",
    }
    entries = _load_clean(main)
    assert document_counts(entries) == identities(docs)
    assert [e.meta["filename"] for e in entries if getattr(e, "account", "") == ALICE_AR] == [
        str(old)
    ]  # Alice's receivable is not opened twice
    assert plain_beancount(main, "bean-check") == (0, "")
    assert plain_beancount(main, "fava") == (0, f"{len(entries)} entries\n")
    # and nothing changes the next time
    before = _snapshot(main)
    Ledger(main, CHART).post(docs)
    assert _snapshot(main) == before


# -- balances ----------------------------------------------------------------------------------

JAN = {
    (ALICE_AR, "USD"): D("608.75"),
    (TANAKA_AR, "JPY"): D("6500"),
    ("Liabilities:DeferredRevenue", "USD"): D("-800.00"),
    ("Liabilities:DeferredRevenue", "EUR"): D("-29.03"),
    ("Liabilities:DeferredRevenue", "JPY"): D("-8000"),
    ("Income:Subscriptions", "USD"): D("-400.00"),
    ("Income:Subscriptions", "EUR"): D("-70.97"),
    ("Income:Subscriptions", "JPY"): D("-4000"),
    ("Income:Setup", "USD"): D("-300.00"),
    ("Income:Setup", "JPY"): D("-3000"),
    ("Income:Services", "EUR"): D("-50.00"),
    ("Liabilities:SalesTax:US-CA:7-25", "USD"): D("-108.75"),
    ("Liabilities:SalesTax:DE:19", "EUR"): D("-19.00"),
    ("Liabilities:SalesTax:DE:7", "EUR"): D("-3.50"),
    ("Liabilities:SalesTax:JP:10", "JPY"): D("-1500"),
    ("Assets:Bank:USD", "USD"): D("1000.00"),
    ("Assets:Bank:EUR", "EUR"): D("172.50"),
    ("Assets:Bank:JPY", "JPY"): D("10000"),
}
# Müller's platform is credited in full: its receivable, deferred and recognized revenue and
# its 19 % tax are back to zero; the refund leaves the bank
FEB = {
    (ALICE_AR, "USD"): D("608.75"),
    (TANAKA_AR, "JPY"): D("6500"),
    ("Liabilities:DeferredRevenue", "USD"): D("-400.00"),
    ("Liabilities:DeferredRevenue", "JPY"): D("-4000"),
    ("Income:Subscriptions", "USD"): D("-800.00"),
    ("Income:Subscriptions", "JPY"): D("-8000"),
    ("Income:Setup", "USD"): D("-300.00"),
    ("Income:Setup", "JPY"): D("-3000"),
    ("Income:Services", "EUR"): D("-50.00"),
    ("Liabilities:SalesTax:US-CA:7-25", "USD"): D("-108.75"),
    ("Liabilities:SalesTax:DE:7", "EUR"): D("-3.50"),
    ("Liabilities:SalesTax:JP:10", "JPY"): D("-1500"),
    ("Assets:Bank:USD", "USD"): D("1000.00"),
    ("Assets:Bank:EUR", "EUR"): D("53.50"),
    ("Assets:Bank:JPY", "JPY"): D("10000"),
}


@pytest.fixture
def loaded(main: Path) -> list[Any]:
    docs = scenario()
    Ledger(main, CHART).post(docs[:9])  # January's documents
    Ledger(main, CHART).post(docs[9:])  # February's, by a new instance
    return _load_clean(main)


def test_balances_at_the_end_of_january(loaded: list[Any]) -> None:
    assert balances(loaded, end=date(2026, 1, 31)) == JAN


def test_balances_at_the_end_of_february(loaded: list[Any]) -> None:
    assert balances(loaded, end=date(2026, 2, 28)) == FEB
    assert balances(loaded) == FEB


def test_revenue_recognized_per_month(loaded: list[Any]) -> None:
    def recognized(start: date, end: date) -> dict[tuple[str, str], Decimal]:
        return {
            key: value
            for key, value in balances(loaded, start=start, end=end).items()
            if key[0] in ("Income:Subscriptions", "Liabilities:DeferredRevenue")
        }

    assert recognized(date(2026, 1, 1), date(2026, 1, 31)) == {
        ("Liabilities:DeferredRevenue", "USD"): D("-800.00"),
        ("Liabilities:DeferredRevenue", "EUR"): D("-29.03"),
        ("Liabilities:DeferredRevenue", "JPY"): D("-8000"),
        ("Income:Subscriptions", "USD"): D("-400.00"),
        ("Income:Subscriptions", "EUR"): D("-70.97"),
        ("Income:Subscriptions", "JPY"): D("-4000"),
    }
    # February: 400.00 and 4000 yen recognized; Müller's credit note takes back the 70.97
    # recognized in January and the 29.03 still deferred, and its February journal cancels
    # the invoice's
    assert recognized(date(2026, 2, 1), date(2026, 2, 28)) == {
        ("Liabilities:DeferredRevenue", "USD"): D("400.00"),
        ("Liabilities:DeferredRevenue", "EUR"): D("29.03"),
        ("Liabilities:DeferredRevenue", "JPY"): D("4000"),
        ("Income:Subscriptions", "USD"): D("-400.00"),
        ("Income:Subscriptions", "EUR"): D("70.97"),
        ("Income:Subscriptions", "JPY"): D("-4000"),
    }


def test_receivable_per_customer_with_beancount_realization(loaded: list[Any]) -> None:
    root = realization.realize(loaded)
    receivables = realization.get(root, "Assets:AccountsReceivable")
    per_customer = {
        name: {pos.units.currency: pos.units.number for pos in child.balance}
        for name, child in receivables.items()
    }
    assert per_customer == {
        "Alice-Inc-1": {"USD": D("608.75")},
        "Backerei-Muller-GmbH-2": {},
        "Tanaka-3": {"JPY": D("6500")},
    }
    tax = realization.get(root, "Liabilities:SalesTax")
    assert {
        child.account: {pos.units.currency: pos.units.number for pos in child.balance}
        for child in realization.iter_children(tax, leaf_only=True)
    } == {
        "Liabilities:SalesTax:US-CA:7-25": {"USD": D("-108.75")},
        "Liabilities:SalesTax:DE:19": {},
        "Liabilities:SalesTax:DE:7": {"EUR": D("-3.50")},
        "Liabilities:SalesTax:JP:10": {"JPY": D("-1500")},
    }


def test_yen_are_whole_in_the_ledger(loaded: list[Any]) -> None:
    yen = [
        posting.units.number
        for entry in transactions(loaded)
        for posting in entry.postings
        if posting.units.currency == "JPY"
    ]
    assert len(yen) == 10  # invoice 4, payment 2, two journals 2 each
    assert all(number.as_tuple().exponent == 0 for number in yen)
    assert all(str(value) == str(int(value)) for key, value in FEB.items() if key[1] == "JPY")


def test_every_document_is_one_transaction_with_its_links(loaded: list[Any]) -> None:
    docs = scenario()
    assert document_counts(loaded) == identities(docs)
    linked = {
        (entry.meta["document_type"], entry.meta["document_id"]): entry.links
        for entry in transactions(loaded)
    }
    assert linked[("credit_note", "4")] == {"CN-000001", "INV-000002"}
    assert linked[("refund", "8")] == {"INV-000002"}
    assert linked[("revenue", "13")] == {"CN-000001", "INV-000002"}
    assert {key for key, links in linked.items() if "INV-000002" in links} == {
        ("invoice", "2"),
        ("credit_note", "4"),
        ("payment", "6"),
        ("refund", "8"),
        ("revenue", "11"),
        ("revenue", "12"),
        ("revenue", "13"),
    }


# -- payments recorded by hand -----------------------------------------------------------------


def test_a_hand_payment_becomes_an_external_payment(main: Path) -> None:
    ledger = Ledger(main, CHART)
    ledger.post(scenario())
    line = _append(
        main,
        "\n"
        '2026-02-10 * "Alice Inc." "Wire from Alice" ^INV-000001\n'
        "  Assets:Bank:USD                          608.75 USD\n"
        f"  {ALICE_AR}                   -608.75 USD\n",
    )
    expected = [
        ExternalPayment(
            reference="ledger:2026-02-10:INV-000001:608.75:USD:1",
            invoice_number="INV-000001",
            amount=D("608.75"),
            currency="USD",
            date=date(2026, 2, 10),
            where=f"{main}:{line + 1}",
        )
    ]
    assert ledger.payments(None) == (expected, None)
    assert ledger.payments("cursor-1") == (expected, "cursor-1")
    assert Ledger(main, CHART).payments(None) == (expected, None)
    entries = _load_clean(main)
    assert balances(entries)[("Assets:Bank:USD", "USD")] == D("1608.75")
    assert (ALICE_AR, "USD") not in balances(entries)


def test_a_hand_payment_in_yen(main: Path) -> None:
    ledger = Ledger(main, CHART)
    ledger.post(scenario())
    line = _append(
        main,
        '2026-02-20 * "Tanaka" "Furikomi" ^INV-000003\n'
        "  Assets:Bank:JPY                6500 JPY\n"
        f"  {TANAKA_AR}     -6500 JPY\n",
    )
    assert ledger.payments(None) == (
        [
            ExternalPayment(
                reference="ledger:2026-02-20:INV-000003:6500:JPY:1",
                invoice_number="INV-000003",
                amount=D("6500"),
                currency="JPY",
                date=date(2026, 2, 20),
                where=f"{main}:{line}",
            )
        ],
        None,
    )


def test_connector_documents_and_other_transactions_are_not_payments(main: Path) -> None:
    ledger = Ledger(main, CHART)
    ledger.post(scenario())
    _append(
        main,
        # a connector payment copied with its metadata (another id: not a duplicate)
        '2026-02-11 * "Alice Inc." "Payment for INV-000001" ^INV-000001\n'
        '  document_type: "payment"\n'
        '  document_id: "99"\n'
        "  Assets:Bank:USD                          10.00 USD\n"
        f"  {ALICE_AR}                   -10.00 USD\n"
        "\n"
        # no link: not applied, but listed for a person to link it
        '2026-02-12 * "Alice Inc." "Unlinked wire"\n'
        "  Assets:Bank:USD                          11.00 USD\n"
        f"  {ALICE_AR}                   -11.00 USD\n"
        "\n"
        # debits the receivable: an adjustment, not a payment
        '2026-02-13 * "Alice Inc." "Late fee" ^INV-000001\n'
        f"  {ALICE_AR}                    12.00 USD\n"
        "  Income:OneTime                          -12.00 USD\n"
        "\n"
        # linked, but no receivable
        '2026-02-14 * "Bank" "Fees" ^INV-000001\n'
        "  Assets:Bank:USD                          -1.00 USD\n"
        "  Income:OneTime                            1.00 USD\n",
    )
    _load_clean(main)
    found, cursor = ledger.payments(None)
    assert cursor is None
    assert [(p.where.rsplit(":", 1)[1], p.amount, p.problem) for p in found] == [
        ("16", D("0"), "credits a receivable account but is linked to no invoice (add ^INV-…)")
    ]


def test_two_identical_hand_payments_get_distinct_references(main: Path) -> None:
    ledger = Ledger(main, CHART)
    ledger.post(scenario())
    text = (
        '2026-02-10 * "Alice Inc." "Cheque" ^INV-000001\n'
        "  Assets:Bank:USD                          100.00 USD\n"
        f"  {ALICE_AR}                   -100.00 USD\n"
    )
    first = _append(main, text)
    second = _append(main, "\n" + text) + 1
    payments, _ = ledger.payments(None)
    assert payments == [
        ExternalPayment(
            reference=f"ledger:2026-02-10:INV-000001:100.00:USD:{n}",
            invoice_number="INV-000001",
            amount=D("100.00"),
            currency="USD",
            date=date(2026, 2, 10),
            where=f"{main}:{line}",
        )
        for n, line in ((1, first), (2, second))
    ]
    assert ledger.payments(None)[0] == payments  # stable


def test_a_hand_payment_with_the_receivable_amount_left_out(main: Path) -> None:
    """Beancount fills in the one posting written without an amount, as finance often does."""
    ledger = Ledger(main, CHART)
    ledger.post(scenario())
    line = _append(
        main,
        '2026-02-10 * "Alice Inc." "Wire" ^INV-000001\n'
        "  Assets:Bank:USD                          20.00 USD\n"
        f"  {ALICE_AR}\n",
    )
    _load_clean(main)
    assert ledger.payments(None) == (
        [
            ExternalPayment(
                reference="ledger:2026-02-10:INV-000001:20.00:USD:1",
                invoice_number="INV-000001",
                amount=D("20.00"),
                currency="USD",
                date=date(2026, 2, 10),
                where=f"{main}:{line}",
            )
        ],
        None,
    )


def test_a_syntax_error_in_the_main_file_is_named_with_its_line(main: Path) -> None:
    ledger = Ledger(main, CHART)
    ledger.post(scenario())
    line = _append(
        main,
        '2026-02-10 * "Alice Inc." "Wire" ^INV-000001\n'
        "  Assets:Bank                              20.00 USD USD\n"
        f"  {ALICE_AR}                    -20.00 USD\n",
    )
    with pytest.raises(LedgerFileError) as caught:
        ledger.payments(None)
    message = str(caught.value)
    assert message.startswith(f"{main}:{line + 1}: ")
    assert "syntax error" in message


def test_ledger_module_names(main: Path) -> None:
    ledger = Ledger(main, CHART)
    assert (ledger.name, ledger.max_batch) == ("ledger", 1000)
    assert ledger_module.PLUGIN == "connector.accounting.beancount_plugin"
    assert ledger.directory == main.parent / "ledger.d"


# -- tax per jurisdiction and rate, a bank account per currency --------------------------------

DUPONT = Customer(21, "Dupont SAS", "FR", "EUR", tax_id="FR40303265045")
WINDSOR = Customer(22, "Windsor Ltd", "GB", "GBP")
LAFAYETTE = Customer(23, "Lafayette Inc", "FR", "USD")
DUPONT_AR = "Assets:AccountsReceivable:Dupont-SAS-21"
WINDSOR_AR = "Assets:AccountsReceivable:Windsor-Ltd-22"
LAFAYETTE_AR = "Assets:AccountsReceivable:Lafayette-Inc-23"


def _at_20(document_id: int, customer: Customer, tax: Tax) -> Invoice:
    return invoice(
        document_id,
        f"INV-{document_id:06d}",
        customer,
        date(2026, 3, 1),
        lines=[Line("SETUP", None, False, D("100.00"), tax_rate=tax.rate)],
        taxes=[tax],
        total=str(D("100.00") + tax.amount),
    )


def test_french_and_british_tax_at_20_percent_never_share_an_account(main: Path) -> None:
    """French TVA in euros, UK VAT in pounds, French TVA billed in dollars and a reverse charge:
    each tax account holds one jurisdiction, rate and currency, and its ``open`` says which."""
    ledger = Ledger(main, CHART)
    ledger.post(
        [
            _at_20(41, DUPONT, Tax(D("20"), D("20.00"), "FR")),
            _at_20(42, WINDSOR, Tax(D("20"), D("20.00"), "GB")),
            _at_20(43, LAFAYETTE, Tax(D("20"), D("20.00"), "FR")),
            _at_20(44, DUPONT, Tax(D("0"), D("0.00"), "FR", reverse_charge=True)),
            payment(45, DUPONT, date(2026, 3, 20), "120.00", "INV-000041"),
            payment(46, WINDSOR, date(2026, 3, 21), "120.00", "INV-000042"),
        ]
    )
    entries = _load_clean(main)
    assert {
        key: value for key, value in balances(entries).items() if key[0].startswith("Liab")
    } == {
        ("Liabilities:SalesTax:FR:20", "EUR"): D("-20.00"),
        ("Liabilities:SalesTax:GB:20", "GBP"): D("-20.00"),
        ("Liabilities:SalesTax:FR:20:USD", "USD"): D("-20.00"),
    }
    assert balances(entries)[("Assets:Bank:EUR", "EUR")] == D("120.00")
    assert balances(entries)[("Assets:Bank:GBP", "GBP")] == D("120.00")
    assert balances(entries)[(DUPONT_AR, "EUR")] == D("100.00")  # the reverse-charged invoice
    constraints = {
        entry.account: entry.currencies
        for entry in entries
        if isinstance(entry, data.Open) and entry.account.startswith(("Liab", "Assets:Bank"))
    }
    assert constraints == {
        "Assets:Bank:USD": ["USD"],  # the operating currency's, from the start
        "Assets:Bank:EUR": ["EUR"],  # with the receivable of the first customer in euros
        "Assets:Bank:GBP": ["GBP"],
        "Liabilities:DeferredRevenue": None,
        "Liabilities:SalesTax:FR:20": ["EUR"],
        "Liabilities:SalesTax:GB:20": ["GBP"],
        "Liabilities:SalesTax:FR:20:USD": ["USD"],
    }
    bean_check = shutil.which("bean-check", path=str(Path(sys.executable).parent))
    assert bean_check is not None
    checked = subprocess.run([bean_check, str(main)], capture_output=True, text=True, check=False)
    assert (checked.returncode, checked.stdout, checked.stderr) == (0, "", "")


def test_a_tax_account_refuses_another_currency(main: Path) -> None:
    Ledger(main, CHART).post([_at_20(41, DUPONT, Tax(D("20"), D("20.00"), "FR"))])
    _append(
        main,
        '2026-03-02 * "typed by hand in the wrong currency"\n'
        "  Liabilities:SalesTax:FR:20     -1.00 USD\n"
        "  Assets:Bank:USD                 1.00 USD\n",
    )
    _, errors = _load(main)
    assert len(errors) == 1
    assert "Invalid currency USD for account 'Liabilities:SalesTax:FR:20'" in errors[0].message


def test_banks_named_in_the_chart_are_opened_at_start_with_their_currency(main: Path) -> None:
    chart = Chart(bank_by_currency={"EUR": "Assets:Sparkasse:Giro", "USD": "Assets:Chase"})
    ledger = Ledger(main, chart)
    ledger.post([payment(45, DUPONT, date(2026, 3, 20), "120.00", None)])
    entries = _load_clean(main)
    assert {
        entry.account: entry.currencies
        for entry in entries
        if isinstance(entry, data.Open)
        and entry.account.startswith("Assets:")
        and not entry.account.startswith(("Assets:AccountsReceivable", "Assets:Unbilled"))
    } == {"Assets:Chase": ["USD"], "Assets:Sparkasse:Giro": ["EUR"]}
    assert balances(entries)[("Assets:Sparkasse:Giro", "EUR")] == D("120.00")


@pytest.mark.parametrize(
    ("chart", "bank", "opens"),
    [
        (Chart(), "Assets:Bank:EUR", ""),
        (Chart(bank_by_currency={"EUR": "Assets:Sparkasse"}), "Assets:Sparkasse", ""),
        (Chart(), "Assets:Bank", "2000-01-01 open Assets:Bank\n"),
    ],
    ids=["per currency", "named in the chart", "finance's own"],
)
def test_hand_payments_to_any_bank_account_are_read_back(
    main: Path, chart: Chart, bank: str, opens: str
) -> None:
    ledger = Ledger(main, chart)
    ledger.post([_at_20(41, DUPONT, Tax(D("20"), D("20.00"), "FR"))])
    line = _append(
        main,
        opens + '2026-03-25 * "Dupont SAS" "Virement" ^INV-000041\n'
        f"  {bank}   120.00 EUR\n"
        f"  {DUPONT_AR}\n",
    )
    _load_clean(main)
    assert ledger.payments(None) == (
        [
            ExternalPayment(
                reference="ledger:2026-03-25:INV-000041:120.00:EUR:1",
                invoice_number="INV-000041",
                amount=D("120.00"),
                currency="EUR",
                date=date(2026, 3, 25),
                where=f"{main}:{line + bool(opens)}",
            )
        ],
        None,
    )
