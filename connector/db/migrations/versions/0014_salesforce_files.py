"""Documents as Salesforce Files: per document, the file its PDF is attached as
(``salesforce_files``). Every document already shown as a ``Billing_Invoice__c`` record is
queued once (entity ``file``), so that its PDF is attached by the next write-back.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 02:30:00
"""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from alembic import op

import connector.db.types

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

CHANGED = date.min  # due at once
INVOICE_OBJECT = "Billing_Invoice__c"

queue = sa.table(
    "writeback_queue",
    sa.column("entity", sa.String),
    sa.column("key", sa.String),
    sa.column("due_on", sa.Date),
    sa.column("generation", sa.Integer),
)
state = sa.table(
    "writeback_state",
    sa.column("object", sa.String),
    sa.column("key", sa.String),
    sa.column("sent_hash", sa.String),
)
documents = sa.table("documents", sa.column("id", sa.Integer), sa.column("number", sa.String))


def upgrade() -> None:
    op.create_table(
        "salesforce_files",
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.Column("content_document_id", sa.String(length=18), nullable=True),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("content_version_id", sa.String(length=18), nullable=True),
        sa.Column("attempt_version", sa.Integer(), nullable=True),
        sa.Column("attempt_sha256", sa.String(length=64), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("updated_at", connector.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["documents.id"],
            name=op.f("fk_salesforce_files_document_id_documents"),
        ),
        sa.PrimaryKeyConstraint("document_id", name=op.f("pk_salesforce_files")),
    )
    shown = (
        sa.select(
            sa.literal("file", sa.String).label("entity"),
            sa.cast(documents.c.id, sa.String(120)).label("key"),
            sa.literal(CHANGED, sa.Date).label("due_on"),
            sa.literal(0, sa.Integer).label("generation"),
        )
        .join(state, sa.and_(state.c.object == INVOICE_OBJECT, state.c.key == documents.c.number))
        .where(state.c.sent_hash.is_not(None))
    )
    op.execute(queue.insert().from_select(["entity", "key", "due_on", "generation"], shown))


def downgrade() -> None:
    op.execute(queue.delete().where(queue.c.entity == "file"))
    op.drop_table("salesforce_files")
