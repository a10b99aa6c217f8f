"""Write-back state per CRM record, and job runs.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21 07:48:44.791685
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import connector.db.types

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job", sa.String(length=40), nullable=False),
        sa.Column("started_at", connector.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", connector.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_runs")),
    )
    with op.batch_alter_table("job_runs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_job_runs_job_started_at"), ["job", "started_at"], unique=False
        )

    op.create_table(
        "writeback_state",
        sa.Column("object", sa.String(length=80), nullable=False),
        sa.Column("key", sa.String(length=120), nullable=False),
        sa.Column("sent_hash", sa.String(length=64), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("error_hash", sa.String(length=64), nullable=True),
        sa.Column("updated_at", connector.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("object", "key", name=op.f("pk_writeback_state")),
    )


def downgrade() -> None:
    op.drop_table("writeback_state")
    with op.batch_alter_table("job_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_job_runs_job_started_at"))

    op.drop_table("job_runs")
