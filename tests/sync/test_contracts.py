from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from connector.billing.periods import Frequency
from connector.billing.pricing import ChargeKind, PricingModel, Tier
from connector.billing.subscriptions import SubscriptionTerms
from connector.db import catalog, tables
from connector.db.engine import transaction
from connector.errors import BillingError, InvalidInputError
from connector.settings import Settings
from connector.sync import contracts
from connector.sync.billing_run import run_billing
from tests import builders


def test_customers_are_matched_by_external_id_never_duplicated(
    factory: sessionmaker[Session],
) -> None:
    for name in ("Acme", "Acme Corporation"):
        with transaction(factory) as session:
            contracts.upsert_customer(
                session,
                name=name,
                country="Germany",
                currency="eur",
                system="salesforce",
                external_id="001000000000001AAA",
            )
    with factory() as session:
        rows = session.scalars(select(tables.Customer)).all()
    assert [(c.name, c.country, c.currency) for c in rows] == [("Acme Corporation", "DE", "EUR")]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"currency": "ABC"}, "unknown currency 'ABC' (not in ISO 4217)"),
        ({"country": "Atlantis"}, "unknown country 'Atlantis' (expected ISO 3166 code)"),
        ({"name": " "}, "a customer needs a name"),
    ],
)
def test_bad_customers_are_refused(
    factory: sessionmaker[Session], changes: dict, message: str
) -> None:
    fields = {"name": "Acme", "country": "US", "currency": "USD", **changes}
    with (
        transaction(factory) as session,
        pytest.raises(InvalidInputError, match=re.escape(message)),
    ):
        contracts.upsert_customer(session, **fields)


