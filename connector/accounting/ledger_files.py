"""The files of the Beancount ledger: where each batch goes, what a file holds, the main file.

Layout, for a main file ``ledger.beancount``::

    ledger.beancount                  finance's file: options, the include, their own entries
    ledger.d/2026/03/<written>.beancount
                                      one batch of the connector, its entries dated March 2026

A batch goes to the folder of the year and month its entries are dated in; a batch holding
entries of several months is written as one file per month, and the accounts it opens go with
its earliest month. Accounts opened alone (the chart, a customer) go to the month of their
opening date (``chart.open_date``). The main file includes ``ledger.d/**/*.beancount``, which
also matches the layout of earlier versions (``ledger.d/2026-03/…``): those files keep loading
where they are.

Every batch file the connector writes ends with the line ``; end of batch``: a batch file
without it was cut short. Files are read with Beancount's own parser; a file that does not parse
(not UTF-8, a syntax error) or was cut short has a :class:`FileProblem`, named by file and line.
"""

from __future__ import annotations

import glob
import os
import re
import sys
import time
from collections.abc import Iterable, Iterator
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from beancount.core import data
from beancount.parser import parser

from connector import private_files

END = "; end of batch"
PLUGIN = "connector.accounting.beancount_plugin"
RETIRED = "  ; retired: connector ledger check finds a document posted twice"
BATCH_NAME = re.compile(r"^\d{8}T\d{6}Z-\d+-\d+\.beancount$")  # written by this version
LEGACY_NAME = re.compile(r"^\d+-\d+-\d+\.beancount$")  # by earlier versions (ledger.d/YYYY-MM/)
ENTRY_MONTH = re.compile(r"^(\d{4})-(\d{2})-\d{2} ")
SUFFIX_ID = re.compile(r"-(\d+)$")


@dataclass(frozen=True)
class FileProblem:
    path: Path
    line: int
    message: str
    cut_short: bool = False  # parses, but lacks its end line (Beancount cannot tell)

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


class _Bits:
    """A set of whole numbers as a bitmap from ``base`` (a multiple of eight) on, at most
    ``SPAN`` wide: a number it cannot hold is refused (:meth:`add` returns False)."""

    SPAN = 1 << 27  # numbers (16 MiB) a bitmap covers at most

    def __init__(self, number: int) -> None:
        self.base = number - number % 8
        self.bits = bytearray(1)
        self.count = 0

    def __contains__(self, number: int) -> bool:
        offset = number - self.base
        return 0 <= offset < len(self.bits) * 8 and bool(self.bits[offset >> 3] >> (offset & 7) & 1)

    def _cover(self, low: int, high: int) -> bool:
        """Widen the bitmap to hold ``low`` to ``high`` (``low`` a multiple of eight), unless
        that makes it wider than ``SPAN``."""
        start = min(low, self.base)
        end = max(high + 1, self.base + len(self.bits) * 8)
        if end - start > self.SPAN:
            return False
        if start < self.base:
            self.bits[0:0] = bytes((self.base - start) >> 3)
            self.base = start
        if end > self.base + len(self.bits) * 8:
            self.bits.extend(bytes((end - self.base + 7 >> 3) - len(self.bits)))
        return True

    def add(self, number: int) -> bool:
        if not self._cover(number - number % 8, number):
            return False
        offset = number - self.base
        mask = 1 << (offset & 7)
        if not self.bits[offset >> 3] & mask:
            self.bits[offset >> 3] |= mask
            self.count += 1
        return True

    def update(self, other: _Bits) -> bool:
        """Add every number of ``other`` (False, adding none, when they do not fit)."""
        if not self._cover(other.base, other.base + len(other.bits) * 8 - 1):
            return False
        shift = (other.base - self.base) >> 3
        for index, byte in enumerate(other.bits):
            if byte:
                old = self.bits[shift + index]
                self.count += (byte & ~old).bit_count()
                self.bits[shift + index] = old | byte
        return True

    def __iter__(self) -> Iterator[int]:
        for index, byte in enumerate(self.bits):
            if byte:
                for bit in range(8):
                    if byte >> bit & 1:
                        yield self.base + index * 8 + bit


