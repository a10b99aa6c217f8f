"""The push to Xero when Xero fails: lost answers, server errors, rate limits, refusals.

Real billing data (four customers billed for January and February 2026, payments, a refund,
credit notes and two revenue closes) is pushed with :func:`connector.sync.push.push` to the fake
Xero organisation (``xero_sandbox``), which injects the faults. After each fault the next push
must leave Xero holding every document exactly once, with the billing core's amounts to the
cent, and the outbox empty.

The scenario (all customers in USD; the tax rate follows the country):

- US1 (0%): 1 seat × 10.00; pays INV-000001 on Jan 10.
- GB1 (20%): 2 seats, 24.00 a month; pays INV-000002 and INV-000006; cancelled from Feb 15:
  CN-000001 (10.00 + 2.00 tax for Feb 15..28), on a paid invoice, refunded on Feb 20.
- DE1 (19%): 3 seats, 35.70 a month; pays nothing.
- JP1 (10%): 4 seats, 44.00 a month; cancelled from Feb 15: CN-000002 (20.00 + 2.00 tax),
  applied to INV-000008, which leaves 22.00 due.

Revenue closes on Jan 31 (10 + 20 + 30 + 40 = 100.00) and Feb 28 (100.00 less what the credit
notes take back of Feb 15..28, 10.00 and 20.00, on the days their invoices recognize them: the
invoices had journaled nothing of February when they were drafted, so 70.00): one manual journal
a month.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connector.accounting.chart import load_chart
from connector.accounting.xero.target import XeroTarget
from connector.billing.pricing import ChargeKind
from connector.db import outbox, tables
from connector.db.engine import transaction
from connector.settings import Settings, load_settings
from connector.sync import contracts, settlement
from connector.sync.billing_run import run_billing
from connector.sync.push import PushResult, push, read_payments
from connector.sync.revenue_close import close_revenue
from connector.sync.status import Refusal, status
from sandbox.xero.chart import DEFAULT_TAX_RATES
from sandbox.xero.server import XeroSandbox
from tests import builders
from tests.conftest import TEST_TAX_RATES, xero_mapping, xero_overrides

D = Decimal
TARGET = "xero"
API = "/api.xro/2.0/"
DAILY_SPENT = re.compile(
    r"^Xero's daily API limit for this organisation is spent; "
    r"the push resumes after \d{4}-\d{2}-\d{2} 00:00 UTC$"
)

# -- the scenario -------------------------------------------------------------------------------
JANUARY = "Revenue recognized 2026-01 (USD)"
FEBRUARY = "Revenue recognized 2026-02 (USD)"
EXPECTED: dict[str, Any] = {
    "contacts": ["CUST-1", "CUST-2", "CUST-3", "CUST-4"],
    # number: (contact, total, amount due, status)
    "invoices": {
        "INV-000001": ("CUST-1", D("10.00"), D("0.00"), "PAID"),
        "INV-000002": ("CUST-2", D("24.00"), D("0.00"), "PAID"),
        "INV-000003": ("CUST-3", D("35.70"), D("35.70"), "AUTHORISED"),
        "INV-000004": ("CUST-4", D("44.00"), D("44.00"), "AUTHORISED"),
        "INV-000005": ("CUST-1", D("10.00"), D("10.00"), "AUTHORISED"),
        "INV-000006": ("CUST-2", D("24.00"), D("0.00"), "PAID"),
        "INV-000007": ("CUST-3", D("35.70"), D("35.70"), "AUTHORISED"),
        "INV-000008": ("CUST-4", D("44.00"), D("22.00"), "AUTHORISED"),  # CN-000002 applied
    },
    # number: (contact, total, remaining credit, status)
    "credit_notes": {
        "CN-000001": ("CUST-2", D("12.00"), D("0.00"), "PAID"),  # refunded
        "CN-000002": ("CUST-4", D("22.00"), D("0.00"), "PAID"),  # applied to INV-000008
    },
    "payments": {
        "PAY-1": D("10.00"),
        "PAY-2": D("24.00"),
        "PAY-3": D("24.00"),
        "REFUND-4": D("12.00"),
    },
    # one manual journal a month: its lines per account (200 Sales, 835 deferred revenue)
    "manual_journals": {
        JANUARY: [{"200": D("-100.00"), "835": D("100.00")}],
        FEBRUARY: [{"200": D("-70.00"), "835": D("70.00")}],
    },
}
ROWS = 24  # 8 invoices, 2 credit notes, 3 payments, 1 refund, 10 revenue journals


def bill_four_customers(factory: sessionmaker[Session], settings: Settings) -> dict[str, int]:
    """The scenario of the module docstring; returns the customer ids by reference."""
    customers: dict[str, int] = {}
    subscriptions: dict[str, int] = {}
    with transaction(factory) as session:
        seats = builders.price(session, "SEATS", unit_amount="10.00")
        for quantity, country in enumerate(["US", "GB", "DE", "JP"], 1):
            customer = builders.customer(session, f"{country}1", country=country)
            customers[country] = customer.id
            subscriptions[country] = builders.subscription(
                session, customer, [builders.spec(session, seats, quantity)], start=date(2026, 1, 1)
            ).id
    run_billing(factory, settings, date(2026, 1, 1))  # INV-000001..4
    with transaction(factory) as session:
        for number, amount in (("INV-000001", "10.00"), ("INV-000002", "24.00")):
            settlement.record_payment(
                session, amount=amount, received_on=date(2026, 1, 10), invoice_number=number
            )
    close_revenue(factory, date(2026, 1, 31))
    run_billing(factory, settings, date(2026, 2, 1))  # INV-000005..8
    with transaction(factory) as session:
        settlement.record_payment(
            session, amount="24.00", received_on=date(2026, 2, 5), invoice_number="INV-000006"
        )
        for country in ("GB", "JP"):
            contracts.cancel_subscription(
                session, subscriptions[country], cancel_date=date(2026, 2, 15)
            )
    run_billing(factory, settings, date(2026, 2, 15))  # CN-000001 (GB), CN-000002 (JP)
    with transaction(factory) as session:
        settlement.record_refund(
            session, customer_id=customers["GB"], amount="12.00", refunded_on=date(2026, 2, 20)
        )
    close_revenue(factory, date(2026, 2, 28))
    return customers


# -- settings, target, what Xero holds ------------------------------------------------------------
def settings_for(
    database_url: str,
    tmp_path: Path,
    xero: XeroSandbox,
    *,
    tax_rates: dict[str, str] | None = None,
    **xero_extra: Any,
) -> Settings:
    """``xero_settings`` with other Xero settings (``max_attempts``...) or tax rates."""
    return load_settings(
        None,
        database_url=database_url,
        ledger={"path": tmp_path / "ledger.beancount"},
        accounting={"target": TARGET, "mapping_file": str(xero_mapping(tmp_path))},
        tax={"rates": tax_rates or TEST_TAX_RATES},
        xero=xero_overrides(xero, **xero_extra),
    )


def new_target(settings: Settings, factory: sessionmaker[Session], **options: Any) -> XeroTarget:
    """A target as a new ``connector push`` process builds it (fresh limiter and caches)."""
    chart = load_chart(Path(settings.accounting.mapping_file))
    return XeroTarget(settings, factory, chart.xero, **options)


def _amounts(lines: list[dict[str, Any]]) -> dict[str, Decimal]:
    sums: dict[str, Decimal] = {}
    for line in lines:
        sums[line["AccountCode"]] = sums.get(line["AccountCode"], D(0)) + line["LineAmount"]
    return sums


def xero_state(xero: XeroSandbox) -> dict[str, Any]:
    """Everything the organisation holds, in the shape of :data:`EXPECTED` (a document held
    twice shows twice: contacts and journals as lists, the others as a ``duplicates`` entry)."""
    store = xero.store
    numbers = Counter(i["InvoiceNumber"] for i in store.invoices.values())
    numbers.update(n["CreditNoteNumber"] for n in store.credit_notes.values())
    numbers.update(str(p.get("Reference")) for p in store.payments.values())
    journals: dict[str, list[dict[str, Decimal]]] = {}
    for journal in store.manual_journals.values():
        month = journal["Narration"].split(", billing connector")[0]
        journals.setdefault(month, []).append(_amounts(journal["JournalLines"]))
    for held in journals.values():
        held.sort(key=lambda amounts: sorted(amounts.items()))
    state: dict[str, Any] = {
        "contacts": sorted(c["ContactNumber"] for c in store.contacts.values()),
        "invoices": {
            i["InvoiceNumber"]: (
                i["Contact"].get("ContactNumber"),
                i["Total"],
                i["AmountDue"],
                i["Status"],
            )
            for i in store.invoices.values()
        },
        "credit_notes": {
            n["CreditNoteNumber"]: (
                n["Contact"].get("ContactNumber"),
                n["Total"],
                n["RemainingCredit"],
                n["Status"],
            )
            for n in store.credit_notes.values()
        },
        "payments": {str(p.get("Reference")): p["Amount"] for p in store.payments.values()},
        "manual_journals": journals,
    }
    duplicates = sorted(number for number, count in numbers.items() if count > 1)
    if duplicates:
        state["duplicates"] = duplicates
    return state


def api_calls(xero: XeroSandbox, since: int = 0) -> list[tuple[str, str, int | None]]:
    """(method, endpoint, status) of the API calls answered from ``since`` on; an id in the
    path is left out (``PUT CreditNotes/Allocations``)."""
    calls = []
    for request in xero.requests[since:]:
        if not request.path.startswith(API):
            continue
        parts = request.path[len(API) :].split("/")
        endpoint = parts[0] if len(parts) < 3 else f"{parts[0]}/{parts[2]}"
        calls.append((request.method, endpoint, request.status))
    return calls


def writes_to(xero: XeroSandbox, method: str, endpoint: str) -> list[tuple[int | None, bool, str]]:
    """(status, dropped, Idempotency-Key) of every write to ``endpoint``."""
    return [
        (request.status, request.dropped, request.idempotency_key or "")
        for request in xero.requests
        if request.method == method and request.path == API + endpoint
    ]


def deliveries(factory: sessionmaker[Session]) -> Counter[str]:
    with factory() as session:
        return Counter(
            session.scalars(select(tables.Delivery.state).where(tables.Delivery.target == TARGET))
        )


def delivery_errors(factory: sessionmaker[Session], state: str) -> set[str | None]:
    with factory() as session:
        return set(
            session.scalars(
                select(tables.Delivery.error).where(
                    tables.Delivery.target == TARGET, tables.Delivery.state == state
                )
            )
        )


def depth(factory: sessionmaker[Session]) -> dict[str, int]:
    with factory() as session:
        return outbox.depth(session, TARGET)


def counts(result: PushResult) -> tuple[int, int, dict[str, str]]:
    return result.posted, result.pending, result.parked


def next_day(xero: XeroSandbox, day_limit: int = 5000) -> None:
    """The organisation's next UTC day, with ``day_limit`` calls in it."""
    xero.limits.clock = lambda: datetime.now(UTC) + timedelta(days=1)
    xero.limits.day_limit = day_limit


