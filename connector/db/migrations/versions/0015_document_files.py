"""Documents as PDFs: a version on each document (raised when what it shows changes), the
customer's billing address and language, and the rendered PDFs, kept by the SHA-256 of their
bytes (``pdf_contents``) with the file of each document version (``document_files``).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 02:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import connector.db.types

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("documents") as batch:
        batch.add_column(sa.Column("version", sa.Integer(), server_default="1", nullable=False))
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("address_street", sa.Text(), nullable=True))
        batch.add_column(sa.Column("address_city", sa.String(length=80), nullable=True))
        batch.add_column(sa.Column("address_state", sa.String(length=80), nullable=True))
        batch.add_column(sa.Column("address_postal_code", sa.String(length=20), nullable=True))
        batch.add_column(sa.Column("language", sa.String(length=8), nullable=True))
    op.create_table(
        "pdf_contents",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("created_at", connector.db.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_pdf_contents")),
    )
    op.create_table(
        "document_files",
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("filename", sa.String(length=80), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("created_at", connector.db.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["documents.id"],
            name=op.f("fk_document_files_document_id_documents"),
        ),
        sa.ForeignKeyConstraint(
            ["sha256"],
            ["pdf_contents.sha256"],
            name=op.f("fk_document_files_sha256_pdf_contents"),
        ),
        sa.PrimaryKeyConstraint("document_id", "version", name=op.f("pk_document_files")),
    )
    op.create_index(op.f("ix_document_files_sha256"), "document_files", ["sha256"], unique=False)
    op.create_table(
        "render_queue",
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["document_id"], ["documents.id"], name=op.f("fk_render_queue_document_id_documents")
        ),
        sa.PrimaryKeyConstraint("document_id", name=op.f("pk_render_queue")),
    )
    op.execute("INSERT INTO render_queue (document_id) SELECT id FROM documents")


def downgrade() -> None:
    op.drop_table("render_queue")
    op.drop_index(op.f("ix_document_files_sha256"), table_name="document_files")
    op.drop_table("document_files")
    op.drop_table("pdf_contents")
    # ALTER TABLE … DROP COLUMN on both databases (SQLite 3.35 and later): a batch would copy
    # the customers table, which the documents refer to.
    for column in (
        "language",
        "address_postal_code",
        "address_state",
        "address_city",
        "address_street",
    ):
        op.execute(f"ALTER TABLE customers DROP COLUMN {column}")
    op.execute("ALTER TABLE documents DROP COLUMN version")
