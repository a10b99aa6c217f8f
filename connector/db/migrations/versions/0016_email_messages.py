"""E-mail to customers: the billing address of each customer (from the mapping), and the mail
outbox, one row per message (a document's version and the kind of message), with its state,
its Message-ID, the server's last answer and its attempts.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-14 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import connector.db.types

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("customers", sa.Column("billing_email", sa.String(length=255), nullable=True))
    op.create_table(
        "email_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.Column("document_version", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("template", sa.String(length=80), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("recipients", sa.Text(), nullable=True),
        sa.Column("message_id", sa.String(length=255), nullable=True),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column(
            "attempt_started_at", connector.db.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("next_attempt_at", connector.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("sent_at", connector.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", connector.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", connector.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["documents.id"],
            name=op.f("fk_email_messages_document_id_documents"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_messages")),
        sa.UniqueConstraint(
            "document_id",
            "document_version",
            "kind",
            name=op.f("uq_email_messages_document_id_document_version_kind"),
        ),
    )
    op.create_index(op.f("ix_email_messages_state"), "email_messages", ["state"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_email_messages_state"), table_name="email_messages")
    op.drop_table("email_messages")
    # In place (SQLite 3.35+ drops a column itself): rebuilding the table, as a batch would,
    # is refused by the other tables' foreign keys.
    op.drop_column("customers", "billing_email")
