"""How the command line shows things: Rich tables and JSON-ready values."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Sequence
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from enum import Enum
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Console, Group
from rich.markup import escape
from rich.measure import Measurement
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from connector.billing.money import Currency, round_money
from connector.billing.money import currency as currency_of
from connector.errors import InvalidInputError

if TYPE_CHECKING:  # the command line imports this module for every command: only what it shows
    from connector.api.keys import KeyInfo
    from connector.billing.aging import CurrencyAging
    from connector.billing.metrics import Metrics
    from connector.db import tables
    from connector.sync.billing_run import BillingRunResult
    from connector.sync.crm_pull import PullResult
    from connector.sync.demo import DemoReport
    from connector.sync.email_status import EmailState
    from connector.sync.reports import DocumentView
    from connector.sync.review import Review
    from connector.sync.status import Status


def json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Currency):
        return value.code
    if isinstance(value, Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    raise TypeError(f"cannot show {type(value).__name__} as JSON")


def _percent(value: Decimal | None) -> str:
    return "—" if value is None else f"{value * 100:.2f}%"


def money(
    value: Decimal | None, currency: str | Currency | None = None, *, code: bool = True
) -> str:
    """An amount as it is printed everywhere: grouped thousands and, given its currency, the
    currency's minor digits followed by its code (``1,234.50 EUR``, ``43,329 JPY``); ``code``
    False leaves the code out where a heading names the currency."""
    if value is None:
        return "—"
    if currency is None:
        return f"{value:,f}"
    try:
        unit = currency if isinstance(currency, Currency) else currency_of(currency)
    except InvalidInputError:  # a code the billing core never made: shown as stored
        return f"{value:,f} {currency}" if code else f"{value:,f}"
    shown = f"{round_money(value, unit):,f}"
    return f"{shown} {unit.code}" if code else shown


def metrics_dict(metrics: Metrics) -> dict[str, Any]:
    data = {f.name: getattr(metrics, f.name) for f in dataclasses.fields(metrics)}
    data["movements"] = {
        **{
            f.name: getattr(metrics.movements, f.name)
            for f in dataclasses.fields(metrics.movements)
        },
        "net": metrics.movements.net,
    }
    return data


def metrics_tables(all_metrics: Sequence[Metrics]) -> list[Table]:
    result = []
    for m in all_metrics:
        table = Table(
            title=f"{m.currency} metrics as of {m.as_of} (movements since {m.since})",
            show_header=False,
        )
        table.add_column("metric")
        table.add_column("value", justify="right")
        moves = m.movements

        def amount(value: Decimal | None, unit: Currency = m.currency) -> str:
            return money(value, unit, code=False)  # the title names the currency

        rows = [
            ("MRR", amount(m.mrr)),
            ("ARR", amount(m.arr)),
            ("Active customers", str(m.active_customers)),
            ("ARPU", amount(m.arpu)),
            ("MRR at start", amount(m.mrr_at_start)),
            ("  new", amount(moves.new)),
            ("  expansion", amount(moves.expansion)),
            ("  reactivation", amount(moves.reactivation)),
            ("  contraction", amount(moves.contraction)),
            ("  churn", amount(moves.churn)),
            ("  net movement", amount(moves.net)),
            ("Logo churn", _percent(m.logo_churn)),
            ("Revenue churn", _percent(m.revenue_churn)),
            ("Net revenue retention", _percent(m.net_revenue_retention)),
            ("LTV", amount(m.ltv)),
        ]
        for name, value in rows:
            table.add_row(name, value)
        result.append(table)
    return result


def _totals(counter: dict[str, Decimal]) -> str:
    """Amounts per currency, one a line, so that none is split from its currency."""
    return "\n".join(money(v, k) for k, v in sorted(counter.items())) or "—"


def billing_summary(result: BillingRunResult) -> Table:
    table = Table(title=f"Billing run as of {result.as_of}", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    numbers = f" ({result.first_number} … {result.last_number})" if result.first_number else ""
    table.add_row("Subscriptions billed", str(result.subscriptions - len(result.failed)))
    table.add_row("Invoices", f"{result.invoices}{numbers}")
    table.add_row("Invoiced", _totals(result.invoiced))
    table.add_row("Credit notes", str(result.credit_notes))
    table.add_row("Credited", _totals(result.credited))
    table.add_row("Failed", str(len(result.failed)))
    return table


def pull_summary(result: PullResult) -> Table:
    table = Table(title="Pull from Salesforce", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    for obj, count in result.fetched.items():
        table.add_row(f"{obj} records read", str(count))
    table.add_row("Applied", str(result.applied))
    table.add_row("Unchanged", str(result.unchanged))
    table.add_row("Nothing to bill", str(result.ignored))
    table.add_row("Quarantined", str(result.quarantined))
    table.add_row("Held for review", str(result.held))
    table.add_row("API calls", str(result.api_calls))
    return table


def _email_part(email: EmailState) -> list[Any]:
    counts = email.counts
    line = (
        f"E-mail{'' if email.enabled else ' (disabled: nothing is sent)'}: "
        f"{counts.get('pending', 0)} pending ({counts.get('in_flight', 0)} in flight), "
        f"{counts.get('sent', 0)} sent, {counts.get('parked', 0)} parked, "
        f"{counts.get('waiting', 0)} waiting for an address"
    )
    parts: list[Any] = [escape(line)]
    if email.messages:
        table = Table(title="E-mail waiting for a fix")
        for column in ("State", "Document", "Kind", "Customer", "Answer"):
            table.add_column(column, overflow="fold", no_wrap=column == "Document")
        for message in email.messages:
            table.add_row(
                message.state, message.number, message.kind, message.customer, message.answer
            )
        parts.append(table)
    return parts


def status_report(report: Status) -> Group:
    parts: list[Any] = []
    if report.jobs:
        jobs = Table(title="Jobs (last run)")
        for column in ("Job", "Started", "Seconds", "Result"):
            jobs.add_column(column, overflow="fold")
        for name, run in report.jobs.items():
            if run is None:
                jobs.add_row(name, "never", "", "")
                continue
            seconds = (
                f"{(run.finished_at - run.started_at).total_seconds():.1f}"
                if run.finished_at
                else ""
            )
            result = "ok" if run.ok else f"failed: {run.error}"
            jobs.add_row(name, run.started_at.isoformat(timespec="seconds"), seconds, result)
        parts.append(jobs)
    overview = Table(title="Salesforce", show_header=False)
    overview.add_column("what")
    overview.add_column("value")
    for name, position in sorted(report.cursors.items()):
        overview.add_row(f"Cursor {name}", position.isoformat() if position else "—")
    for state, count in sorted(report.records.items()):
        overview.add_row(f"Records {state}", str(count))
    limit = f" of {report.org_limit} (org used {report.org_used})" if report.org_limit else ""
    overview.add_row(f"API calls {report.api_day}", f"{report.api_calls}{limit}")
    parts.append(overview)
    parts.append(_books_line(report))
    for target, connection in report.connections.items():
        state = connection["state"]
        if state == "connected":
            parts.append(f"{target}: connected")
        else:
            parts.append(
                f"[bold red]{target}: {state.upper()}[/] {escape(connection['error'] or '')}"
            )
    if report.outbox:
        depth = Table(title="Accounting outbox")
        for column in ("Target", "Waiting", "Parked"):
            depth.add_column(column)
        for target, counts in report.outbox.items():
            depth.add_row(target, str(counts.get("waiting", 0)), str(counts.get("parked", 0)))
        parts.append(depth)
    if report.email is not None:
        parts.extend(_email_part(report.email))
    if report.webhooks is not None:
        from connector.render_webhooks import webhook_table

        parts.append(webhook_table(report.webhooks))
    if report.waiting:
        waiting = Table(title="Waiting for a fix or a review")
        for column in ("State", "Object", "Id", "Name", "Reason"):
            waiting.add_column(column, overflow="fold", no_wrap=column == "Id")
        for row in report.waiting:
            waiting.add_row(row.state, row.object, row.record_id, row.name or "", row.reason or "")
        parts.append(waiting)
    if report.refused:
        refused = Table(title="Refused, waiting for a fix")
        for column in ("Where", "What", "Error"):
            refused.add_column(column, overflow="fold", no_wrap=column == "What")
        for refusal in report.refused:
            refused.add_row(refusal.where, refusal.what, refusal.error)
        parts.append(refused)
    if report.tax_ids:
        tax_ids = Table(title="VAT ids not accepted for the reverse charge (taxed normally)")
        for column in ("Customer", "Country", "VAT id", "Why"):
            tax_ids.add_column(column, overflow="fold")
        for warning in report.tax_ids:
            tax_ids.add_row(warning.customer, warning.country, warning.tax_id, warning.warning)
        parts.append(tax_ids)
    return Group(*parts)


def review_report(report: Review) -> Group:
    parts: list[Any] = []
    if not report.held:
        parts.append(Text("nothing is held for review"))
    else:
        held = Table(title="Held for review")
        for column in ("Object", "Id", "Name", "Reason"):
            held.add_column(column, overflow="fold", no_wrap=column == "Id")
        for row in report.held:
            held.add_row(row.object, row.record_id, row.name or "", row.reason or "")
        parts.append(held)
    if report.approved:
        approved = Table(title="Approved (latest first)")
        for column in ("Id", "By", "At", "What was held"):
            approved.add_column(column, overflow="fold", no_wrap=column in {"Id", "At"})
        for approval in report.approved:
            approved.add_row(
                approval.record_id,
                approval.approved_by,
                approval.approved_at.isoformat(timespec="seconds"),
                approval.reason or "",
            )
        parts.append(approved)
    return Group(*parts)


AGING_COLUMNS = (
    ("Current", "current"),
    ("1–30", "days_1_30"),
    ("31–60", "days_31_60"),
    ("61–90", "days_61_90"),
    ("Over 90", "days_over_90"),
    ("Total", "total"),
    ("Credit", "credit"),
)
AGING_CAPTION = "Days past due. Credit: unapplied payments and credit notes, not taken off Total."


def aging_dict(report: Sequence[CurrencyAging], as_of: date) -> dict[str, Any]:
    return {
        "as_of": as_of,
        "currencies": [
            {
                "currency": section.currency,
                "customers": [
                    {
                        "customer_id": line.customer_id,
                        "customer": line.name,
                        **line.amounts.to_dict(),
                    }
                    for line in section.customers
                ],
                "totals": section.totals.to_dict(),
            }
            for section in report
        ],
    }


def _aged(amount: Decimal, currency: str) -> str:
    return money(amount, currency, code=False) if amount else "—"  # the title names it


def _aging_table(section: CurrencyAging, as_of: date) -> Table:
    """One row per customer, the currency's totals as the footer; columns one space apart."""
    totals = section.totals.to_dict()
    table = Table(
        title=f"{section.currency} receivables as of {as_of}",
        box=box.SIMPLE,
        show_edge=False,
        pad_edge=False,
        padding=(0, 0),
        show_footer=True,
    )
    table.add_column("Customer", "Total", no_wrap=True)
    code = section.currency
    for header, key in AGING_COLUMNS:
        table.add_column(header, _aged(totals[key], code), justify="right", no_wrap=True)
    for line in section.customers:
        amounts = line.amounts.to_dict()
        table.add_row(line.name, *(_aged(amounts[key], code) for _, key in AGING_COLUMNS))
    return table


