"""Accounting: the outbox, deliveries per target, revenue journals and progress.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 07:17:56.166451
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import connector.db.types

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("document_type", sa.String(length=16), nullable=False),
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.Column("created_at", connector.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint(
            "document_type", "document_id", name=op.f("uq_outbox_document_type_document_id")
        ),
    )
    op.create_table(
        "deliveries",
        sa.Column("outbox_id", sa.Integer(), nullable=False),
        sa.Column("target", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("updated_at", connector.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["outbox_id"], ["outbox.id"], name=op.f("fk_deliveries_outbox_id_outbox")
        ),
        sa.PrimaryKeyConstraint("outbox_id", "target", name=op.f("pk_deliveries")),
    )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_deliveries_target_state"), ["target", "state"], unique=False
        )

    op.create_table(
        "revenue_journals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("journal_date", sa.Date(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount", connector.db.types.ExactDecimal(length=64), nullable=False),
        sa.Column("amounts", sa.JSON(), nullable=False),
        sa.Column("created_at", connector.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["documents.id"],
            name=op.f("fk_revenue_journals_document_id_documents"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_revenue_journals")),
        sa.UniqueConstraint(
            "document_id", "period_end", name=op.f("uq_revenue_journals_document_id_period_end")
        ),
    )
    with op.batch_alter_table("revenue_journals", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_revenue_journals_document_id"), ["document_id"], unique=False
        )

    op.create_table(
        "revenue_progress",
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.Column("recognized_through", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["documents.id"],
            name=op.f("fk_revenue_progress_document_id_documents"),
        ),
        sa.PrimaryKeyConstraint("document_id", name=op.f("pk_revenue_progress")),
    )


def downgrade() -> None:
    op.drop_table("revenue_progress")
    with op.batch_alter_table("revenue_journals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_revenue_journals_document_id"))

    op.drop_table("revenue_journals")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deliveries_target_state"))

    op.drop_table("deliveries")
    op.drop_table("outbox")
