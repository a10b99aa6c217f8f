"""Review holds: approvals of records held for an implausible date or amount.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 17:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import connector.db.types

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "review_approvals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("system", sa.String(length=32), nullable=False),
        sa.Column("object", sa.String(length=80), nullable=False),
        sa.Column("record_id", sa.String(length=32), nullable=False),
        sa.Column("payload_hash", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("approved_by", sa.String(length=255), nullable=False),
        sa.Column("approved_at", connector.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_approvals")),
        sa.UniqueConstraint(
            "system",
            "record_id",
            "payload_hash",
            name=op.f("uq_review_approvals_system_record_id_payload_hash"),
        ),
    )


def downgrade() -> None:
    op.drop_table("review_approvals")
