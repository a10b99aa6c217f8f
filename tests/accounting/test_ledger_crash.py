"""Kill the ledger writer at every step of writing a file, then run the next cycle: every
document ends in the ledger exactly once, no file the main file includes is ever half-written,
and the temporary files a crash leaves behind are removed.

The writer runs in a subprocess (``sys.executable``) that builds a :class:`Ledger` and posts the
scenario in two batches (January, then February), with one step of its file writes replaced by
``os._exit(9)``: the process dies on the spot, no ``finally``, no buffers flushed. Writes of the
ledger's files are counted in the order they happen: 1 the chart's accounts, 2 the main file
(written last at start, so that its include always finds a file), 3 January's batch, 4
February's. A batch file is moved into place with a hard link (never over an existing file), the
main file with a rename; both count as the "rename" step.

Writes of the ledger's index (``ledger.d/.index``) are counted apart: after the main file, 1 what
the main file holds, 2 what the chart's batch holds, 3 the list of files; after January's batch,
4 what it holds, 5 the list; after February's, 6 and 7. A crash there costs the next cycle a
parse of the files the index lacks, never a document.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from beancount import loader
from beancount.parser import parser

from connector.accounting.base import PostResult
from connector.accounting.ledger import Ledger
from tests.accounting.documents import (
    CHART,
    balances,
    batch_files,
    document_counts,
    identities,
    index_differences,
    scenario,
)

ROOT = Path(__file__).resolve().parents[2]
CRASHED = 9
CHART_WRITE, MAIN, JANUARY, FEBRUARY = 1, 2, 3, 4
SPLIT = 9  # scenario()[:9] is January's batch

WRITER = r"""
import builtins
import io
import os
import sys
from pathlib import Path

from connector.accounting.ledger import Ledger
from tests.accounting.documents import CHART, scenario

main, target, step, kind = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
real_open, real_fsync, real_replace, real_link = io.open, os.fsync, os.replace, os.link
writes = 0
armed = False


def crash():
    os._exit(9)


