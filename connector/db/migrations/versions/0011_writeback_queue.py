"""The write-back's queue: the records it must build again, marked with the change that makes
them differ, so that a cycle in which nothing changed builds none. Every record an existing
database shows in Salesforce is queued once, so that its first write-back after the upgrade
sends what changed since the last one (no more: what Salesforce holds is still compared).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-12 09:00:00
"""

from __future__ import annotations

from datetime import date
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

SYSTEM = "salesforce"
CHANGED = date.min  # due at once
WAITING_OR_APPLIED = ("quarantined", "held", "applied")

queue = sa.table(
    "writeback_queue",
    sa.column("entity", sa.String),
    sa.column("key", sa.String),
    sa.column("due_on", sa.Date),
    sa.column("generation", sa.Integer),
)
external_ids = sa.table(
    "external_ids",
    sa.column("entity", sa.String),
    sa.column("entity_id", sa.Integer),
    sa.column("system", sa.String),
    sa.column("external_id", sa.String),
)
documents = sa.table(
    "documents", sa.column("id", sa.Integer), sa.column("subscription_id", sa.Integer)
)
crm_records = sa.table(
    "crm_records",
    sa.column("system", sa.String),
    sa.column("object", sa.String),
    sa.column("record_id", sa.String),
    sa.column("state", sa.String),
)


def _queued(entity: str, key: sa.ColumnElement[Any]) -> list[sa.ColumnElement[Any]]:
    return [
        sa.literal(entity, sa.String).label("entity"),
        sa.cast(key, sa.String(120)).label("key"),
        sa.literal(CHANGED, sa.Date).label("due_on"),
        sa.literal(0, sa.Integer).label("generation"),
    ]


def _linked(entity: str) -> sa.ColumnElement[bool]:
    return sa.and_(external_ids.c.system == SYSTEM, external_ids.c.entity == entity)


def _queue_every_record() -> None:
    columns = ["entity", "key", "due_on", "generation"]
    for entity, table in (("subscription", "subscriptions"), ("customer", "customers")):
        op.execute(
            queue.insert().from_select(
                columns,
                sa.select(*_queued(entity, external_ids.c.entity_id)).where(_linked(table)),
            )
        )
    op.execute(
        queue.insert().from_select(
            columns,
            sa.select(*_queued("document", documents.c.id))
            .join(external_ids, external_ids.c.entity_id == documents.c.subscription_id)
            .where(_linked("subscriptions")),
        )
    )
    deals = sa.union(
        sa.select(crm_records.c.record_id.label("deal")).where(
            crm_records.c.system == SYSTEM,
            crm_records.c.object == "Opportunity",
            crm_records.c.state.in_(WAITING_OR_APPLIED),
        ),
        sa.select(external_ids.c.external_id.label("deal")).where(_linked("subscriptions")),
    ).subquery()
    op.execute(queue.insert().from_select(columns, sa.select(*_queued("deal", deals.c.deal))))


def upgrade() -> None:
    op.create_table(
        "writeback_queue",
        sa.Column("entity", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=120), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("entity", "key", name=op.f("pk_writeback_queue")),
    )
    op.create_index(op.f("ix_writeback_queue_due_on"), "writeback_queue", ["due_on"], unique=False)
    _queue_every_record()


def downgrade() -> None:
    op.drop_index(op.f("ix_writeback_queue_due_on"), table_name="writeback_queue")
    op.drop_table("writeback_queue")
