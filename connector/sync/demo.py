"""The demo: a simulated year of billing on sample data, in a throwaway data directory.

Day by day, the demo imports the sample events on their dates (upgrades, a downgrade, a product
change, a cancellation), runs the billing run, and lets customers pay two weeks after each
invoice (one customer never pays). It uses exactly the services a real deployment uses.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from importlib import resources
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.billing.invoicing import DocumentKind
from connector.billing.metrics import Metrics
from connector.billing.money import Totals
from connector.billing.payments import InvoiceStatus
from connector.billing.periods import ONE_DAY, add_months
from connector.db import tables
from connector.db.engine import make_engine, session_factory, transaction
from connector.db.migrate import upgrade
from connector.settings import Settings
from connector.sync import settlement
from connector.sync.billing_run import run_billing
from connector.sync.importer import SYSTEM, import_file
from connector.sync.reports import subscription_metrics
from connector.sync.settlement import due_of
from connector.yamlfile import load_yaml

SAMPLE_TAX_RATES = {"JP": Decimal(10), "GB": Decimal(20), "DE": Decimal(19)}
DEMO_START = date(2026, 1, 1)  # the sample contracts start in January 2026
LATE_PAYER = "GLOBEX"  # pays nothing, so the report shows money still owed
PAYMENT_DELAY = timedelta(days=14)


def sample_file() -> Path:
    return Path(str(resources.files("connector.samples").joinpath("demo.yaml")))


@dataclass
class DemoMonth:
    """One simulated month: documents issued in it and MRR on its last day."""

    first_day: date
    last_day: date
    invoices: int
    credit_notes: int
    mrr: dict[str, Decimal]

    @property
    def label(self) -> str:
        return self.first_day.strftime("%Y-%m") if self.first_day.day == 1 else str(self.first_day)


@dataclass
class DemoReport:
    database: Path
    months: list[DemoMonth] = field(default_factory=list)
    contracts_billed: int = 0
    invoices: int = 0
    credit_notes: int = 0
    invoiced: Totals = field(default_factory=Totals)
    credited: Totals = field(default_factory=Totals)
    outstanding: Totals = field(default_factory=Totals)
    metrics: list[Metrics] = field(default_factory=list)
    import_errors: list[str] = field(default_factory=list)


def demo_settings(settings: Settings, data_dir: Path) -> Settings:
    """The user's settings, pointed at the demo's own database; sample tax rates apply when
    none are configured."""
    changes: dict[str, object] = {
        "database_url": SecretStr(f"sqlite:///{data_dir / 'connector.db'}")
    }
    if not settings.tax.rates:
        changes["tax"] = settings.tax.model_copy(update={"rates": SAMPLE_TAX_RATES})
    changes["ledger"] = settings.ledger.model_copy(update={"path": data_dir / "ledger.beancount"})
    return settings.model_copy(update=changes)


def run_demo(
    settings: Settings,
    data_dir: Path,
    *,
    start: date,
    months: int,
    on_month: Callable[[DemoMonth], None] | None = None,
) -> DemoReport:
    """Simulate ``months`` months from ``start``, day by day, as the scheduled service would:
    events are imported on their dates, the billing run runs every day, and customers pay 14
    days after an invoice is issued."""
    if data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True)
    settings = demo_settings(settings, data_dir)
    engine = make_engine(settings.database_url.get_secret_value())
    upgrade(engine)
    factory = session_factory(engine)
    report = DemoReport(database=data_dir / "connector.db")
    event_days = _event_days(sample_file())
    end = add_months(start, months) - ONE_DAY
    month_start, invoices, credit_notes = start, 0, 0
    day = start
    while day <= end:
        if day == start or day in event_days:
            with transaction(factory) as session:
                result = import_file(
                    session,
                    sample_file(),
                    as_of=day,
                    default_currency=settings.billing.default_currency,
                )
            report.import_errors.extend(result.errors)
        run = run_billing(factory, settings, day)
        with transaction(factory) as session:
            _pay_invoices(session, day - PAYMENT_DELAY, day)
        invoices += run.invoices
        credit_notes += run.credit_notes
        report.invoices += run.invoices
        report.credit_notes += run.credit_notes
        report.invoiced.merge(run.invoiced)
        report.credited.merge(run.credited)
        next_month = add_months(start, len(report.months) + 1)
        if day + ONE_DAY == next_month:
            mrr = {m.currency.code: m.mrr for m in subscription_metrics(factory, day)}
            month = DemoMonth(month_start, day, invoices, credit_notes, mrr)
            report.months.append(month)
            invoices = credit_notes = 0
            month_start = next_month
            if on_month is not None:
                on_month(month)
        day += ONE_DAY
    report.metrics = subscription_metrics(factory, end)
    with factory() as session:
        report.contracts_billed = len(
            set(session.scalars(select(tables.Document.subscription_id).distinct()))
        )
        for invoice in session.scalars(
            select(tables.Document).where(
                tables.Document.kind == DocumentKind.INVOICE.value,
                tables.Document.status == InvoiceStatus.OPEN.value,
            )
        ):
            report.outstanding.add(invoice.currency, due_of(invoice))
    engine.dispose()
    return report


def _event_days(path: Path) -> set[date]:
    events = load_yaml(path).data.get("events") or []
    return {event["date"] for event in events if isinstance(event.get("date"), date)}


def _pay_invoices(session: Session, issued_by: date, today: date) -> None:
    """Customers pay the invoices issued by ``issued_by``, except the late payer."""
    late = session.scalar(
        select(tables.ExternalId.entity_id).where(
            tables.ExternalId.system == SYSTEM,
            tables.ExternalId.entity == tables.Customer.__tablename__,
            tables.ExternalId.external_id == LATE_PAYER,
        )
    )
    open_invoices = session.scalars(
        select(tables.Document).where(
            tables.Document.kind == DocumentKind.INVOICE.value,
            tables.Document.status == InvoiceStatus.OPEN.value,
            tables.Document.issue_date <= issued_by,
            tables.Document.customer_id != late,
        )
    )
    for invoice in list(open_invoices):
        if invoice.status == InvoiceStatus.OPEN.value:
            settlement.record_payment(
                session,
                amount=due_of(invoice),
                received_on=today,
                invoice_number=invoice.number,
                reference=f"demo-{invoice.number}",
            )
