"""The push to Xero on real billing data: invoices with exact totals, manual journals, a
refused document parked and shown (status, the deal in Salesforce), payments entered in Xero
applied to the billing core."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from connector.accounting.xero.tax import xero_line_tax
from connector.billing.pricing import ChargeKind
from connector.cli import app
from connector.db import outbox, tables
from connector.db.engine import transaction
from connector.settings import Settings
from connector.sync import contracts, settlement, writeback
from connector.sync import status as sync_status
from connector.sync.billing_run import run_billing
from connector.sync.cycle import STAGES, Runtime
from connector.sync.push import make_target, push, read_payments
from connector.sync.revenue_close import close_revenue
from sandbox.xero.server import XeroSandbox
from tests import builders
from tests.statements import counting

D = Decimal


def bill_january(factory: sessionmaker[Session], settings: Settings) -> tuple[int, int]:
    """US1 (USD, no tax): 10 seats × 10.00 a month; GB1 (GBP, 20 %): 2 seats × 25.00 a month
    and a setup of 30.00. Both from Jan 1, billed Jan 1, revenue closed Jan 31."""
    with transaction(factory) as session:
        us = builders.customer(session, "US1", country="US", currency="USD")
        us_sub = builders.subscription(
            session,
            us,
            [builders.spec(session, builders.price(session, "SEATS", unit_amount="10.00"), 10)],
            start=date(2026, 1, 1),
        ).id
        gb = builders.customer(session, "GB1", country="GB", currency="GBP")
        seats = builders.price(session, "SEATS", currency="GBP", unit_amount="25.00")
        setup = builders.price(
            session, "SETUP", currency="GBP", unit_amount="30.00", kind=ChargeKind.ONE_TIME
        )
        gb_sub = builders.subscription(
            session,
            gb,
            [
                builders.spec(session, seats, 2),
                builders.spec(session, setup, 1, service_date=date(2026, 1, 1)),
            ],
            start=date(2026, 1, 1),
        ).id
    run_billing(factory, settings, date(2026, 1, 1))  # INV-000001 (USD), INV-000002 (GBP)
    close_revenue(factory, date(2026, 1, 31))
    return us_sub, gb_sub


def test_invoices_and_revenue_reach_xero_with_our_totals(
    factory: sessionmaker[Session], xero_settings: Settings, xero_sandbox: XeroSandbox
) -> None:
    bill_january(factory, xero_settings)
    target = make_target(xero_settings, factory)
    result = push(factory, xero_settings, target)
    base_currency_refusal = (
        "Xero manual journals are in the organisation's base currency (USD); revenue in GBP "
        "cannot be journaled there"
    )
    assert (result.posted, result.pending) == (3, 0)
    assert list(result.parked.values()) == [base_currency_refusal]

    store = xero_sandbox.store
    contacts = {c["ContactNumber"]: c for c in store.contacts.values()}
    assert sorted((n, c["Name"], c["DefaultCurrency"]) for n, c in contacts.items()) == [
        ("CUST-1", "Customer US1", "USD"),
        ("CUST-2", "Customer GB1", "GBP"),
    ]
    invoices = {i["InvoiceNumber"]: i for i in store.invoices.values()}
    assert {n: (i["CurrencyCode"], i["Total"], i["TotalTax"]) for n, i in invoices.items()} == {
        "INV-000001": ("USD", D("100.00"), D("0.00")),
        "INV-000002": ("GBP", D("96.00"), D("16.00")),
    }
    gb_invoice = invoices["INV-000002"]
    assert gb_invoice["Contact"]["ContactID"] == contacts["CUST-2"]["ContactID"]
    assert (gb_invoice["Type"], gb_invoice["Status"], gb_invoice["Reference"]) == (
        "ACCREC",
        "AUTHORISED",
        "INV-000002",
    )
    assert sorted(
        (item["AccountCode"], item["LineAmount"], item["TaxType"], item["TaxAmount"])
        for item in gb_invoice["LineItems"]
    ) == [("260", D("30.00"), "TAX002", D("6.00")), ("835", D("50.00"), "TAX002", D("10.00"))]
    [journal] = store.manual_journals.values()
    assert journal["Narration"].startswith("Revenue recognized 2026-01 (USD), billing connector")
    assert sorted(
        (line["AccountCode"], line["LineAmount"]) for line in journal["JournalLines"]
    ) == [
        ("200", D("-100.00")),
        ("835", D("100.00")),
    ]
    calls = target.client.calls  # type: ignore[attr-defined]
    assert dict(calls) == {
        "GET TaxRates": 1,
        "PUT Contacts": 1,
        "PUT Invoices": 1,
        "GET Organisation": 1,
        "PUT ManualJournals": 1,
    }

    with transaction(factory) as session:
        assert outbox.depth(session, "xero") == {"waiting": 0, "parked": 1}
        report = sync_status.status(session, date(2026, 2, 1), targets=["xero"])
    assert [(r.where, r.what, r.error) for r in report.refused] == [
        ("xero", "revenue 2", base_currency_refusal)
    ]

    again = push(factory, xero_settings, target)
    assert (again.posted, again.pending, again.parked) == (0, 0, {})
    assert dict(target.client.calls) == dict(calls)  # nothing new, no call


def test_revenue_earned_before_its_invoice_goes_through_the_unbilled_receivable_in_xero(
    factory: sessionmaker[Session], xero_settings: Settings, xero_sandbox: XeroSandbox
) -> None:
    # 100.00 a month from Jan 1, first billed on Feb 10 (January's and February's invoices).
    builders.simple_subscription(factory, start=date(2026, 1, 1))
    close_revenue(factory, date(2026, 1, 31))
    run_billing(factory, xero_settings, date(2026, 2, 10))
    close_revenue(factory, date(2026, 2, 28))
    result = push(factory, xero_settings, make_target(xero_settings, factory))

    assert (result.posted, result.pending, result.parked) == (7, 0, {})
    store = xero_sandbox.store
    assert sorted(
        (item["AccountCode"], item["LineAmount"])
        for invoice in store.invoices.values()
        for item in invoice["LineItems"]
    ) == [("835", D("100.00")), ("835", D("100.00"))]
    journals = {
        j["Narration"].split(",")[0]: sorted(
            (line["AccountCode"], line["LineAmount"]) for line in j["JournalLines"]
        )
        for j in store.manual_journals.values()
    }
    # January, all earned before its invoice: from the unbilled receivable (615). February:
    # Feb 1..9 earned before (100.00 × 9 / 28 = 32.142... -> 32.14), both invoices clearing
    # 132.14 of the receivable on Feb 10 from deferred revenue (835), and Feb 10..28 (67.86)
    # from deferred revenue.
    assert journals == {
        "Revenue recognized 2026-01 (USD)": [("200", D("-100.00")), ("615", D("100.00"))],
        "Revenue recognized 2026-02 (USD)": [
            ("200", D("-100.00")),
            ("615", D("-100.00")),
            ("835", D("200.00")),
        ],
    }


def test_a_refused_document_shows_on_its_deal_in_salesforce(
    factory: sessionmaker[Session], xero_settings: Settings
) -> None:
    us_sub, gb_sub = bill_january(factory, xero_settings)
    with transaction(factory) as session:
        for sub_id, deal in ((us_sub, "006000000000001AAA"), (gb_sub, "006000000000002AAA")):
            session.add(
                tables.ExternalId(
                    entity="subscriptions", entity_id=sub_id, system="salesforce", external_id=deal
                )
            )
    push(factory, xero_settings)
    with transaction(factory) as session:
        deals = {
            key: fields["Billing_Sync_Error__c"]
            for obj, _, key, fields in writeback.records(session, date(2026, 2, 1))
            if obj == "Opportunity"
        }
    assert deals == {
        "006000000000001AAA": None,
        "006000000000002AAA": "xero refused INV-000002: Xero manual journals are in the "
        "organisation's base currency (USD); revenue in GBP cannot be journaled there",
    }


def test_payments_entered_in_xero_are_applied_once(
    factory: sessionmaker[Session], xero_settings: Settings, xero_sandbox: XeroSandbox
) -> None:
    bill_january(factory, xero_settings)
    target = make_target(xero_settings, factory)
    push(factory, xero_settings, target)
    xero_sandbox.store.record_payment("INV-000001", D("60.00"), date(2026, 1, 20), "bank feed")
    xero_sandbox.store.record_payment("INV-000002", D("96.00"), date(2026, 1, 25))

    first = read_payments(factory, xero_settings, target)
    assert (first.recorded, first.known, first.refused) == (2, 0, {})
    with factory() as session:
        paid = dict(
            session.execute(
                select(tables.Document.number, tables.Document.amount_paid).order_by(
                    tables.Document.number
                )
            ).all()
        )
        cursor = session.get(tables.SyncCursor, "accounting:xero:payments")
    assert paid == {"INV-000001": D("60.00"), "INV-000002": D("96.00")}
    assert cursor is not None and cursor.position is not None

    xero_sandbox.requests.clear()
    again = read_payments(factory, xero_settings, target)
    assert (again.recorded, again.refused) == (0, {})
    # From the cursor less the 5 minutes' lookback, as an RFC 3339 date-time with its offset.
    since = (cursor.position - timedelta(minutes=5)).isoformat(timespec="seconds")
    assert since.endswith("+00:00")
    assert [r.if_modified_since for r in xero_sandbox.requests if r.path.endswith("/Payments")] == [
        since
    ]
    assert push(factory, xero_settings, target).posted == 0  # not posted back to Xero
    assert len(xero_sandbox.store.payments) == 2


def test_a_parked_document_is_sent_once_its_cause_is_fixed(
    factory: sessionmaker[Session], xero_settings: Settings, xero_sandbox: XeroSandbox
) -> None:
    mapping = Path(xero_settings.accounting.mapping_file)
    document = yaml.safe_load(mapping.read_text())
    del document["xero"]["tax_types"]["GB"]
    mapping.write_text(yaml.safe_dump(document))
    bill_january(factory, xero_settings)
    first = push(factory, xero_settings)
    assert first.parked["invoice:2:v1"] == (
        "no Xero TaxType for tax rate 20% in GB: add it under xero.tax_types in the accounting "
        "mapping file (GB: {20: …}, or 20: … for every country)"
    )
    assert sorted(i["InvoiceNumber"] for i in xero_sandbox.store.invoices.values()) == [
        "INV-000001"
    ]

    document["xero"]["tax_types"]["GB"] = {"20": "TAX002"}
    mapping.write_text(yaml.safe_dump(document))
    with transaction(factory) as session:
        assert outbox.retry_parked(session, "xero") == 2  # the invoice and its revenue
    again = push(factory, xero_settings)
    assert (again.posted, list(again.parked)) == (1, ["revenue:2:v1"])  # GBP revenue: not here
    assert sorted(i["InvoiceNumber"] for i in xero_sandbox.store.invoices.values()) == [
        "INV-000001",
        "INV-000002",
    ]


def test_every_documents_tax_and_total_in_xero_are_the_billing_cores_to_the_cent(
    factory: sessionmaker[Session], xero_settings: Settings, xero_sandbox: XeroSandbox
) -> None:
    """Customers in four currencies billed for January and February, one cancelled: where
    Xero's per-line rounding differs from the core's (43,329 JPY at 10 %: 4,332.90 against
    4,333; 2 × 16.72 GBP at 20 %: 6.68 against 6.69), Xero still holds our tax and total."""
    with transaction(factory) as session:
        jp = builders.customer(session, "JP1", country="JP", currency="JPY")
        yen = builders.price(session, "PRO-JPY", currency="JPY", unit_amount="43329")
        builders.subscription(session, jp, [builders.spec(session, yen, 1)], start=date(2026, 1, 1))
        gb = builders.customer(session, "GB1", country="GB", currency="GBP")
        items = [
            builders.spec(session, builders.price(session, code, currency="GBP", unit_amount=a))
            for code, a in (("ANALYTICS-GBP", "16.72"), ("API-GBP", "16.72"))
        ]
        gb_sub = builders.subscription(session, gb, items, start=date(2026, 1, 1)).id
        de = builders.customer(session, "DE1", country="DE", currency="EUR")
        seats = builders.price(session, "SEATS-EUR", currency="EUR", unit_amount="11.11")
        builders.subscription(
            session, de, [builders.spec(session, seats, 3)], start=date(2026, 1, 1)
        )
        us = builders.customer(session, "US1", country="US", currency="USD")
        dollars = builders.price(session, "SEATS-USD", unit_amount="9.99")
        builders.subscription(
            session, us, [builders.spec(session, dollars, 7)], start=date(2026, 1, 1)
        )
    run_billing(factory, xero_settings, date(2026, 2, 1))
    with transaction(factory) as session:
        contracts.cancel_subscription(session, gb_sub, cancel_date=date(2026, 2, 10))
    run_billing(factory, xero_settings, date(2026, 2, 10))

    result = push(factory, xero_settings)

    assert (result.pending, result.parked) == (0, {})
    store = xero_sandbox.store
    in_xero = {i["InvoiceNumber"]: i for i in store.invoices.values()}
    in_xero |= {n["CreditNoteNumber"]: n for n in store.credit_notes.values()}
    with factory() as session:
        ours = {
            doc.number: (doc.currency, doc.tax_total, doc.total)
            for doc in session.scalars(select(tables.Document))
        }
    assert len(ours) == 9  # 8 invoices and the credit note
    assert {n: (d["CurrencyCode"], d["TotalTax"], d["Total"]) for n, d in in_xero.items()} == ours
    jpy = next(d for d in in_xero.values() if d["CurrencyCode"] == "JPY")
    gbp = next(d for d in in_xero.values() if d["CurrencyCode"] == "GBP")
    assert (jpy["TotalTax"], gbp["TotalTax"]) == (D("4333.00"), D("6.69"))
    rates = xero_sandbox.chart.tax_rates
    adjusted = sorted(  # lines whose tax is not Xero's own: one per document and rate at most
        (number, item["LineAmount"], item["TaxAmount"])
        for number, doc in in_xero.items()
        for item in doc["LineItems"]
        if item["TaxAmount"] != xero_line_tax(item["LineAmount"], rates[item["TaxType"]].rate)
    )
    assert adjusted == [
        ("INV-000001", D("43329.00"), D("4333.00")),  # JPY, January
        ("INV-000002", D("43329.00"), D("4333.00")),  # JPY, February
        ("INV-000003", D("16.72"), D("3.35")),  # GBP, January
        ("INV-000004", D("16.72"), D("3.35")),  # GBP, February
    ]


# -- a credit note on an invoice already paid in Xero ---------------------------------------------
def stages(runtime: Runtime, as_of: date) -> dict[str, Any]:
    """The stages of a cycle that do not speak to Salesforce, in the cycle's order."""
    summaries = {}
    for stage in STAGES:
        if stage not in ("pull", "writeback"):
            run = runtime.run(stage, as_of)
            assert run.error is None, (stage, run.error)
            summaries[stage] = run.summary()
    return summaries


