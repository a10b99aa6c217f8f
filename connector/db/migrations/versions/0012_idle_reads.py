"""Reads an idle cycle does not need: the revenue close keeps the documents it has yet to
journal in ``revenue_due`` (every document of an existing database with revenue left is
entered, due from the day after its last journal), the push keeps per target the outbox id
below which every row has a delivery (``outbox_floors``), and waiting CRM records are found
by system and state, in the order they are retried.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-13 09:00:00
"""

from __future__ import annotations

from datetime import date, timedelta

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

RECURRING = "recurring"
INVOICE = "invoice"
VOID = "void"

documents = sa.table(
    "documents",
    sa.column("id", sa.Integer),
    sa.column("kind", sa.String),
    sa.column("issue_date", sa.Date),
    sa.column("status", sa.String),
)
lines = sa.table(
    "document_lines",
    sa.column("document_id", sa.Integer),
    sa.column("kind", sa.String),
    sa.column("service_start", sa.Date),
    sa.column("service_end", sa.Date),
)
progress = sa.table(
    "revenue_progress",
    sa.column("document_id", sa.Integer),
    sa.column("recognized_through", sa.Date),
)
revenue_due = sa.table(
    "revenue_due", sa.column("document_id", sa.Integer), sa.column("due_on", sa.Date)
)


def _enter_documents_due() -> None:
    """Every document with scheduled revenue not yet journaled through its end, due from its
    first day of service or the day after its last journal."""
    scheduled = sa.or_(
        lines.c.kind == RECURRING,
        sa.and_(documents.c.kind == INVOICE, lines.c.service_start != documents.c.issue_date),
    )
    rows = op.get_bind().execute(
        sa.select(
            documents.c.id,
            sa.func.min(lines.c.service_start),
            sa.func.max(lines.c.service_end),
            sa.func.max(progress.c.recognized_through),
        )
        .join(lines, lines.c.document_id == documents.c.id)
        .outerjoin(progress, progress.c.document_id == documents.c.id)
        .where(scheduled, documents.c.status != VOID)
        .group_by(documents.c.id)
    )
    due = []
    for doc_id, first, last, journaled_through in rows:
        through = journaled_through or date.min
        if through < last:
            due.append({"document_id": doc_id, "due_on": max(first, through + timedelta(days=1))})
    if due:
        op.bulk_insert(revenue_due, due)


def upgrade() -> None:
    op.create_table(
        "revenue_due",
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(
            ["document_id"], ["documents.id"], name=op.f("fk_revenue_due_document_id_documents")
        ),
        sa.PrimaryKeyConstraint("document_id", name=op.f("pk_revenue_due")),
    )
    op.create_index(op.f("ix_revenue_due_due_on"), "revenue_due", ["due_on"], unique=False)
    op.create_table(
        "outbox_floors",
        sa.Column("target", sa.String(length=32), nullable=False),
        sa.Column("delivered_through", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("target", name=op.f("pk_outbox_floors")),
    )
    with op.batch_alter_table("crm_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_crm_records_state"))
        batch_op.create_index(
            batch_op.f("ix_crm_records_system_state_object_modstamp"),
            ["system", "state", "object", "modstamp"],
            unique=False,
        )
    _enter_documents_due()


def downgrade() -> None:
    with op.batch_alter_table("crm_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_crm_records_system_state_object_modstamp"))
        batch_op.create_index(batch_op.f("ix_crm_records_state"), ["state"], unique=False)
    op.drop_table("outbox_floors")
    op.drop_index(op.f("ix_revenue_due_due_on"), table_name="revenue_due")
    op.drop_table("revenue_due")
