"""Accounting connections (OAuth tokens) and contacts of remote accounting targets.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21 09:14:05.443310
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import connector.db.types

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounting_connections",
        sa.Column("target", sa.String(length=32), nullable=False),
        sa.Column("refresh_token", sa.Text(), nullable=True),
        sa.Column("access_token", sa.Text(), nullable=True),
        sa.Column(
            "access_expires_at", connector.db.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("updated_at", connector.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("target", name=op.f("pk_accounting_connections")),
    )
    op.create_table(
        "accounting_contacts",
        sa.Column("target", sa.String(length=32), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(length=64), nullable=True),
        sa.Column("sent_hash", sa.String(length=64), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("updated_at", connector.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_accounting_contacts_customer_id_customers"),
        ),
        sa.PrimaryKeyConstraint("target", "customer_id", name=op.f("pk_accounting_contacts")),
    )


def downgrade() -> None:
    op.drop_table("accounting_contacts")
    op.drop_table("accounting_connections")
