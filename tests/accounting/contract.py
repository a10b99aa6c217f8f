"""The contract every accounting target keeps, as one test class run against each of them.

A subclass provides the ``target`` fixture and three hooks: how many copies of a document the
target holds, a snapshot of everything it holds (compared before and after posting again), and
how finance records a payment there by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any

from connector.accounting.base import (
    VOID,
    AccountingTarget,
    Document,
    Line,
    PostResult,
    Tax,
    document_key,
)
from tests.accounting.documents import ALICE, credit_note, invoice, payment, revenue

D = Decimal
JAN1, JAN10, JAN31 = date(2026, 1, 1), date(2026, 1, 10), date(2026, 1, 31)
FEB1, FEB28 = date(2026, 2, 1), date(2026, 2, 28)


def contract_documents() -> list[Document]:
    """One customer's year start, in the order the billing core makes the documents: two
    invoices, a payment, a credit note partly applied and the rest refunded, revenue of two
    months, and an invoice issued in error, voided."""
    issued_in_error = invoice(
        3,
        "INV-000003",
        ALICE,
        JAN10,
        lines=[Line("SETUP", None, False, D("50.00"), description="Setup")],
        taxes=[],
        total="50.00",
    )
    return [
        invoice(
            1,
            "INV-000001",
            ALICE,
            JAN1,
            lines=[
                Line("PRO", "Platform", True, D("1200.00"), tax_rate=D("7.25"), description="Pro"),
                Line("SETUP", None, False, D("300.00"), tax_rate=D("7.25"), description="Setup"),
            ],
            taxes=[Tax(D("7.25"), D("108.75"))],
            total="1608.75",
            due=JAN31,
        ),
        invoice(
            2,
            "INV-000002",
            ALICE,
            JAN10,
            lines=[Line("PRO", "Platform", True, D("100.00"), description="Pro, 10-31 Jan")],
            taxes=[],
            total="100.00",
            due=JAN31,
        ),
        issued_in_error,
        payment(5, ALICE, date(2026, 1, 15), "1000.00", "INV-000001", reference="wire-1"),
        revenue(9, ALICE, "INV-000001", JAN1, JAN31, amounts=[("PRO", "Platform", "400.00")]),
        replace(
            credit_note(
                4,
                "CN-000001",
                "INV-000002",
                ALICE,
                FEB1,
                lines=[Line("PRO", "Platform", True, D("100.00"), recognized=D("70.97"))],
                taxes=[],
                total="100.00",
            ),
            applied=D("60.00"),
        ),
        replace(
            payment(8, ALICE, date(2026, 2, 5), "40.00", None, refund=True),
            credit_note_number="CN-000001",
        ),
        revenue(10, ALICE, "INV-000001", FEB1, FEB28, amounts=[("PRO", "Platform", "400.00")]),
        replace(issued_in_error, key=document_key(VOID, 3), document_type=VOID),
    ]


class AccountingTargetContract:
    """Subclasses provide the ``target`` fixture and the hooks below."""

    def holds(self, target: AccountingTarget, doc: Document, result: PostResult) -> int:
        raise NotImplementedError

    def snapshot(self, target: AccountingTarget) -> Any:
        raise NotImplementedError

    def finance_pays(
        self, target: AccountingTarget, number: str, amount: Decimal, on: date
    ) -> None:
        raise NotImplementedError

    # -- the contract ----------------------------------------------------------------------
    def _post(
        self, target: AccountingTarget, docs: Sequence[Document], **kw: Any
    ) -> list[PostResult]:
        results = target.post(docs, **kw)
        assert [result.key for result in results] == [doc.key for doc in docs]
        return results

    def test_every_document_is_delivered_once_with_its_own_result(
        self, target: AccountingTarget
    ) -> None:
        docs = contract_documents()
        results = self._post(target, docs)
        assert [(r.key, r.ok, r.error) for r in results] == [(d.key, True, None) for d in docs]
        assert [self.holds(target, doc, r) for doc, r in zip(docs, results, strict=True)] == [
            1
        ] * len(docs)

    def test_posting_again_changes_nothing(self, target: AccountingTarget) -> None:
        docs = contract_documents()
        self._post(target, docs)
        before = self.snapshot(target)
        again = self._post(target, docs)
        assert all(result.ok for result in again)
        assert self.snapshot(target) == before

    def test_documents_an_unanswered_attempt_delivered_are_found_not_sent_twice(
        self, target: AccountingTarget
    ) -> None:
        docs = contract_documents()
        self._post(target, docs)
        before = self.snapshot(target)
        retried = self._post(target, docs, retried=frozenset(doc.key for doc in docs))
        assert [r.ok for r in retried] == [True] * len(docs)
        assert self.snapshot(target) == before

    def test_customers_are_upserted_once(self, target: AccountingTarget) -> None:
        first = target.upsert_customers([ALICE])
        second = target.upsert_customers([ALICE])
        assert [(r.key, r.ok) for r in first] == [("customer:1", True)]
        assert second == first

    def test_payments_entered_by_finance_are_read_back_with_stable_references(
        self, target: AccountingTarget
    ) -> None:
        self._post(target, contract_documents())
        self.finance_pays(target, "INV-000001", D("608.75"), date(2026, 2, 10))
        found, _ = target.payments(None)
        assert [(p.invoice_number, p.amount, p.currency, p.date) for p in found] == [
            ("INV-000001", D("608.75"), "USD", date(2026, 2, 10))
        ]
        again, _ = target.payments(None)
        assert [p.reference for p in again] == [p.reference for p in found]
