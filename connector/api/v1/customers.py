"""``/v1/customers``: the customers billed, with their ids in other systems (Salesforce)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.api.auth import ReadKey, instance_of
from connector.api.v1.pagination import Paging, paged
from connector.api.v1.schemas import PROBLEMS, Model, Page
from connector.db import tables
from connector.db.engine import reading
from connector.errors import NotFoundError

router = APIRouter(tags=["customers"], responses=PROBLEMS)


class Address(Model):
    street: str | None
    city: str | None
    state: str | None
    postal_code: str | None


class Customer(Model):
    id: int
    name: str
    country: str
    region: str | None
    currency: str
    tax_id: str | None
    language: str | None
    billing_email: str | None
    address: Address
    external_ids: dict[str, str]
    created_at: datetime
    updated_at: datetime


def external_ids(session: Session, entity: str, ids: Sequence[int]) -> dict[int, dict[str, str]]:
    """The ids in other systems of the records ``ids`` of ``entity`` (a table's name): one
    query."""
    found: dict[int, dict[str, str]] = defaultdict(dict)
    if ids:
        link = tables.ExternalId
        for entity_id, system, external_id in session.execute(
            select(link.entity_id, link.system, link.external_id)
            .where(link.entity == entity, link.entity_id.in_(sorted(set(ids))))
            .order_by(link.id)
        ):
            found[entity_id].setdefault(system, external_id)
    return found


def _customers(session: Session, rows: Sequence[tables.Customer]) -> list[Customer]:
    links = external_ids(session, tables.Customer.__tablename__, [row.id for row in rows])
    return [
        Customer(
            id=row.id,
            name=row.name,
            country=row.country,
            region=row.region,
            currency=row.currency,
            tax_id=row.tax_id,
            language=row.language,
            billing_email=row.billing_email,
            address=Address(
                street=row.address_street,
                city=row.address_city,
                state=row.address_state,
                postal_code=row.address_postal_code,
            ),
            external_ids=links.get(row.id, {}),
            created_at=row.created_at,
            updated_at=row.updated_at,
        )
        for row in rows
    ]


@router.get("/customers", response_model=Page[Customer], summary="List customers")
def list_customers(
    request: Request,
    _key: ReadKey,
    page: Paging,
    currency: Annotated[
        str | None, Query(min_length=3, max_length=3, description="Only those billed in it.")
    ] = None,
) -> Page[Customer]:
    query = select(tables.Customer).where(tables.Customer.id > page.after)
    if currency is not None:
        query = query.where(tables.Customer.currency == currency.upper())
    with reading(instance_of(request).factory) as session:
        rows = session.scalars(query.order_by(tables.Customer.id).limit(page.fetch)).all()
        kept, cursor = paged(rows, page, lambda row: row.id)
        return Page[Customer](data=_customers(session, kept), next_cursor=cursor)


@router.get("/customers/{customer_id}", response_model=Customer, summary="One customer")
def get_customer(request: Request, _key: ReadKey, customer_id: int) -> Customer:
    with reading(instance_of(request).factory) as session:
        row = session.get(tables.Customer, customer_id)
        if row is None:
            raise NotFoundError(f"unknown customer {customer_id}")
        return _customers(session, [row])[0]
