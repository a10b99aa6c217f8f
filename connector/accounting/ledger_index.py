"""What each file of the ledger holds, kept beside it, so that a new process parses only the
files that are new or changed.

Every run of the connector is a new process, and the connector's batch files grow with every
document posted: parsing all of them to learn what the ledger holds would cost more every
month. The index keeps, for each file that loaded without a problem, its signature (inode,
size, modification time: :func:`ledger_files.signature`) and what it holds (its documents, the
accounts it opens, the customers' receivables)::

    ledger.d/.index/files.json        each file (by its path beside the main file) and its
                                      signature; the chart whose accounts those files open
    ledger.d/.index/held/<digest>.json
                                      what one file holds, named again with its signature

Nothing there ends in ``.beancount``, and Beancount's include (``ledger.d/**/*.beancount``) does
not look into a folder whose name starts with a dot: Beancount and Fava never see the index.

The index is a cache, never the truth. A file is taken from it only when its signature is the
one listed, and what it holds only when its own entry names the same file and signature; a
file whose entry is missing, unreadable or of another signature is parsed, as is every file with
a problem (never indexed). Each part is written whole and owner-only
(:func:`ledger_files.write_atomically`) after the files it describes are on disk, what a file
holds before the list that names it: after a crash, an entry either describes its file as it is
or is ignored. Deleting ``.index`` is safe: the next run parses every file once and writes it
again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connector import private_files
from connector.accounting import ledger_files
from connector.accounting.ledger_files import Held, Identities

VERSION = 1
FOLDER = ".index"
LIST = "files.json"
HELD = "held"

Signature = tuple[int, int, int]


@dataclass
class Listing:
    """The files indexed, by key, with their signatures; ``chart``: the digest of a chart whose
    every account is opened by the files named in ``chart_files`` (as they are listed)."""

    files: dict[str, Signature] = field(default_factory=dict)
    chart: str | None = None
    chart_files: frozenset[str] = frozenset()

    def to_json(self) -> str:
        return json.dumps(
            {
                "version": VERSION,
                "files": {key: list(stamp) for key, stamp in sorted(self.files.items())},
                "chart": self.chart,
                "chart_files": sorted(self.chart_files),
            },
            separators=(",", ":"),
        )


class Index:
    def __init__(self, root: Path, directory: Path) -> None:
        self.root = root  # the main file's folder: files are named by their path from it
        self.folder = directory / FOLDER

    def key(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def read(self) -> Listing:
        """The files indexed; none when the list is missing or unreadable."""
        try:
            raw = json.loads((self.folder / LIST).read_bytes())
            files = {
                str(key): _signature(stamp) for key, stamp in _field(raw, "files", dict).items()
            }
            chart = raw.get("chart")
            if chart is not None and not isinstance(chart, str):
                raise ValueError("chart")
            chart_files = frozenset(_strings(_field(raw, "chart_files", list)))
        except (OSError, ValueError, TypeError, AttributeError):
            return Listing()
        return Listing(files, chart, chart_files if chart is not None else frozenset())

    def write(self, listing: Listing) -> None:
        private_files.make_directories(self.folder)
        ledger_files.write_atomically(self.folder / LIST, listing.to_json())

    def _held_path(self, key: str) -> Path:
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
        return self.folder / HELD / f"{digest}.json"

    def read_held(self, key: str, signature: Signature) -> Held | None:
        """What the file ``key`` holds as of ``signature``; None when its entry is missing,
        unreadable, or describes another file or signature."""
        try:
            raw = json.loads(self._held_path(key).read_bytes())
            if _field(raw, "file", str) != key or _signature(raw.get("signature")) != signature:
                return None
            documents = Identities(
                (str(kind), number)
                for kind, numbers in _field(raw, "documents", dict).items()
                for number in _strings(numbers)
            )
            return Held(
                signature,
                documents,
                set(_strings(_field(raw, "opened", list))),
                _accounts(_field(raw, "customers", list)),
                _accounts(_field(raw, "used_receivables", list)),
                indexed=True,
            )
        except (OSError, ValueError, TypeError, AttributeError):
            return None

    def write_held(self, key: str, held: Held) -> None:
        documents: dict[str, list[str]] = {}
        for kind, number in sorted(held.documents):
            documents.setdefault(kind, []).append(number)
        text = json.dumps(
            {
                "version": VERSION,
                "file": key,
                "signature": list(held.signature),
                "documents": documents,
                "opened": sorted(held.opened),
                "customers": list(held.customers.items()),
                "used_receivables": list(held.used_receivables.items()),
            },
            separators=(",", ":"),
        )
        path = self._held_path(key)
        private_files.make_directories(path.parent)
        ledger_files.write_atomically(path, text)

    def prune(self, keys: set[str]) -> None:
        """Remove what files no longer indexed held."""
        wanted = {self._held_path(key).name for key in keys}
        with contextlib.suppress(FileNotFoundError):
            for name in os.listdir(self.folder / HELD):
                if name.endswith(".json") and name not in wanted:
                    with contextlib.suppress(FileNotFoundError):
                        (self.folder / HELD / name).unlink()


def _field(raw: Any, name: str, kind: type) -> Any:
    value = raw[name] if isinstance(raw, dict) and raw.get("version") == VERSION else None
    if not isinstance(value, kind):
        raise ValueError(name)
    return value


def _signature(value: Any) -> Signature:
    if (
        not isinstance(value, list)
        or len(value) != 3
        or not all(type(part) is int for part in value)
    ):
        raise ValueError("signature")
    return (value[0], value[1], value[2])


def _strings(values: Any) -> list[str]:
    if not isinstance(values, list) or not all(isinstance(value, str) for value in values):
        raise ValueError("strings")
    return values


def _accounts(pairs: list[Any]) -> dict[int, str]:
    found: dict[int, str] = {}
    for pair in pairs:
        if (
            not isinstance(pair, list)
            or len(pair) != 2
            or type(pair[0]) is not int
            or not isinstance(pair[1], str)
        ):
            raise ValueError("accounts")
        found.setdefault(pair[0], pair[1])
    return found