# -- answers lost after the write was applied ---------------------------------------------------
def test_invoices_whose_answer_was_lost_are_found_by_reference_and_not_sent_again(
    factory: sessionmaker[Session], database_url: str, tmp_path: Path, xero_sandbox: XeroSandbox
) -> None:
    settings = settings_for(database_url, tmp_path, xero_sandbox, max_attempts=2)
    bill_four_customers(factory, settings)
    # Xero saves the invoices, then the connection closes before the answer, on both tries
    # (the second is Xero's replay of the first, under the same Idempotency-Key).
    xero_sandbox.faults.add(
        {"kind": "drop", "when": "after", "count": 2, "method": "PUT", "path": "Invoices"}
    )

    first = push(factory, settings, new_target(settings, factory))

    assert counts(first) == (0, ROWS, {})
    assert depth(factory) == {"waiting": ROWS, "parked": 0}
    [(_, _, key)] = set(writes_to(xero_sandbox, "PUT", "Invoices"))
    assert writes_to(xero_sandbox, "PUT", "Invoices") == [(200, True, key), (200, True, key)]
    assert sorted(xero_state(xero_sandbox)["invoices"]) == sorted(EXPECTED["invoices"])
    [error] = delivery_errors(factory, outbox.PENDING)
    assert error is not None
    assert error.startswith("PUT Invoices: Xero did not answer after 2 tries: ConnectionError"), (
        error
    )
    mark = len(xero_sandbox.requests)

    second = push(factory, settings, new_target(settings, factory))

    assert counts(second) == (ROWS, 0, {})
    calls = api_calls(xero_sandbox, mark)
    assert ("PUT", "Invoices", 200) not in calls
    lookups = [r.query["where"] for r in xero_sandbox.requests[mark:] if r.path == API + "Invoices"]
    assert lookups == [" OR ".join(f'Reference=="INV-00000{n}"' for n in range(1, 9))]
    assert xero_state(xero_sandbox) == EXPECTED
    assert depth(factory) == {"waiting": 0, "parked": 0}
    assert deliveries(factory) == {"done": ROWS}


