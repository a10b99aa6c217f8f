from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy.orm import Session, sessionmaker

from connector.settings import Settings
from jobs.billing import billing_job
from tests import builders


def test_billing_job_bills_what_is_due(factory: sessionmaker[Session], settings: Settings) -> None:
    builders.simple_subscription(factory, start=date(2026, 1, 1), unit_amount="9.90")

    first = billing_job(settings, date(2026, 2, 1))
    again = billing_job(settings, date(2026, 2, 1))

    assert (first.invoices, first.invoiced["USD"]) == (2, Decimal("198.00"))
    assert again.invoices == 0