def test_a_billed_customer_keeps_its_currency(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    builders.simple_subscription(factory, start=date(2026, 1, 1))
    run_billing(factory, settings, date(2026, 1, 1))
    with (
        transaction(factory) as session,
        pytest.raises(InvalidInputError, match="currency cannot change from USD to EUR"),
    ):
        contracts.upsert_customer(
            session,
            name="Customer C1",
            country="US",
            currency="EUR",
            system="test",
            external_id="C1",
        )


def test_a_price_key_never_changes_its_terms(factory: sessionmaker[Session]) -> None:
    with transaction(factory) as session:
        product = catalog.upsert_product(session, "API", "API calls")
        tiers = [Tier(1, 100, Decimal("0.50")), Tier(101, None, Decimal("0.40"))]
        first = catalog.upsert_price(
            session,
            product,
            currency="USD",
            kind=ChargeKind.RECURRING,
            model=PricingModel.TIERED,
            tiers=tiers,
            lookup_key="API-USD",
        )
        again = catalog.upsert_price(
            session,
            product,
            currency="USD",
            kind=ChargeKind.RECURRING,
            model=PricingModel.TIERED,
            tiers=tiers,
            lookup_key="API-USD",
        )
        assert again.id == first.id
        with pytest.raises(
            InvalidInputError, match="price API-USD: a price with this key already exists"
        ):
            catalog.upsert_price(
                session,
                product,
                currency="USD",
                kind=ChargeKind.RECURRING,
                model=PricingModel.TIERED,
                tiers=[Tier(1, None, Decimal("0.45"))],
                lookup_key="API-USD",
            )


def test_a_tier_table_with_a_gap_is_refused(factory: sessionmaker[Session]) -> None:
    with transaction(factory) as session:
        product = catalog.upsert_product(session, "API", "API calls")
        with pytest.raises(
            InvalidInputError, match=r"tier 2 \(12\+\): gap in tiers: units 11-11 are not priced"
        ):
            catalog.upsert_price(
                session,
                product,
                currency="USD",
                kind=ChargeKind.RECURRING,
                model=PricingModel.VOLUME,
                tiers=[Tier(1, 10, Decimal(1)), Tier(12, None, Decimal(1))],
            )
        assert session.scalar(select(func.count()).select_from(tables.Price)) == 0


def test_creating_a_contract_again_by_external_id_returns_the_first(
    factory: sessionmaker[Session],
) -> None:
    with transaction(factory) as session:
        buyer = builders.customer(session)
        seats = builders.price(session)
        ids = {
            contracts.create_subscription(
                session,
                customer=buyer,
                name="Deal",
                terms=SubscriptionTerms(date(2026, 1, 1), Frequency.MONTHLY),
                items=[builders.spec(session, seats, 3)],
                system="salesforce",
                external_id="006AAA",
            ).id
            for _ in range(2)
        }
        assert len(ids) == 1
        assert session.scalar(select(func.count()).select_from(tables.Subscription)) == 1


def test_bad_subscription_input_is_refused(factory: sessionmaker[Session]) -> None:
    with transaction(factory) as session:
        buyer = builders.customer(session)
        seats = builders.price(session)
        euro = builders.price(session, "EUROSEATS", currency="EUR")
        with pytest.raises(InvalidInputError, match="quantity -1 is negative"):
            builders.subscription(
                session, buyer, [builders.spec(session, seats, -1)], start=date(2026, 1, 1)
            )
        with pytest.raises(
            InvalidInputError, match="price is in EUR but the subscription bills in USD"
        ):
            builders.subscription(
                session, buyer, [builders.spec(session, euro, 1)], start=date(2026, 1, 1)
            )
        with pytest.raises(InvalidInputError, match="a subscription needs at least one item"):
            builders.subscription(session, buyer, [], start=date(2026, 1, 1))
        sub = builders.subscription(
            session, buyer, [builders.spec(session, seats, 1)], start=date(2026, 1, 1)
        )
        with pytest.raises(
            InvalidInputError,
            match="cancellation date 2025-12-31 is before the start date 2026-01-01",
        ):
            contracts.cancel_subscription(session, sub.id, cancel_date=date(2025, 12, 31))
        with pytest.raises(
            InvalidInputError,
            match="amendment effective 2025-12-01 is before the subscription starts",
        ):
            contracts.amend_subscription(
                session,
                sub.id,
                effective=date(2025, 12, 1),
                items=[builders.spec(session, seats, 2)],
            )


def test_an_amendment_under_a_reference_applies_once(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    sub_id = builders.simple_subscription(factory, start=date(2026, 1, 1))
    run_billing(factory, settings, date(2026, 1, 1))
    for _ in range(2):
        with transaction(factory) as session:
            seats = session.scalars(select(tables.Price)).one()
            contracts.amend_subscription(
                session,
                sub_id,
                effective=date(2026, 1, 16),
                items=[builders.spec(session, seats, 20)],
                reference="006-UPGRADE",
            )
    result = run_billing(factory, settings, date(2026, 1, 16))
    assert (result.invoices, result.invoiced["USD"]) == (1, Decimal("51.61"))  # 10 × 10 × 16/31
    with factory() as session:
        assert session.get_one(tables.Subscription, sub_id).revision == 1


def test_start_and_frequency_change_only_before_the_first_invoice(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    sub_id = builders.simple_subscription(factory, start=date(2026, 1, 1))
    with transaction(factory) as session:
        contracts.reschedule_subscription(
            session, sub_id, start_date=date(2026, 2, 1), frequency="Quarterly", trial_days=0
        )
    run_billing(factory, settings, date(2026, 2, 1))
    with factory() as session:
        doc = session.scalars(select(tables.Document)).one()
        assert (doc.period_start, doc.period_end, doc.total) == (
            date(2026, 2, 1),
            date(2026, 4, 30),
            Decimal("100.00"),
        )
    with transaction(factory) as session, pytest.raises(BillingError, match="has been invoiced"):
        contracts.reschedule_subscription(
            session, sub_id, start_date=date(2026, 3, 1), frequency="monthly", trial_days=0
        )


def test_shortening_the_term_credits_the_periods_beyond_it(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    sub_id = builders.simple_subscription(factory, start=date(2026, 1, 1))
    run_billing(factory, settings, date(2026, 3, 1))
    with transaction(factory) as session:
        contracts.change_terms(
            session, sub_id, as_of=date(2026, 3, 1), term_months=2, auto_renew=False
        )
    result = run_billing(factory, settings, date(2026, 3, 2))
    assert (result.credit_notes, result.credited["USD"]) == (1, Decimal("100.00"))
    assert run_billing(factory, settings, date(2026, 6, 1)).invoices == 0


def test_renewal_turned_off_in_the_second_term_ends_with_that_term(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    sub_id = builders.simple_subscription(factory, start=date(2025, 1, 1))
    run_billing(factory, settings, date(2026, 3, 1))  # 15 months, now in the second term
    with transaction(factory) as session:
        contracts.change_terms(session, sub_id, as_of=date(2026, 3, 2), auto_renew=False)

    assert run_billing(factory, settings, date(2026, 3, 2)).credit_notes == 0
    assert run_billing(factory, settings, date(2026, 12, 1)).invoices == 9  # Apr–Dec 2026
    assert run_billing(factory, settings, date(2027, 3, 1)).invoices == 0
    with factory() as session:
        row = session.get_one(tables.Subscription, sub_id)
        assert (row.term_count, row.next_billing_date) == (2, None)


def test_an_earlier_start_moves_the_items_with_it(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    sub_id = builders.simple_subscription(factory, start=date(2026, 2, 1))
    with transaction(factory) as session:
        contracts.reschedule_subscription(
            session, sub_id, start_date=date(2026, 1, 1), frequency="monthly", trial_days=0
        )

    result = run_billing(factory, settings, date(2026, 2, 1))

    assert (result.invoices, result.invoiced["USD"]) == (2, Decimal("200.00"))