def test_a_manual_journal_whose_answer_was_lost_is_found_by_its_noted_narration(
    factory: sessionmaker[Session], database_url: str, tmp_path: Path, xero_sandbox: XeroSandbox
) -> None:
    settings = settings_for(database_url, tmp_path, xero_sandbox, max_attempts=2)
    bill_four_customers(factory, settings)
    xero_sandbox.faults.add(
        {"kind": "drop", "when": "after", "count": 2, "method": "PUT", "path": "ManualJournals"}
    )

    first = push(factory, settings, new_target(settings, factory))

    assert counts(first) == (14, 10, {})  # everything but the 10 revenue journals
    assert xero_state(xero_sandbox)["manual_journals"] == EXPECTED["manual_journals"]
    with factory() as session:
        noted = set(
            session.scalars(
                select(tables.Delivery.external_id)
                .join(tables.Outbox, tables.Outbox.id == tables.Delivery.outbox_id)
                .where(tables.Outbox.document_type == "revenue")
            )
        )
    assert noted == {j["Narration"] for j in xero_sandbox.store.manual_journals.values()}
    mark = len(xero_sandbox.requests)

    second = push(factory, settings, new_target(settings, factory))

    assert counts(second) == (10, 0, {})
    assert api_calls(xero_sandbox, mark) == [
        ("GET", "TaxRates", 200),  # a new process checks the mapping's tax types first
        ("GET", "Organisation", 200),  # its lock dates, once per target
        ("GET", "ManualJournals", 200),
        ("GET", "ManualJournals", 200),
    ]
    assert xero_state(xero_sandbox) == EXPECTED
    assert depth(factory) == {"waiting": 0, "parked": 0}


