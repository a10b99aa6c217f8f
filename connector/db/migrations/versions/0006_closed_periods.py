"""Closed periods: each closing of the books (through which day, by whom, when), and the
outbox rows a push has sent but whose answer it has not recorded yet.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 17:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import connector.db.types

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "closed_periods",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("closed_through", sa.Date(), nullable=False),
        sa.Column("closed_by", sa.String(length=120), nullable=False),
        sa.Column("closed_at", connector.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reopened", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_closed_periods")),
    )
    op.create_table(
        "postings_in_flight",
        sa.Column("outbox_id", sa.Integer(), nullable=False),
        sa.Column("target", sa.String(length=32), nullable=False),
        sa.Column("started_at", connector.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["outbox_id"], ["outbox.id"], name=op.f("fk_postings_in_flight_outbox_id_outbox")
        ),
        sa.PrimaryKeyConstraint("outbox_id", "target", name=op.f("pk_postings_in_flight")),
    )


def downgrade() -> None:
    op.drop_table("postings_in_flight")
    op.drop_table("closed_periods")
