"""Late usage: a subscription with metered items keeps the first day whose usage is not billed
yet, so that an event dated earlier marks it for reconciliation.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-06 14:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("subscriptions", sa.Column("usage_billed_until", sa.Date(), nullable=True))
    op.create_index(
        op.f("ix_subscriptions_usage_billed_until"),
        "subscriptions",
        ["usage_billed_until"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_subscriptions_usage_billed_until"), table_name="subscriptions")
    op.drop_column("subscriptions", "usage_billed_until")
