"""The accounting target contract, run against the Beancount ledger."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from beancount import loader

from connector.accounting.base import AccountingTarget, Document, PostResult
from connector.accounting.ledger import Ledger
from tests.accounting.contract import AccountingTargetContract
from tests.accounting.documents import ALICE_AR, CHART, document_counts


class TestLedgerContract(AccountingTargetContract):
    @pytest.fixture
    def target(self, tmp_path: Path) -> Ledger:
        return Ledger(tmp_path / "ledger.beancount", CHART)

    def _counts(self, target: AccountingTarget) -> dict[tuple[str, str], int]:
        assert isinstance(target, Ledger)
        entries, errors, _ = loader.load_file(str(target.path))
        assert errors == []
        return dict(document_counts(entries))

    def holds(self, target: AccountingTarget, doc: Document, result: PostResult) -> int:
        return self._counts(target).get((doc.document_type, str(doc.document_id)), 0)

    def snapshot(self, target: AccountingTarget) -> dict[tuple[str, str], int]:
        return self._counts(target)

    def finance_pays(
        self, target: AccountingTarget, number: str, amount: Decimal, on: date
    ) -> None:
        assert isinstance(target, Ledger)
        with target.path.open("a", encoding="utf-8") as ledger:
            ledger.write(
                f'\n{on} * "Alice Inc." "Bank transfer" ^{number}\n'
                f"  Assets:Bank  {amount} USD\n  {ALICE_AR}  -{amount} USD\n"
            )
