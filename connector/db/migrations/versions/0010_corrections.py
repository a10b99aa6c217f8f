"""Credit notes issued by hand: the reference that makes issuing one idempotent (unique per
kind of document: issuing again under the same reference finds the one issued) and the reason
given for it.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-10 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Columns added and a unique index made in place: on SQLite, a constraint would rebuild
    # the table, which the other tables' foreign keys refuse.
    op.add_column("documents", sa.Column("reference", sa.String(length=255), nullable=True))
    op.add_column("documents", sa.Column("reason", sa.Text(), nullable=True))
    op.create_index(
        op.f("ix_documents_kind_reference"), "documents", ["kind", "reference"], unique=True
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_documents_kind_reference"), table_name="documents")
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.drop_column("reason")
        batch_op.drop_column("reference")