def subscribe_gb1(factory: sessionmaker[Session]) -> int:
    """GB1 (20 %, billed in USD: Xero journals revenue in its base currency only): 2 seats ×
    12.00 a month from Jan 1: INV-000001 is 24.00 + 4.80."""
    return builders.simple_subscription(
        factory, start=date(2026, 1, 1), quantity=2, unit_amount="12.00", country="GB", ref="GB1"
    )


def cancel(factory: sessionmaker[Session], subscription_id: int) -> None:
    """From Jan 16: CN-000001 credits Jan 16..31, 12.39 + 2.48 tax."""
    with transaction(factory) as session:
        contracts.cancel_subscription(session, subscription_id, cancel_date=date(2026, 1, 16))


def sides(factory: sessionmaker[Session], xero: XeroSandbox) -> dict[str, Any]:
    """Where the customer's money sits, in the billing core and in Xero."""
    with factory() as session:
        invoice = session.scalars(
            select(tables.Document).where(tables.Document.number == "INV-000001")
        ).one()
        note = session.scalars(
            select(tables.Document).where(tables.Document.number == "CN-000001")
        ).one()
        payments = session.scalars(select(tables.Payment).order_by(tables.Payment.id)).all()
        core = {
            "INV-000001": (invoice.amount_paid, invoice.amount_credited, invoice.status),
            "CN-000001": (note.total, note.unapplied),
            "payments": [(p.kind, p.amount, p.unapplied) for p in payments],
        }
    [xero_invoice] = xero.store.invoices.values()
    [xero_note] = xero.store.credit_notes.values()
    in_xero = {
        "INV-000001": (
            xero_invoice["AmountPaid"],
            xero_invoice["AmountCredited"],
            xero_invoice["Status"],
        ),
        "CN-000001": (xero_note["Total"], xero_note["RemainingCredit"], xero_note["Allocations"]),
    }
    return {"core": core, "xero": in_xero}


