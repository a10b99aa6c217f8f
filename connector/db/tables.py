"""ORM tables of the billing core's system of record.

Alembic migrations (``connector/db/migrations``) create and change these tables; a test checks
that the migrations and these models agree. Constraints carry the invariants that must hold even
when two processes race: one charge per subscription item, period and revision; one number per
document and series; one version per item and date.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from connector.db.types import ExactDecimal, UTCDateTime, utc_now

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012
        Decimal: ExactDecimal(),
        datetime: UTCDateTime(),
        date: Date(),
        str: String(255),
    }


def table_of(model: type[Base]) -> Table:
    """The Core table of a mapped class, typed as such (the ORM types it as a FromClause)."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


def _created() -> Mapped[datetime]:
    return mapped_column(default=utc_now)


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    country: Mapped[str] = mapped_column(String(2))
    currency: Mapped[str] = mapped_column(String(3))
    tax_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(default=utc_now, onupdate=utc_now)
    region: Mapped[str | None] = mapped_column(String(6))  # ISO 3166-2 (US-CA), if known
    # The billing address as the CRM holds it (shown on documents), and the language documents
    # are written in (None: from the country).
    address_street: Mapped[str | None] = mapped_column(Text)
    address_city: Mapped[str | None] = mapped_column(String(80))
    address_state: Mapped[str | None] = mapped_column(String(80))
    address_postal_code: Mapped[str | None] = mapped_column(String(20))
    language: Mapped[str | None] = mapped_column(String(8))
    billing_email: Mapped[str | None]  # where documents are e-mailed (from the mapping)


class ExternalId(Base):
    """Ids of our records in other systems (a Salesforce Account id, an accounting contact)."""

    __tablename__ = "external_ids"
    __table_args__ = (
        UniqueConstraint("system", "entity", "external_id"),
        Index(None, "entity", "entity_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[int] = mapped_column(Integer)
    system: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str]


class Product(Base):
    __tablename__ = "products"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(80), unique=True)
    name: Mapped[str]
    family: Mapped[str | None]
    tax_code: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = _created()


class Price(Base):
    __tablename__ = "prices"

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), index=True)
    lookup_key: Mapped[str | None] = mapped_column(unique=True)
    currency: Mapped[str] = mapped_column(String(3))
    kind: Mapped[str] = mapped_column(String(16))
    model: Mapped[str] = mapped_column(String(16))
    unit_amount: Mapped[Decimal | None]
    flat_amount: Mapped[Decimal | None]
    tiers: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = _created()
    # a metered price (kind "metered"): its metric and the terms only metered prices have
    metric: Mapped[str | None] = mapped_column(String(64))
    package_size: Mapped[int | None]
    package_amount: Mapped[Decimal | None]
    free_units: Mapped[Decimal | None]
    minimum: Mapped[Decimal | None]


class Contract(Base):
    __tablename__ = "contracts"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    name: Mapped[str]
    created_at: Mapped[datetime] = _created()


class Subscription(Base):
    __tablename__ = "subscriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    frequency: Mapped[str] = mapped_column(String(16))
    start_date: Mapped[date]
    trial_days: Mapped[int] = mapped_column(default=0)
    term_months: Mapped[int] = mapped_column(default=12)
    auto_renew: Mapped[bool] = mapped_column(Boolean, default=True)
    term_count: Mapped[int] = mapped_column(default=1)  # terms served when it does not renew
    cancel_date: Mapped[date | None]
    # Every change that can alter what is owed raises the revision; charges are unique per
    # item, period and revision, so a change can be billed once and only once.
    revision: Mapped[int] = mapped_column(default=0)
    # Billing state, moved in the same transaction as the documents it describes.
    billed_until: Mapped[date | None]
    billed_as_of: Mapped[date | None]
    reconcile_from: Mapped[date | None] = mapped_column(index=True)
    next_billing_date: Mapped[date | None] = mapped_column(index=True)
    # the first day whose usage is not billed yet (metered items): an event dated earlier is late
    usage_billed_until: Mapped[date | None] = mapped_column(index=True)
    billing_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(default=utc_now, onupdate=utc_now)