def test_contacts_whose_answer_was_lost_are_found_by_contact_number_not_created_twice(
    factory: sessionmaker[Session], database_url: str, tmp_path: Path, xero_sandbox: XeroSandbox
) -> None:
    settings = settings_for(database_url, tmp_path, xero_sandbox, max_attempts=2)
    bill_four_customers(factory, settings)
    xero_sandbox.faults.add(
        {"kind": "drop", "when": "after", "count": 2, "method": "PUT", "path": "Contacts"}
    )

    first = push(factory, settings, new_target(settings, factory))

    assert counts(first) == (0, ROWS, {})
    assert xero_state(xero_sandbox)["contacts"] == EXPECTED["contacts"]
    mark = len(xero_sandbox.requests)

    second = push(factory, settings, new_target(settings, factory))

    assert second.parked == {}
    assert counts(second) == (ROWS, 0, {})
    assert api_calls(xero_sandbox, mark)[:3] == [
        ("GET", "TaxRates", 200),  # a new process checks the mapping's tax types first
        ("GET", "Organisation", 200),  # its lock dates, once per target
        ("GET", "Contacts", 200),
    ]
    assert ("PUT", "Contacts", 200) not in api_calls(xero_sandbox, mark)
    assert xero_state(xero_sandbox) == EXPECTED
    assert depth(factory) == {"waiting": 0, "parked": 0}


