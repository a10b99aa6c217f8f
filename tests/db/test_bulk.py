from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, String, func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from connector.db import tables
from connector.db.bulk import (
    bulk_delete,
    bulk_insert,
    bulk_update,
    bulk_upsert,
    insert_new,
    reserve_ids,
    reserve_many,
    upsert,
)
from connector.db.engine import transaction
from tests import builders
from tests.statements import counting


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


def test_upsert_update_and_delete_each_cost_one_statement_and_read_back_like_orm_rows(
    factory: sessionmaker[Session], engine: Engine
) -> None:
    table = tables.table_of(tables.CrmRecord)
    first, later = (
        datetime(2026, 3, 1, 12, 0, 0, 250000, tzinfo=UTC),
        datetime(2026, 3, 2, 8, 0, tzinfo=UTC),
    )

    def record(record_id: str, state: str, payload: dict[str, Any], moment: datetime) -> Any:
        return {
            "system": "salesforce",
            "object": "Opportunity",
            "record_id": record_id,
            "payload": payload,
            "payload_hash": f"hash-{record_id}-{state}",
            "modstamp": moment,
            "deleted": False,
            "state": state,
            "reason": None,
            "applied_hash": None,
            "applied_payload": None,
            "first_seen": moment,
            "updated_at": moment,
        }

    nested = {"Id": "006A", "Amount": "12.50", "Lines": {"records": [{"Quantity": 2}]}}
    with transaction(factory) as session, counting(engine) as seen:
        bulk_upsert(
            session,
            table,
            [record("006A", "quarantined", nested, first), record("006B", "applied", {}, first)],
            keys=["system", "object", "record_id"],
            insert_only=["first_seen"],
        )
        bulk_upsert(
            session,
            table,
            [record("006A", "applied", {**nested, "Name": "Renamed"}, later)],
            keys=["system", "object", "record_id"],
            insert_only=["first_seen"],
        )
    assert len(seen.touching("crm_records")) == 2
    with factory() as session:
        rows = {row.record_id: row for row in session.scalars(select(tables.CrmRecord))}
    assert set(rows) == {"006A", "006B"}
    changed = rows["006A"]
    assert (changed.state, changed.payload, changed.modstamp) == (
        "applied",
        {**nested, "Name": "Renamed"},
        later,
    )
    assert (changed.first_seen, changed.updated_at, changed.applied_payload) == (
        first,
        later,
        None,
    )

    customers = tables.table_of(tables.Customer)
    moment = datetime(2026, 3, 1, tzinfo=UTC)
    with transaction(factory) as session:
        ids = reserve_many(session, {customers: 3})[customers]
        bulk_insert(
            session,
            customers,
            [
                {
                    "id": customer_id,
                    "name": f"Customer {customer_id}",
                    "country": "DE",
                    "currency": "EUR",
                    "tax_id": None,
                    "region": None,
                    "created_at": moment,
                    "updated_at": moment,
                }
                for customer_id in ids
            ],
        )
    with transaction(factory) as session, counting(engine) as seen:
        bulk_update(
            session,
            customers,
            [
                {"id": ids[0], "name": "First", "tax_id": "DE1", "updated_at": later},
                {"id": ids[1], "name": "Second", "tax_id": None, "updated_at": later},
            ],
            keys=["id"],
        )
        bulk_delete(session, customers, [{"id": ids[2]}])
    assert seen.rows[-2:] == [2, 1] and len(seen.touching("customers")) == 2
    with factory() as session:
        found = session.execute(
            select(tables.Customer.name, tables.Customer.tax_id, tables.Customer.updated_at)
            .where(tables.Customer.id.in_(ids))
            .order_by(tables.Customer.id)
        ).all()
    assert [tuple(row) for row in found] == [("First", "DE1", later), ("Second", None, later)]