CREDIT = D("14.87")  # CN-000001: 12.39 + 2.48
SETTLED_APART = {  # the invoice paid in full; the credit note is the customer's credit
    "core": {
        "INV-000001": (D("28.80"), D("0.00"), "paid"),
        "CN-000001": (CREDIT, CREDIT),
        "payments": [("payment", D("28.80"), None)],
    },
    "xero": {
        "INV-000001": (D("28.80"), D("0.00"), "PAID"),
        "CN-000001": (CREDIT, CREDIT, []),
    },
}


def test_a_credit_note_on_an_invoice_paid_in_xero_stays_the_customers_credit_on_both_sides(
    factory: sessionmaker[Session], xero_settings: Settings, xero_sandbox: XeroSandbox
) -> None:
    runtime = Runtime(factory, xero_settings)
    sub = subscribe_gb1(factory)
    stages(runtime, date(2026, 1, 1))  # INV-000001 in Xero
    xero_sandbox.store.record_payment("INV-000001", D("28.80"), date(2026, 1, 20), "bank feed")
    cancel(factory, sub)

    cycle = stages(runtime, date(2026, 1, 20))  # payments read back before the credit note

    assert cycle["payments"]["recorded"] == 1
    # CN-000001, the revenue INV-000001 recognized through Jan 20, and the credit note taking
    # back (on the same days) what it recognized of the cancelled days
    assert (cycle["push"]["posted"], cycle["push"]["parked"]) == (3, {})
    assert sides(factory, xero_sandbox) == SETTLED_APART
    with factory() as session:
        assert outbox.depth(session, "xero") == {"waiting": 0, "parked": 0}

    # The customer's credit is refunded: out of the credit note, here and in Xero.
    with transaction(factory) as session:
        customer = session.scalars(select(tables.Customer)).one()
        settlement.record_refund(
            session, customer_id=customer.id, amount=CREDIT, refunded_on=date(2026, 1, 25)
        )
    stages(runtime, date(2026, 1, 31))
    [xero_note] = xero_sandbox.store.credit_notes.values()
    assert (xero_note["RemainingCredit"], xero_note["Status"]) == (D("0.00"), "PAID")
    refund = next(p for p in xero_sandbox.store.payments.values() if p["Reference"] != "bank feed")
    assert (refund["PaymentType"], refund["Amount"]) == ("ARCREDITPAYMENT", CREDIT)
    with factory() as session:
        [balance] = settlement.balances(session, customer.id)
        assert balance.balance == 0


