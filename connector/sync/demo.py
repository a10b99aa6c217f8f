"""The demo: a simulated year of the connector at work, on a local Salesforce sandbox.

``connector demo`` needs nothing configured. It starts the sandbox with its demo org (accounts,
products, won deals, upgrades, downgrades, cancellations and two deals that cannot bill), then
runs one full cycle per month, as of each month's last day: pull, bill, close revenue, push to
the Beancount ledger, read payments, write back to Salesforce. Deals appear in Salesforce when
they close and cancellations on their dates (a :class:`~sandbox.salesforce.timeline.Timeline`),
so each pull finds only what sales did that month. After each cycle, finance records in the
ledger the customers' payments of invoices issued at least 14 days before (one customer never
pays, another pays its first invoice with 10% too much, which stays its credit until it pays
the next ones), and the next cycle reads them back and shows them in Salesforce. A few deals
carry a metered product, whose customers report their usage each month: it is billed in
arrears on the next month's invoice (:mod:`connector.sync.demo_usage`). Finance closes
each month's books once the next month's cycle has run (``connector ledger close``): what is
dated in a closed month afterwards (a late credit note, a late payment) is booked on the first
open day.

Everything lives in a throwaway directory (``var/demo`` by default, reset on each run): the
billing database, the ledger and the sandbox's org, all of them their owner's alone (0700 and
0600). The demo marks the directory it makes (:data:`MARKER`) and deletes only such a
directory: a directory that holds anything else, or a file, is refused, never emptied.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from connector.accounting.ledger import Ledger
from connector.billing.invoicing import DocumentKind
from connector.billing.metrics import Metrics
from connector.billing.money import Totals
from connector.billing.payments import InvoiceStatus, PaymentKind
from connector.billing.periods import ONE_DAY, add_months
from connector.billing.pricing import ChargeKind
from connector.db import tables
from connector.db.engine import make_engine, session_factory, transaction
from connector.db.migrate import upgrade
from connector.documents import store
from connector.errors import ConfigError
from connector.private_files import make_directories, write_private
from connector.settings import Settings
from connector.sync.closing import close_books
from connector.sync.cycle import CycleResult, Runtime, run_cycle
from connector.sync.demo_usage import add_metered_lines, report_usage
from connector.sync.reports import subscription_metrics
from connector.sync.settlement import due_of, record_payment
from connector.sync.status import waiting_records
from sandbox.salesforce.server import Sandbox, SandboxConfig
from sandbox.salesforce.timeline import Timeline

SAMPLE_TAX_RATES = {
    "JP": Decimal(10),
    "GB": Decimal(20),
    "DE": Decimal(19),
    "FR": Decimal(20),
    "US-NY": Decimal(4),
    "US-TX": Decimal("6.25"),
}
SAMPLE_SELLER = {
    "name": "Northwind Billing Co. (demo)",
    "address": "1 Market Street\nSan Francisco, CA 94105\nUnited States",
    "tax_id": "US-EIN 12-3456789",
    "bank_details": "Bank: First Republic, 1 Market St\nAccount 000123456789, ABA 321081669",
}
DEMO_SENDER = "Northwind Billing (demo) <billing@northwind.example>"
DEMO_START = date(2026, 1, 1)  # the demo org's deals are served over 2026
PAYMENT_DELAY = timedelta(days=14)
LATE_PAYERS = 1  # the customer with the lowest id never pays, so the report shows money owed
OVER_PAYER = 1  # the next one pays its first invoice with 10% too much: customer credit
OVER_PAYMENT = Decimal("1.10")
FINANCE = "finance (demo)"
PDF_BATCH = 200  # PDFs read at a time
MARKER = ".connector-demo"  # in a directory the demo made, and so may delete


@dataclass
class DemoMonth:
    """One simulated month: what its cycle did, and MRR on its last day."""

    first_day: date
    last_day: date
    deals_won: int
    invoices: int
    credit_notes: int
    payments: int
    mrr: dict[str, Decimal]

    @property
    def label(self) -> str:
        return self.first_day.strftime("%Y-%m") if self.first_day.day == 1 else str(self.first_day)


@dataclass
class DemoReport:
    directory: Path
    database: Path
    ledger: Path
    salesforce: Path
    months: list[DemoMonth] = field(default_factory=list)
    deals_billed: int = 0
    invoices: int = 0
    credit_notes: int = 0
    invoiced: Totals = field(default_factory=Totals)
    credited: Totals = field(default_factory=Totals)
    paid: Totals = field(default_factory=Totals)
    outstanding: Totals = field(default_factory=Totals)
    written_back: int = 0  # Billing_Invoice__c records in Salesforce
    usage_written_back: int = 0  # Billing_Usage__c records in Salesforce
    metered_deals: list[str] = field(default_factory=list)  # deals with a metered product
    metered_customer: int | None = None  # the first customer with usage in usage_month
    usage_events: int = 0  # usage events the metered customers reported
    usage_billed: Totals = field(default_factory=Totals)  # usage lines invoiced
    documents: Path | None = None  # where the documents' PDFs were written
    smtp: str | None = None  # host:port of the SMTP sink the documents were e-mailed to
    emails: dict[str, int] = field(default_factory=dict)  # messages by kind and state
    pdfs: list[str] = field(default_factory=list)  # their file names, in document order
    api_calls: int = 0
    waiting: list[tuple[str, str]] = field(default_factory=list)  # (record, reason)
    errors: list[str] = field(default_factory=list)
    metrics: list[Metrics] = field(default_factory=list)

    @property
    def usage_month(self) -> date:
        """The month whose usage the demo suggests looking at: the last one billed (the one
        before the last), or the only one."""
        return self.months[-2 if len(self.months) > 1 else -1].first_day


def reset_directory(directory: Path) -> None:
    """Make ``directory`` the demo's, empty and marked: a new or empty directory, or one an
    earlier demo made (marked), which is deleted first. Anything else is refused."""
    if directory.is_symlink() or (directory.exists() and not directory.is_dir()):
        raise ConfigError(
            f"--dir {directory} is not a directory: give the demo a new or empty directory"
        )
    if directory.exists() and any(directory.iterdir()):
        if not (directory / MARKER).is_file():
            raise ConfigError(
                f"--dir {directory} holds files the demo did not make (it marks its own with "
                f"{MARKER}), and the demo deletes its directory on each run: give it a new or "
                "empty directory, or delete this one yourself"
            )
        shutil.rmtree(directory)
    make_directories(directory)
    os.chmod(directory, 0o700)  # an empty directory of the user's becomes the demo's own
    (directory / MARKER).write_text(
        "Made by `connector demo`, which deletes this directory when it runs again.\n",
        encoding="utf-8",
    )
    os.chmod(directory / MARKER, 0o600)


def demo_settings(
    settings: Settings, directory: Path, sandbox: Sandbox, smtp: tuple[str, int] | None = None
) -> Settings:
    """The user's settings, pointed at the demo's database, ledger and sandbox; sample tax
    rates and a sample seller apply when none are configured. With ``smtp`` (host, port: a
    local sink), documents and reminders are e-mailed there, in plain SMTP."""
    salesforce = settings.salesforce.model_copy(
        update={
            "auth": "session",
            "instance_url": sandbox.instance_url,
            "session_id": SecretStr(sandbox.session_id),
            "ca_file": str(sandbox.ca_file),
        }
    )
    changes: dict[str, object] = {
        "database_url": SecretStr(f"sqlite:///{directory / 'connector.db'}"),
        "ledger": settings.ledger.model_copy(update={"path": directory / "ledger.beancount"}),
        "accounting": settings.accounting.model_copy(update={"target": "ledger"}),
        "salesforce": salesforce,
    }
    if not settings.tax.rates:
        changes["tax"] = settings.tax.model_copy(update={"rates": SAMPLE_TAX_RATES})
    if not settings.seller.name:
        changes["seller"] = settings.seller.model_copy(update=SAMPLE_SELLER)
    if smtp is not None:
        host, port = smtp
        changes["email"] = settings.email.model_copy(
            update={
                "enabled": True,
                "smtp_host": host,
                "smtp_port": port,
                "starttls": False,  # a local sink: nothing leaves the machine
                "username": "",
                "from_": settings.email.from_ or DEMO_SENDER,
            }
        )
    return settings.model_copy(update=changes)


def run_demo(
    settings: Settings,
    directory: Path,
    *,
    start: date = DEMO_START,
    months: int = 12,
    on_month: Callable[[DemoMonth], None] | None = None,
    smtp: tuple[str, int] | None = None,
) -> DemoReport:
    """Simulate ``months`` months from ``start`` (see the module's description)."""
    if directory.exists():
        shutil.rmtree(directory)
    make_directories(directory)
    reset_directory(directory)
    report = DemoReport(
        directory,
        database=directory / "connector.db",
        ledger=directory / "ledger.beancount",
        salesforce=directory / "salesforce.db",
    )
    config = SandboxConfig(data=report.salesforce, seed="demo", port=0)
    with Sandbox(config) as sandbox:
        settings = demo_settings(settings, directory, sandbox, smtp)
        report.metered_deals = add_metered_lines(sandbox.org)
        report.smtp = None if smtp is None else f"{smtp[0]}:{smtp[1]}"
        engine = make_engine(settings.database_url.get_secret_value())
        upgrade(engine)
        factory = session_factory(engine)
        try:
            _simulate(factory, settings, sandbox, report, start, months, on_month)
            _summarize(factory, sandbox, report, add_months(start, months) - ONE_DAY)
            _write_pdfs(factory, report)
        finally:
            engine.dispose()
    return report


def _simulate(  # noqa: PLR0917 - the simulation's whole state
    factory: sessionmaker[Session],
    settings: Settings,
    sandbox: Sandbox,
    report: DemoReport,
    start: date,
    months: int,
    on_month: Callable[[DemoMonth], None] | None,
) -> None:
    timeline = Timeline.hold_after(sandbox.org, start - ONE_DAY)
    runtime = Runtime(factory, settings)
    ledger = runtime.target
    assert isinstance(ledger, Ledger)
    for number in range(months):
        first_day = add_months(start, number)
        last_day = add_months(start, number + 1) - ONE_DAY
        won = [c for c in timeline.replay_through(last_day) if "StageName" in c.values]
        reported = _report_usage(factory, settings, report, first_day, last_day)
        cycle = run_cycle(factory, settings, last_day, runtime=runtime)
        _note(report, cycle)
        if number:  # the month before is closed once this month's cycle has run
            close_books(factory, first_day - ONE_DAY, by=FINANCE, today=last_day)
        paid = _pay(factory, ledger, last_day)
        _report_usage(factory, settings, report, first_day, last_day, skip=reported)
        invoices, credit_notes = _billed(report, cycle)
        mrr = {m.currency.code: m.mrr for m in subscription_metrics(factory, last_day)}
        month = DemoMonth(first_day, last_day, len(won), invoices, credit_notes, paid, mrr)
        report.months.append(month)
        if on_month is not None:
            on_month(month)
    # One more cycle on the last day reads the last payments and shows them in Salesforce.
    # What it bills (usage reported after the month's cycle, of a period that ended before)
    # counts in the last month.
    last = run_cycle(factory, settings, last_day, runtime=runtime)
    _note(report, last)
    invoices, credit_notes = _billed(report, last)
    if report.months:
        report.months[-1].invoices += invoices
        report.months[-1].credit_notes += credit_notes


def _report_usage(
    factory: sessionmaker[Session],
    settings: Settings,
    report: DemoReport,
    first_day: date,
    last_day: date,
    *,
    skip: Collection[int] = (),
) -> frozenset[int]:
    """The month's usage of the metered subscriptions there are, reported on its last day:
    before its cycle, so that it bills periods that ended in the month whole, and again after
    it for the customers the cycle brought (``skip``: those reported before); the customers
    reported."""
    usage = report_usage(factory, settings, first_day, last_day, skip)
    report.usage_events += usage.events
    report.errors.extend(f"{last_day} usage: {reason}" for reason in usage.refused)
    return usage.customers


def _billed(report: DemoReport, cycle: CycleResult) -> tuple[int, int]:
    """The invoices and credit notes a cycle issued, added to the report's."""
    billed = cycle.stages.get("bill", {})
    invoices, credit_notes = billed.get("invoices", 0), billed.get("credit_notes", 0)
    report.invoices += invoices
    report.credit_notes += credit_notes
    report.invoiced.merge(_amounts(billed.get("invoiced")))
    report.credited.merge(_amounts(billed.get("credited")))
    return invoices, credit_notes


def _note(report: DemoReport, cycle: CycleResult) -> None:
    report.api_calls += cycle.api_calls
    report.errors.extend(f"{cycle.as_of} {stage}: {error}" for stage, error in cycle.errors.items())


def _amounts(values: dict[str, str] | None) -> dict[str, Decimal]:
    return {code: Decimal(str(amount)) for code, amount in (values or {}).items()}


def _pay(factory: sessionmaker[Session], ledger: Ledger, today: date) -> int:
    """Finance records in the ledger's main file the payments of open invoices issued by
    ``today`` - 14 days (by every customer but the late payer); returns how many. The
    over-payer's first payment is recorded in the billing core instead (as ``connector payment
    record`` does): everything it owes, and 10% of the invoice more, kept as its credit."""
    issued_by = today - PAYMENT_DELAY
    with transaction(factory) as session:
        first = session.scalars(
            select(tables.Customer.id).order_by(tables.Customer.id).limit(LATE_PAYERS + OVER_PAYER)
        ).all()
        late, over = first[:LATE_PAYERS], first[LATE_PAYERS:]
        paid_before = set(session.scalars(select(tables.Payment.customer_id).distinct()))
        invoices = session.scalars(
            select(tables.Document)
            .where(
                tables.Document.kind == DocumentKind.INVOICE.value,
                tables.Document.status == InvoiceStatus.OPEN.value,
                tables.Document.issue_date <= issued_by,
                tables.Document.customer_id.not_in(late),
            )
            .order_by(tables.Document.issue_date, tables.Document.number)
        ).all()
        entries = []
        for invoice in invoices:
            due = due_of(invoice)
            account = ledger.customer_accounts.get(invoice.customer_id)
            if due <= 0 or account is None:  # not in the ledger yet: paid next month
                continue
            paid_on = invoice.issue_date + PAYMENT_DELAY
            if invoice.customer_id in over and invoice.customer_id not in paid_before:
                owed = sum(
                    (due_of(other) for other in _open_invoices(session, invoice.customer_id)),
                    Decimal(0),
                )
                record_payment(
                    session,
                    amount=(owed + due * (OVER_PAYMENT - 1)).quantize(due),
                    received_on=paid_on,
                    invoice_number=invoice.number,
                    reference=f"WIRE-{invoice.number}",
                )
                paid_before.add(invoice.customer_id)
                continue
            entries.append(
                f'{paid_on} * "Bank transfer" "Payment of {invoice.number}" ^{invoice.number}\n'
                f"  {ledger.chart.bank_account(invoice.currency)}  {due} {invoice.currency}\n"
                f"  {account}\n"
            )
    if entries:
        with ledger.path.open("a", encoding="utf-8") as handle:
            handle.write("\n" + "\n".join(entries))
    return len(entries)


def _open_invoices(session: Session, customer_id: int) -> list[tables.Document]:
    return list(
        session.scalars(
            select(tables.Document).where(
                tables.Document.customer_id == customer_id,
                tables.Document.kind == DocumentKind.INVOICE.value,
                tables.Document.status == InvoiceStatus.OPEN.value,
            )
        )
    )


def _summarize(
    factory: sessionmaker[Session], sandbox: Sandbox, report: DemoReport, end: date
) -> None:
    report.metrics = subscription_metrics(factory, end)
    with factory() as session:
        report.deals_billed = (
            session.scalar(select(func.count(tables.Document.subscription_id.distinct()))) or 0
        )
        for invoice in session.scalars(
            select(tables.Document).where(tables.Document.kind == DocumentKind.INVOICE.value)
        ):
            due = due_of(invoice)
            if due > 0:
                report.outstanding.add(invoice.currency, due)
        for payment in session.scalars(
            select(tables.Payment).where(tables.Payment.kind == PaymentKind.PAYMENT.value)
        ):
            report.paid.add(payment.currency, payment.amount)
        usage = session.execute(
            select(tables.Document.currency, tables.DocumentLine.amount)
            .join(tables.DocumentLine)
            .where(
                tables.Document.kind == DocumentKind.INVOICE.value,
                tables.DocumentLine.kind == ChargeKind.METERED.value,
            )
        ).all()
        for currency, amount in usage:
            report.usage_billed.add(currency, amount)
        shown = report.usage_month
        report.metered_customer = session.scalar(
            select(func.min(tables.UsageHourly.customer_id)).where(
                tables.UsageHourly.hour >= datetime.combine(shown, time(), UTC),
                tables.UsageHourly.hour < datetime.combine(add_months(shown, 1), time(), UTC),
            )
        )
        report.waiting = [
            (f"{row.object} {row.name or row.record_id}", row.reason or "")
            for row in waiting_records(session)
        ]
        message = tables.EmailMessage
        for kind, state, count in session.execute(
            select(message.kind, message.state, func.count()).group_by(message.kind, message.state)
        ):
            key = f"{'reminder' if kind.startswith('reminder:') else kind} {state}"
            report.emails[key] = report.emails.get(key, 0) + count
    (written,) = sandbox.org.db.execute(
        "SELECT COUNT(*) FROM Billing_Invoice__c WHERE IsDeleted = 0"
    ).fetchone()
    report.written_back = int(written)
    (usage,) = sandbox.org.db.execute(
        "SELECT COUNT(*) FROM Billing_Usage__c WHERE IsDeleted = 0"
    ).fetchone()
    report.usage_written_back = int(usage)


def _write_pdfs(factory: sessionmaker[Session], report: DemoReport) -> None:
    """Every document's PDF, as the cycles' send stage rendered and kept it (its current
    version), written to ``documents/`` in the demo's directory, owner-only."""
    report.documents = report.directory / "documents"
    make_directories(report.documents)
    with factory() as session:
        ids = list(session.scalars(select(tables.Document.id).order_by(tables.Document.id)))
        for start in range(0, len(ids), PDF_BATCH):
            for pdf in store.current_pdfs(session, ids[start : start + PDF_BATCH]).values():
                write_private(report.documents / pdf.filename, pdf.content)
                report.pdfs.append(pdf.filename)