class Identities(AbstractSet[tuple[str, str]]):
    """The documents a ledger holds, as ``(document_type, document_id)`` pairs: a set, kept as
    small as can be (per type, a bitmap of the ids that are numbers, as the connector writes
    them; any other id as its pair), so that a ledger of many documents costs a bit or so
    each."""

    def __init__(self, pairs: Iterable[tuple[str, str]] = ()) -> None:
        self._numbers: dict[str, _Bits] = {}
        self._others: set[tuple[str, str]] = set()
        self.update(pairs)

    @staticmethod
    def _number(document_id: str) -> int | None:
        if document_id.isascii() and document_id.isdigit() and str(int(document_id)) == document_id:
            return int(document_id)
        return None

    def add(self, pair: tuple[str, str]) -> None:
        document_type, document_id = pair
        number = self._number(document_id)
        if number is not None:
            bits = self._numbers.get(document_type)
            if bits is None:
                bits = self._numbers[sys.intern(document_type)] = _Bits(number)
            if bits.add(number):
                return
        self._others.add((document_type, document_id))

    def update(self, pairs: Iterable[tuple[str, str]]) -> None:
        if not isinstance(pairs, Identities):
            for pair in pairs:
                self.add(pair)
            return
        for document_type, numbers in pairs._numbers.items():
            bits = self._numbers.get(document_type)
            if bits is None:
                bits = self._numbers[document_type] = _Bits(numbers.base)
            if not bits.update(numbers):
                self.update((document_type, str(number)) for number in numbers)
        self.update(pairs._others)

    def __contains__(self, pair: object) -> bool:
        if not (isinstance(pair, tuple) and len(pair) == 2):
            return False
        document_type, document_id = pair
        if not isinstance(document_id, str):
            return False
        number = self._number(document_id)
        bits = self._numbers.get(document_type)
        if number is not None and bits is not None and number in bits:
            return True
        return pair in self._others

    def __iter__(self) -> Iterator[tuple[str, str]]:
        for document_type, numbers in self._numbers.items():
            for number in numbers:
                yield document_type, str(number)
        yield from self._others

    def __len__(self) -> int:
        return sum(bits.count for bits in self._numbers.values()) + len(self._others)


@dataclass
class Held:
    """What one file holds: its documents, the accounts it opens, the customers' receivables
    (from ``customer_id`` metadata, or the ``-<id>`` their names end with), and its problem."""

    signature: tuple[int, int, int]
    documents: Identities = field(default_factory=Identities)
    opened: set[str] = field(default_factory=set)
    customers: dict[int, str] = field(default_factory=dict)
    used_receivables: dict[int, str] = field(default_factory=dict)
    problem: FileProblem | None = None
    indexed: bool = False  # what it holds is in the ledger's index (ledger_index), as it is
    loaded: bool = True  # False: known from the index, what it holds not read yet


def include_line(directory: Path) -> str:
    return f'include "{directory.name}/**/*.beancount"'


def legacy_include_line(directory: Path) -> str:
    return f'include "{directory.name}/*/*.beancount"'


def batch_files(directory: Path) -> list[Path]:
    """The files the main file's include matches (Beancount's own glob)."""
    pattern = os.path.join(glob.escape(str(directory)), "**", "*.beancount")
    return sorted(Path(name) for name in glob.glob(pattern, recursive=True))


def is_ours(path: Path) -> bool:
    """A batch file the connector wrote (this version's or an earlier one's)."""
    return bool(BATCH_NAME.match(path.name) or LEGACY_NAME.match(path.name))


def month_folder(day: date) -> str:
    return f"{day.year:04d}/{day.month:02d}"


def entry_folder(text: str, default: str) -> str:
    """The folder of an entry's text: the year and month of the date it begins with."""
    found = ENTRY_MONTH.match(text)
    return f"{found.group(1)}/{found.group(2)}" if found else default


def batch_name(sequence: int) -> str:
    """``20260315T101112Z-4242-000001.beancount``: when (UTC), which process, which batch."""
    written = datetime.fromtimestamp(time.time_ns() / 1e9, UTC)
    return f"{written:%Y%m%dT%H%M%SZ}-{os.getpid()}-{sequence:06d}.beancount"


def signature(path: Path) -> tuple[int, int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns)


def inspect(path: Path, receivable: str) -> Held | None:
    """Parse ``path``; None when it is gone."""
    stamp = signature(path)
    if stamp is None:
        return None
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    entries, errors, _ = parser.parse_string(raw, report_filename=str(path))
    held = Held(stamp)
    if errors:
        first = errors[0]
        held.problem = FileProblem(path, int(first.source.get("lineno") or 0), first.message)
    elif BATCH_NAME.match(path.name) and END.encode() not in (
        line.strip() for line in raw.splitlines()
    ):
        lines = raw.count(b"\n") + (0 if raw.endswith(b"\n") else 1)
        held.problem = FileProblem(
            path, lines, f"cut short: the batch's last line ({END}) is missing", cut_short=True
        )
    for entry in entries:
        if isinstance(entry, data.Open):
            held.opened.add(entry.account)
            customer_id = str(entry.meta.get("customer_id", ""))
            if customer_id.isdigit():
                held.customers.setdefault(int(customer_id), entry.account)
        elif isinstance(entry, data.Transaction) and "document_type" in entry.meta:
            if "document_id" in entry.meta:
                held.documents.add(
                    (str(entry.meta["document_type"]), str(entry.meta["document_id"]))
                )
            for posting in entry.postings:
                suffix = SUFFIX_ID.search(posting.account)
                if suffix and posting.account.startswith(receivable + ":"):
                    held.used_receivables.setdefault(int(suffix.group(1)), posting.account)
    return held