def _aging_stacked(section: CurrencyAging, as_of: date) -> Group:
    """The same figures, one block per customer: for names or amounts too wide for a row."""
    parts: list[Any] = [Text(f"{section.currency} receivables as of {as_of}", style="italic")]
    blocks = [(line.name, line.amounts) for line in section.customers]
    for name, amounts in [*blocks, ("Total", section.totals)]:
        figures = amounts.to_dict()
        table = Table(show_header=False, box=None, pad_edge=False)
        table.add_column("bucket", no_wrap=True)
        table.add_column("amount", justify="right", no_wrap=True)
        for header, key in AGING_COLUMNS:
            table.add_row(f"  {header}", _aged(figures[key], section.currency))
        parts.extend([Text(name, style="bold", overflow="fold"), table])
    return Group(*parts)


def _natural_width(renderable: Table) -> int:
    wide = Console(width=100_000, file=io.StringIO())
    return Measurement.get(wide, wide.options, renderable).maximum


def aging_report(report: Sequence[CurrencyAging], as_of: date, width: int = 80) -> Group:
    """One table per currency; a currency whose table would be wider than ``width`` is shown
    one block per customer instead, so that no name or amount is ever cut."""
    if not report:
        return Group(Text(f"nothing owed and no unapplied credit on {as_of}"))
    parts: list[Any] = []
    for section in report:
        table = _aging_table(section, as_of)
        parts.append(table if _natural_width(table) <= width else _aging_stacked(section, as_of))
    parts.append(Text(AGING_CAPTION, style="dim"))
    return Group(*parts)