def test_a_payment_entered_in_xero_before_the_credit_note_reached_it_comes_first(
    factory: sessionmaker[Session], xero_settings: Settings, xero_sandbox: XeroSandbox
) -> None:
    """The race: the credit note is billed and applied here while the invoice looks open; the
    invoice is paid in Xero before the credit note reaches it. Xero refuses the allocation;
    the payment read back next releases the credit note here, which is then sent again."""
    runtime = Runtime(factory, xero_settings)
    sub = subscribe_gb1(factory)
    stages(runtime, date(2026, 1, 1))
    cancel(factory, sub)
    assert runtime.run("bill", date(2026, 1, 20)).error is None  # CN-000001 applied here
    xero_sandbox.store.record_payment("INV-000001", D("28.80"), date(2026, 1, 20), "bank feed")

    pushed = runtime.run("push", date(2026, 1, 20)).summary()

    assert pushed is not None
    assert list(pushed["parked"].values()) == [
        "Xero holds CN-000001 but refused to apply it to INV-000001: The amount allocated "
        "exceeds the amount due on the invoice."
    ]

    cycle = stages(runtime, date(2026, 1, 21))

    assert (cycle["payments"]["recorded"], cycle["payments"]["reconciled"]) == (1, 0)
    assert (cycle["push"]["pending"], cycle["push"]["parked"]) == (0, {})  # CN-000001 is done
    assert sides(factory, xero_sandbox) == SETTLED_APART
    with factory() as session:
        assert outbox.depth(session, "xero") == {"waiting": 0, "parked": 0}
        released = session.scalars(
            select(tables.Allocation.amount).where(tables.Allocation.credit_note_id.is_not(None))
        ).all()
    assert released == [CREDIT, -CREDIT]  # applied, then released: the history stays


