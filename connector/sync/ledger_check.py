"""``connector ledger check``: the ledger is valid, and it agrees with the billing core.

1. Beancount loads the ledger (what ``bean-check`` does, but never from Beancount's pickle cache,
   which a load by ``bean-check`` or Fava may have left blind to batch files added since): every
   error it reports is a difference.
2. No document is in the ledger twice (the same ``document_type`` and ``document_id``).
3. No batch file was cut short or moved aside as damaged (by ``connector push``, which posted
   its documents again: delete the moved file once a person has looked at it).
4. Every document delivered to the ledger is still there, named by its number.
5. Each invoice and credit note in the ledger moves its customer's receivable (and customer
   credit) by its total.
6. Each customer's receivable less its credit in the ledger equals the billing core's balance:
   invoices less credit notes, payments and plus refunds (void invoices excluded).

Documents not posted yet are counted, not reported as differences: run ``connector push``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from beancount import loader
from beancount.core import data
from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.accounting import base, ledger_files
from connector.accounting import entries as entries_module
from connector.accounting.beancount_plugin import unique_document_ids
from connector.accounting.ledger import Ledger
from connector.billing.payments import InvoiceStatus
from connector.db import outbox, tables
from connector.sync import ledger_heal

ZERO = Decimal(0)


@dataclass
class CheckResult:
    differences: list[str] = field(default_factory=list)
    documents: int = 0
    customers: int = 0
    waiting: int = 0

    @property
    def ok(self) -> bool:
        return not self.differences

    def to_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "documents": self.documents,
            "customers": self.customers,
            "waiting_to_post": self.waiting,
            "differences": list(self.differences),
        }


def _core_balances(session: Session) -> dict[tuple[int, str], Decimal]:
    balances: dict[tuple[int, str], Decimal] = defaultdict(lambda: ZERO)
    for doc in session.scalars(
        select(tables.Document).where(tables.Document.status != InvoiceStatus.VOID.value)
    ):
        sign = 1 if doc.kind == base.INVOICE else -1
        balances[(doc.customer_id, doc.currency)] += sign * doc.total
    for payment in session.scalars(select(tables.Payment)):
        sign = -1 if payment.kind == base.PAYMENT else 1
        balances[(payment.customer_id, payment.currency)] += sign * payment.amount
    return balances


def load_uncached(path: Path) -> tuple[list[Any], list[Any], dict[str, Any]]:
    """Beancount's loader without its pickle cache (as Fava loads): the cache is keyed on the
    files it loaded last time, so it does not see files the include matches since."""
    return loader._load([(str(path), True)], None, None, None)


def check_ledger(session: Session, ledger: Ledger) -> CheckResult:
    result = CheckResult(waiting=outbox.depth(session, ledger.name)["waiting"])
    entries, errors, _ = load_uncached(ledger.path)
    # Of two copies, the one in a batch file the connector wrote is the original, then the
    # earlier by date, file and line (Beancount keeps included files in the order the file
    # system lists them): the other is named.
    ordered = sorted(
        entries,
        key=lambda e: (
            not ledger_files.is_ours(Path(str(e.meta.get("filename")))),
            e.date,
            str(e.meta.get("filename")),
            e.meta.get("lineno") or 0,
        ),
    )
    _, duplicates = unique_document_ids(ordered, {})
    for error in [*errors, *duplicates]:
        source = error.source or {}
        result.differences.append(
            f"{source.get('filename')}:{source.get('lineno')}: {error.message}"
        )
    for problem in ledger.refresh():  # what Beancount cannot tell: a batch cut short
        if problem.cut_short:
            result.differences.append(str(problem))
    for aside in ledger_files.damaged_files(ledger.directory):
        result.differences.append(
            f"{aside}: a damaged batch file moved aside by connector push, which posted its "
            "documents again; delete it once checked"
        )
    held = {
        (str(entry.meta["document_type"]), str(entry.meta["document_id"]))
        for entry in entries
        if isinstance(entry, data.Transaction)
        and "document_type" in entry.meta
        and "document_id" in entry.meta
    }
    lost = ledger_heal.missing(session, ledger.name, held)
    for name in ledger_heal.names(session, lost).values():
        result.differences.append(
            f"{name} is not in the ledger any more: connector push posts it again"
        )
    customers = {account: customer for customer, account in ledger.customer_accounts.items()}
    # A customer's credit (over-payments, credit notes left over) is the other side of what it
    # owes: receivable and credit together are the balance the billing core keeps.
    customers.update(
        {
            entries_module.credit_account(ledger.chart, account): customer
            for account, customer in list(customers.items())
        }
    )
    roots = (ledger.chart.accounts.receivable, ledger.chart.accounts.customer_credit)
    ledger_balances: dict[tuple[int, str], Decimal] = defaultdict(lambda: ZERO)
    totals = {(doc.kind, str(doc.id)): doc for doc in session.scalars(select(tables.Document))}
    for entry in entries:
        if not isinstance(entry, data.Transaction):
            continue
        moved: dict[str, Decimal] = defaultdict(lambda: ZERO)
        for posting in entry.postings:
            if posting.account.startswith(roots) and posting.units is not None:
                customer_id = customers.get(posting.account)
                units = posting.units.number or ZERO
                moved[posting.units.currency] += units
                if customer_id is not None:
                    ledger_balances[(customer_id, posting.units.currency)] += units
        kind, number = entry.meta.get("document_type"), entry.meta.get("document_id")
        if kind in (base.INVOICE, base.CREDIT_NOTE, base.VOID):
            result.documents += kind != base.VOID
            doc = totals.get((base.INVOICE if kind == base.VOID else str(kind), str(number)))
            where = f"{entry.meta.get('filename')}:{entry.meta.get('lineno')}"
            if doc is None:
                result.differences.append(f"{where}: {kind} {number} is not in the billing core")
                continue
            expected = doc.total if kind == base.INVOICE else -doc.total  # credits and voids
            if moved.get(doc.currency, ZERO) != expected:
                result.differences.append(
                    f"{where}: {doc.number} moves receivables by "
                    f"{moved.get(doc.currency, ZERO)} {doc.currency}, its total is {expected}"
                )
    if result.waiting == 0:
        core = _core_balances(session)
        for key in sorted(set(core) | set(ledger_balances)):
            if core.get(key, ZERO) != ledger_balances.get(key, ZERO):
                customer_id, currency = key
                result.differences.append(
                    f"customer {customer_id}: the ledger's receivable is "
                    f"{ledger_balances.get(key, ZERO)} {currency}, the billing core's "
                    f"{core.get(key, ZERO)} {currency}"
                )
        result.customers = len({customer for customer, _ in core})
    return result
