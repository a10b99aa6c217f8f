"""Builders for database tests: real records created through the connector's own services."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connector.billing.metered import MeteredModel, MeteredPrice
from connector.billing.money import currency as currency_of
from connector.billing.periods import Frequency
from connector.billing.pricing import ChargeKind, PricingModel, Tier
from connector.billing.subscriptions import ItemSpec, SubscriptionTerms
from connector.db import catalog, tables
from connector.db.engine import transaction
from connector.sync import contracts


def customer(
    session: Session,
    ref: str = "C1",
    *,
    country: str = "US",
    currency: str = "USD",
    name: str | None = None,
) -> tables.Customer:
    return contracts.upsert_customer(
        session,
        name=name or f"Customer {ref}",
        country=country,
        currency=currency,
        system="test",
        external_id=ref,
    )


def price(
    session: Session,
    code: str = "SEATS",
    *,
    currency: str = "USD",
    unit_amount: str | None = "10.00",
    kind: ChargeKind = ChargeKind.RECURRING,
    model: PricingModel = PricingModel.PER_UNIT,
    flat_amount: str | None = None,
    tiers: Sequence[Tier] = (),
    tax_code: str | None = None,
) -> tables.Price:
    product = catalog.upsert_product(session, code, code.title(), tax_code=tax_code)
    return catalog.upsert_price(
        session,
        product,
        currency=currency,
        kind=kind,
        model=model,
        unit_amount=None if unit_amount is None else Decimal(unit_amount),
        flat_amount=None if flat_amount is None else Decimal(flat_amount),
        tiers=tiers,
    )


def metered_price(
    session: Session,
    code: str = "API",
    *,
    metric: str = "api_calls",
    currency: str = "USD",
    unit_amount: str = "0.25",
    free_units: str = "0",
    minimum: str | None = None,
    key: str | None = None,
    terms: MeteredPrice | None = None,
) -> tables.Price:
    """A per-unit metered price of ``metric`` (product ``code``), or one of other ``terms``."""
    product = catalog.upsert_product(session, code, code.title())
    return catalog.upsert_price(
        session,
        product,
        currency=currency,
        kind=ChargeKind.METERED,
        model=PricingModel.PER_UNIT,
        lookup_key=key,
        metered=terms
        or MeteredPrice(
            metric,
            currency_of(currency),
            MeteredModel.PER_UNIT,
            Decimal(unit_amount),
            free_units=Decimal(free_units),
            minimum=None if minimum is None else Decimal(minimum),
        ),
    )


def spec(
    session: Session,
    price_row: tables.Price,
    quantity: str | int = 1,
    discount: str | int = 0,
    *,
    key: str | None = None,
    service_date: date | None = None,
) -> ItemSpec:
    return contracts.item_spec(
        price_row,
        catalog.PriceCache(),
        session,
        key=key,
        quantity=Decimal(quantity),
        discount_percent=Decimal(discount),
        service_date=service_date,
    )


def subscription(
    session: Session,
    customer_row: tables.Customer,
    items: Sequence[ItemSpec],
    *,
    start: date,
    frequency: Frequency = Frequency.MONTHLY,
    term_months: int = 12,
    auto_renew: bool = True,
    trial_days: int = 0,
    name: str = "Contract",
) -> tables.Subscription:
    return contracts.create_subscription(
        session,
        customer=customer_row,
        name=name,
        terms=SubscriptionTerms(start, frequency, term_months, auto_renew, trial_days),
        items=items,
    )


def simple_subscription(
    factory: sessionmaker[Session],
    *,
    start: date,
    quantity: int = 10,
    unit_amount: str = "10.00",
    currency: str = "USD",
    country: str = "US",
    frequency: Frequency = Frequency.MONTHLY,
    ref: str = "C1",
    **terms: object,
) -> int:
    """A customer with one per-unit subscription; returns the subscription id."""
    with transaction(factory) as session:
        row = subscription(
            session,
            customer(session, ref, country=country, currency=currency),
            [spec(session, price(session, currency=currency, unit_amount=unit_amount), quantity)],
            start=start,
            frequency=frequency,
            **terms,  # type: ignore[arg-type]
        )
        return row.id


def documents(factory: sessionmaker[Session]) -> list[tuple[str, str, date, Decimal, Decimal]]:
    """(number, kind, issue date, subtotal, total) of every document, in number order."""
    with factory() as session:
        rows = session.execute(
            select(
                tables.Document.number,
                tables.Document.kind,
                tables.Document.issue_date,
                tables.Document.subtotal,
                tables.Document.total,
            ).order_by(tables.Document.kind, tables.Document.number)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


def lines(factory: sessionmaker[Session], number: str) -> list[tuple[str, date, date, Decimal]]:
    """(description, service start, service end, amount) of a document's lines."""
    with factory() as session:
        rows = session.execute(
            select(
                tables.DocumentLine.description,
                tables.DocumentLine.service_start,
                tables.DocumentLine.service_end,
                tables.DocumentLine.amount,
            )
            .join(tables.Document, tables.Document.id == tables.DocumentLine.document_id)
            .where(tables.Document.number == number)
            .order_by(tables.DocumentLine.id)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]
