"""Collections (dunning): the steps each invoice reached (one row per invoice and step),
disputes (at most one open per invoice), open invoices found by due date, and the CRM id of
each record the write-back wrote (an escalation's Task names its invoice record by id).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-20 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from connector.db.types import UTCDateTime

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

OPEN = sa.text("resolved_at IS NULL")


def upgrade() -> None:
    op.create_table(
        "dunning_steps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.String(length=40), nullable=False),
        sa.Column("reached_on", sa.Date(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("template", sa.String(length=80), nullable=True),
        sa.Column("account_status", sa.String(length=40), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["documents.id"],
            name=op.f("fk_dunning_steps_document_id_documents"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dunning_steps")),
        sa.UniqueConstraint("document_id", "step", name=op.f("uq_dunning_steps_document_id_step")),
    )
    op.create_table(
        "disputes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("opened_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["document_id"], ["documents.id"], name=op.f("fk_disputes_document_id_documents")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_disputes")),
    )
    op.create_index(op.f("ix_disputes_document_id"), "disputes", ["document_id"])
    op.create_index(
        "ix_disputes_open_document",
        "disputes",
        ["document_id"],
        unique=True,
        sqlite_where=OPEN,
        postgresql_where=OPEN,
    )
    op.create_index(op.f("ix_documents_status_due_date"), "documents", ["status", "due_date"])
    op.add_column("writeback_state", sa.Column("record_id", sa.String(length=18), nullable=True))


def downgrade() -> None:
    op.drop_column("writeback_state", "record_id")
    op.drop_index(op.f("ix_documents_status_due_date"), table_name="documents")
    op.drop_index("ix_disputes_open_document", table_name="disputes")
    op.drop_index(op.f("ix_disputes_document_id"), table_name="disputes")
    op.drop_table("disputes")
    op.drop_table("dunning_steps")
