"""Tax jurisdictions: each document tax line names where the tax is owed (a country, or a region
such as US-CA) and whether it is reverse-charged; documents keep their legal tax note; customers
have a region. Existing tax lines are owed in their customer's country.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 17:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("customers", sa.Column("region", sa.String(length=6), nullable=True))
    op.add_column("documents", sa.Column("tax_note", sa.Text(), nullable=True))
    op.add_column(
        "document_taxes",
        sa.Column("jurisdiction", sa.String(length=6), nullable=False, server_default=""),
    )
    op.add_column(
        "document_taxes",
        sa.Column("reverse_charge", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.execute(
        "UPDATE document_taxes SET jurisdiction = ("
        " SELECT customers.country FROM documents"
        " JOIN customers ON customers.id = documents.customer_id"
        " WHERE documents.id = document_taxes.document_id)"
    )
    with op.batch_alter_table("document_taxes", schema=None) as batch_op:
        batch_op.alter_column("jurisdiction", server_default=None)
        batch_op.alter_column("reverse_charge", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("document_taxes", schema=None) as batch_op:
        batch_op.drop_column("reverse_charge")
        batch_op.drop_column("jurisdiction")
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.drop_column("tax_note")
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_column("region")
