"""Usage events: transaction ids in a table of their own (``usage_event_ids``), and on
PostgreSQL the events partitioned by month on ``occurred_at``, existing rows moved into their
month's partition. SQLite keeps a plain ``usage_events`` table (without its unique index, the
new table holding the ids).

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-24 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import connector.db.types
from connector.db import usage_partitions

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

UTC_DATETIME = connector.db.types.UTCDateTime(timezone=True)
COLUMNS = "id, transaction_id, customer_id, metric, occurred_at, properties, received_at"
OLD = "usage_events_unpartitioned"


def _create_ids() -> None:
    op.create_table(
        "usage_event_ids",
        sa.Column("transaction_id", sa.String(length=255), nullable=False),
        sa.Column("occurred_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("transaction_id", name=op.f("pk_usage_event_ids")),
        sqlite_with_rowid=False,
    )
    op.execute(
        "INSERT INTO usage_event_ids (transaction_id, occurred_at) "
        "SELECT transaction_id, occurred_at FROM usage_events"
    )


def upgrade() -> None:
    _create_ids()
    if op.get_bind().dialect.name != "postgresql":
        with op.batch_alter_table("usage_events") as batch:
            batch.drop_constraint("uq_usage_events_transaction_id", type_="unique")
        return
    op.execute(f"ALTER TABLE usage_events RENAME TO {OLD}")
    op.execute(f"ALTER TABLE {OLD} RENAME CONSTRAINT pk_usage_events TO pk_{OLD}")
    op.execute(f"ALTER TABLE {OLD} RENAME CONSTRAINT uq_usage_events_transaction_id TO uq_{OLD}")
    op.execute(
        "CREATE TABLE usage_events ("
        "id INTEGER NOT NULL DEFAULT nextval('usage_events_id_seq'), "
        "transaction_id VARCHAR(255) NOT NULL, "
        "customer_id INTEGER NOT NULL, "
        "metric VARCHAR(64) NOT NULL, "
        "occurred_at TIMESTAMP WITH TIME ZONE NOT NULL, "
        "properties JSON NOT NULL, "
        "received_at TIMESTAMP WITH TIME ZONE NOT NULL, "
        "CONSTRAINT pk_usage_events PRIMARY KEY (id, occurred_at), "
        "CONSTRAINT fk_usage_events_customer_id_customers FOREIGN KEY (customer_id) "
        "REFERENCES customers (id)"
        ") PARTITION BY RANGE (occurred_at)"
    )
    op.execute("ALTER SEQUENCE usage_events_id_seq OWNED BY usage_events.id")
    op.execute(f"CREATE TABLE {usage_partitions.DEFAULT} PARTITION OF usage_events DEFAULT")
    connection = op.get_bind()
    months = connection.execute(
        sa.text(
            f"SELECT DISTINCT CAST(EXTRACT(YEAR FROM occurred_at AT TIME ZONE 'UTC') AS INTEGER), "  # noqa: S608 - fixed names
            f"CAST(EXTRACT(MONTH FROM occurred_at AT TIME ZONE 'UTC') AS INTEGER) FROM {OLD}"
        )
    ).all()
    usage_partitions.create_all(connection, [(year, month) for year, month in months])
    op.execute(f"INSERT INTO usage_events ({COLUMNS}) SELECT {COLUMNS} FROM {OLD}")  # noqa: S608 - fixed names
    op.execute(f"DROP TABLE {OLD}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE usage_events RENAME TO {OLD}")
        op.execute(f"ALTER TABLE {OLD} RENAME CONSTRAINT pk_usage_events TO pk_{OLD}")
        op.execute(
            f"ALTER TABLE {OLD} RENAME CONSTRAINT fk_usage_events_customer_id_customers TO fk_{OLD}"
        )
        op.execute(
            "CREATE TABLE usage_events ("
            "id INTEGER NOT NULL DEFAULT nextval('usage_events_id_seq'), "
            "transaction_id VARCHAR(255) NOT NULL, "
            "customer_id INTEGER NOT NULL, "
            "metric VARCHAR(64) NOT NULL, "
            "occurred_at TIMESTAMP WITH TIME ZONE NOT NULL, "
            "properties JSON NOT NULL, "
            "received_at TIMESTAMP WITH TIME ZONE NOT NULL, "
            "CONSTRAINT pk_usage_events PRIMARY KEY (id), "
            "CONSTRAINT uq_usage_events_transaction_id UNIQUE (transaction_id), "
            "CONSTRAINT fk_usage_events_customer_id_customers FOREIGN KEY (customer_id) "
            "REFERENCES customers (id))"
        )
        op.execute("ALTER SEQUENCE usage_events_id_seq OWNED BY usage_events.id")
        op.execute(f"INSERT INTO usage_events ({COLUMNS}) SELECT {COLUMNS} FROM {OLD}")  # noqa: S608 - fixed names
        op.execute(f"DROP TABLE {OLD} CASCADE")  # its partitions with it
    else:
        with op.batch_alter_table("usage_events") as batch:
            batch.create_unique_constraint("uq_usage_events_transaction_id", ["transaction_id"])
    op.drop_table("usage_event_ids")