# -- server errors and rate limits ----------------------------------------------------------------
def test_server_errors_are_retried_under_the_same_idempotency_key(
    factory: sessionmaker[Session], xero_settings: Settings, xero_sandbox: XeroSandbox
) -> None:
    bill_four_customers(factory, xero_settings)
    xero_sandbox.faults.add({"kind": "500", "count": 1, "method": "PUT", "path": "Invoices"})
    xero_sandbox.faults.add({"kind": "503", "count": 1, "method": "PUT", "path": "Payments"})
    target = new_target(xero_settings, factory)

    result = push(factory, xero_settings, target)

    assert counts(result) == (ROWS, 0, {})
    for endpoint, status_code in (("Invoices", 500), ("Payments", 503)):
        [(_, _, key)] = writes_to(xero_sandbox, "PUT", endpoint)[:1]
        assert writes_to(xero_sandbox, "PUT", endpoint) == [
            (status_code, False, key),
            (200, False, key),
        ]
    assert target.client.retries == 2
    assert xero_state(xero_sandbox) == EXPECTED
    assert depth(factory) == {"waiting": 0, "parked": 0}


def test_a_minute_limit_429_is_waited_out_and_the_call_succeeds(
    factory: sessionmaker[Session], xero_settings: Settings, xero_sandbox: XeroSandbox
) -> None:
    bill_four_customers(factory, xero_settings)
    xero_sandbox.faults.add(
        {"kind": "429", "count": 1, "retry_after": 1, "method": "PUT", "path": "Invoices"}
    )
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    started = time.monotonic()
    result = push(factory, xero_settings, new_target(xero_settings, factory, sleep=sleep))

    assert time.monotonic() - started >= 1.0
    assert waits == [1.0]
    assert counts(result) == (ROWS, 0, {})
    [(_, _, key)] = writes_to(xero_sandbox, "PUT", "Invoices")[:1]
    assert writes_to(xero_sandbox, "PUT", "Invoices") == [(429, False, key), (200, False, key)]
    assert xero_state(xero_sandbox) == EXPECTED


@pytest.mark.xero(day_limit=4)
def test_the_daily_limit_ends_the_push_cleanly_and_the_next_day_delivers_the_rest_once(
    factory: sessionmaker[Session], xero_settings: Settings, xero_sandbox: XeroSandbox
) -> None:
    bill_four_customers(factory, xero_settings)

    # GET TaxRates, GET Organisation (lock dates), PUT Contacts, PUT Invoices: Xero reports no
    # call left today, so nothing more is sent.
    first = push(factory, xero_settings, new_target(xero_settings, factory))

    assert counts(first) == (8, ROWS - 8, {})
    assert api_calls(xero_sandbox) == [
        ("GET", "TaxRates", 200),
        ("GET", "Organisation", 200),
        ("PUT", "Contacts", 200),
        ("PUT", "Invoices", 200),
    ]
    [error] = delivery_errors(factory, outbox.PENDING)
    assert error is not None and DAILY_SPENT.match(error), error
    assert deliveries(factory) == {"done": 8, "pending": ROWS - 8}

    next_day(xero_sandbox)
    second = push(factory, xero_settings, new_target(xero_settings, factory))

    assert counts(second) == (ROWS - 8, 0, {})
    assert xero_state(xero_sandbox) == EXPECTED
    assert depth(factory) == {"waiting": 0, "parked": 0}
    assert deliveries(factory) == {"done": ROWS}


def test_a_push_that_meets_xeros_daily_429_ends_cleanly_and_names_the_daily_limit(
    factory: sessionmaker[Session], xero_settings: Settings, xero_sandbox: XeroSandbox
) -> None:
    """Another app spent the day's calls: Xero's first answer is a 429 ``daily``."""
    bill_four_customers(factory, xero_settings)
    xero_sandbox.limits.set_day_remaining(0)
    target = new_target(xero_settings, factory)

    first = push(factory, xero_settings, target)
    payments = read_payments(factory, xero_settings, target)

    assert counts(first) == (0, ROWS, {})
    assert api_calls(xero_sandbox) == [("GET", "TaxRates", 429)]
    [error] = delivery_errors(factory, outbox.PENDING)
    assert error is not None and "daily API limit for this organisation is spent" in error, error
    # The day is spent: the same process sends nothing more to Xero today.
    assert payments.stopped is not None and "daily API limit" in payments.stopped
    assert api_calls(xero_sandbox) == [("GET", "TaxRates", 429)]

    next_day(xero_sandbox)
    second = push(factory, xero_settings, new_target(xero_settings, factory))

    assert counts(second) == (ROWS, 0, {})
    assert xero_state(xero_sandbox) == EXPECTED
    assert depth(factory) == {"waiting": 0, "parked": 0}


