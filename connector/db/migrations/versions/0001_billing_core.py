"""billing core

Revision ID: 0001
Revises:
Create Date: 2026-11-21 05:59:35.283879
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import connector.db.types

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "customers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("tax_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", connector.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", connector.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customers")),
    )
    op.create_table(
        "external_ids",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entity", sa.String(length=32), nullable=False),
        sa.Column("entity_id", sa.Integer(), nullable=False),
        sa.Column("system", sa.String(length=32), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_external_ids")),
        sa.UniqueConstraint(
            "system",
            "entity",
            "external_id",
            name=op.f("uq_external_ids_system_entity_external_id"),
        ),
    )
    with op.batch_alter_table("external_ids", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_external_ids_entity_entity_id"), ["entity", "entity_id"], unique=False
        )

    op.create_table(
        "number_series",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("next_value", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_number_series")),
    )
    op.create_table(
        "products",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=80), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("family", sa.String(length=255), nullable=True),
        sa.Column("tax_code", sa.String(length=40), nullable=True),
        sa.Column("created_at", connector.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_products")),
        sa.UniqueConstraint("code", name=op.f("uq_products_code")),
    )
    op.create_table(
        "contracts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("created_at", connector.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_contracts_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contracts")),
    )
    with op.batch_alter_table("contracts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_contracts_customer_id"), ["customer_id"], unique=False)

    op.create_table(
        "prices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("lookup_key", sa.String(length=255), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("model", sa.String(length=16), nullable=False),
        sa.Column("unit_amount", connector.db.types.ExactDecimal(length=64), nullable=True),
        sa.Column("flat_amount", connector.db.types.ExactDecimal(length=64), nullable=True),
        sa.Column("tiers", sa.JSON(), nullable=True),
        sa.Column("created_at", connector.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["product_id"], ["products.id"], name=op.f("fk_prices_product_id_products")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prices")),
        sa.UniqueConstraint("lookup_key", name=op.f("uq_prices_lookup_key")),
    )
    with op.batch_alter_table("prices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_prices_product_id"), ["product_id"], unique=False)

    op.create_table(
        "subscriptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contract_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("frequency", sa.String(length=16), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("trial_days", sa.Integer(), nullable=False),
        sa.Column("term_months", sa.Integer(), nullable=False),
        sa.Column("auto_renew", sa.Boolean(), nullable=False),
        sa.Column("term_count", sa.Integer(), nullable=False),
        sa.Column("cancel_date", sa.Date(), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("billed_until", sa.Date(), nullable=True),
        sa.Column("billed_as_of", sa.Date(), nullable=True),
        sa.Column("reconcile_from", sa.Date(), nullable=True),
        sa.Column("next_billing_date", sa.Date(), nullable=True),
        sa.Column("billing_error", sa.Text(), nullable=True),
        sa.Column("created_at", connector.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", connector.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["contract_id"], ["contracts.id"], name=op.f("fk_subscriptions_contract_id_contracts")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_subscriptions_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscriptions")),
    )
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_subscriptions_contract_id"), ["contract_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_subscriptions_customer_id"), ["customer_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_subscriptions_next_billing_date"), ["next_billing_date"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_subscriptions_reconcile_from"), ["reconcile_from"], unique=False
        )

    op.create_table(
        "amendments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscription_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("effective_date", sa.Date(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(length=255), nullable=True),
        sa.Column("created_at", connector.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subscriptions.id"],
            name=op.f("fk_amendments_subscription_id_subscriptions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_amendments")),
    )
    with op.batch_alter_table("amendments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_amendments_subscription_id"), ["subscription_id"], unique=False
        )

    op.create_table(
        "documents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("number", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("subscription_id", sa.Integer(), nullable=True),
        sa.Column("invoice_id", sa.Integer(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("issue_date", sa.Date(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("subtotal", connector.db.types.ExactDecimal(length=64), nullable=False),
        sa.Column("tax_total", connector.db.types.ExactDecimal(length=64), nullable=False),
        sa.Column("total", connector.db.types.ExactDecimal(length=64), nullable=False),
        sa.Column("amount_paid", connector.db.types.ExactDecimal(length=64), nullable=False),
        sa.Column("amount_credited", connector.db.types.ExactDecimal(length=64), nullable=False),
        sa.Column("unapplied", connector.db.types.ExactDecimal(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", connector.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_documents_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["invoice_id"], ["documents.id"], name=op.f("fk_documents_invoice_id_documents")
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subscriptions.id"],
            name=op.f("fk_documents_subscription_id_subscriptions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_documents")),
        sa.UniqueConstraint("kind", "number", name=op.f("uq_documents_kind_number")),
    )
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_documents_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_documents_invoice_id"), ["invoice_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_documents_subscription_id"), ["subscription_id"], unique=False
        )

    op.create_table(
        "subscription_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscription_id", sa.Integer(), nullable=False),
        sa.Column("item_key", sa.String(length=120), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("service_date", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["product_id"], ["products.id"], name=op.f("fk_subscription_items_product_id_products")
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subscriptions.id"],
            name=op.f("fk_subscription_items_subscription_id_subscriptions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscription_items")),
        sa.UniqueConstraint(
            "subscription_id",
            "item_key",
            name=op.f("uq_subscription_items_subscription_id_item_key"),
        ),
    )
    op.create_table(
        "charges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscription_item_id", sa.Integer(), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("amount", connector.db.types.ExactDecimal(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["subscription_item_id"],
            ["subscription_items.id"],
            name=op.f("fk_charges_subscription_item_id_subscription_items"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_charges")),
        sa.UniqueConstraint(
            "subscription_item_id",
            "period_start",
            "revision",
            name=op.f("uq_charges_subscription_item_id_period_start_revision"),
        ),
    )
    op.create_table(
        "document_taxes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.Column("rate", connector.db.types.ExactDecimal(length=64), nullable=False),
        sa.Column("taxable", connector.db.types.ExactDecimal(length=64), nullable=False),
        sa.Column("tax", connector.db.types.ExactDecimal(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["document_id"], ["documents.id"], name=op.f("fk_document_taxes_document_id_documents")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_document_taxes")),
        sa.UniqueConstraint("document_id", "rate", name=op.f("uq_document_taxes_document_id_rate")),
    )
    op.create_table(
        "item_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("effective_date", sa.Date(), nullable=False),
        sa.Column("price_id", sa.Integer(), nullable=False),
        sa.Column("quantity", connector.db.types.ExactDecimal(length=64), nullable=False),
        sa.Column("discount_percent", connector.db.types.ExactDecimal(length=64), nullable=False),
        sa.Column("amendment_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["amendment_id"],
            ["amendments.id"],
            name=op.f("fk_item_versions_amendment_id_amendments"),
        ),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["subscription_items.id"],
            name=op.f("fk_item_versions_item_id_subscription_items"),
        ),
        sa.ForeignKeyConstraint(
            ["price_id"], ["prices.id"], name=op.f("fk_item_versions_price_id_prices")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_item_versions")),
        sa.UniqueConstraint(
            "item_id", "effective_date", name=op.f("uq_item_versions_item_id_effective_date")
        ),
    )
    op.create_table(
        "payments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount", connector.db.types.ExactDecimal(length=64), nullable=False),
        sa.Column("received_on", sa.Date(), nullable=False),
        sa.Column("reference", sa.String(length=255), nullable=True),
        sa.Column("invoice_id", sa.Integer(), nullable=True),
        sa.Column("unapplied", connector.db.types.ExactDecimal(length=64), nullable=True),
        sa.Column("created_at", connector.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_payments_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["invoice_id"], ["documents.id"], name=op.f("fk_payments_invoice_id_documents")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payments")),
        sa.UniqueConstraint(
            "customer_id", "kind", "reference", name=op.f("uq_payments_customer_id_kind_reference")
        ),
    )
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_payments_customer_id"), ["customer_id"], unique=False)

    op.create_table(
        "allocations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("payment_id", sa.Integer(), nullable=True),
        sa.Column("credit_note_id", sa.Integer(), nullable=True),
        sa.Column("invoice_id", sa.Integer(), nullable=True),
        sa.Column("refund_id", sa.Integer(), nullable=True),
        sa.Column("amount", connector.db.types.ExactDecimal(length=64), nullable=False),
        sa.Column("allocated_on", sa.Date(), nullable=False),
        sa.Column("created_at", connector.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["credit_note_id"],
            ["documents.id"],
            name=op.f("fk_allocations_credit_note_id_documents"),
        ),
        sa.ForeignKeyConstraint(
            ["invoice_id"], ["documents.id"], name=op.f("fk_allocations_invoice_id_documents")
        ),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["payments.id"], name=op.f("fk_allocations_payment_id_payments")
        ),
        sa.ForeignKeyConstraint(
            ["refund_id"], ["payments.id"], name=op.f("fk_allocations_refund_id_payments")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_allocations")),
    )
    with op.batch_alter_table("allocations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_allocations_credit_note_id"), ["credit_note_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_allocations_invoice_id"), ["invoice_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_allocations_payment_id"), ["payment_id"], unique=False)

    op.create_table(
        "document_lines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.Column("charge_id", sa.Integer(), nullable=True),
        sa.Column("subscription_item_id", sa.Integer(), nullable=True),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("quantity", connector.db.types.ExactDecimal(length=64), nullable=False),
        sa.Column("discount_percent", connector.db.types.ExactDecimal(length=64), nullable=False),
        sa.Column("service_start", sa.Date(), nullable=False),
        sa.Column("service_end", sa.Date(), nullable=False),
        sa.Column("amount", connector.db.types.ExactDecimal(length=64), nullable=False),
        sa.Column("tax_rate", connector.db.types.ExactDecimal(length=64), nullable=False),
        sa.Column("credited_line_id", sa.Integer(), nullable=True),
        sa.Column("credited_amount", connector.db.types.ExactDecimal(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["charge_id"], ["charges.id"], name=op.f("fk_document_lines_charge_id_charges")
        ),
        sa.ForeignKeyConstraint(
            ["credited_line_id"],
            ["document_lines.id"],
            name=op.f("fk_document_lines_credited_line_id_document_lines"),
        ),
        sa.ForeignKeyConstraint(
            ["document_id"], ["documents.id"], name=op.f("fk_document_lines_document_id_documents")
        ),
        sa.ForeignKeyConstraint(
            ["product_id"], ["products.id"], name=op.f("fk_document_lines_product_id_products")
        ),
        sa.ForeignKeyConstraint(
            ["subscription_item_id"],
            ["subscription_items.id"],
            name=op.f("fk_document_lines_subscription_item_id_subscription_items"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_document_lines")),
    )
    with op.batch_alter_table("document_lines", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_document_lines_charge_id"), ["charge_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_document_lines_document_id"), ["document_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("document_lines", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_document_lines_document_id"))
        batch_op.drop_index(batch_op.f("ix_document_lines_charge_id"))

    op.drop_table("document_lines")
    with op.batch_alter_table("allocations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_allocations_payment_id"))
        batch_op.drop_index(batch_op.f("ix_allocations_invoice_id"))
        batch_op.drop_index(batch_op.f("ix_allocations_credit_note_id"))

    op.drop_table("allocations")
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_payments_customer_id"))

    op.drop_table("payments")
    op.drop_table("item_versions")
    op.drop_table("document_taxes")
    op.drop_table("charges")
    op.drop_table("subscription_items")
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_documents_subscription_id"))
        batch_op.drop_index(batch_op.f("ix_documents_invoice_id"))
        batch_op.drop_index(batch_op.f("ix_documents_customer_id"))

    op.drop_table("documents")
    with op.batch_alter_table("amendments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_amendments_subscription_id"))

    op.drop_table("amendments")
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_subscriptions_reconcile_from"))
        batch_op.drop_index(batch_op.f("ix_subscriptions_next_billing_date"))
        batch_op.drop_index(batch_op.f("ix_subscriptions_customer_id"))
        batch_op.drop_index(batch_op.f("ix_subscriptions_contract_id"))

    op.drop_table("subscriptions")
    with op.batch_alter_table("prices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_prices_product_id"))

    op.drop_table("prices")
    with op.batch_alter_table("contracts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_contracts_customer_id"))

    op.drop_table("contracts")
    op.drop_table("products")
    op.drop_table("number_series")
    with op.batch_alter_table("external_ids", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_external_ids_entity_entity_id"))

    op.drop_table("external_ids")
    op.drop_table("customers")
