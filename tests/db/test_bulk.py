from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker

from connector.db import tables
from connector.db.bulk import bulk_insert
from connector.db.engine import transaction
from tests import builders


def test_bulk_rows_read_back_exactly_like_orm_rows(factory: sessionmaker[Session]) -> None:
    moment = datetime(2026, 3, 1, 12, 30, 15, 250000, tzinfo=UTC)
    customer = {
        "name": "Acme",
        "country": "DE",
        "currency": "EUR",
        "tax_id": None,
        "created_at": moment,
        "updated_at": moment,
    }
    builders.simple_subscription(factory, start=date(2026, 1, 1))
    with transaction(factory) as session:
        item_id = session.scalars(select(tables.SubscriptionItem.id)).one()
        charge = {
            "subscription_item_id": item_id,
            "period_start": date(2026, 3, 1),
            "amount": Decimal("-51.610"),
        }
        session.execute(insert(tables.Customer), [{**customer, "id": 100}])
        bulk_insert(session, tables.Customer.__table__, [{**customer, "id": 101}])
        session.execute(insert(tables.Charge), [{**charge, "id": 100, "revision": 1}])
        bulk_insert(session, tables.Charge.__table__, [{**charge, "id": 101, "revision": 2}])

    with factory() as session:
        orm, bulk = session.scalars(
            select(tables.Customer).where(tables.Customer.id >= 100).order_by(tables.Customer.id)
        ).all()
        orm_charge, bulk_charge = session.scalars(
            select(tables.Charge).where(tables.Charge.id >= 100).order_by(tables.Charge.id)
        ).all()
    assert (bulk.name, bulk.tax_id, bulk.created_at) == (orm.name, orm.tax_id, orm.created_at)
    assert bulk.created_at == moment
    assert (bulk_charge.period_start, bulk_charge.amount) == (
        orm_charge.period_start,
        orm_charge.amount,
    )
    assert str(bulk_charge.amount) == "-51.610"