class HalfWriter:
    # writes the first half of the text, makes sure it reaches the disk, and dies
    def __init__(self, handle):
        self.handle = handle

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.close()

    def write(self, text):
        self.handle.write(text[: len(text) // 2])
        self.handle.flush()
        real_fsync(self.handle.fileno())
        crash()

    def __getattr__(self, name):
        return getattr(self.handle, name)


def open_(file, mode="r", *args, **kwargs):
    global writes, armed
    handle = real_open(file, mode, *args, **kwargs)
    index = "/.index/" in str(file)  # counted apart from the ledger's own files
    if str(file).endswith(".tmp") and "w" in mode and index == (kind == "index"):
        writes += 1
        armed = writes == target
        if armed and step == "write":
            return HalfWriter(handle)
    return handle


def fsync(fd):
    if armed and step == "fsync":  # written and flushed, not yet on disk
        crash()
    real_fsync(fd)


def replace(source, destination, *args, **kwargs):
    if armed and step == "rename":  # on disk under its temporary name
        crash()
    real_replace(source, destination, *args, **kwargs)
    if armed and step == "dirsync":  # renamed, the directory not yet synced
        crash()


def link(source, destination, *args, **kwargs):
    if armed and step == "rename":  # on disk under its temporary name
        crash()
    real_link(source, destination, *args, **kwargs)
    if armed and step == "dirsync":  # in place, the directory not yet synced
        crash()


io.open = builtins.open = open_
os.fsync = fsync
os.replace = replace
os.link = link

ledger = Ledger(main, CHART)
documents = scenario()
ledger.post(documents[:9])
if step == "after" and target == 3:
    crash()
ledger.post(documents[9:])
if step == "after" and target == 4:
    crash()
sys.exit(3)  # the crash point was never reached
"""

MAIN_TEXT = """\
; The billing connector's ledger. Open it with: fava ledger.beancount
; The connector writes its entries to ledger.d/ (a folder per year and month) and never rewrites
; this file: add your own entries (payments, adjustments) below.
; Check it against the billing core with: connector ledger check

option "title" "Billing"
option "operating_currency" "USD"
include "ledger.d/**/*.beancount"

"""

STEPS = ("write", "fsync", "rename", "dirsync")
POINTS = [(target, step) for target in (CHART_WRITE, MAIN, JANUARY, FEBRUARY) for step in STEPS]
POINTS += [(JANUARY, "after"), (FEBRUARY, "after")]
# the index: what the chart's batch holds, the first list, January's entry and list, the last list
INDEX_POINTS = [(target, step) for target in (2, 3, 4, 5, 7) for step in STEPS]


def _crash(main: Path, target: int, step: str, kind: str = "ledger") -> None:
    """Run the writer until it dies at ``step`` of write number ``target`` (of the ledger's
    files, or of its index)."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    result = subprocess.run(
        [sys.executable, "-c", WRITER, str(main), str(target), step, kind],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == CRASHED, result.stdout + result.stderr


def _temporaries(directory: Path) -> list[Path]:
    return sorted(directory.rglob(".*.tmp"))


def _documents_written(target: int, step: str) -> int:
    """How many of the scenario's documents are durable after a crash at ``(target, step)``."""
    whole = step in ("dirsync", "after")
    if target == JANUARY:
        return SPLIT if whole else 0
    if target == FEBRUARY:
        return len(scenario()) if whole else SPLIT
    return 0


def _reference(tmp_path: Path) -> dict[tuple[str, str], object]:
    main = tmp_path / "reference" / "ledger.beancount"
    Ledger(main, CHART).post(scenario())
    entries, errors, _ = loader.load_file(str(main))
    assert errors == []
    return balances(entries)


def _check_after_crash(main: Path, target: int, step: str) -> list[str]:
    """What the crash left: never a half-written file the ledger reads, each batch whole or
    absent. Returns what Beancount reports on the ledger as the crash left it (it should be
    nothing: the ledger always passes bean-check), checked after the recovery."""
    if target == CHART_WRITE:  # nothing of the ledger yet but, at most, the chart's batch
        assert not main.exists()
        leftovers = _temporaries(main.parent)
        assert len(leftovers) == 1  # linked into place (dirsync) or not at all
        assert len(batch_files(main)) == (1 if step == "dirsync" else 0)
        return []
    if target == MAIN and step in ("write", "fsync", "rename"):
        assert not main.exists()
        assert [path.name for path in _temporaries(main.parent)] == [".ledger.beancount.tmp"]
        return []
    assert main.read_text(encoding="utf-8") == MAIN_TEXT
    for path in batch_files(main):
        _, errors, _ = parser.parse_file(str(path))
        assert errors == [], path
        assert path.read_text(encoding="utf-8").endswith("\n"), path
    entries, errors, _ = loader.load_file(str(main))
    assert document_counts(entries) == identities(scenario()[: _documents_written(target, step)])
    leftovers = _temporaries(main.parent)
    # A batch is linked into place, so its temporary name outlives the link until the writer
    # removes it (or the next start does, after a crash).
    if step in ("write", "fsync", "rename") or (step == "dirsync" and target != MAIN):
        assert len(leftovers) == 1
        assert leftovers[0].parent.parent.parent == main.parent / "ledger.d"  # ledger.d/YYYY/MM
    else:
        assert leftovers == []
    return [error.message for error in errors]


def _recover_and_check(main: Path, reference: dict[tuple[str, str], object]) -> None:
    """The next cycle: a new Ledger on the same files posts every document again."""
    docs = scenario()
    results = Ledger(main, CHART).post(docs)
    assert [(result.key, result.ok) for result in results] == [(doc.key, True) for doc in docs]
    assert _temporaries(main.parent) == []
    assert main.read_text(encoding="utf-8") == MAIN_TEXT
    entries, errors, _ = loader.load_file(str(main))
    assert [error.message for error in errors] == []
    assert document_counts(entries) == identities(docs)
    assert balances(entries) == reference
    # and the cycle after that has nothing left to do
    before = {path: path.read_bytes() for path in main.parent.rglob("*") if path.is_file()}
    assert Ledger(main, CHART).post(docs) == [
        PostResult(doc.key, True, external_id="already in the ledger") for doc in docs
    ]
    after = {path: path.read_bytes() for path in main.parent.rglob("*") if path.is_file()}
    assert after == before
    assert index_differences(main) == []


@pytest.mark.parametrize(("target", "step"), POINTS, ids=[f"{t}-{s}" for t, s in POINTS])
def test_crash_then_next_cycle(tmp_path: Path, target: int, step: str) -> None:
    main = tmp_path / "books" / "ledger.beancount"
    _crash(main, target, step)
    left = _check_after_crash(main, target, step)
    _recover_and_check(main, _reference(tmp_path))
    assert left == [], "the ledger as the crash left it does not pass bean-check"


@pytest.mark.parametrize(
    ("target", "step"), INDEX_POINTS, ids=[f"{t}-{s}" for t, s in INDEX_POINTS]
)
def test_crash_while_indexing_then_next_cycle(tmp_path: Path, target: int, step: str) -> None:
    """The ledger's files are whole and pass bean-check; the next cycle posts nothing twice."""
    main = tmp_path / "books" / "ledger.beancount"
    _crash(main, target, step, "index")
    assert main.read_text(encoding="utf-8") == MAIN_TEXT
    entries, errors, _ = loader.load_file(str(main))
    assert [error.message for error in errors] == []
    written = 0 if target <= 3 else SPLIT if target <= 5 else len(scenario())
    assert document_counts(entries) == identities(scenario()[:written])
    leftovers = _temporaries(main.parent)
    if step == "dirsync":  # renamed over the list, or into place beside it
        assert leftovers == []
    else:
        [leftover] = leftovers
        assert ".index" in leftover.parts
    _recover_and_check(main, _reference(tmp_path))


def test_half_written_batch_is_never_included(tmp_path: Path) -> None:
    main = tmp_path / "ledger.beancount"
    _crash(main, FEBRUARY, "write")
    [temporary] = _temporaries(tmp_path)
    half = temporary.read_text(encoding="utf-8")
    _, errors, options = loader.load_file(str(main))
    assert errors == []
    assert options["include"] == [str(main), *map(str, batch_files(main))]
    assert str(temporary) not in options["include"]
    before = set(batch_files(main))
    Ledger(main, CHART).post(scenario())
    [february] = [path for path in batch_files(main) if path not in before]
    whole = february.read_text(encoding="utf-8")
    # the crashed writer had written the first half of the very same batch
    assert whole.startswith(half)
    assert len(half) == len(whole) // 2


def test_crashes_during_the_recoveries_too(tmp_path: Path) -> None:
    """Each next cycle is killed too, at another step, before one finally completes."""
    main = tmp_path / "ledger.beancount"
    _crash(main, JANUARY, "rename")  # chart and main file written, January not
    # the next cycles write nothing at start (already there): their first write is a batch
    _crash(main, 1, "write")  # January's batch, half
    _crash(main, 1, "dirsync")  # January's batch, in place
    _crash(main, 1, "fsync")  # February's batch, not on disk
    entries, errors, _ = loader.load_file(str(main))
    assert errors == []
    assert document_counts(entries) == identities(scenario()[:SPLIT])
    _recover_and_check(main, _reference(tmp_path))