def _books_line(report: Status) -> str:
    books = report.books
    if books.closed_through is None:
        return "Books: open (never closed)"
    line = (
        f"Books closed through {books.closed_through} by {escape(books.closed_by or '?')} "
        f"at {books.closed_at.isoformat(timespec='seconds') if books.closed_at else '?'}"
        f"{' (reopened)' if books.reopened else ''}: entries dated on or before it are booked "
        f"on {books.first_open_day}"
    )
    for target, count in books.in_flight.items():
        line += f"\n  {count} documents in flight to {target} (answer not recorded)"
    return line


NARROW_CUSTOMER = 12  # the least room a customer's name gets before documents go in blocks


def document_table(rows: Sequence[tuple[tables.Document, str]], width: int = 80) -> Table | Group:
    """The documents, one a row, in ``width`` columns: every column when each row fits on a
    line; else without kind and period (``connector invoice show`` has them) and with names
    wrapped; else one block per document. A number, a date or an amount is never cut."""
    wide = _documents(rows, narrow=False)
    if _natural_width(wide) <= width:
        return wide
    if _natural_width(_documents(rows, narrow=True, customer_width=NARROW_CUSTOMER)) <= width:
        return _documents(rows, narrow=True)
    return _document_blocks(rows)


def _documents(
    rows: Sequence[tuple[tables.Document, str]],
    *,
    narrow: bool,
    customer_width: int | None = None,
) -> Table:
    table = Table(
        title="Documents",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
        caption="kind and period: connector invoice show NUMBER" if narrow else None,
    )
    table.add_column("number", no_wrap=True)
    if not narrow:
        table.add_column("kind", no_wrap=True)
    table.add_column("customer", no_wrap=not narrow, overflow="fold", max_width=customer_width)
    table.add_column("date", no_wrap=True)
    if not narrow:
        table.add_column("period", no_wrap=True)
    for column in ("total", "due"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("status", no_wrap=True)
    for doc, customer in rows:
        cells = _document_cells(doc)
        if narrow:
            del cells["kind"], cells["period"]
        table.add_row(*(customer if key == "customer" else cell for key, cell in cells.items()))
    return table


def _document_cells(doc: tables.Document) -> dict[str, str]:
    from connector.sync.settlement import due_of

    return {
        "number": doc.number,
        "kind": doc.kind.replace("_", " "),
        "customer": "",
        "date": doc.issue_date.isoformat(),
        "period": f"{doc.period_start} … {doc.period_end}",
        "total": money(doc.total, doc.currency),
        "due": money(due_of(doc), doc.currency) if doc.kind == "invoice" else "",
        "status": doc.status,
    }


def _document_blocks(rows: Sequence[tuple[tables.Document, str]]) -> Group:
    parts: list[Any] = [Text("Documents", style="italic")]
    for doc, customer in rows:
        cells = _document_cells(doc)
        parts.append(Text(f"{doc.number}  {cells['kind']}  {cells['date']}  {doc.status}"))
        details = [customer, f"period {cells['period']}", f"total {cells['total']}"]
        if cells["due"]:
            details.append(f"due {cells['due']}")
        parts.append(Padding(Text("\n".join(details), overflow="fold"), (0, 0, 0, 2)))
    return Group(*parts)


def document_detail(view: DocumentView) -> Group:
    from connector.sync.settlement import due_of

    doc = view.document
    title = "Credit note" if doc.kind == "credit_note" else "Invoice"
    header = Text(
        f"{title} {doc.number} — {view.customer}\n"
        f"Date {doc.issue_date}, due {doc.due_date}, period {doc.period_start} … {doc.period_end}"
        + (f"\nCredits invoice {view.credited_invoice}" if view.credited_invoice else "")
        + (f"\nReason {doc.reason}" if doc.reason else "")
        + f"\nStatus {doc.status}",
    )
    lines = Table(show_edge=False)
    lines.add_column("#", justify="right")  # what `invoice credit --lines` names
    lines.add_column("description")
    lines.add_column("service")
    lines.add_column("qty", justify="right")
    lines.add_column("tax", justify="right")
    lines.add_column(f"amount ({doc.currency})", justify="right", no_wrap=True)
    for position, line in enumerate(view.lines, start=1):
        lines.add_row(
            str(position),
            line.description,
            f"{line.service_start} … {line.service_end}",
            f"{line.quantity.normalize():f}",
            f"{line.tax_rate.normalize():f}%",
            money(line.amount, doc.currency, code=False),
        )
    totals = Table(show_header=False, show_edge=False)
    totals.add_column("what")
    totals.add_column("amount", justify="right", no_wrap=True)
    totals.add_row("Subtotal", money(doc.subtotal, doc.currency))
    for tax in view.taxes:
        what = "Reverse charge" if tax.reverse_charge else "Tax"
        totals.add_row(
            f"{what} {tax.jurisdiction} {tax.rate.normalize():f}% on "
            f"{money(tax.taxable, doc.currency)}",
            money(tax.tax, doc.currency),
        )
    totals.add_row("Total", money(doc.total, doc.currency))
    if doc.kind == "invoice":
        totals.add_row("Paid", money(doc.amount_paid, doc.currency))
        totals.add_row("Credited", money(doc.amount_credited, doc.currency))
        totals.add_row("Due", money(due_of(doc), doc.currency))
    note = Text(doc.tax_note) if doc.tax_note else Text("")
    return Group(header, lines, totals, note)


def _whole(amount: Decimal) -> Decimal:
    return amount.quantize(Decimal(1), rounding=ROUND_HALF_UP)


def key_table(keys: Sequence[KeyInfo]) -> Table:
    """The API keys, never the keys themselves."""
    table = Table("Name", "Scope", "Key", "Created", "Last used", "Revoked", box=box.SIMPLE)
    for key in keys:
        table.add_row(
            key.name,
            key.scope,
            f"{key.prefix}…",
            f"{key.created_at:%Y-%m-%d %H:%M}",
            f"{key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else "never",
            f"{key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "",
        )
    return table


def demo_report(report: DemoReport, fava: str = "fava", connector: str = "connector") -> Group:
    """What the demo did; the commands it prints start with ``fava`` and ``connector`` as
    the person's shell finds them."""
    currencies = sorted({code for month in report.months for code in month.mrr})
    by_month = Table(
        title="One cycle a month: deals won, invoices, credit notes, payments, MRR at month end",
        caption="MRR in whole currency units",
    )
    for column in ("month", "won", "inv.", "CN", "paid"):
        by_month.add_column(column, justify="left" if column == "month" else "right")
    for code in currencies:
        by_month.add_column(f"MRR {code}", justify="right")
    for month in report.months:
        by_month.add_row(
            month.label,
            str(month.deals_won),
            str(month.invoices),
            str(month.credit_notes),
            str(month.payments),
            *(money(_whole(month.mrr.get(code, Decimal(0)))) for code in currencies),
        )
    summary = Table(title="Demo summary", show_header=False)
    summary.add_column("what")
    summary.add_column("value", justify="right")
    summary.add_row("Deals billed", str(report.deals_billed))
    summary.add_row("Invoices", str(report.invoices))
    summary.add_row("Invoiced", _totals(report.invoiced))
    summary.add_row("Credit notes", str(report.credit_notes))
    summary.add_row("Credited", _totals(report.credited))
    summary.add_row("Payments received", _totals(report.paid))
    summary.add_row("Still owed", _totals(report.outstanding))
    summary.add_row("Usage events reported", f"{report.usage_events:,}")
    summary.add_row("Usage billed (in arrears)", _totals(report.usage_billed))
    summary.add_row("Billing_Invoice__c in Salesforce", str(report.written_back))
    summary.add_row("Billing_Usage__c in Salesforce", str(report.usage_written_back))
    summary.add_row("Salesforce API calls", str(report.api_calls))
    summary.add_row("Ledger", str(report.ledger))
    parts: list[Any] = [by_month, summary]
    if report.waiting:
        waiting = Table(title="Deals waiting for a fix in Salesforce (Billing_Sync_Error__c)")
        waiting.add_column("record", overflow="fold")
        waiting.add_column("reason", overflow="fold")
        for record, reason in report.waiting:
            waiting.add_row(record, reason)
        parts.append(waiting)
    if report.errors:
        parts.append(Text("\n".join(report.errors), style="red"))
    env = f"CONNECTOR_DATABASE_URL=sqlite:///{report.database}"
    if report.emails:
        where = (
            f"e-mailed to the SMTP sink at {report.smtp}"
            if report.smtp
            else "not sent (e-mail is off: run the demo with --smtp HOST:PORT to send them)"
        )
        counts = ", ".join(f"{count} {key}" for key, count in sorted(report.emails.items()))
        parts.append(Text(f"E-mails to customers, {where}: {counts}"))
    if report.documents is not None and report.pdfs:
        first = report.pdfs[0].removesuffix(".pdf")
        parts.append(
            Text(
                f"Invoices and credit notes as the customers get them: {len(report.pdfs)} PDFs "
                f"in {report.documents}/ (e.g. {report.documents / report.pdfs[0]}); one "
                f"again, from the billing core:\n"
                f"  {env} {connector} invoice pdf {first} --out {report.directory / 'copy.pdf'}"
            )
        )
    parts.append(
        Text(
            "Open the ledger in Fava (then http://127.0.0.1:5000):\n"
            f"  {fava} {report.ledger}\n"
            "Explore the billing core, or browse the demo's Salesforce org:\n"
            f"  {env} {connector} invoice list\n"
            f"  {env} {connector} report mrr --as-of {report.months[-1].last_day}\n"
            + (
                f"  {env} {connector} usage show {report.metered_customer} "
                f"--from {report.usage_month}\n"
                if report.metered_customer is not None
                else ""
            )
            + f"  {connector} sandbox serve --data {report.salesforce}",
        )
    )
    return Group(*parts)
