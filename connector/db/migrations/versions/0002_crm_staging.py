"""CRM staging: pulled records, sync cursors and API usage per day.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 06:42:10.607626
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import connector.db.types

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_usage",
        sa.Column("system", sa.String(length=32), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("org_used", sa.Integer(), nullable=True),
        sa.Column("org_limit", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("system", "day", name=op.f("pk_api_usage")),
    )
    op.create_table(
        "crm_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("system", sa.String(length=32), nullable=False),
        sa.Column("object", sa.String(length=80), nullable=False),
        sa.Column("record_id", sa.String(length=32), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("payload_hash", sa.String(length=64), nullable=False),
        sa.Column("modstamp", connector.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("applied_hash", sa.String(length=64), nullable=True),
        sa.Column("applied_payload", sa.JSON(), nullable=True),
        sa.Column("first_seen", connector.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", connector.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crm_records")),
        sa.UniqueConstraint(
            "system", "object", "record_id", name=op.f("uq_crm_records_system_object_record_id")
        ),
    )
    with op.batch_alter_table("crm_records", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_crm_records_state"), ["state"], unique=False)

    op.create_table(
        "sync_cursors",
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("position", connector.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", connector.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_sync_cursors")),
    )


def downgrade() -> None:
    op.drop_table("sync_cursors")
    with op.batch_alter_table("crm_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_crm_records_state"))

    op.drop_table("crm_records")
    op.drop_table("api_usage")
