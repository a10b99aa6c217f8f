"""The ledger's files: the main file of an earlier version brought up to date byte by byte,
the folder of an entry, the names of batch files, the set of documents a ledger holds."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from connector.accounting import ledger_files
from connector.accounting.ledger_files import (
    Identities,
    entry_folder,
    is_ours,
    month_folder,
    upgraded_main_file,
)

FOLDER = Path("/books/ledger.d")
PLUGIN = b'plugin "connector.accounting.beancount_plugin"'
RETIRED = (
    b'; plugin "connector.accounting.beancount_plugin"  ; retired: connector ledger check finds '
    b"a document posted twice"
)
OLD_INCLUDE = b'include "ledger.d/*/*.beancount"'
INCLUDE = b'include "ledger.d/**/*.beancount"'


def test_only_our_lines_change_whatever_else_the_file_holds() -> None:
    """Windows line endings, a byte that is not UTF-8 in finance's comment, a comment after
    our plugin line: every other byte stays."""
    before = (
        b"; Books of M\xfcller\r\n"
        b'option "title" "M\xc3\xbcller"\r\n'
        + PLUGIN
        + b"  ; added by the connector\r\n"
        + OLD_INCLUDE
        + b"\r\n"
        b"2000-01-01 open Assets:Bank\r\n"
    )
    after, changed = upgraded_main_file(before, FOLDER)
    assert changed
    assert after == (
        b"; Books of M\xfcller\r\n"
        b'option "title" "M\xc3\xbcller"\r\n'
        b"; " + PLUGIN + b"  ; added by the connector  ; retired: connector ledger check finds "
        b"a document posted twice\r\n" + INCLUDE + b"\r\n"
        b"2000-01-01 open Assets:Bank\r\n"
    )
    assert upgraded_main_file(after, FOLDER) == (after, False)


def test_a_file_with_both_includes_keeps_one() -> None:
    before = PLUGIN + b"\n" + OLD_INCLUDE + b"\n" + INCLUDE + b"\n"
    assert upgraded_main_file(before, FOLDER) == (
        RETIRED + b"\n; " + OLD_INCLUDE + b"\n" + INCLUDE + b"\n",
        True,
    )


def test_a_file_without_our_lines_gets_the_include_at_its_end() -> None:
    assert upgraded_main_file(b"; mine", FOLDER) == (b"; mine\n" + INCLUDE + b"\n", False)
    assert upgraded_main_file(b"; mine\n", FOLDER) == (b"; mine\n\n" + INCLUDE + b"\n", False)
    commented = b"; " + PLUGIN + b"\n"  # already a comment: left alone
    assert upgraded_main_file(commented, FOLDER) == (commented + b"\n" + INCLUDE + b"\n", False)


def test_an_entry_goes_to_the_folder_of_its_year_and_month() -> None:
    assert entry_folder('2026-03-31 * "A" "B"\n  x: "1"\n', "2000/01") == "2026/03"
    assert entry_folder("; no date\n", "2000/01") == "2000/01"
    assert month_folder(date(2019, 7, 1)) == "2019/07"


def test_batch_files_of_this_and_earlier_versions_are_ours_and_no_other() -> None:
    assert is_ours(Path("20260331T235900Z-4242-000001.beancount"))
    assert is_ours(Path("1768000000000000000-4242-000001.beancount"))  # ledger.d/YYYY-MM/
    assert not is_ours(Path("adjustments.beancount"))
    assert not is_ours(Path("20260331T235900Z-4242-000001.beancount.damaged"))


def test_the_documents_held_are_a_set_of_pairs_whatever_their_ids() -> None:
    pairs = {
        ("invoice", "1"),
        ("invoice", "42"),
        ("revenue", "42"),
        ("payment", "007"),  # not a number as the connector writes one: kept as it is
        ("payment", "P-7"),
        ("void", "\u00b2"),  # a digit, but no number
    }
    held = Identities([("invoice", "1")])
    held.update(Identities(pairs - {("invoice", "1")}))

    assert held == pairs and pairs == held
    assert len(held) == len(pairs) and set(held) == pairs
    assert ("payment", "7") not in held and ("payment", "007") in held
    assert ("credit_note", "42") not in held and ("invoice", "43") not in held
    assert ("invoice", 1) not in held and "invoice" not in held


def test_the_documents_held_keep_ids_however_far_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ledger_files._Bits, "SPAN", 64)  # a bitmap covers 64 ids at most
    numbers = [40, 41, 3, 47, 100, 0, 90, 7, 1_000_000, 102]  # down, up, and far beyond
    one_file = Identities(("invoice", str(number)) for number in numbers[:5])
    other_file = Identities(("invoice", str(number)) for number in numbers[5:])
    held = Identities()
    for part in (one_file, other_file, one_file):
        held.update(part)

    assert held == {("invoice", str(number)) for number in numbers}
    assert len(held) == len(numbers)
    assert all(("invoice", str(number)) not in held for number in (1, 8, 48, 99, 101, 999_999))