def test_a_credit_note_parked_before_payments_were_read_first_is_resolved_by_retry_parked(
    factory: sessionmaker[Session], xero_settings: Settings, xero_sandbox: XeroSandbox
) -> None:
    """What an older connector left: the payment read back after the push was recorded with
    its excess as the customer's credit, the credit note parked. `connector push
    --retry-parked` puts the payment on its invoice, as in Xero, and the credit note's credit
    back with the customer."""
    runtime = Runtime(factory, xero_settings)
    sub = subscribe_gb1(factory)
    stages(runtime, date(2026, 1, 1))
    cancel(factory, sub)
    runtime.run("bill", date(2026, 1, 20))
    paid = xero_sandbox.store.record_payment("INV-000001", D("28.80"), date(2026, 1, 20))
    runtime.run("push", date(2026, 1, 20))  # parked
    with transaction(factory) as session:  # as the payments stage recorded it before
        row = settlement.record_payment(
            session,
            amount=D("28.80"),
            received_on=date(2026, 1, 20),
            invoice_number="INV-000001",
            reference=f"xero:{paid['PaymentID']}",
        )
        outbox.delivered_elsewhere(session, "payment", row.id, "xero", "Xero payment")
    before = sides(factory, xero_sandbox)
    assert before["core"]["payments"] == [("payment", D("28.80"), CREDIT)]
    assert before["core"]["CN-000001"] == (CREDIT, None)

    result = CliRunner().invoke(app, ["push", "--retry-parked"], env=cli_env(xero_settings))

    assert result.exit_code == 0, result.output
    assert "1 parked documents back in line" in result.stdout
    assert sides(factory, xero_sandbox) == SETTLED_APART
    with factory() as session:
        assert outbox.depth(session, "xero") == {"waiting": 0, "parked": 0}