def test_ids_of_several_tables_are_reserved_in_one_statement(
    factory: sessionmaker[Session], engine: Engine
) -> None:
    builders.simple_subscription(factory, start=date(2026, 1, 1))
    contracts, items = tables.table_of(tables.Contract), tables.table_of(tables.SubscriptionItem)
    with transaction(factory) as session:
        highest = {
            table: session.scalar(select(func.max(table.c.id))) for table in (contracts, items)
        }
        with counting(engine) as seen:
            reserved = reserve_many(
                session, {contracts: 2, items: 3, tables.table_of(tables.Price): 0}
            )
    assert len(seen) == 1
    assert set(reserved) == {contracts, items}
    for table, count in ((contracts, 2), (items, 3)):
        ids = reserved[table]
        assert len(set(ids)) == count and min(ids) > (highest[table] or 0)
    assert reserve_ids(factory(), contracts, 0) == []


def test_rows_upserted_as_one_statement_read_back_like_rows_upserted_one_by_one(
    factory: sessionmaker[Session], engine: Engine
) -> None:
    """``as_one`` (one INSERT … SELECT of a JSON array on PostgreSQL) stores what the
    executemany stores, new rows and updated ones alike, in one statement."""
    builders.simple_subscription(factory, start=date(2026, 1, 1))
    with factory() as session:
        customer = session.scalars(select(tables.Customer.id)).first()
    hourly, values = tables.table_of(tables.UsageHourly), tables.table_of(tables.UsageHourlyValue)
    hour = datetime(2026, 3, 1, 12, tzinfo=UTC)
    latest = datetime(2026, 3, 1, 12, 59, 59, 999999, tzinfo=UTC)

    def row(metric: str, total: Decimal | None, at: datetime | None) -> dict[str, Any]:
        return {"customer_id": customer, "metric": metric, "group_value": "eu-Zoë 東京",
                "hour": hour, "events": 3, "total": total, "maximum": Decimal("-0.000001"),
                "latest_at": at, "latest_value": Decimal("12345678901234567890.123456789"),
                "weighted": None}  # fmt: skip

    def adding(excluded: Any) -> dict[str, Any]:
        return {"events": hourly.c.events + excluded.events, "latest_at": excluded.latest_at}

    key = ["customer_id", "metric", "group_value", "hour"]
    names = [*key, "value"]
    for as_one in (False, True):
        metric = f"m-{as_one}"
        with transaction(factory) as session, counting(engine) as seen:
            first_rows = [row(metric, Decimal("1.50"), None), row(f"{metric}-b", None, latest)]
            upsert(session, hourly, first_rows, key, adding, as_one=as_one)
            upsert(session, hourly, [row(metric, Decimal("2"), latest)], key, adding, as_one=as_one)
            met = [{**dict(zip(key, (customer, metric, "", hour), strict=True)), "value": v}
                   for v in ("u1", "ü2")]  # fmt: skip
            insert_new(session, values, met, names, as_one=as_one)
            insert_new(session, values, met[:1], names, as_one=as_one)
        assert len(seen.touching("usage_hourly")) == 4

    def stored(as_one: bool) -> list[tuple[Any, ...]]:
        with engine.connect() as connection:
            rows = connection.execute(
                select(hourly, hourly.c.total.cast(String), hourly.c.latest_value.cast(String))
                .where(hourly.c.metric.like(f"m-{as_one}%"))
                .order_by(hourly.c.metric)
            ).all()
            met = connection.execute(
                select(values.c.value, values.c.hour)
                .where(values.c.metric == f"m-{as_one}")
                .order_by(values.c.value)
            ).all()
        return [(*row[2:], row.metric.removeprefix(f"m-{as_one}")) for row in rows] + [
            tuple(found) for found in met
        ]

    assert stored(True) == stored(False)
    assert stored(True)[0][1:] == (
        hour, 6, Decimal("1.50"), Decimal("-0.000001"), latest,
        Decimal("12345678901234567890.123456789"), None, "1.50",
        "12345678901234567890.123456789", "",
    )  # fmt: skip