@pytest.mark.xero(day_limit=5)
def test_a_credit_note_whose_allocation_the_daily_limit_cut_off_is_applied_the_next_day(
    factory: sessionmaker[Session], xero_settings: Settings, xero_sandbox: XeroSandbox
) -> None:
    bill_four_customers(factory, xero_settings)

    # GET TaxRates, GET Organisation (lock dates), PUT Contacts, PUT Invoices: Xero reports no
    # call left today, so nothing more is sent.
    first = push(factory, xero_settings, new_target(xero_settings, factory))

    assert api_calls(xero_sandbox)[-1] == ("PUT", "CreditNotes", 200)
    with factory() as session:
        cn_state = session.scalar(
            select(tables.Delivery.state)
            .join(tables.Outbox, tables.Outbox.id == tables.Delivery.outbox_id)
            .join(tables.Document, tables.Document.id == tables.Outbox.document_id)
            .where(
                tables.Outbox.document_type == "credit_note", tables.Document.number == "CN-000002"
            )
        )
    next_day(xero_sandbox)
    second = push(factory, xero_settings, new_target(xero_settings, factory))

    assert first.parked == second.parked == {}
    # Xero holds CN-000002 but has not applied it to INV-000008: it is not delivered yet.
    assert cn_state == outbox.PENDING
    assert xero_state(xero_sandbox) == EXPECTED
    assert depth(factory) == {"waiting": 0, "parked": 0}


def test_a_void_whose_revenue_reversal_the_daily_limit_cut_off_is_reversed_the_next_day(
    factory: sessionmaker[Session], xero_settings: Settings, xero_sandbox: XeroSandbox
) -> None:
    builders.simple_subscription(factory, start=date(2026, 1, 1))  # 10 seats × 10.00
    run_billing(factory, xero_settings, date(2026, 1, 1))
    close_revenue(factory, date(2026, 1, 10))  # INV-000001: 100.00 × 10 / 31 = 32.258... -> 32.26
    assert counts(push(factory, xero_settings, new_target(xero_settings, factory))) == (2, 0, {})
    with transaction(factory) as session:
        contracts.void_invoice(session, "INV-000001", "wrong quantity")
    run_billing(factory, xero_settings, date(2026, 1, 10))  # INV-000002 bills January again
    close_revenue(factory, date(2026, 1, 31))
    mark = len(xero_sandbox.requests)
    xero_sandbox.limits.set_day_remaining(4)

    # GET TaxRates, GET Organisation (lock dates), PUT Invoices (INV-000002), POST Invoices (the
    # void); its reversal is not sent.
    push(factory, xero_settings, new_target(xero_settings, factory))
    assert api_calls(xero_sandbox, mark) == [
        ("GET", "TaxRates", 200),
        ("GET", "Organisation", 200),
        ("PUT", "Invoices", 200),
        ("POST", "Invoices", 200),
    ]
    next_day(xero_sandbox)
    push(factory, xero_settings, new_target(xero_settings, factory))

    # Revenue: INV-000001's 32.26 taken back, INV-000002's January (100.00) recognized.
    state = xero_state(xero_sandbox)
    assert state["manual_journals"] == {
        "Revenue recognized 2026-01 (USD)": [
            {"200": D("-100.00"), "835": D("100.00")},
            {"200": D("-32.26"), "835": D("32.26")},
        ],
        "Revenue reversed for void of INV-000001": [{"200": D("32.26"), "835": D("-32.26")}],
    }
    assert state["invoices"] == {
        "INV-000001": ("CUST-1", D("100.00"), D("0.00"), "VOIDED"),
        "INV-000002": ("CUST-1", D("100.00"), D("100.00"), "AUTHORISED"),
    }
    assert depth(factory) == {"waiting": 0, "parked": 0}


