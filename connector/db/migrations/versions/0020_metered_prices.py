"""Metered prices: a price of kind ``metered`` names its metric and holds the terms only metered
prices have (package size and amount, free units, minimum commitment per period).

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-23 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import connector.db.types

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

EXACT = connector.db.types.ExactDecimal()


def upgrade() -> None:
    op.add_column("prices", sa.Column("metric", sa.String(length=64), nullable=True))
    op.add_column("prices", sa.Column("package_size", sa.Integer(), nullable=True))
    op.add_column("prices", sa.Column("package_amount", EXACT, nullable=True))
    op.add_column("prices", sa.Column("free_units", EXACT, nullable=True))
    op.add_column("prices", sa.Column("minimum", EXACT, nullable=True))


def downgrade() -> None:
    # plain DROP COLUMN (SQLite 3.35+): rebuilding the table would break its foreign keys
    for column in ("minimum", "free_units", "package_amount", "package_size", "metric"):
        op.drop_column("prices", column)
