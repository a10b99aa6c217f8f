"""Usage-based billing: usage events (unique by transaction id) and their running aggregates
per customer, metric, group and hour.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-22 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import connector.db.types

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

UTC_DATETIME = connector.db.types.UTCDateTime(timezone=True)
EXACT = connector.db.types.ExactDecimal()


def _key() -> list[sa.Column[object]]:
    return [
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("metric", sa.String(length=64), nullable=False),
        sa.Column("group_value", sa.String(length=255), nullable=False),
        sa.Column("hour", UTC_DATETIME, nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "usage_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("transaction_id", sa.String(length=255), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("metric", sa.String(length=64), nullable=False),
        sa.Column("occurred_at", UTC_DATETIME, nullable=False),
        sa.Column("properties", sa.JSON(), nullable=False),
        sa.Column("received_at", UTC_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_usage_events_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_events")),
        sa.UniqueConstraint("transaction_id", name=op.f("uq_usage_events_transaction_id")),
    )
    op.create_table(
        "usage_hourly",
        *_key(),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.Column("total", EXACT, nullable=True),
        sa.Column("maximum", EXACT, nullable=True),
        sa.Column("latest_at", UTC_DATETIME, nullable=True),
        sa.Column("latest_value", EXACT, nullable=True),
        sa.Column("weighted", EXACT, nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_usage_hourly_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint(
            "customer_id", "metric", "group_value", "hour", name=op.f("pk_usage_hourly")
        ),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "usage_hourly_values",
        *_key(),
        sa.Column("value", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_usage_hourly_values_customer_id_customers"),
        ),
        sa.PrimaryKeyConstraint(
            "customer_id",
            "metric",
            "group_value",
            "hour",
            "value",
            name=op.f("pk_usage_hourly_values"),
        ),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("usage_hourly_values")
    op.drop_table("usage_hourly")
    op.drop_table("usage_events")
