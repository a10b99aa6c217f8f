"""Revenue recognized per line, credit notes' first journaled day, kinds of revenue journals;
customer credit kept by payments and credit notes, and applied out of credit.

- ``document_lines.recognized``: revenue of each line recognized so far. Filled here from what
  earlier versions journaled (their schedules gave each day the line's amount / its days,
  truncated, and the last day the rest), so that later closes carry on from exactly there.
  One-time lines dated before their invoice were revenue when invoiced: fully recognized.
- ``documents.revenue_from``: a credit note's first day of revenue journals. Earlier versions
  took back the days through the issue date when the credit note was issued: the day after.
- ``revenue_journals.kind``: ``deferred`` (as before), ``unbilled`` or ``invoiced``; the unique
  constraint includes it.
- ``payments.credit_kept``, ``documents.credit_kept``: what a payment or credit note left as
  customer credit when it was recorded; ``allocations.from_credit``: applied out of credit held.
  Earlier versions left customer credit in receivables: existing rows keep that (credit kept
  unknown: NULL, nothing applied out of credit).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 17:00:00
"""

from __future__ import annotations

import decimal
from datetime import date, timedelta
from decimal import Decimal

import sqlalchemy as sa
from alembic import op
from iso4217 import Currency

import connector.db.types

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def _legacy_recognized(
    amount: Decimal, start: date, end: date, through: date, code: str
) -> Decimal:
    """What the earlier schedules recognized of a line through ``through``."""
    if through < start:
        return Decimal(0)
    if through >= end:
        return amount
    days = (end - start).days + 1
    exponent = Currency(code).exponent or 0
    daily = (amount / days).quantize(Decimal(1).scaleb(-exponent), rounding=decimal.ROUND_DOWN)
    return daily * ((through - start).days + 1)


def upgrade() -> None:
    with op.batch_alter_table("document_lines", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "recognized",
                connector.db.types.ExactDecimal(length=64),
                nullable=False,
                server_default="0",
            )
        )
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("revenue_from", sa.Date(), nullable=True))
        batch_op.add_column(
            sa.Column("credit_kept", connector.db.types.ExactDecimal(length=64), nullable=True)
        )
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("credit_kept", connector.db.types.ExactDecimal(length=64), nullable=True)
        )
    with op.batch_alter_table("allocations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("from_credit", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("revenue_journals", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(length=16), nullable=False, server_default="deferred")
        )
        batch_op.drop_constraint("uq_revenue_journals_document_id_period_end", type_="unique")
        batch_op.create_unique_constraint(
            batch_op.f("uq_revenue_journals_document_id_kind_period_end"),
            ["document_id", "kind", "period_end"],
        )

    bind = op.get_bind()
    lines = sa.table(
        "document_lines",
        sa.column("id", sa.Integer),
        sa.column("recognized", connector.db.types.ExactDecimal(length=64)),
    )
    documents = sa.table(
        "documents", sa.column("id", sa.Integer), sa.column("revenue_from", sa.Date)
    )
    credit_notes = bind.execute(
        sa.text("SELECT id, issue_date FROM documents WHERE kind = 'credit_note'")
    ).all()
    if credit_notes:
        bind.execute(
            documents.update()
            .where(documents.c.id == sa.bindparam("b_id"))
            .values(revenue_from=sa.bindparam("b_from")),
            [
                {"b_id": row.id, "b_from": _as_date(row.issue_date) + timedelta(days=1)}
                for row in credit_notes
            ],
        )
    rows = bind.execute(
        sa.text(
            "SELECT l.id, l.kind, l.amount, l.service_start, l.service_end, d.kind AS doc_kind, "
            "d.currency, d.issue_date, p.recognized_through "
            "FROM document_lines l JOIN documents d ON d.id = l.document_id "
            "LEFT JOIN revenue_progress p ON p.document_id = d.id"
        )
    ).all()
    updates = []
    for row in rows:
        amount = Decimal(str(row.amount))
        sign = -1 if row.doc_kind == "credit_note" else 1
        if row.kind == "one_time":
            if row.doc_kind == "invoice" and _as_date(row.service_start) != _as_date(
                row.issue_date
            ):
                updates.append({"b_id": row.id, "b_recognized": amount})
            continue
        if row.recognized_through is None:
            continue
        recognized = sign * _legacy_recognized(
            amount,
            _as_date(row.service_start),
            _as_date(row.service_end),
            _as_date(row.recognized_through),
            row.currency,
        )
        if recognized:
            updates.append({"b_id": row.id, "b_recognized": recognized})
    if updates:
        bind.execute(
            lines.update()
            .where(lines.c.id == sa.bindparam("b_id"))
            .values(recognized=sa.bindparam("b_recognized")),
            updates,
        )


def _as_date(value: object) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def downgrade() -> None:
    with op.batch_alter_table("revenue_journals", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("uq_revenue_journals_document_id_kind_period_end"), type_="unique"
        )
        batch_op.create_unique_constraint(
            "uq_revenue_journals_document_id_period_end", ["document_id", "period_end"]
        )
        batch_op.drop_column("kind")
    with op.batch_alter_table("allocations", schema=None) as batch_op:
        batch_op.drop_column("from_credit")
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_column("credit_kept")
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.drop_column("credit_kept")
        batch_op.drop_column("revenue_from")
    with op.batch_alter_table("document_lines", schema=None) as batch_op:
        batch_op.drop_column("recognized")