def receivables_used(text: str, receivable: str) -> dict[int, str]:
    """The customers' receivables the postings of ``text`` move (entries as the connector
    writes them), by the id their names end with: what :func:`inspect` finds in its file."""
    used: dict[int, str] = {}
    prefix = receivable + ":"
    for line in text.splitlines():
        if line.startswith("  " + prefix):
            account = line.split(maxsplit=1)[0]
            suffix = SUFFIX_ID.search(account)
            if suffix:
                used.setdefault(int(suffix.group(1)), account)
    return used


# -- writing ------------------------------------------------------------------------------------
def write_atomically(
    path: Path, text: str | bytes, *, replace: bool = True, mode: int | None = None
) -> None:
    """Write the whole file or nothing: a temporary file, flushed to disk, then moved into
    place (``replace`` off: linked, so that an existing file is never overwritten). The file
    is owner-only (0600) unless ``mode`` is given (an existing file's, kept)."""
    temporary = path.with_name(f".{path.name}.tmp")
    owner_only = private_files.opener
    try:
        if isinstance(text, bytes):
            with open(temporary, "wb", opener=owner_only) as binary:
                binary.write(text)
                binary.flush()
                os.fsync(binary.fileno())
        else:
            with open(temporary, "w", encoding="utf-8", opener=owner_only) as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(temporary, mode)
        if replace:
            temporary.replace(path)
        else:
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    sync_directory(path.parent)


def sync_directory(directory: Path) -> None:
    handle = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def move_aside(path: Path) -> Path:
    """Rename a damaged batch file out of the include's reach, beside itself, never over
    another file: ``<name>.beancount.damaged`` (``.damaged-2``… when taken)."""
    number = 1
    while True:
        aside = path.with_name(path.name + (".damaged" if number == 1 else f".damaged-{number}"))
        try:
            os.link(path, aside)
        except FileExistsError:
            number += 1
            continue
        path.unlink()
        sync_directory(path.parent)
        return aside


def damaged_files(directory: Path) -> list[Path]:
    pattern = os.path.join(glob.escape(str(directory)), "**", "*.beancount.damaged*")
    return sorted(Path(name) for name in glob.glob(pattern, recursive=True))


# -- the main file ------------------------------------------------------------------------------
def new_main_file(path: Path, directory: Path, operating_currency: str) -> str:
    return (
        "; The billing connector's ledger. Open it with: fava "
        f"{path.name}\n"
        f"; The connector writes its entries to {directory.name}/ (a folder per year and month) "
        "and never rewrites\n; this file: add your own entries (payments, adjustments) below.\n"
        "; Check it against the billing core with: connector ledger check\n\n"
        'option "title" "Billing"\n'
        f'option "operating_currency" "{operating_currency}"\n'
        f"{include_line(directory)}\n\n"
    )


def upgraded_main_file(raw: bytes, directory: Path) -> tuple[bytes, bool]:
    """The main file of an earlier version brought up to date, line by line, touching nothing
    else: the project's plugin line becomes a comment (plain Beancount has no such module) and
    the old include (``ledger.d/*/*.beancount``) becomes the one that matches both layouts.
    Returns the new bytes and whether a line was changed in place (else the include, when
    missing, is to be appended)."""
    plugin = f'plugin "{PLUGIN}"'.encode()
    legacy = legacy_include_line(directory).encode()
    include = include_line(directory).encode()
    lines = raw.splitlines(keepends=True)
    codes = [line.split(b";", 1)[0].strip() for line in lines]
    included = include in codes
    changed = False
    for index, line in enumerate(lines):
        body = line.rstrip(b"\r\n")
        ending = line[len(body) :]
        if codes[index] == plugin or (codes[index] == legacy and included):
            lines[index] = (
                b"; " + body + (RETIRED.encode() if codes[index] == plugin else b"") + ending
            )
            changed = True
        elif codes[index] == legacy:  # the new include matches the old files too
            lines[index] = body.replace(legacy, include, 1) + ending
            included = changed = True
    text = b"".join(lines)
    return (text, changed) if included else (text + b"\n" + include + b"\n", changed)
