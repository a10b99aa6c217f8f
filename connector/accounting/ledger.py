"""The Beancount ledger: the embedded accounting target.

Layout: the main file (``ledger.path``, default ``var/ledger.beancount``) is made once, with the
options, the project's duplicate-document plugin and ``include "<name>.d/*/*.beancount"``; after
that the connector never rewrites it, so what finance writes there by hand (payments,
adjustments, comments) stays. The connector's own entries go to new files under ``<name>.d/``,
one per batch, each written whole to a temporary file, flushed to disk and renamed into place:
a crash leaves either the whole batch or none of it, never half a file.

What the ledger already holds is read from those files at start (the ``document_type`` and
``document_id`` lines each transaction begins with), so posting a document that is already there
is a no-op. Payments finance records in the main file (a transaction linked ``^INV-…`` that
credits a receivable account) are read back by :meth:`Ledger.payments`.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path

from beancount.core import data
from beancount.parser import parser

from connector.accounting import entries
from connector.accounting.base import (
    Customer,
    Document,
    ExternalPayment,
    PostResult,
    RevenueJournal,
)
from connector.accounting.chart import Chart
from connector.errors import ConfigError

PLUGIN = "connector.accounting.beancount_plugin"
DOCUMENT = re.compile(r'^  document_type: "([a-z_]+)"\n  document_id: "(\d+)"$', re.MULTILINE)
OPEN = re.compile(r"^\d{4}-\d{2}-\d{2} open ([A-Z][^\s;]*)", re.MULTILINE)
CUSTOMER = re.compile(r'^\d{4}-\d{2}-\d{2} open (\S+)\n  customer_id: "(\d+)"$', re.MULTILINE)


class Ledger:
    name = "ledger"
    max_batch = 1000

    def __init__(self, path: Path, chart: Chart, operating_currency: str = "USD") -> None:
        self.path = path
        self.chart = chart
        self.directory = path.with_name(path.stem + ".d")
        self.operating_currency = operating_currency
        self.documents: set[tuple[str, str]] = set()
        self.accounts: set[str] = set()
        self.customer_accounts: dict[int, str] = {}
        self._sequence = 0
        self._seen: set[Path] = set()
        # The connector's files first, the main file last: the main file's include then
        # always matches at least one file, even after a crash in between.
        self.directory.mkdir(parents=True, exist_ok=True)
        self._scan()
        self._open_chart()
        with self._locked():
            if not self._files():
                self._write_batch("; The billing connector's entries follow in this folder.\n")
        self._ensure_main_file()

    # -- files -----------------------------------------------------------------------------
    def _ensure_main_file(self) -> None:
        include = f'include "{self.directory.name}/*/*.beancount"'
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            header = (
                "; The billing connector's ledger. Open it with: fava "
                f"{self.path.name}\n"
                f"; The connector writes its entries to {self.directory.name}/ and never rewrites "
                "this file:\n; add your own entries (payments, adjustments) below.\n\n"
                'option "title" "Billing"\n'
                f'option "operating_currency" "{self.operating_currency}"\n'
                f'plugin "{PLUGIN}"\n'
                f"{include}\n\n"
            )
            _write_atomically(self.path, header)
            return
        present = {line.strip() for line in self.path.read_text(encoding="utf-8").splitlines()}
        missing = [line for line in (f'plugin "{PLUGIN}"', include) if line not in present]
        if missing:  # an existing ledger: add our two lines at its end, once
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write("\n" + "\n".join(missing) + "\n")
                handle.flush()
                os.fsync(handle.fileno())

    def _files(self) -> list[Path]:
        return sorted(self.directory.glob("*/*.beancount"))

    def _scan(self) -> None:
        with self._locked():
            for stale in self.directory.glob("*/.*.tmp"):  # a batch a crash cut short
                stale.unlink()
            if self.path.exists():
                self._read(self.path, documents=False)
            self._refresh()

    def _read(self, file: Path, *, documents: bool = True) -> None:
        text = file.read_text(encoding="utf-8")
        self.accounts.update(OPEN.findall(text))
        if documents:
            self.documents.update(DOCUMENT.findall(text))
        for account, customer_id in CUSTOMER.findall(text):
            self.customer_accounts.setdefault(int(customer_id), account)

    def _refresh(self) -> None:
        """Read the batch files written since the last look (by another process, too)."""
        for file in self._files():
            if file not in self._seen:
                self._read(file)
                self._seen.add(file)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One writer at a time: a lock file beside the ledger, held while a batch is
        checked against what is on disk and written."""
        with (self.directory / ".lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _write_batch(self, text: str) -> Path:
        """One new batch file, in a folder per month of writing; never over an existing one."""
        folder = self.directory / time.strftime("%Y-%m")
        folder.mkdir(parents=True, exist_ok=True)
        while True:
            self._sequence += 1
            name = f"{time.time_ns()}-{os.getpid()}-{self._sequence:06d}.beancount"
            final = folder / name
            try:
                _write_atomically(final, text, replace=False)
            except FileExistsError:
                continue
            self._seen.add(final)
            return final

    # -- accounts --------------------------------------------------------------------------
    def _open_chart(self) -> None:
        """The chart's own accounts exist from the start, so that finance can post to them
        (a payment to the bank account) before the connector does."""
        accounts = self.chart.accounts
        fixed = [
            accounts.deferred_revenue,
            accounts.recurring_revenue,
            accounts.one_time_revenue,
            *self.chart.revenue_by_product.values(),
            *self.chart.revenue_by_family.values(),
        ]
        banks = {self.operating_currency, *self.chart.bank_by_currency}
        with self._locked():
            self._refresh()
            opening: dict[str, str] = {}
            for currency in sorted(banks):
                self._open(self.chart.bank_account(currency), opening, currency=currency)
            for account in dict.fromkeys(fixed):
                self._open(account, opening)
            if opening:
                self._write_batch("\n".join(opening.values()))
                self.accounts.update(opening)

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

    def _opened(self, opening: dict[str, str]) -> None:
        self.accounts.update(opening)
        for account, directive in opening.items():
            found = CUSTOMER.search(directive)
            if found:
                self.customer_accounts.setdefault(int(found.group(2)), account)

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
            return self._upsert_customers(customers)

    def _upsert_customers(self, customers: Sequence[Customer]) -> list[PostResult]:
        opening: dict[str, str] = {}
        accounts = [self.receivable(customer, opening) for customer in customers]
        if opening:
            try:
                self._write_batch("\n".join(opening.values()))
            except OSError as error:
                return [
                    PostResult(f"customer:{customer.id}", False, error=str(error), retriable=True)
                    for customer in customers
                ]
            self._opened(opening)
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
            return self._post(documents)

    def _post(self, documents: Sequence[Document]) -> list[PostResult]:
        opening: dict[str, str] = {}
        texts: list[str] = []
        results: list[PostResult] = []
        batch: set[tuple[str, str]] = set()
        for doc in documents:
            identity = (doc.document_type, str(doc.document_id))
            if identity in self.documents or identity in batch:
                results.append(PostResult(doc.key, True, external_id="already in the ledger"))
                continue
            receivable = (
                "" if isinstance(doc, RevenueJournal) else self.receivable(doc.customer, opening)
            )
            text = entries.entry(doc, self.chart, receivable)
            self._accounts_of(text, opening)
            texts.append(text)
            batch.add(identity)
            results.append(PostResult(doc.key, True))
        if texts:
            try:
                written = self._write_batch("\n".join([*opening.values(), *texts]))
            except OSError as error:  # nothing was written: every document is tried again
                return [
                    result
                    if result.external_id
                    else PostResult(result.key, False, error=str(error), retriable=True)
                    for result in results
                ]
            self._opened(opening)
            self.documents.update(batch)
            results = [
                result if result.external_id else PostResult(result.key, True, str(written))
                for result in results
            ]
        return results

    def payments(self, since: str | None = None) -> tuple[list[ExternalPayment], str | None]:
        """Payments finance recorded in the main file: a transaction without our metadata,
        linked to an invoice (``^INV-…``), that credits a receivable account. The cursor is not
        needed: each payment's reference is stable, so reading one again changes nothing."""
        found, errors, _ = parser.parse_file(str(self.path))
        if errors:
            first = errors[0]
            raise ConfigError(
                f"{first.source.get('filename')}:{first.source.get('lineno')}: {first.message}"
            )
        receivable = self.chart.accounts.receivable
        seen: Counter[tuple[object, ...]] = Counter()
        payments = []
        for entry in found:
            if not isinstance(entry, data.Transaction) or "document_type" in entry.meta:
                continue
            credited: dict[str, Decimal] = {}
            for account, currency, units in _postings(entry):
                if account == receivable or account.startswith(receivable + ":"):
                    credited[currency] = credited.get(currency, Decimal(0)) - units
            for number in sorted(entry.links):
                for currency, amount in credited.items():
                    if amount <= 0:
                        continue
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
                            where=f"{entry.meta.get('filename')}:{entry.meta.get('lineno')}",
                        )
                    )
                break  # one payment per transaction, for its first linked invoice
        return payments, since


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


def _write_atomically(path: Path, text: str, *, replace: bool = True) -> None:
    """Write the whole file or nothing: a temporary file, flushed to disk, then moved into
    place (``replace`` off: linked, so that an existing file is never overwritten)."""
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        with temporary.open("w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            temporary.replace(path)
        else:
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
