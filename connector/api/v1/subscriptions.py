"""``/v1/contracts`` and ``/v1/subscriptions``: what sales sold, and what is billed for it,
with each subscription's items and their versions (price, quantity, discount from a date), its
status and MRR on a day."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.api.auth import ReadKey, instance_of
from connector.api.v1.customers import external_ids
from connector.api.v1.pagination import Paging, paged
from connector.api.v1.schemas import PROBLEMS, DecimalText, Model, Money, Page, decimal_text
from connector.billing.metrics import to_money
from connector.db import tables
from connector.db.catalog import PriceCache
from connector.db.engine import reading
from connector.db.subscriptions import build_subscriptions, load_items
from connector.db.types import utc_now
from connector.errors import NotFoundError

router = APIRouter(tags=["subscriptions"], responses=PROBLEMS)

OnDay = Annotated[
    date | None, Query(description="The day status and MRR are given for (default: today, UTC).")
]


class Contract(Model):
    id: int
    customer_id: int
    name: str
    subscription_ids: list[int]
    external_ids: dict[str, str]
    created_at: datetime


class ItemVersion(Model):
    effective_date: date
    price_id: int
    pricing_model: str | None
    unit_amount: DecimalText | None
    flat_amount: DecimalText | None
    quantity: DecimalText
    discount_percent: DecimalText


class Item(Model):
    id: int
    key: str
    kind: str
    product_code: str | None
    product_name: str | None
    service_date: date | None
    versions: list[ItemVersion]


class Subscription(Model):
    id: int
    contract_id: int
    customer_id: int
    currency: str
    frequency: str
    start_date: date
    trial_days: int
    term_months: int
    auto_renew: bool
    term_count: int
    cancel_date: date | None
    revision: int
    billed_until: date | None
    next_billing_date: date | None
    billing_error: str | None
    status: str | None = None
    mrr: Money | None = None
    on: date
    items: list[Item]
    external_ids: dict[str, str]
    created_at: datetime
    updated_at: datetime


@router.get("/contracts", response_model=Page[Contract], summary="List contracts")
def list_contracts(
    request: Request,
    _key: ReadKey,
    page: Paging,
    customer_id: Annotated[int | None, Query(description="Only this customer's.")] = None,
) -> Page[Contract]:
    query = select(tables.Contract).where(tables.Contract.id > page.after)
    if customer_id is not None:
        query = query.where(tables.Contract.customer_id == customer_id)
    with reading(instance_of(request).factory) as session:
        rows = session.scalars(query.order_by(tables.Contract.id).limit(page.fetch)).all()
        kept, cursor = paged(rows, page, lambda row: row.id)
        ids = [row.id for row in kept]
        links = external_ids(session, tables.Contract.__tablename__, ids)
        subscriptions: dict[int, list[int]] = defaultdict(list)
        for contract_id, subscription_id in session.execute(
            select(tables.Subscription.contract_id, tables.Subscription.id)
            .where(tables.Subscription.contract_id.in_(ids))
            .order_by(tables.Subscription.id)
        ):
            subscriptions[contract_id].append(subscription_id)
        data = [
            Contract(
                id=row.id,
                customer_id=row.customer_id,
                name=row.name,
                subscription_ids=subscriptions.get(row.id, []),
                external_ids=links.get(row.id, {}),
                created_at=row.created_at,
            )
            for row in kept
        ]
    return Page[Contract](data=data, next_cursor=cursor)


def _subscriptions(
    session: Session, rows: Sequence[tables.Subscription], on: date
) -> list[Subscription]:
    """The API's view of subscription rows: six queries for any number of them."""
    ids = [row.id for row in rows]
    links = external_ids(session, tables.Subscription.__tablename__, ids)
    stored = load_items(session, ids)
    cache = PriceCache()
    failures: dict[int, str] = {}
    domain = build_subscriptions(session, rows, stored, cache, failures)
    result = []
    for row in rows:
        built = domain.get(row.id)
        items = [
            Item(
                id=item.id,
                key=item.item_key,
                kind=item.kind,
                product_code=product.code if product else None,
                product_name=product.name if product else None,
                service_date=item.service_date,
                versions=[_version(version, cache) for version in stored.versions.get(item.id, [])],
            )
            for item in stored.items.get(row.id, [])
            for product in [cache.products.get(item.product_id)]
        ]
        result.append(
            Subscription(
                id=row.id,
                contract_id=row.contract_id,
                customer_id=row.customer_id,
                currency=row.currency,
                frequency=row.frequency,
                start_date=row.start_date,
                trial_days=row.trial_days,
                term_months=row.term_months,
                auto_renew=row.auto_renew,
                term_count=row.term_count,
                cancel_date=row.cancel_date,
                revision=row.revision,
                billed_until=row.billed_until,
                next_billing_date=row.next_billing_date,
                billing_error=row.billing_error or failures.get(row.id),
                status=built.terms.status_on(on).value if built else None,
                mrr=(
                    format(to_money(built.monthly_recurring_revenue(on), built.currency), "f")
                    if built
                    else None
                ),
                on=on,
                items=items,
                external_ids=links.get(row.id, {}),
                created_at=row.created_at,
                updated_at=row.updated_at,
            )
        )
    return result


def _version(row: object, cache: PriceCache) -> ItemVersion:
    price_id: int = getattr(row, "price_id")  # noqa: B009 - a Row of load_items
    price = cache.prices.get(price_id)
    unit = price.unit_amount if price else None
    flat = price.flat_amount if price else None
    return ItemVersion(
        effective_date=getattr(row, "effective_date"),  # noqa: B009
        price_id=price_id,
        pricing_model=price.model.value if price else None,
        unit_amount=None if unit is None else decimal_text(unit),
        flat_amount=None if flat is None else decimal_text(flat),
        quantity=decimal_text(getattr(row, "quantity")),  # noqa: B009
        discount_percent=decimal_text(getattr(row, "discount_percent")),  # noqa: B009
    )


@router.get("/subscriptions", response_model=Page[Subscription], summary="List subscriptions")
def list_subscriptions(
    request: Request,
    _key: ReadKey,
    page: Paging,
    customer_id: Annotated[int | None, Query(description="Only this customer's.")] = None,
    contract_id: Annotated[int | None, Query(description="Only this contract's.")] = None,
    on: OnDay = None,
) -> Page[Subscription]:
    query = select(tables.Subscription).where(tables.Subscription.id > page.after)
    if customer_id is not None:
        query = query.where(tables.Subscription.customer_id == customer_id)
    if contract_id is not None:
        query = query.where(tables.Subscription.contract_id == contract_id)
    with reading(instance_of(request).factory) as session:
        rows = session.scalars(query.order_by(tables.Subscription.id).limit(page.fetch)).all()
        kept, cursor = paged(rows, page, lambda row: row.id)
        data = _subscriptions(session, kept, on or utc_now().date())
    return Page[Subscription](data=data, next_cursor=cursor)


@router.get(
    "/subscriptions/{subscription_id}", response_model=Subscription, summary="One subscription"
)
def get_subscription(
    request: Request, _key: ReadKey, subscription_id: int, on: OnDay = None
) -> Subscription:
    with reading(instance_of(request).factory) as session:
        row = session.get(tables.Subscription, subscription_id)
        if row is None:
            raise NotFoundError(f"unknown subscription {subscription_id}")
        return _subscriptions(session, [row], on or utc_now().date())[0]
