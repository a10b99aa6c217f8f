"""The ledger's index (``ledger.d/.index``): a new :class:`Ledger` on the same files parses only
the files that are new or changed since the index was written, reads what the files hold only
when an operation needs it, and answers exactly as if it had parsed every file, whatever state
the index is in (missing, cut short, of another signature)."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from beancount import loader

from connector.accounting import ledger_files, ledger_index
from connector.accounting.base import ExternalPayment, PostResult
from connector.accounting.ledger import ALREADY, Ledger
from connector.errors import LedgerFileError
from tests.accounting.documents import (
    ALICE,
    ALICE_AR,
    CHART,
    MULLER,
    TANAKA,
    batch_files,
    document_counts,
    identities,
    index_differences,
    scenario,
)

SPLIT = 9  # scenario()[:9] is January's


@dataclass
class Reads:
    """The files parsed (``ledger_files.inspect``) and the index entries read, by name."""

    parsed: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)

    def clear(self) -> None:
        self.parsed.clear()
        self.held.clear()


@pytest.fixture
def main(tmp_path: Path) -> Path:
    return tmp_path / "ledger.beancount"


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch, main: Path) -> Iterator[Reads]:
    found = Reads()
    inspect, read_held = ledger_files.inspect, ledger_index.Index.read_held

    def counted_inspect(path: Path, receivable: str) -> ledger_files.Held | None:
        found.parsed.append(str(path.relative_to(main.parent)))
        return inspect(path, receivable)

    def counted_read_held(
        index: ledger_index.Index, key: str, signature: tuple[int, int, int]
    ) -> ledger_files.Held | None:
        found.held.append(key)
        return read_held(index, key, signature)

    monkeypatch.setattr(ledger_files, "inspect", counted_inspect)
    monkeypatch.setattr(ledger_index.Index, "read_held", counted_read_held)
    yield found


def _posted(main: Path) -> tuple[Path, Path]:
    """The scenario and three customers posted by one ledger: its January and February files."""
    ledger = Ledger(main, CHART)
    ledger.upsert_customers([ALICE, MULLER, TANAKA])
    results = ledger.post(scenario())
    assert all(result.ok for result in results)
    return Path(results[0].external_id or ""), Path(results[-1].external_id or "")


def _index(main: Path) -> Path:
    return main.parent / "ledger.d" / ".index"


def _tree(main: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in main.parent.rglob("*") if path.is_file()}


def _key(main: Path, path: Path) -> str:
    return str(path.relative_to(main.parent))


def _already(docs: list[Any]) -> list[PostResult]:
    return [PostResult(doc.key, True, external_id=ALREADY) for doc in docs]


def _everything(main: Path) -> list[str]:
    return [_key(main, path) for path in [main, *batch_files(main)]]


# -- a new ledger on the same files ----------------------------------------------------------


def test_a_new_ledger_parses_no_file_and_posts_nothing_twice(main: Path, reads: Reads) -> None:
    _posted(main)
    assert set(reads.parsed) == {"ledger.beancount"}  # made after the first look
    reads.clear()
    before = _tree(main)

    fresh = Ledger(main, CHART)
    assert reads.parsed == []
    docs = scenario()
    assert fresh.post(docs) == _already(docs)
    assert fresh.upsert_customers([ALICE])[0].external_id == ALICE_AR
    assert reads.parsed == []
    assert sorted(reads.held) == sorted(_everything(main))  # read once, when first needed
    assert fresh.documents == set(identities(docs))
    assert _tree(main) == before  # the index too: nothing new to list
    entries, errors, _ = loader.load_file(str(main))
    assert errors == []
    assert document_counts(entries) == identities(docs)


def test_the_index_holds_what_a_parse_of_each_file_finds(main: Path) -> None:
    _posted(main)
    assert index_differences(main) == []
    listing = ledger_index.Index(main.parent, main.parent / "ledger.d").read()
    assert sorted(listing.files) == sorted(_everything(main))


def test_the_idle_path_reads_nothing_the_files_hold(main: Path, reads: Reads) -> None:
    """Making the ledger and reading payments, nothing to post: no file parsed, no entry read;
    a payment finance adds to the main file costs a parse of the main file alone."""
    _posted(main)
    reads.clear()
    ledger = Ledger(main, CHART)
    assert ledger.payments(None) == ([], None)
    assert ledger.refresh() == []
    assert (reads.parsed, reads.held) == ([], [])

    text = main.read_text(encoding="utf-8")
    main.write_text(
        text + '\n2026-02-10 * "Alice Inc." "Wire" ^INV-000001\n'
        f"  Assets:Bank:USD  608.75 USD\n  {ALICE_AR}  -608.75 USD\n",
        encoding="utf-8",
    )
    [payment] = Ledger(main, CHART).payments(None)[0]
    assert isinstance(payment, ExternalPayment)
    assert payment.amount == Decimal("608.75")
    assert (reads.parsed, reads.held) == (["ledger.beancount"], [])
    reads.clear()
    Ledger(main, CHART).payments(None)  # listed now
    assert (reads.parsed, reads.held) == ([], [])


def test_deleting_the_index_costs_one_parse_of_each_file(main: Path, reads: Reads) -> None:
    _posted(main)
    shutil.rmtree(_index(main))
    reads.clear()
    fresh = Ledger(main, CHART)
    assert sorted(reads.parsed) == sorted(_everything(main))
    docs = scenario()
    assert fresh.post(docs) == _already(docs)
    assert index_differences(main) == []
    reads.clear()
    Ledger(main, CHART).post(docs)
    assert reads.parsed == []


# -- files changed, added or gone since the index was written ----------------------------------


def test_a_batch_file_edited_by_a_person_is_parsed_again(main: Path, reads: Reads) -> None:
    """A payment's id changed by hand: its document is missing, and is posted again."""
    january, _ = _posted(main)
    text = january.read_text(encoding="utf-8")
    january.write_text(text.replace('document_id: "5"', 'document_id: "55"'), encoding="utf-8")
    reads.clear()
    fresh = Ledger(main, CHART)
    assert reads.parsed == [_key(main, january)]
    docs = scenario()
    results = fresh.post(docs)
    assert [result.key for result in results if result.external_id != ALREADY] == ["payment:5:v1"]
    entries, errors, _ = loader.load_file(str(main))
    assert errors == []
    assert document_counts(entries) == identities(docs) + Counter({("payment", "55"): 1})
    assert index_differences(main) == []


