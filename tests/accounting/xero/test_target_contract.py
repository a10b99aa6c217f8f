"""The accounting target contract, run against Xero (the fake organisation)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from connector.accounting.base import (
    CREDIT_NOTE,
    INVOICE,
    PAYMENT,
    REFUND,
    VOID,
    AccountingTarget,
    Document,
    Payment,
    PostResult,
)
from connector.accounting.chart import load_chart
from connector.accounting.xero.payloads import payment_reference
from connector.accounting.xero.target import XeroTarget
from connector.db import tables
from connector.db.engine import transaction
from connector.settings import Settings
from sandbox.xero.server import XeroSandbox
from tests.accounting.contract import AccountingTargetContract
from tests.accounting.documents import ALICE


def add_customers(factory: sessionmaker[Session], *customers: Any) -> None:
    with transaction(factory) as session:
        for customer in customers:
            session.add(
                tables.Customer(
                    id=customer.id,
                    name=customer.name,
                    country=customer.country,
                    currency=customer.currency,
                    tax_id=customer.tax_id,
                )
            )


class TestXeroContract(AccountingTargetContract):
    @pytest.fixture
    def target(
        self,
        xero_settings: Settings,
        factory: sessionmaker[Session],
        xero_sandbox: XeroSandbox,
    ) -> XeroTarget:
        add_customers(factory, ALICE)
        self.xero = xero_sandbox
        chart = load_chart(Path(xero_settings.accounting.mapping_file))
        return XeroTarget(xero_settings, factory, chart.xero)

    def holds(self, target: AccountingTarget, doc: Document, result: PostResult) -> int:
        store = self.xero.store
        if doc.document_type == INVOICE:
            return sum(i["InvoiceNumber"] == doc.number for i in store.invoices.values())
        if doc.document_type == VOID:
            return sum(
                i["InvoiceNumber"] == doc.number and i["Status"] == "VOIDED"
                for i in store.invoices.values()
            )
        if doc.document_type == CREDIT_NOTE:
            return sum(n["CreditNoteNumber"] == doc.number for n in store.credit_notes.values())
        if doc.document_type in (PAYMENT, REFUND):
            assert isinstance(doc, Payment)
            reference = payment_reference(doc)
            return sum(p.get("Reference") == reference for p in store.payments.values())
        return int(result.external_id in store.manual_journals)

    def snapshot(self, target: AccountingTarget) -> dict[str, Any]:
        store = self.xero.store
        return {
            "contacts": sorted(c["ContactNumber"] for c in store.contacts.values()),
            "invoices": sorted(
                (i["InvoiceNumber"], i["Status"], i["AmountDue"]) for i in store.invoices.values()
            ),
            "credit_notes": sorted(
                (n["CreditNoteNumber"], n["RemainingCredit"]) for n in store.credit_notes.values()
            ),
            "payments": sorted(str(p.get("Reference")) for p in store.payments.values()),
            "manual_journals": sorted(j["Narration"] for j in store.manual_journals.values()),
        }

    def finance_pays(
        self, target: AccountingTarget, number: str, amount: Decimal, on: date
    ) -> None:
        self.xero.store.record_payment(number, amount, on)