# -- documents Xero refuses -------------------------------------------------------------------
NO_TAX001 = {code: rate for code, rate in DEFAULT_TAX_RATES.items() if code != "TAX001"}
EXTRA_RATES = {**TEST_TAX_RATES, "CA": "7.25", "FR": "5"}  # 7.25 → TAX001; 5 is not mapped
NO_EUR = "The currency EUR is not enabled for this organisation."
REFUSALS = [
    pytest.param(
        ("US", "EUR"),
        f"Xero refused the contact 'Customer LATE1': {NO_EUR}",
        NO_EUR,
        marks=pytest.mark.xero(currencies=("USD", "GBP")),
        id="currency-the-organisation-lacks",
    ),
    pytest.param(
        ("FR", "USD"),
        "no Xero TaxType for tax rate 5% in FR: add it under xero.tax_types in the accounting "
        "mapping file (FR: {5: …}, or 5: … for every country)",
        None,
        id="rate-missing-from-the-mapping",
    ),
]


@pytest.mark.parametrize(("where", "why", "contact_refused"), REFUSALS)
def test_a_refused_invoice_is_parked_with_the_reason_and_everything_else_is_delivered(  # noqa: PLR0917 - fixtures
    factory: sessionmaker[Session],
    database_url: str,
    tmp_path: Path,
    xero_sandbox: XeroSandbox,
    where: tuple[str, str],
    why: str,
    contact_refused: str | None,
) -> None:
    """A late customer (id 5) buys a one-time setup of 50.00 on Feb 20: INV-000009 (document
    11), which Xero refuses, or cannot be sent, while the scenario's documents go through."""
    settings = settings_for(database_url, tmp_path, xero_sandbox, tax_rates=EXTRA_RATES)
    bill_four_customers(factory, settings)
    country, currency = where
    with transaction(factory) as session:
        late = builders.customer(session, "LATE1", country=country, currency=currency)
        setup = builders.price(
            session, "SETUP", currency=currency, unit_amount="50.00", kind=ChargeKind.ONE_TIME
        )
        builders.subscription(
            session,
            late,
            [builders.spec(session, setup, 1, service_date=date(2026, 2, 20))],
            start=date(2026, 2, 20),
        )
    run_billing(factory, settings, date(2026, 2, 20))  # INV-000009, the only new document

    result = push(factory, settings, new_target(settings, factory))
    again = push(factory, settings, new_target(settings, factory))

    assert counts(result) == (ROWS, 0, {"invoice:11:v1": why})
    assert counts(again) == (0, 0, {})
    contacts = EXPECTED["contacts"] + ([] if contact_refused else ["CUST-5"])
    assert xero_state(xero_sandbox) == {**EXPECTED, "contacts": contacts}  # no INV-000009
    with factory() as session:
        report = status(session, date(2026, 3, 1), targets=[TARGET])
    assert report.outbox == {TARGET: {"waiting": 0, "parked": 1}}
    refused = [Refusal(TARGET, "INV-000009", why)]
    if contact_refused:
        refused.append(Refusal("xero contact", "customer 5", contact_refused))
    assert report.refused == refused


def test_a_credit_note_applied_in_cents_is_allocated_exactly(
    factory: sessionmaker[Session], xero_settings: Settings, xero_sandbox: XeroSandbox
) -> None:
    """DE1 (19%) cancelled from Feb 15: CN-000001 is 15.00 + 2.85 tax, applied to INV-000002;
    17.85 has no exact binary floating-point value."""
    sub = builders.simple_subscription(
        factory, start=date(2026, 1, 1), quantity=3, country="DE", ref="DE1"
    )
    run_billing(factory, xero_settings, date(2026, 2, 1))  # INV-000001 (Jan), INV-000002 (Feb)
    with transaction(factory) as session:
        contracts.cancel_subscription(session, sub, cancel_date=date(2026, 2, 15))
    run_billing(factory, xero_settings, date(2026, 2, 15))  # CN-000001

    result = push(factory, xero_settings, new_target(xero_settings, factory))

    assert counts(result) == (3, 0, {})
    state = xero_state(xero_sandbox)
    assert state["invoices"] == {
        "INV-000001": ("CUST-1", D("35.70"), D("35.70"), "AUTHORISED"),
        "INV-000002": ("CUST-1", D("35.70"), D("17.85"), "AUTHORISED"),
    }
    assert state["credit_notes"] == {"CN-000001": ("CUST-1", D("17.85"), D("0.00"), "PAID")}
