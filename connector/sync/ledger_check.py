"""``connector ledger check``: the ledger is valid, and it agrees with the billing core.

1. Beancount loads the ledger with its plugins (what ``bean-check`` does): every error it
   reports is a difference.
2. Each invoice and credit note in the ledger moves its customer's receivable (and customer
   credit) by its total.
3. Each customer's receivable less its credit in the ledger equals the billing core's balance:
   invoices less credit notes, payments and plus refunds (void invoices excluded).

Documents not posted yet are counted, not reported as differences: run ``connector push``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from beancount import loader
from beancount.core import data
from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.accounting import base
from connector.accounting import entries as entries_module
from connector.accounting.ledger import Ledger
from connector.billing.payments import InvoiceStatus
from connector.db import outbox, tables

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


def check_ledger(session: Session, ledger: Ledger) -> CheckResult:
    result = CheckResult(waiting=outbox.depth(session, ledger.name)["waiting"])
    entries, errors, _ = loader.load_file(str(ledger.path))
    for error in errors:
        source = error.source or {}
        result.differences.append(
            f"{source.get('filename')}:{source.get('lineno')}: {error.message}"
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