class SubscriptionItem(Base):
    __tablename__ = "subscription_items"
    __table_args__ = (UniqueConstraint("subscription_id", "item_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscriptions.id"))
    item_key: Mapped[str] = mapped_column(String(120))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    kind: Mapped[str] = mapped_column(String(16))
    service_date: Mapped[date | None]


class Amendment(Base):
    """A change to a subscription: its item set, its terms, a cancellation, a voided invoice."""

    __tablename__ = "amendments"

    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscriptions.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    effective_date: Mapped[date]
    revision: Mapped[int]
    reference: Mapped[str | None]
    created_at: Mapped[datetime] = _created()


class ItemVersion(Base):
    __tablename__ = "item_versions"
    __table_args__ = (UniqueConstraint("item_id", "effective_date"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("subscription_items.id"))
    effective_date: Mapped[date]
    price_id: Mapped[int] = mapped_column(ForeignKey("prices.id"))
    quantity: Mapped[Decimal]
    discount_percent: Mapped[Decimal]
    amendment_id: Mapped[int | None] = mapped_column(ForeignKey("amendments.id"))


class NumberSeries(Base):
    """Next number of each document series; advanced in the transaction that issues."""

    __tablename__ = "number_series"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    next_value: Mapped[int] = mapped_column(default=1)


class Document(Base):
    """An invoice or a credit note."""

    __tablename__ = "documents"
    __table_args__ = (
        UniqueConstraint("kind", "number"),
        Index(None, "kind", "reference", unique=True),
        Index(None, "status", "due_date"),  # open invoices by due date: dunning
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    number: Mapped[str] = mapped_column(String(40))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    subscription_id: Mapped[int | None] = mapped_column(ForeignKey("subscriptions.id"), index=True)
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("documents.id"), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    issue_date: Mapped[date]
    due_date: Mapped[date]
    period_start: Mapped[date]
    period_end: Mapped[date]
    subtotal: Mapped[Decimal]
    tax_total: Mapped[Decimal]
    total: Mapped[Decimal]
    amount_paid: Mapped[Decimal]  # invoices: payments and customer credit applied
    amount_credited: Mapped[Decimal]  # invoices: credit notes applied
    # Credit notes: credit left for other invoices or a refund; NULL once all of it is used.
    unapplied: Mapped[Decimal | None]
    status: Mapped[str] = mapped_column(String(16))
    # Credit notes: the first day their revenue journals cover; what they take back of the days
    # before is taken back from revenue when they are issued (the credited invoice's revenue was
    # journaled through the day before when the credit note was drafted).
    revenue_from: Mapped[date | None]
    # Credit notes: what was left as the customer's credit once the credit note had reduced
    # what its invoice (and the customer's other open invoices) owed when it was issued.
    credit_kept: Mapped[Decimal | None]
    created_at: Mapped[datetime] = _created()
    tax_note: Mapped[str | None] = mapped_column(Text)  # the reverse-charge note, if any
    # Credit notes issued by hand: the correction's reference (given, or made of the invoice
    # and the reason), so that issuing it again finds it; and the reason given.
    reference: Mapped[str | None]
    reason: Mapped[str | None] = mapped_column(Text)
    # Raised whenever what the document shows changes after it is issued (a payment, a credit
    # note applied or released, a void): each version is rendered once and kept.
    version: Mapped[int] = mapped_column(default=1, server_default="1")


class DocumentTax(Base):
    """Tax of one rate of a document, in the jurisdiction (``FR``, ``US-CA``) it is owed to;
    ``reverse_charge``: rate 0, the customer accounts for the VAT."""

    __tablename__ = "document_taxes"
    __table_args__ = (UniqueConstraint("document_id", "rate"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"))
    rate: Mapped[Decimal]
    taxable: Mapped[Decimal]
    tax: Mapped[Decimal]
    jurisdiction: Mapped[str] = mapped_column(String(6))
    reverse_charge: Mapped[bool] = mapped_column(Boolean, default=False)


class Charge(Base):
    """What one billing run decided for one item and period; at most one per revision."""

    __tablename__ = "charges"
    __table_args__ = (UniqueConstraint("subscription_item_id", "period_start", "revision"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_item_id: Mapped[int] = mapped_column(ForeignKey("subscription_items.id"))
    period_start: Mapped[date]
    revision: Mapped[int]
    amount: Mapped[Decimal]  # signed: > 0 invoiced, < 0 credited


class DocumentLine(Base):
    __tablename__ = "document_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"), index=True)
    charge_id: Mapped[int | None] = mapped_column(ForeignKey("charges.id"), index=True)
    subscription_item_id: Mapped[int | None] = mapped_column(ForeignKey("subscription_items.id"))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    kind: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(String(500))
    quantity: Mapped[Decimal]
    discount_percent: Mapped[Decimal]
    service_start: Mapped[date]
    service_end: Mapped[date]
    amount: Mapped[Decimal]
    tax_rate: Mapped[Decimal]
    credited_line_id: Mapped[int | None] = mapped_column(ForeignKey("document_lines.id"))
    credited_amount: Mapped[Decimal]  # invoice lines: how much credit notes took back
    # Revenue of the line recognized so far (signed as the line's revenue: negative on credit
    # notes): journaled by the revenue close, or taken back when a credit note was issued.
    recognized: Mapped[Decimal] = mapped_column(default=Decimal(0))


class Payment(Base):
    """Money received from (payment) or returned to (refund) a customer."""

    __tablename__ = "payments"
    __table_args__ = (UniqueConstraint("customer_id", "kind", "reference"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[Decimal]
    received_on: Mapped[date]
    reference: Mapped[str | None]
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("documents.id"))
    unapplied: Mapped[Decimal | None]  # not yet applied to invoices; NULL once all is applied
    # Payments: what was left as the customer's credit once the payment had paid what it could
    # when it was recorded (an over-payment); set then, never changed.
    credit_kept: Mapped[Decimal | None]
    created_at: Mapped[datetime] = _created()


class Allocation(Base):
    """Money moved from a source (a payment, a credit note) to a target (an invoice, a
    refund)."""

    __tablename__ = "allocations"

    id: Mapped[int] = mapped_column(primary_key=True)
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id"), index=True)
    credit_note_id: Mapped[int | None] = mapped_column(ForeignKey("documents.id"), index=True)
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("documents.id"), index=True)
    refund_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id"))
    amount: Mapped[Decimal]
    allocated_on: Mapped[date]
    # Applied out of credit the customer already held (a later invoice paid by an earlier
    # over-payment or credit note): accounting moves it from customer credit to receivables.
    from_credit: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = _created()


class CrmRecord(Base):
    """A record pulled from the CRM, staged as it came: its payload, the payload's hash, and
    what became of it. ``state`` is ``applied`` (the billing core reflects ``applied_hash``),
    ``quarantined`` (could not be mapped; ``reason`` says why; retried when it changes or what it
    waits for arrives), ``held`` (a change that would reverse billed documents; waits for review)
    or ``ignored`` (nothing to bill, such as an open deal)."""

    __tablename__ = "crm_records"
    __table_args__ = (
        UniqueConstraint("system", "object", "record_id"),
        Index(None, "system", "state", "object", "modstamp"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    system: Mapped[str] = mapped_column(String(32))
    object: Mapped[str] = mapped_column(String(80))
    record_id: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    payload_hash: Mapped[str] = mapped_column(String(64))
    modstamp: Mapped[datetime | None]
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    applied_hash: Mapped[str | None] = mapped_column(String(64))
    applied_payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    first_seen: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(default=utc_now, onupdate=utc_now)


class SyncCursor(Base):
    """How far a pull has read one object: its last SystemModstamp. Moved in the same
    transaction as the records it covers."""

    __tablename__ = "sync_cursors"

    name: Mapped[str] = mapped_column(String(120), primary_key=True)
    position: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utc_now, onupdate=utc_now)


class ApiUsage(Base):
    """API calls the connector made to a system in a UTC day, and the system's own count."""

    __tablename__ = "api_usage"

    system: Mapped[str] = mapped_column(String(32), primary_key=True)
    day: Mapped[date] = mapped_column(primary_key=True)
    calls: Mapped[int] = mapped_column(default=0)
    org_used: Mapped[int | None]
    org_limit: Mapped[int | None]


class ReviewApproval(Base):
    """A person's approval of one version (``payload_hash``) of a record held for review: the
    record is applied as it was then, and a later version that changes what was held is checked
    again. ``reason`` is what the hold said; who approved it, and when."""

    __tablename__ = "review_approvals"
    __table_args__ = (UniqueConstraint("system", "record_id", "payload_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    system: Mapped[str] = mapped_column(String(32))
    object: Mapped[str] = mapped_column(String(80))
    record_id: Mapped[str] = mapped_column(String(32))
    payload_hash: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text)
    approved_by: Mapped[str]
    approved_at: Mapped[datetime] = mapped_column(default=utc_now)


class Outbox(Base):
    """One external effect to make: post this document to accounting. Written in the same
    transaction as the document; each target records its delivery in :class:`Delivery`."""

    __tablename__ = "outbox"
    __table_args__ = (UniqueConstraint("document_type", "document_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    document_type: Mapped[str] = mapped_column(String(16))
    document_id: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = _created()


class Delivery(Base):
    """What became of an outbox row at one target: ``done`` (with the target's id for it),
    ``pending`` (tried, to be tried again) or ``parked`` (refused; ``error`` says why)."""

    __tablename__ = "deliveries"
    __table_args__ = (Index(None, "target", "state"),)

    outbox_id: Mapped[int] = mapped_column(ForeignKey("outbox.id"), primary_key=True)
    target: Mapped[str] = mapped_column(String(32), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(default=0)
    external_id: Mapped[str | None]
    error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now, onupdate=utc_now)


class RevenueJournal(Base):
    """Revenue of one invoice or credit note recognized over one stretch of days (a month, or
    the running month up to the close's as-of date). ``kind`` says where it moves from:
    ``deferred`` (deferred revenue to revenue), ``unbilled`` (revenue earned before its invoice
    was issued: the unbilled receivable to revenue), or ``invoiced`` (on the invoice's issue
    date, what it clears of the unbilled receivable, from deferred revenue)."""

    __tablename__ = "revenue_journals"
    __table_args__ = (UniqueConstraint("document_id", "kind", "period_end"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16), default="deferred")
    period_start: Mapped[date]
    period_end: Mapped[date]
    journal_date: Mapped[date]  # the month's last day, or the close's as-of date if earlier
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[Decimal]
    # "<product id>" (recurring lines) or "<product id>:one_time" -> amount
    amounts: Mapped[dict[str, str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = _created()


class RevenueProgress(Base):
    """The last day of an invoice's or credit note's revenue already journaled."""

    __tablename__ = "revenue_progress"

    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"), primary_key=True)
    recognized_through: Mapped[date]


class RevenueDue(Base):
    """A document with revenue the close has yet to journal, and the first as-of date on which
    it has some: the close reads only the documents due, never the whole history. Written when
    the document is issued, moved on (or removed once its revenue is complete) by the close."""

    __tablename__ = "revenue_due"

    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"), primary_key=True)
    due_on: Mapped[date] = mapped_column(index=True)


class OutboxFloor(Base):
    """Per target, the outbox id through which every row has a delivery to that target (done,
    parked or pending): rows never tried are looked for only above it."""

    __tablename__ = "outbox_floors"

    target: Mapped[str] = mapped_column(String(32), primary_key=True)
    delivered_through: Mapped[int]


class WritebackState(Base):
    """What the connector last wrote to a CRM record: the hash of the fields sent, so that an
    unchanged record costs no call; ``error`` holds why the CRM refused the last attempt."""

    __tablename__ = "writeback_state"

    object: Mapped[str] = mapped_column(String(80), primary_key=True)
    key: Mapped[str] = mapped_column(String(120), primary_key=True)
    sent_hash: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    error_hash: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(default=utc_now, onupdate=utc_now)
    record_id: Mapped[str | None] = mapped_column(String(18))  # the CRM's id, once accepted


class DunningStep(Base):
    """A step of the collections schedule an invoice reached, recorded once (``state``:
    ``taken`` when acted on, ``skipped`` when a later step of the same action was taken
    instead); ``template`` for a reminder, ``account_status`` for an escalation."""

    __tablename__ = "dunning_steps"
    __table_args__ = (UniqueConstraint("document_id", "step"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"))
    step: Mapped[str] = mapped_column(String(40))
    reached_on: Mapped[date]
    action: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    template: Mapped[str | None] = mapped_column(String(80))
    account_status: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = _created()


class Dispute(Base):
    """A customer's dispute of an invoice: no reminder goes out while it is open
    (``resolved_at`` empty); at most one open dispute per invoice."""

    __tablename__ = "disputes"
    __table_args__ = (
        Index(
            "ix_disputes_open_document",
            "document_id",
            unique=True,
            sqlite_where=text("resolved_at IS NULL"),
            postgresql_where=text("resolved_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"), index=True)
    reason: Mapped[str] = mapped_column(Text)
    opened_at: Mapped[datetime] = _created()
    resolved_at: Mapped[datetime | None]


class SalesforceFile(Base):
    """A document's PDF as a Salesforce File on its invoice record: the file
    (``content_document_id``), the document version and content last uploaded to it and that
    upload's ContentVersion. ``attempt_version`` and ``attempt_sha256`` name an upload sent
    whose answer is not recorded yet (Salesforce may hold it: it is looked for before any
    upload again)."""

    __tablename__ = "salesforce_files"

    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"), primary_key=True)
    content_document_id: Mapped[str | None] = mapped_column(String(18))
    version: Mapped[int | None]
    sha256: Mapped[str | None] = mapped_column(String(64))
    content_version_id: Mapped[str | None] = mapped_column(String(18))
    attempt_version: Mapped[int | None]
    attempt_sha256: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now, onupdate=utc_now)


class WritebackQueue(Base):
    """A record the write-back must build again, by the local entity it shows (``subscription``,
    ``document`` and ``customer`` ids; ``deal``: the CRM's opportunity id): marked in the same
    transaction as the change, due at once (``due_on`` the earliest date), or due on the day its
    fields change with the date (a status, an MRR, an invoice falling due). ``generation``
    counts the marks, so that a record marked again while it was being sent stays queued."""

    __tablename__ = "writeback_queue"

    entity: Mapped[str] = mapped_column(String(16), primary_key=True)
    key: Mapped[str] = mapped_column(String(120), primary_key=True)
    due_on: Mapped[date] = mapped_column(index=True)
    generation: Mapped[int] = mapped_column(default=0)


class JobRun(Base):
    """One run of a job (or a stage of a cycle): when, how long, what it did."""

    __tablename__ = "job_runs"
    __table_args__ = (Index(None, "job", "started_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job: Mapped[str] = mapped_column(String(40))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    ok: Mapped[bool] = mapped_column(Boolean, default=False)
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)


class AccountingConnection(Base):
    """The OAuth tokens of a remote accounting target. A rotated refresh token is stored here,
    committed, before the access token it came with is used; ``state`` is ``reconnect`` once
    the target refused the refresh token (``error`` says why) until someone connects again."""

    __tablename__ = "accounting_connections"

    target: Mapped[str] = mapped_column(String(32), primary_key=True)
    refresh_token: Mapped[str | None] = mapped_column(Text)
    access_token: Mapped[str | None] = mapped_column(Text)
    access_expires_at: Mapped[datetime | None]
    state: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now, onupdate=utc_now)


class AccountingContact(Base):
    """A customer's contact in a remote accounting target: its id there once known, the hash of
    what was last sent (a change is sent again), and ``sending`` while a create is unanswered
    (the next attempt looks the contact up by its number before creating it)."""

    __tablename__ = "accounting_contacts"

    target: Mapped[str] = mapped_column(String(32), primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), primary_key=True)
    external_id: Mapped[str | None] = mapped_column(String(64))
    sent_hash: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now, onupdate=utc_now)


class ClosedPeriod(Base):
    """One closing of the books: nothing may be dated on or before ``closed_through``. The
    latest row holds; earlier ones are the history. ``reopened`` marks a closing that moved the
    date back (``connector ledger close --reopen``)."""

    __tablename__ = "closed_periods"

    id: Mapped[int] = mapped_column(primary_key=True)
    closed_through: Mapped[date]
    closed_by: Mapped[str] = mapped_column(String(120))
    closed_at: Mapped[datetime] = mapped_column(default=utc_now)
    reopened: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str | None] = mapped_column(Text)


class PostingInFlight(Base):
    """An outbox row a push has sent to ``target`` (its entry dated by the closing then in
    force) whose answer is not recorded yet: the books are not closed over it meanwhile."""

    __tablename__ = "postings_in_flight"

    outbox_id: Mapped[int] = mapped_column(ForeignKey("outbox.id"), primary_key=True)
    target: Mapped[str] = mapped_column(String(32), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(default=utc_now)


class PdfContent(Base):
    """A rendered PDF, kept once by the SHA-256 of its bytes (content-addressed)."""

    __tablename__ = "pdf_contents"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int]
    created_at: Mapped[datetime] = _created()


class RenderQueue(Base):
    """A document whose current version has no PDF yet: marked when it is issued and whenever
    its version is raised, in the same transaction; removed once the PDF is kept. The send
    stage reads only this queue. A document whose rendering failed is held here with the
    reason (``error``) while the others go on."""

    __tablename__ = "render_queue"

    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"), primary_key=True)
    # Why its rendering failed (held: not tried again until its version changes), or None.
    error: Mapped[str | None] = mapped_column(Text)


class DocumentFile(Base):
    """The PDF of one version of a document: rendered once, by the cycle's send stage (or the
    first ``connector invoice pdf`` that asks for it)."""

    __tablename__ = "document_files"

    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"), primary_key=True)
    version: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(ForeignKey("pdf_contents.sha256"), index=True)
    filename: Mapped[str] = mapped_column(String(80))
    language: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = _created()


class EmailMessage(Base):
    """One e-mail to a customer: a document's version sent as ``kind`` (``document`` for a new
    invoice or credit note, ``reminder:<step>``), rendered from ``template``. ``state`` is
    ``pending`` (to send; ``attempt_started_at`` set while an attempt's outcome is unknown),
    ``sent`` (the server accepted it), ``parked`` (refused: ``answer`` is the server's) or
    ``waiting`` (the customer has no billing address). ``message_id`` is derived from the
    document, its version and the kind, so a resend after an unknown outcome carries the
    same one."""

    __tablename__ = "email_messages"
    __table_args__ = (UniqueConstraint("document_id", "document_version", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"))
    document_version: Mapped[int]
    kind: Mapped[str] = mapped_column(String(40))
    template: Mapped[str] = mapped_column(String(80))
    state: Mapped[str] = mapped_column(String(16), index=True)
    recipients: Mapped[str | None] = mapped_column(Text)
    message_id: Mapped[str | None]
    answer: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(default=0)
    attempt_started_at: Mapped[datetime | None]
    next_attempt_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(default=utc_now, onupdate=utc_now)


class ApiKey(Base):
    """A key of the HTTP API: ``prefix`` (the first characters, shown in lists and logs) and the
    SHA-256 of the whole key; the key itself is printed once and never stored. ``scope`` is
    ``read`` or ``write`` (which reads too). A revoked key is kept, for the record."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    scope: Mapped[str] = mapped_column(String(8))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = _created()
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class IdempotentRequest(Base):
    """The first answer to a write made with an ``Idempotency-Key``: replayed for the same key,
    method, path and body; a different request under the same key is refused. ``status`` is
    None while the first request is still in hand."""

    __tablename__ = "idempotent_requests"
    __table_args__ = (UniqueConstraint("api_key_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id"))
    key: Mapped[str] = mapped_column(String(255))
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(512))
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[int | None]
    response: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()


class ConsoleSession(Base):
    """A signed-in console session: the SHA-256 of its cookie's token, the key it was opened
    with, its CSRF token, and when it expires."""

    __tablename__ = "console_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = _created()
    expires_at: Mapped[datetime]


class WebhookEndpoint(Base):
    """A receiver of webhooks: its URL, the event types it subscribed to, and its signing
    secret (``whsec_…``) sealed with the secrets key. ``enabled`` is false once the receiver
    answered 410 Gone (``disabled_reason`` says so, and when)."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    events: Mapped[list[str]] = mapped_column(JSON)
    secret: Mapped[str] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    disabled_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = _created()


class WebhookEvent(Base):
    """One change of state to announce (the webhook outbox), written in the transaction that
    made the change. ``webhook_id`` (``evt_…``) is derived from the change, so the same change
    written twice is one event, and every delivery of it carries the same id; ``subject`` names
    what changed (``document:12``); ``ordering_key`` what its order is kept within (a
    customer, a CRM record); ``payload`` is the body sent. ``fanned_out`` once its deliveries
    to the endpoints subscribed to its type are made."""

    __tablename__ = "webhook_events"
    __table_args__ = (
        Index(None, "fanned_out", "id"),
        Index(None, "type", "subject"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    webhook_id: Mapped[str] = mapped_column(String(40), unique=True)
    type: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(120))
    ordering_key: Mapped[str] = mapped_column(String(120))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    fanned_out: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = _created()


class WebhookDelivery(Base):
    """One event to deliver to one endpoint: ``pending`` (to try at ``next_attempt_at``),
    ``delivered`` (the receiver answered 2xx), ``failed`` (still refused when the event was
    ``webhooks.max_age`` old) or ``disabled`` (the endpoint was disabled). ``ordering_key``
    is the event's: a later event of the same key waits while an earlier one is pending."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "event_id"),
        Index(None, "endpoint_id", "ordering_key", "state", "event_id"),
        Index(None, "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id"))
    event_id: Mapped[int] = mapped_column(ForeignKey("webhook_events.id"))
    ordering_key: Mapped[str] = mapped_column(String(120))
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None]
    last_status: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(default=utc_now, onupdate=utc_now)


class WebhookAttempt(Base):
    """One attempt of a delivery: the receiver's HTTP status (None: no answer), how long it
    took, and the error when it was not a 2xx."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("webhook_deliveries.id"), index=True)
    attempted_at: Mapped[datetime]
    status: Mapped[int | None]
    latency_ms: Mapped[int]
    error: Mapped[str | None] = mapped_column(Text)


class UsageEvent(Base):
    """A metered usage event as it was accepted. Its ``transaction_id`` counts once: the
    key of :class:`UsageEventId`, which every stored event has a row of.

    On PostgreSQL the table is partitioned by month on ``occurred_at`` (declarative RANGE
    partitions ``usage_events_YYYY_MM``, made as events of a new month arrive, and
    ``usage_events_default`` for any other time): its primary key there is ``(id,
    occurred_at)``, as a partitioned table's unique keys must hold the partition key, and no
    unique index on the transaction id can exist. On SQLite it is a plain table. No other
    index: it would be written for each event (the hourly aggregates answer every question of
    billing)."""

    __tablename__ = "usage_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    transaction_id: Mapped[str]
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    metric: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[datetime]
    properties: Mapped[dict[str, Any]] = mapped_column(JSON)
    received_at: Mapped[datetime]


class UsageEventId(Base):
    """The transaction id of a stored usage event, and its time (where the event is: its
    month's partition on PostgreSQL). An event whose transaction id is here is a duplicate."""

    __tablename__ = "usage_event_ids"
    __table_args__ = {"sqlite_with_rowid": False}  # noqa: RUF012 - the key is the row

    transaction_id: Mapped[str] = mapped_column(primary_key=True)
    occurred_at: Mapped[datetime]


class UsageHourly(Base):
    """The running aggregate of a customer's events of one metric, group and UTC hour, written
    in the transaction that stores the events. Which columns are set depends on the metric's
    aggregation: ``total`` (sum, weighted sum), ``maximum`` (max), ``latest_at`` and
    ``latest_value`` (latest), ``weighted``: Σ value × seconds since 1970 (weighted sum)."""

    __tablename__ = "usage_hourly"
    __table_args__ = {"sqlite_with_rowid": False}  # noqa: RUF012 - the key is the row

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), primary_key=True)
    metric: Mapped[str] = mapped_column(String(64), primary_key=True)
    group_value: Mapped[str] = mapped_column(primary_key=True)  # "" when not grouped
    hour: Mapped[datetime] = mapped_column(primary_key=True)
    events: Mapped[int] = mapped_column(Integer)
    total: Mapped[Decimal | None]
    maximum: Mapped[Decimal | None]
    latest_at: Mapped[datetime | None]
    latest_value: Mapped[Decimal | None]
    weighted: Mapped[Decimal | None]


class UsageHourlyValue(Base):
    """The distinct values a unique count met in an hour."""

    __tablename__ = "usage_hourly_values"
    __table_args__ = {"sqlite_with_rowid": False}  # noqa: RUF012 - the key is the row

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), primary_key=True)
    metric: Mapped[str] = mapped_column(String(64), primary_key=True)
    group_value: Mapped[str] = mapped_column(primary_key=True)
    hour: Mapped[datetime] = mapped_column(primary_key=True)
    value: Mapped[str] = mapped_column(primary_key=True)


class UsageDaily(Base):
    """The running aggregate of a customer's events of one metric and group in a UTC day: its
    hours' aggregates merged (the same columns as :class:`UsageHourly`), written in the same
    transaction. Billing periods and their parts are whole days, so a billing run reads these:
    one row a day, however the events spread over its hours."""

    __tablename__ = "usage_daily"
    __table_args__ = {"sqlite_with_rowid": False}  # noqa: RUF012 - the key is the row

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), primary_key=True)
    metric: Mapped[str] = mapped_column(String(64), primary_key=True)
    group_value: Mapped[str] = mapped_column(primary_key=True)  # "" when not grouped
    day: Mapped[date] = mapped_column(primary_key=True)
    events: Mapped[int] = mapped_column(Integer)
    total: Mapped[Decimal | None]
    maximum: Mapped[Decimal | None]
    latest_at: Mapped[datetime | None]
    latest_value: Mapped[Decimal | None]
    weighted: Mapped[Decimal | None]


class UsageDailyValue(Base):
    """The distinct values a unique count met in a UTC day."""

    __tablename__ = "usage_daily_values"
    __table_args__ = {"sqlite_with_rowid": False}  # noqa: RUF012 - the key is the row

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), primary_key=True)
    metric: Mapped[str] = mapped_column(String(64), primary_key=True)
    group_value: Mapped[str] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(primary_key=True)
    value: Mapped[str] = mapped_column(primary_key=True)