def cli_env(settings: Settings) -> dict[str, str]:
    """The environment a `connector` command needs for these settings."""
    xero = settings.xero
    return {
        "CONNECTOR_DATABASE_URL": settings.database_url.get_secret_value(),
        "CONNECTOR_ACCOUNTING__TARGET": "xero",
        "CONNECTOR_ACCOUNTING__MAPPING_FILE": settings.accounting.mapping_file,
        "CONNECTOR_TAX__RATES": json.dumps({k: str(v) for k, v in settings.tax.rates.items()}),
        "CONNECTOR_XERO__CLIENT_ID": xero.client_id,
        "CONNECTOR_XERO__CLIENT_SECRET": xero.client_secret.get_secret_value(),
        "CONNECTOR_XERO__TENANT_ID": xero.tenant_id,
        "CONNECTOR_XERO__API_URL": xero.api_url,
        "CONNECTOR_XERO__TOKEN_URL": xero.token_url,
        "CONNECTOR_XERO__CA_FILE": xero.ca_file,
    }


def test_a_credit_note_the_core_applies_to_another_open_invoice_is_applied_there_in_xero(
    factory: sessionmaker[Session], xero_settings: Settings, xero_sandbox: XeroSandbox
) -> None:
    """GB1 also owes INV-000002 (a setup of 50.00 + 10.00): the credit of CN-000001, whose own
    invoice was paid in Xero, goes to it as customer credit, here and in Xero alike."""
    runtime = Runtime(factory, xero_settings)
    sub = subscribe_gb1(factory)
    with transaction(factory) as session:
        customer = session.scalars(select(tables.Customer)).one()
        setup = builders.price(session, "SETUP", unit_amount="50.00", kind=ChargeKind.ONE_TIME)
        builders.subscription(
            session,
            customer,
            [builders.spec(session, setup, 1, service_date=date(2026, 1, 1))],
            start=date(2026, 1, 1),
        )
    stages(runtime, date(2026, 1, 1))  # INV-000001 (seats), INV-000002 (setup)
    xero_sandbox.store.record_payment("INV-000001", D("28.80"), date(2026, 1, 20), "bank feed")
    cancel(factory, sub)

    cycle = stages(runtime, date(2026, 1, 20))

    assert (cycle["push"]["pending"], cycle["push"]["parked"]) == (0, {})
    [note] = xero_sandbox.store.credit_notes.values()
    assert [(a["Invoice"]["InvoiceNumber"], a["Amount"]) for a in note["Allocations"]] == [
        ("INV-000002", CREDIT)
    ]
    setup_invoice = xero_sandbox.store.invoice_by_number("INV-000002")
    assert setup_invoice is not None
    with factory() as session:
        ours = session.scalars(
            select(tables.Document).where(tables.Document.number == "INV-000002")
        ).one()
        assert (ours.amount_credited, ours.total - ours.amount_credited) == (
            CREDIT,
            D("60.00") - CREDIT,
        )
    assert (setup_invoice["AmountCredited"], setup_invoice["AmountDue"]) == (
        CREDIT,
        D("60.00") - CREDIT,
    )


