"""The Beancount ledger: the embedded accounting target.

The ledger is finance's: it opens in a plain Beancount and Fava, with nothing of the connector
installed. The main file (``ledger.path``, default ``var/ledger.beancount``) is made once, with
the options and ``include "<name>.d/**/*.beancount"``; after that the connector never rewrites
it (but once, to bring a main file of an earlier version up to date: see
:func:`ledger_files.upgraded_main_file`), so what finance writes there by hand (payments,
adjustments, comments) stays. The connector's own entries go to new files under ``<name>.d/``, in
a folder per year and month of the entries (:mod:`connector.accounting.ledger_files`), each file
written whole to a temporary file, flushed to disk and renamed into place: a crash leaves either
the whole file or none of it, never half a file. Every file and folder the connector creates
is its owner's alone (0600 and 0700, whatever the umask).

What the ledger holds is read from its files with Beancount's parser (the ``document_type`` and
``document_id`` metadata of each transaction, the accounts opened), again whenever a file
appears, changes or disappears; posting a document that is already there is a no-op. What each
file held when last parsed is kept in the ledger's index (:mod:`ledger_index`), so that a new
process parses only the files that are new or changed, and reads what the others hold only
when an operation needs it (posting does; reading payments does not). A file
that does not parse or was cut short stops every write until :meth:`Ledger.heal` moves it aside
(the connector's own files) or a person fixes it (any other). Payments finance records in the
main file (a transaction linked ``^INV-…`` that credits a receivable account) are read back by
:meth:`Ledger.payments`.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path

from beancount.core import data
from beancount.parser import parser

from connector import private_files
from connector.accounting import entries, ledger_files, ledger_index
from connector.accounting.base import (
    Customer,
    Document,
    ExternalPayment,
    PostResult,
    RevenueJournal,
)
from connector.accounting.chart import Chart
from connector.accounting.ledger_files import FileProblem, Held, Identities
from connector.errors import LedgerFileError

PLUGIN = ledger_files.PLUGIN  # named by the main files of earlier versions; no longer loaded
CUSTOMER = re.compile(r'^\d{4}-\d{2}-\d{2} open (\S+)\n  customer_id: "(\d+)"$', re.MULTILINE)
ALREADY = "already in the ledger"

log = logging.getLogger(__name__)


class Ledger:
    name = "ledger"
    max_batch = 1000

    def __init__(self, path: Path, chart: Chart, operating_currency: str = "USD") -> None:
        self.path = path
        self.chart = chart
        self.directory = path.with_name(path.stem + ".d")
        self.operating_currency = operating_currency
        self._documents = Identities()
        self._accounts: set[str] = set()
        self._customer_accounts: dict[int, str] = {}
        self._loaded = False  # what the files hold is read when first needed
        self._held: dict[Path, Held] = {}
        self._index = ledger_index.Index(path.parent, self.directory)
        self._listing: ledger_index.Listing | None = None  # as read while locked
        # The chart whose accounts the files named are known to open (from the index, or
        # since this ledger opened them): the accounts are not read to learn it.
        self._chart_opened: str | None = None
        self._chart_files: frozenset[str] = frozenset()
        self._unsaved = False  # what the index may lack: saved before the lock is let go
        self._sequence = 0
        # The connector's files first, the main file last: the main file's include then
        # always matches at least one file, even after a crash in between. Nothing is written
        # while a file does not load (its accounts and documents are unknown).
        private_files.make_directories(self.directory)
        with self._locked():
            for stale in self.directory.rglob(".*.tmp"):  # a file a crash cut short
                stale.unlink()
            self._refresh()
            if not self.problems:
                self._open_chart()
                self._ensure_a_batch()
            if self._ensure_main_file():
                self._refresh()  # so that the index lists it as written

    # -- what the files hold ----------------------------------------------------------------
    @property
    def documents(self) -> Identities:
        """The documents in the ledger: (``document_type``, ``document_id``)."""
        self._load()
        return self._documents

    @property
    def accounts(self) -> set[str]:
        """The accounts opened."""
        self._load()
        return self._accounts

    @property
    def customer_accounts(self) -> dict[int, str]:
        """Each customer's receivable, by customer id."""
        self._load()
        return self._customer_accounts

    # -- files -----------------------------------------------------------------------------
    def _ensure_main_file(self) -> bool:
        """Make the main file, or bring it up to date; True when it was written."""
        private_files.make_directories(self.path.parent)
        if not self.path.exists():
            text = ledger_files.new_main_file(self.path, self.directory, self.operating_currency)
            ledger_files.write_atomically(self.path, text)
            return True
        real = self.path.resolve()
        raw = real.read_bytes()
        upgraded, changed = ledger_files.upgraded_main_file(raw, self.directory)
        if changed:  # an earlier version's lines, each changed in place: the whole file anew
            ledger_files.write_atomically(real, upgraded, mode=real.stat().st_mode & 0o7777)
        elif upgraded != raw:  # an existing ledger: our include added at its end, once
            with real.open("ab") as handle:
                handle.write(upgraded[len(raw) :])
                handle.flush()
                os.fsync(handle.fileno())
        return upgraded != raw

    def _ensure_a_batch(self) -> None:
        """The include must match a file, even when finance's main file opens every account."""
        if not any(path != self.path for path in self._held):
            self._write_batch(
                "; The billing connector's entries follow in this folder.\n",
                self._accounts_folder,
            )

    @property
    def _accounts_folder(self) -> str:
        """Accounts opened alone go to the month of their opening date."""
        return ledger_files.month_folder(self.chart.open_date)

    @property
    def problems(self) -> list[FileProblem]:
        """The files that do not load, as last read."""
        return [held.problem for _, held in sorted(self._held.items()) if held.problem]

    def refresh(self) -> list[FileProblem]:
        """Read the files again (those that appeared, changed or disappeared) and return the
        problems found."""
        with self._locked():
            self._refresh()
        return self.problems

    def fingerprint(self) -> str:
        """The files as last read, each by its path and signature (inode, size, modification
        time): equal fingerprints, the same files, holding the same documents."""
        digest = hashlib.sha256()
        for path, held in sorted(self._held.items()):
            digest.update(f"{path}\0{held.signature}\n".encode())
        return digest.hexdigest()

    def _refresh(self) -> None:
        """Read what changed on disk since the last look (by another process, or a person):
        a file listed in the index with its signature is not parsed, and what it holds is read
        only when needed (:meth:`_load`)."""
        files = [self.path, *ledger_files.batch_files(self.directory)]
        present = set(files)
        changed = {path for path in self._held if path not in present}
        for gone in changed:
            del self._held[gone]
        added: list[Path] = []
        for file in files:
            known = self._held.get(file)
            stamp = ledger_files.signature(file)
            if known is not None and known.signature == stamp:
                continue
            if known is not None:
                changed.add(file)
            held = self._from_index(file, stamp) or ledger_files.inspect(
                file, self.chart.accounts.receivable
            )
            if held is None:
                self._held.pop(file, None)
                continue
            self._held[file] = held
            added.append(file)
        self._unsaved = self._unsaved or bool(added or changed)
        if any(self._index.key(path) in self._chart_files for path in changed):
            self._chart_opened = None  # an account of the chart may be gone with it
        if added and self._chart_opened is None:
            self._chart_from_index()
        if not self._loaded:
            return
        if changed:
            self._rebuild()
            return
        for path in added:
            self._fill(path)
        self._take_all([self._held[path] for path in added if path in self._held])

    def _from_index(self, path: Path, stamp: tuple[int, int, int] | None) -> Held | None:
        """The file as the index lists it, when its signature is the one listed."""
        if stamp is None:
            return None
        if self._read_listing().files.get(self._index.key(path)) != stamp:
            return None
        return Held(stamp, indexed=True, loaded=False)

    def _read_listing(self) -> ledger_index.Listing:
        if self._listing is None:
            self._listing = self._index.read()
        return self._listing

    def _chart_from_index(self) -> None:
        """The index knows the chart's accounts open while the files that open them are as
        it lists them."""
        listing = self._read_listing()
        if listing.chart is None:
            return
        for key in listing.chart_files:
            held = self._held.get(self._index.root / key)
            if held is None or held.signature != listing.files.get(key):
                return
        self._chart_opened, self._chart_files = listing.chart, listing.chart_files

    def _fill(self, path: Path) -> None:
        """What a file known from the index holds: from its entry, else parsed."""
        held = self._held.get(path)
        if held is None or held.loaded:
            return
        found = self._index.read_held(self._index.key(path), held.signature)
        if found is None:
            found = ledger_files.inspect(path, self.chart.accounts.receivable)
            self._unsaved = True
            if found is None or found.signature != held.signature:
                self._chart_opened = None
        if found is None:
            del self._held[path]
        else:
            self._held[path] = found

    def _load(self) -> None:
        """Read what every file holds (from the index, or parsed) when first needed."""
        if not self._loaded:
            self._loaded = True
            self._rebuild()

    def _rebuild(self) -> None:
        for path in sorted(self._held):
            self._fill(path)
        self._documents, self._accounts, self._customer_accounts = Identities(), set(), {}
        self._take_all([self._held[path] for path in sorted(self._held)])

    def _take_all(self, added: list[Held]) -> None:
        for held in added:
            self._take(held)
        for held in added:  # a receivable's name tells its customer when its open is gone
            for customer_id, account in held.used_receivables.items():
                self._customer_accounts.setdefault(customer_id, account)

    def _take(self, held: Held) -> None:
        self._documents.update(held.documents)
        self._accounts.update(held.opened)
        for customer_id, account in held.customers.items():
            self._customer_accounts.setdefault(customer_id, account)

    def _save_index(self) -> None:
        """List every file that loads without a problem, with what it holds, in the index
        (nothing is written when the index already lists them so)."""
        if not self._unsaved:
            return
        listing = self._read_listing()
        clean = {
            path: held
            for path, held in sorted(self._held.items())
            if held.problem is None and held.signature != (0, 0, 0)
        }
        chart_files = self._chart_files if self._chart_opened is not None else frozenset()
        wanted = ledger_index.Listing(
            {self._index.key(path): held.signature for path, held in clean.items()},
            self._chart_opened,
            chart_files,
        )
        if wanted != listing or not all(held.indexed for held in clean.values()):
            for path, held in clean.items():
                if not held.indexed:
                    self._index.write_held(self._index.key(path), held)
                    held.indexed = True
            self._index.write(wanted)
            self._listing = wanted
            self._index.prune(set(wanted.files))
        self._unsaved = False

    def _check(self) -> None:
        """Refuse to go on while a file does not load: its documents and accounts are unknown."""
        problems = self.problems
        if problems:
            raise LedgerFileError(str(problems[0]))

    def _ready(self) -> None:
        """Refuse to go on while a file does not load; else read what every file holds (a
        file the index listed may be parsed again, and have a problem after all)."""
        self._check()
        self._load()
        self._check()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One writer at a time: a lock file beside the ledger, held while a batch is
        checked against what is on disk and written, and the index brought up to date."""
        with open(self.directory / ".lock", "a", opener=private_files.opener) as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            self._listing = None  # another process may have written it meanwhile
            try:
                yield
            finally:
                try:
                    self._save_index()
                except OSError as error:  # a cache: the next run parses what it lacks
                    log.warning("%s: the ledger's index was not written: %s", self.path, error)
                finally:
                    self._listing = None
                    fcntl.flock(handle, fcntl.LOCK_UN)

    def _write_batch(
        self,
        text: str,
        folder: str,
        documents: set[tuple[str, str]] | None = None,
        opening: dict[str, str] | None = None,
    ) -> Path:
        """One new batch file in ``folder`` (``YYYY/MM``), ending with the end line; never over
        an existing one. What it holds is known at once."""
        directory = self.directory / folder
        private_files.make_directories(directory)
        while True:
            self._sequence += 1
            final = directory / ledger_files.batch_name(self._sequence)
            try:
                ledger_files.write_atomically(final, f"{text}\n{ledger_files.END}\n", replace=False)
            except FileExistsError:
                continue
            break
        stamp = ledger_files.signature(final)
        held = Held(stamp or (0, 0, 0), Identities(documents or ()), set(opening or ()))
        for account, directive in (opening or {}).items():
            found = CUSTOMER.search(directive)
            if found:
                held.customers[int(found.group(2))] = account
        held.used_receivables = ledger_files.receivables_used(text, self.chart.accounts.receivable)
        self._held[final] = held
        self._unsaved = True
        if self._loaded:
            self._take(held)
        return final

    # -- healing -------------------------------------------------------------------------------
    def heal(self) -> dict[str, str]:
        """Make the ledger load again where the connector can: each of its own batch files that
        does not parse or was cut short is moved aside (``<name>.damaged``, beside it: nothing
        is deleted), so that its documents count as missing and are posted again; the chart's
        accounts are opened again if their file was lost. Returns each file moved aside with
        its problem. A file the connector did not write (finance's) is never touched: while
        one does not load, :class:`LedgerFileError` names it."""
        moved: dict[str, str] = {}
        with self._locked():
            self._refresh()
            for problem in self.problems:
                if problem.path != self.path and ledger_files.is_ours(problem.path):
                    aside = ledger_files.move_aside(problem.path)
                    moved[str(problem.path)] = f"{problem}; moved aside to {aside.name}"
            if moved:
                self._refresh()
            self._check()
            self._open_chart()
            self._ensure_a_batch()
        return moved

    # -- accounts --------------------------------------------------------------------------
    def _chart_accounts(self) -> dict[str, str | None]:
        """The chart's own accounts, each with the one currency it may hold (banks)."""
        accounts = self.chart.accounts
        fixed = [
            accounts.unbilled_receivable,
            accounts.deferred_revenue,
            accounts.recurring_revenue,
            accounts.one_time_revenue,
            *self.chart.revenue_by_product.values(),
            *self.chart.revenue_by_family.values(),
        ]
        banks = {self.operating_currency, *self.chart.bank_by_currency}
        found: dict[str, str | None] = {}
        for currency in sorted(banks):
            found.setdefault(self.chart.bank_account(currency), currency)
        for account in fixed:
            found.setdefault(account, None)
        return found

    def _open_chart(self) -> None:
        """The chart's own accounts exist from the start, so that finance can post to them
        (a payment to the bank account) before the connector does. Known open (the index
        says so, and the files that open them are as it lists them): nothing is read."""
        wanted = self._chart_accounts()
        digest = hashlib.sha256("\n".join(sorted(wanted)).encode("utf-8")).hexdigest()
        if self._chart_opened == digest:
            return
        opening: dict[str, str] = {}
        for account, currency in wanted.items():
            self._open(account, opening, currency=currency)
        if opening:
            self._write_batch(
                "\n".join(opening.values()),
                self._accounts_folder,
                opening=opening,
            )
        self._chart_opened, self._unsaved = digest, True
        self._chart_files = frozenset(
            self._index.key(path)
            for path, held in self._held.items()
            if not held.opened.isdisjoint(wanted)
        )

    def receivable(self, customer: Customer, opening: dict[str, str]) -> str:
        account = self.customer_accounts.get(customer.id) or (
            f"{self.chart.accounts.receivable}:{entries.customer_component(customer)}"
        )
        self._open(account, opening, customer)
        # the bank account of the customer's currency, so that finance can record its payments
        bank = self.chart.bank_account(customer.currency)
        self._open(bank, opening, currency=customer.currency)
        return account

    def _open(
        self,
        account: str,
        opening: dict[str, str],
        customer: Customer | None = None,
        currency: str | None = None,
    ) -> None:
        """Queue an ``open`` directive (constrained to ``currency`` for the accounts that hold
        one); accounts count as open once their batch is on disk."""
        if account not in self.accounts and account not in opening:
            only = currency if currency and self.chart.holds_one_currency(account) else None
            opening[account] = entries.open_directive(self.chart.open_date, account, customer, only)

    def _accounts_of(self, text: str, opening: dict[str, str]) -> None:
        for line in text.splitlines()[3:]:
            words = line.split() if line.startswith("  ") and line.strip() else []
            account = words[0] if words else None
            if account and ":" in account and not account.endswith(":"):
                self._open(account, opening, currency=words[2] if len(words) == 3 else None)

    # -- the interface ---------------------------------------------------------------------
    def upsert_customers(self, customers: Sequence[Customer]) -> list[PostResult]:
        with self._locked():
            self._refresh()
            self._ready()
            return self._upsert_customers(customers)

    def _upsert_customers(self, customers: Sequence[Customer]) -> list[PostResult]:
        opening: dict[str, str] = {}
        accounts = [self.receivable(customer, opening) for customer in customers]
        if opening:
            try:
                self._write_batch(
                    "\n".join(opening.values()),
                    self._accounts_folder,
                    opening=opening,
                )
            except OSError as error:
                return [
                    PostResult(f"customer:{customer.id}", False, error=str(error), retriable=True)
                    for customer in customers
                ]
        return [
            PostResult(f"customer:{customer.id}", True, external_id=account)
            for customer, account in zip(customers, accounts, strict=True)
        ]

    def post(
        self, documents: Sequence[Document], retried: frozenset[str] = frozenset()
    ) -> list[PostResult]:
        """Every document is checked against the files on disk, retried or not."""
        with self._locked():
            self._refresh()
            self._ready()
            return self._post(documents)

    def _post(self, documents: Sequence[Document]) -> list[PostResult]:
        """One file per month the new entries are dated in, the earliest first and with the
        accounts they open: a crash between two files leaves every account a written entry
        needs open."""
        opening: dict[str, str] = {}
        months: dict[str, list[tuple[tuple[str, str], str]]] = {}
        identities: list[tuple[str, str] | None] = []
        batch: set[tuple[str, str]] = set()
        for doc in documents:
            identity = (doc.document_type, str(doc.document_id))
            if identity in self.documents or identity in batch:
                identities.append(None)
                continue
            batch.add(identity)
            receivable = (
                "" if isinstance(doc, RevenueJournal) else self.receivable(doc.customer, opening)
            )
            text = entries.entry(doc, self.chart, receivable)
            self._accounts_of(text, opening)
            folder = ledger_files.entry_folder(text, self._accounts_folder)
            months.setdefault(folder, []).append((identity, text))
            identities.append(identity)
        written: dict[tuple[str, str], str] = {}
        failure: str | None = None
        for index, folder in enumerate(sorted(months)):
            parts = months[folder]
            head = list(opening.values()) if index == 0 else []
            try:
                path = self._write_batch(
                    "\n".join([*head, *(text for _, text in parts)]),
                    folder,
                    documents={identity for identity, _ in parts},
                    opening=opening if index == 0 else None,
                )
            except OSError as error:  # this file and the later ones are tried again
                failure = str(error)
                break
            written.update((identity, str(path)) for identity, _ in parts)
        results = []
        for doc, new in zip(documents, identities, strict=True):
            if new is None:
                results.append(PostResult(doc.key, True, external_id=ALREADY))
            elif new in written:
                results.append(PostResult(doc.key, True, external_id=written[new]))
            else:
                results.append(PostResult(doc.key, False, error=failure, retriable=True))
        return results

    def _pays_in(self, entry: data.Transaction) -> bool:
        """Money received into a bank account of the chart: what a payment would do."""
        bank = self.chart.accounts.bank
        return any(
            (account == bank or account.startswith(bank + ":")) and units > 0
            for account, _, units in _postings(entry)
        )

    def payments(self, since: str | None = None) -> tuple[list[ExternalPayment], str | None]:
        """Payments finance recorded in the main file: a transaction without our metadata,
        linked to an invoice (``^INV-…``), that credits a receivable account. The cursor is not
        needed: each payment's reference is stable, so reading one again changes nothing."""
        with self._locked():
            self._refresh()
        self._check()
        found, _, _ = parser.parse_file(str(self.path))
        receivable = self.chart.accounts.receivable
        seen: Counter[tuple[object, ...]] = Counter()
        payments = []
        for entry in found:
            if not isinstance(entry, data.Transaction) or "document_type" in entry.meta:
                continue
            where = f"{entry.meta.get('filename')}:{entry.meta.get('lineno')}"
            credited: dict[str, Decimal] = {}
            for account, currency, units in _postings(entry):
                if account == receivable or account.startswith(receivable + ":"):
                    credited[currency] = credited.get(currency, Decimal(0)) - units
            received = {currency: amount for currency, amount in credited.items() if amount > 0}
            if not entry.links:
                if received and self._pays_in(entry):
                    payments.append(
                        _unmatched(
                            entry,
                            where,
                            "credits a receivable account but is linked to no invoice (add ^INV-…)",
                        )
                    )
                continue
            number = sorted(entry.links)[0]  # one payment per transaction: its first link
            if not received:
                if self._pays_in(entry):
                    payments.append(
                        _unmatched(
                            entry,
                            where,
                            f"is linked to {number} but credits no account under {receivable}",
                        )
                    )
                continue
            for currency, amount in received.items():
                identity = (entry.date, number, amount, currency)
                seen[identity] += 1
                payments.append(
                    ExternalPayment(
                        reference=f"ledger:{entry.date}:{number}:{amount}:{currency}:"
                        f"{seen[identity]}",
                        invoice_number=number,
                        amount=amount,
                        currency=currency,
                        date=entry.date,
                        where=where,
                    )
                )
        return payments, since


def _unmatched(entry: data.Transaction, where: str, problem: str) -> ExternalPayment:
    """A transaction that looks like a payment but cannot be applied: listed with why."""
    return ExternalPayment(
        reference=f"ledger:unmatched:{where}",
        invoice_number=sorted(entry.links)[0] if entry.links else "",
        amount=Decimal(0),
        currency="",
        date=entry.date,
        where=where,
        problem=problem,
    )


def _postings(entry: data.Transaction) -> list[tuple[str, str, Decimal]]:
    """(account, currency, amount) of each posting, the one written without an amount
    getting what balances the others (as Beancount fills it in)."""
    known: list[tuple[str, str, Decimal]] = []
    blank: list[str] = []
    for posting in entry.postings:
        units = posting.units
        number = getattr(units, "number", None)
        currency = getattr(units, "currency", None)
        if isinstance(number, Decimal) and isinstance(currency, str):
            known.append((posting.account, currency, number))
        else:
            blank.append(posting.account)
    if len(blank) == 1:
        totals: dict[str, Decimal] = {}
        for _, currency, number in known:
            totals[currency] = totals.get(currency, Decimal(0)) + number
        known += [(blank[0], currency, -total) for currency, total in totals.items() if total]
    return known