def test_a_batch_file_damaged_by_a_person_is_reported_as_before(main: Path, reads: Reads) -> None:
    january, _ = _posted(main)
    raw = january.read_bytes()
    at = raw.index(b"1608.75 USD")
    january.write_bytes(raw[:at] + b"1608.75 USD USD" + raw[at + len("1608.75 USD") :])
    line = raw[:at].count(b"\n") + 1
    problem = (
        f"{january}:{line}: syntax error, unexpected CURRENCY, expecting end of file or EOL or "
        "ATAT or AT"
    )
    reads.clear()
    fresh = Ledger(main, CHART)
    assert [str(found) for found in fresh.problems] == [problem]
    with pytest.raises(LedgerFileError) as caught:
        fresh.post(scenario())
    assert str(caught.value) == problem
    with pytest.raises(LedgerFileError):
        fresh.payments(None)
    assert reads.parsed == [_key(main, january)]  # the problem, as last read
    listing = ledger_index.Index(main.parent, main.parent / "ledger.d").read()
    assert _key(main, january) not in listing.files  # never trusted from the index
    reads.clear()
    assert [str(found) for found in Ledger(main, CHART).problems] == [problem]
    assert reads.parsed == [_key(main, january)]  # parsed again by every new ledger

    Ledger(main, CHART).heal()
    docs = scenario()
    Ledger(main, CHART).post(docs)
    entries, errors, _ = loader.load_file(str(main))
    assert errors == []
    assert document_counts(entries) == identities(docs)
    assert index_differences(main) == []


def test_a_deleted_batch_file_is_noticed_by_a_new_ledger(main: Path, reads: Reads) -> None:
    january, _ = _posted(main)
    january.unlink()
    reads.clear()
    fresh = Ledger(main, CHART)
    docs = scenario()
    assert fresh.documents == set(identities(docs[SPLIT:]))
    assert reads.parsed == []
    results = fresh.post(docs)
    assert results[SPLIT:] == _already(docs[SPLIT:])
    entries, errors, _ = loader.load_file(str(main))
    assert errors == []
    assert document_counts(entries) == identities(docs)
    assert index_differences(main) == []