def test_the_push_to_xero_keeps_its_bookkeeping_to_a_few_statements_per_batch(
    factory: sessionmaker[Session], xero_settings: Settings, engine: Engine
) -> None:
    """Eight customers billed Jan 1, each invoice paid by hand, their revenue closed Jan 31:
    24 documents pushed eight at a time. Contacts, the Xero ids of the invoices the payments
    pay and the journals' narrations are read and stored once per batch, not per document."""
    for n in range(8):
        builders.simple_subscription(factory, start=date(2026, 1, 1), ref=f"US{n}")
    run_billing(factory, xero_settings, date(2026, 1, 1))
    with transaction(factory) as session:
        for n in range(8):
            settlement.record_payment(
                session,
                amount="100.00",
                received_on=date(2026, 1, 10),
                invoice_number=f"INV-{n + 1:06d}",
            )
    close_revenue(factory, date(2026, 1, 31))
    target = make_target(xero_settings, factory)
    target.max_batch = 8

    with counting(engine) as seen:
        result = push(factory, xero_settings, target)

    assert (result.posted, result.pending, result.parked) == (24, 0, {})
    starts = [
        n for n, sql in enumerate(seen.sql) if "SELECT outbox.id, outbox.document_type" in sql
    ]
    sizes = [b - a for a, b in pairwise([*starts, len(seen.sql)])]
    assert len(sizes) == 4  # invoices, payments, journals, and the read that ends it
    # Rows and documents read, marked sent and in flight, answers recorded; the invoices'
    # contacts read and stored (before and after they are created); the payments' invoices
    # read; the journals' narrations noted; with the answers, the deals of refused documents
    # read (the write-back's queue).
    assert sizes[0] <= 16, sizes
    assert max(sizes[1:]) <= 11, sizes
