"""Billing data for the API's tests, made through the connector's own services.

- Customer C1 (GB, GBP): 10 seats at 10.00 GBP a month from 2026-01-01, taxed 20%; billed
  through March: INV-000001, INV-000003, INV-000005 (January to March), 120.00 GBP each.
- Customer C2 (JP, JPY): 10 seats at 1,000 JPY a month from 2026-01-01, taxed 10%:
  INV-000002, INV-000004, INV-000006, 11000 JPY each (no minor unit).
- INV-000001 is paid (120.00 GBP on 2026-01-10); INV-000003 is credited 30.00 GBP before tax
  on 2026-03-10 (CN-000001, 36.00 GBP)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy.orm import Session, sessionmaker

from connector.db.engine import transaction
from connector.settings import Settings
from connector.sync import corrections, settlement
from connector.sync.billing_run import run_billing
from tests import builders


@dataclass(frozen=True)
class Books:
    gb_subscription: int
    jp_subscription: int


@pytest.fixture
def books(factory: sessionmaker[Session], settings: Settings) -> Books:
    gb = builders.simple_subscription(
        factory, start=date(2026, 1, 1), currency="GBP", country="GB", ref="C1"
    )
    jp = builders.simple_subscription(
        factory,
        start=date(2026, 1, 1),
        currency="JPY",
        country="JP",
        unit_amount="1000",
        ref="C2",
    )
    for month in (1, 2, 3):
        run_billing(factory, settings, date(2026, month, 1))
    with transaction(factory) as session:
        settlement.record_payment(
            session, amount="120.00", received_on=date(2026, 1, 10), invoice_number="INV-000001"
        )
    corrections.credit_invoice(
        factory,
        settings,
        "INV-000003",
        reason="service outage",
        on=date(2026, 3, 10),
        amount=Decimal("30.00"),
    )
    return Books(gb, jp)


STAMPS = ("created_at", "updated_at")


def unstamped(value: object) -> object:
    """``value`` (JSON) without the moments records were written (they change every run)."""
    if isinstance(value, dict):
        return {k: unstamped(v) for k, v in value.items() if k not in STAMPS}
    if isinstance(value, list):
        return [unstamped(item) for item in value]
    return value


def problem(status: int, slug: str, title: str, detail: str, instance: str) -> dict[str, object]:
    return {
        "type": f"https://connector.invalid/problems/{slug}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
    }
