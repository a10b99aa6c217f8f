from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy.orm import Session, sessionmaker

from connector.billing.periods import Frequency
from connector.db.engine import transaction
from connector.sync import contracts
from connector.sync.reports import subscription_metrics
from tests import builders


def test_metrics_per_currency_from_storage(factory: sessionmaker[Session]) -> None:
    builders.simple_subscription(
        factory, start=date(2026, 1, 5), frequency=Frequency.WEEKLY, unit_amount="10.00", ref="W"
    )  # 100.00 a week → 433.33 a month
    builders.simple_subscription(
        factory, start=date(2026, 1, 1), frequency=Frequency.ANNUAL, unit_amount="120.00", ref="A"
    )  # 1,200.00 a year → 100.00 a month
    churned = builders.simple_subscription(factory, start=date(2026, 1, 1), ref="M")  # 100.00
    builders.simple_subscription(
        factory, start=date(2026, 1, 1), currency="GBP", country="GB", ref="G", unit_amount="5.00"
    )
    with transaction(factory) as session:
        contracts.cancel_subscription(session, churned, cancel_date=date(2026, 3, 1))

    gbp, usd = subscription_metrics(factory, date(2026, 3, 15), since=date(2026, 2, 15))

    assert (gbp.currency.code, gbp.mrr, gbp.active_customers) == ("GBP", Decimal("50.00"), 1)
    assert (usd.mrr, usd.arr, usd.active_customers, usd.arpu) == (
        Decimal("533.33"),
        Decimal("6400.00"),  # 12 × the exact 533.333..., not 12 × 533.33
        2,
        Decimal("266.67"),
    )
    assert (usd.mrr_at_start, usd.movements.churn, usd.churned_customers) == (
        Decimal("633.33"),
        Decimal("100.00"),
        1,
    )
    assert usd.logo_churn == Decimal("0.3333")
    assert usd.revenue_churn == Decimal("0.1579")  # 100.00 / 633.33
    assert usd.net_revenue_retention == Decimal("0.8421")
