from __future__ import annotations

from datetime import date
from decimal import Decimal
from itertools import pairwise

from sqlalchemy.orm import Session, sessionmaker

from connector.billing.periods import Frequency
from connector.db.engine import transaction
from connector.settings import Settings
from connector.sync import contracts
from connector.sync.cycle import Runtime
from connector.sync.reports import (
    billed_customers,
    list_documents,
    month_ends,
    monthly_metrics,
    subscription_metrics,
)
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


def test_month_ends() -> None:
    assert month_ends(date(2026, 3, 15), 3) == [
        date(2025, 12, 31),
        date(2026, 1, 31),
        date(2026, 2, 28),
        date(2026, 3, 15),
    ]
    assert month_ends(date(2026, 3, 31), 1) == [date(2026, 2, 28), date(2026, 3, 31)]


def test_monthly_metrics_are_the_metrics_of_each_month(factory: sessionmaker[Session]) -> None:
    builders.simple_subscription(factory, start=date(2026, 1, 1), ref="A")  # 100.00 USD
    churned = builders.simple_subscription(factory, start=date(2026, 2, 1), ref="B", quantity=5)
    builders.simple_subscription(
        factory, start=date(2026, 3, 1), currency="GBP", country="GB", ref="G", unit_amount="5.00"
    )
    with transaction(factory) as session:
        contracts.cancel_subscription(session, churned, cancel_date=date(2026, 4, 1))
    as_of = date(2026, 4, 20)

    with factory() as session:
        found = monthly_metrics(session, as_of, months=5)

    assert [monthly.code for monthly in found] == ["GBP", "USD"]
    gbp, usd = found
    assert [m.as_of for m in usd.months] == month_ends(as_of, 5)[1:]
    assert [m.mrr for m in usd.months] == [
        Decimal("0.00"), Decimal("100.00"), Decimal("150.00"), Decimal("150.00"),
        Decimal("100.00"),
    ]  # fmt: skip
    assert [m.movements.new for m in usd.months] == [
        Decimal("0.00"), Decimal("100.00"), Decimal("50.00"), Decimal("0.00"), Decimal("0.00"),
    ]  # fmt: skip
    assert usd.months[-1].movements.churn == Decimal("50.00")
    assert [m.mrr for m in gbp.months] == [Decimal("0.00")] * 3 + [Decimal("50.00")] * 2
    windows = pairwise(month_ends(as_of, 5))
    for index, (since, end) in enumerate(windows):  # as each month's report on its own
        alone = subscription_metrics(factory, end, since)
        assert [monthly.months[index] for monthly in found] == alone


def test_documents_a_page_at_a_time_and_the_customers_billed(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    builders.simple_subscription(factory, start=date(2026, 1, 1), ref="A")
    builders.simple_subscription(factory, start=date(2026, 1, 1), ref="B")
    with transaction(factory) as session:
        builders.customer(session, "N", name="Not billed")
    assert Runtime(factory, settings).run("bill", date(2026, 3, 1)).ok

    with factory() as session:
        newest = list_documents(session, limit=4)
        older = list_documents(session, limit=4, before=newest[-1][0].id)
        customers = billed_customers(session)
    assert [doc.number for doc, _ in newest] == [f"INV-00000{n}" for n in (6, 5, 4, 3)]
    assert [doc.number for doc, _ in older] == ["INV-000002", "INV-000001"]
    assert [name for _, name in customers] == ["Customer A", "Customer B"]