def test_a_deleted_chart_file_is_opened_again_by_a_new_ledger(main: Path) -> None:
    _posted(main)
    chart_file, customers = [path for path in batch_files(main) if "2000" in path.parts]
    chart_text = chart_file.read_text(encoding="utf-8")
    chart_file.unlink()
    Ledger(main, CHART)
    [again] = [path for path in batch_files(main) if "2000" in path.parts and path != customers]
    assert again.read_text(encoding="utf-8") == chart_text
    _, errors, _ = loader.load_file(str(main))
    assert errors == []


def test_files_written_by_another_ledger_meanwhile_are_read_from_the_index(
    main: Path, reads: Reads
) -> None:
    docs = scenario()
    first = Ledger(main, CHART)
    first.post(docs[:3])
    second = Ledger(main, CHART)
    second.post(docs[:SPLIT])
    reads.clear()
    assert first.post(docs)[:SPLIT] == _already(docs[:SPLIT])
    assert reads.parsed == []
    assert second.post(docs) == _already(docs)
    entries, _, _ = loader.load_file(str(main))
    assert document_counts(entries) == identities(docs)
    assert index_differences(main) == []


# -- an index that is wrong --------------------------------------------------------------------


def _cut(path: Path) -> None:
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])


LIST_DAMAGES = {
    "cut short": _cut,
    "not JSON": lambda path: path.write_bytes(b"\x00\xff garbage"),
    "another version": lambda path: path.write_text(
        path.read_text().replace('"version":1', '"version":99')
    ),
    "of another shape": lambda path: path.write_text('{"version":1,"files":[]}'),
    "gone": lambda path: path.unlink(),
}


@pytest.mark.parametrize("damage", sorted(LIST_DAMAGES))
def test_a_list_of_files_that_does_not_read_is_ignored(
    main: Path, reads: Reads, damage: str
) -> None:
    _posted(main)
    LIST_DAMAGES[damage](_index(main) / "files.json")
    reads.clear()
    fresh = Ledger(main, CHART)
    assert sorted(reads.parsed) == sorted(_everything(main))
    docs = scenario()
    assert fresh.post(docs) == _already(docs)
    assert index_differences(main) == []  # written again, whole


def _entry(main: Path, path: Path) -> Path:
    index = ledger_index.Index(main.parent, main.parent / "ledger.d")
    return index._held_path(_key(main, path))


def _resigned(path: Path) -> None:
    raw = json.loads(path.read_text())
    raw["signature"][1] += 1
    path.write_text(json.dumps(raw))


ENTRY_DAMAGES = {
    "cut short": _cut,
    "gone": lambda path: path.unlink(),
    "of another signature": _resigned,
}


@pytest.mark.parametrize("damage", sorted([*ENTRY_DAMAGES, "of another file"]))
def test_what_a_file_holds_is_parsed_when_its_entry_does_not_read(
    main: Path, reads: Reads, damage: str
) -> None:
    january, february = _posted(main)
    entry = _entry(main, january)
    if damage == "of another file":
        shutil.copy(_entry(main, february), entry)
    else:
        ENTRY_DAMAGES[damage](entry)
    reads.clear()
    fresh = Ledger(main, CHART)
    assert reads.parsed == []
    docs = scenario()
    assert fresh.post(docs) == _already(docs)
    assert reads.parsed == [_key(main, january)]
    assert fresh.documents == set(identities(docs))
    assert index_differences(main) == []  # its entry written again


def test_a_file_listed_with_another_signature_is_parsed(main: Path, reads: Reads) -> None:
    january, _ = _posted(main)
    listed = _index(main) / "files.json"
    raw = json.loads(listed.read_text())
    raw["files"][_key(main, january)][2] -= 1  # another modification time
    listed.write_text(json.dumps(raw))
    reads.clear()
    fresh = Ledger(main, CHART)
    assert reads.parsed == [_key(main, january)]
    docs = scenario()
    assert fresh.post(docs) == _already(docs)
    assert index_differences(main) == []


# -- Beancount and Fava --------------------------------------------------------------------------


def test_the_index_is_out_of_the_includes_reach(main: Path) -> None:
    _posted(main)
    index = _index(main)
    written = [path for path in index.rglob("*") if path.is_file()]
    assert written
    assert not [path for path in written if path.name.endswith(".beancount")]
    _, errors, options = loader.load_file(str(main))
    assert errors == []
    assert options["include"] == [str(main), *map(str, batch_files(main))]
    assert ledger_files.batch_files(main.parent / "ledger.d") == batch_files(main)
