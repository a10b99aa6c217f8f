"""Daily usage aggregates: per customer, metric, group and UTC day, the hourly aggregates
merged (``usage_daily``), and the distinct values a unique count met each day
(``usage_daily_values``), filled from the hourly ones.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-06 18:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.schema import SchemaItem

import connector.db.types
from connector.db import exact

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

UTC_DATETIME = connector.db.types.UTCDateTime(timezone=True)
EXACT = connector.db.types.ExactDecimal()
KEY = "customer_id, metric, group_value"
AGGREGATES = "events, total, maximum, latest_at, latest_value, weighted"

# Per dialect: the UTC day of an hour; SUM, MAX of exact decimals; whether ``h.hour`` is the
# hour of ``usage_daily.latest_at`` (that hour's aggregate holds the day's latest value).
SQLITE = (
    "substr(hour, 1, 10)",
    "exact_sum",
    "exact_largest",
    "h.hour = substr(usage_daily.latest_at, 1, 13) || ':00:00.000000'",
)
POSTGRESQL = (
    "CAST(hour AT TIME ZONE 'UTC' AS DATE)",
    "SUM",
    "MAX",
    "h.hour <= usage_daily.latest_at AND h.hour > usage_daily.latest_at - INTERVAL '1 hour'",
)


def _key(name: str) -> list[SchemaItem]:
    return [
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("metric", sa.String(length=64), nullable=False),
        sa.Column("group_value", sa.String(length=255), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f(f"fk_{name}_customer_id_customers")
        ),
    ]


def upgrade() -> None:
    op.create_table(
        "usage_daily",
        *_key("usage_daily"),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.Column("total", EXACT, nullable=True),
        sa.Column("maximum", EXACT, nullable=True),
        sa.Column("latest_at", UTC_DATETIME, nullable=True),
        sa.Column("latest_value", EXACT, nullable=True),
        sa.Column("weighted", EXACT, nullable=True),
        sa.PrimaryKeyConstraint(
            "customer_id", "metric", "group_value", "day", name=op.f("pk_usage_daily")
        ),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "usage_daily_values",
        *_key("usage_daily_values"),
        sa.Column("value", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint(
            "customer_id",
            "metric",
            "group_value",
            "day",
            "value",
            name=op.f("pk_usage_daily_values"),
        ),
        sqlite_with_rowid=False,
    )
    _fill()


def _fill() -> None:
    """The daily aggregates of the hourly ones, merged as a batch of events merges them
    (:func:`connector.db.usage.store`): counts and sums added up exactly, the largest maximum,
    the latest value of the day's latest hour."""
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        exact.register(bind.connection.driver_connection)
        day, total, largest, latest_hour = SQLITE
    else:
        day, total, largest, latest_hour = POSTGRESQL
    # fixed names only in these statements
    op.execute(
        f"INSERT INTO usage_daily ({KEY}, day, {AGGREGATES}) "  # noqa: S608
        f"SELECT {KEY}, {day}, SUM(events), {total}(total), {largest}(maximum), "
        f"MAX(latest_at), NULL, {total}(weighted) "
        f"FROM usage_hourly GROUP BY {KEY}, {day}"
    )
    op.execute(
        "UPDATE usage_daily SET latest_value = (SELECT h.latest_value FROM usage_hourly h "  # noqa: S608
        "WHERE h.customer_id = usage_daily.customer_id AND h.metric = usage_daily.metric "
        f"AND h.group_value = usage_daily.group_value AND {latest_hour}) "
        "WHERE latest_at IS NOT NULL"
    )
    op.execute(
        f"INSERT INTO usage_daily_values ({KEY}, day, value) "  # noqa: S608
        f"SELECT DISTINCT {KEY}, {day}, value FROM usage_hourly_values"
    )


def downgrade() -> None:
    op.drop_table("usage_daily_values")
    op.drop_table("usage_daily")
