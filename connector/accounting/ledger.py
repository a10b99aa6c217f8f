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

import os
import re
import time
from collections import Counter
from collections.abc import Sequence
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
        self._ensure_main_file()
        self._scan()
        self._open_chart()

    # -- files -----------------------------------------------------------------------------
    def _ensure_main_file(self) -> None:
        include = f'include "{self.directory.name}/*/*.beancount"'
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.directory.mkdir(parents=True, exist_ok=True)
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
        text = self.path.read_text(encoding="utf-8")
        missing = [line for line in (f'plugin "{PLUGIN}"', include) if line not in text]
        if missing:  # an existing ledger: add our two lines at its end, once
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write("\n" + "\n".join(missing) + "\n")
                handle.flush()
                os.fsync(handle.fileno())

    def _files(self) -> list[Path]:
        return sorted(self.directory.glob("*/*.beancount"))

    def _scan(self) -> None:
        for stale in self.directory.glob("*/.*.tmp"):  # a batch a crash cut short
            stale.unlink()
        for file in [self.path, *self._files()]:
            text = file.read_text(encoding="utf-8")
            self.accounts.update(OPEN.findall(text))
            if file != self.path:
                self.documents.update(DOCUMENT.findall(text))
            for account, customer_id in CUSTOMER.findall(text):
                self.customer_accounts.setdefault(int(customer_id), account)

    def _write_batch(self, text: str) -> Path:
        """One batch file, in a folder per month of writing."""
        folder = self.directory / time.strftime("%Y-%m")
        folder.mkdir(parents=True, exist_ok=True)
        self._sequence += 1
        name = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{self._sequence:06d}.beancount"
        final = folder / name
        _write_atomically(final, text)
        return final

    # -- accounts --------------------------------------------------------------------------
    def _open_chart(self) -> None:
        """The chart's own accounts exist from the start, so that finance can post to them
        (a payment to the bank account) before the connector does."""
        accounts = self.chart.accounts
        fixed = [
            accounts.bank,
            accounts.deferred_revenue,
            accounts.recurring_revenue,
            accounts.one_time_revenue,
            *self.chart.revenue_by_product.values(),
            *self.chart.revenue_by_family.values(),
        ]
        opening: list[str] = []
        for account in dict.fromkeys(fixed):
            self._open(account, opening)
        if opening:
            self._write_batch("\n".join(opening))

    def receivable(self, customer: Customer, opening: list[str]) -> str:
        account = self.customer_accounts.get(customer.id)
        if account is None:
            base = f"{self.chart.accounts.receivable}:{entries.customer_component(customer)}"
            account = base
            self.customer_accounts[customer.id] = account
        self._open(account, opening, customer)
        return account

    def _open(self, account: str, opening: list[str], customer: Customer | None = None) -> None:
        if account not in self.accounts:
            self.accounts.add(account)
            opening.append(entries.open_directive(self.chart.open_date, account, customer))

    def _accounts_of(self, text: str, opening: list[str]) -> None:
        for line in text.splitlines()[3:]:
            account = line.split()[0] if line.startswith("  ") and line.strip() else None
            if account and ":" in account and not account.endswith(":"):
                self._open(account, opening)

    # -- the interface ---------------------------------------------------------------------
    def upsert_customers(self, customers: Sequence[Customer]) -> list[PostResult]:
        opening: list[str] = []
        accounts = [self.receivable(customer, opening) for customer in customers]
        if opening:
            self._write_batch("\n".join(opening))
        return [
            PostResult(f"customer:{customer.id}", True, external_id=account)
            for customer, account in zip(customers, accounts, strict=True)
        ]

    def post(self, documents: Sequence[Document]) -> list[PostResult]:
        opening: list[str] = []
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
            written = self._write_batch("\n".join([*opening, *texts]))
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
            for posting in entry.postings:
                units = posting.units
                if posting.account.startswith(receivable) and units and units.number is not None:
                    credited[units.currency] = (
                        credited.get(units.currency, Decimal(0)) - units.number
                    )
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


def _write_atomically(path: Path, text: str) -> None:
    """Write the whole file or nothing: a temporary file, flushed to disk, renamed into place."""
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    temporary.replace(path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
