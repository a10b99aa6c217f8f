"""Invoices and credit notes drafted from charges."""

from datetime import date
from decimal import Decimal

import pytest

from connector.billing.charges import BillingState, plan_billing
from connector.billing.invoicing import (
    DocumentKind,
    InvoicedLine,
    allocate_credit,
    draft_credit_notes,
    draft_invoices,
)
from connector.billing.money import Rounding
from connector.billing.periods import Frequency, Period
from connector.billing.pricing import Product
from connector.billing.tax import CreditedTax, TaxLine
from connector.billing.vat import NOTE as REVERSE_CHARGE_NOTE
from connector.errors import BillingError

from .helpers import USD, Ledger, flat, per_unit, spec, subscribe

D = Decimal
PRO = per_unit("100.00")
JAN = Period(date(2025, 1, 1), date(2025, 1, 31))
FEB = Period(date(2025, 2, 1), date(2025, 2, 28))


def rate_by_code(rates: dict[str, str]):
    def rate(product: Product) -> Decimal:
        return D(rates[product.code])

    return rate


def line(line_id: int, invoice_id: int, remaining: str, rate: str = "0") -> InvoicedLine:
    return InvoicedLine(line_id, invoice_id, "a", date(2025, 4, 1), D(remaining), D(rate), JAN)


def test_the_last_week_of_a_term_ends_the_invoice_period_on_the_last_day_of_service() -> None:
    # Weekly from Monday 2025-06-02, a term of 10 months without renewal: the last day of
    # service is Wednesday 2026-04-01, inside the week of 2026-03-30.
    subscription = subscribe(
        date(2025, 6, 2),
        Frequency.WEEKLY,
        [spec("a", per_unit("70.00"))],
        term_months=10,
        auto_renew=False,
    )
    charges = plan_billing(subscription, date(2026, 3, 30), BillingState()).charges
    last = [c for c in charges if c.period.start == date(2026, 3, 30)]
    assert [(c.period, c.service, c.amount) for c in last] == [
        (
            Period(date(2026, 3, 30), date(2026, 4, 5)),
            Period(date(2026, 3, 30), date(2026, 4, 1)),
            D("30.00"),  # 3 of 7 days
        )
    ]
    invoices = draft_invoices(
        last,
        currency=USD,
        tax_rate=lambda product: D(0),
        issue_date=date(2026, 3, 30),
        due_date=date(2026, 4, 29),
        rounding=Rounding.HALF_UP,
    )
    assert [i.period for i in invoices] == [Period(date(2026, 3, 30), date(2026, 4, 1))]


def test_one_invoice_per_billing_period_with_positive_charges_only() -> None:
    subscription = subscribe(
        date(2025, 1, 1),
        Frequency.MONTHLY,
        [spec("a", PRO), spec("b", flat("20.00", code="ADDON"))],
    )
    charges = plan_billing(subscription, date(2025, 2, 1), BillingState()).charges
    invoices = draft_invoices(
        charges,
        currency=USD,
        tax_rate=rate_by_code({"PRO": "20", "ADDON": "0"}),
        issue_date=date(2025, 2, 1),
        due_date=date(2025, 3, 3),
        rounding=Rounding.HALF_UP,
    )
    assert [(i.kind, i.period) for i in invoices] == [
        (DocumentKind.INVOICE, JAN),
        (DocumentKind.INVOICE, FEB),
    ]
    jan = invoices[0]
    assert [(x.charge.item.key, x.amount, x.tax_rate) for x in jan.lines] == [
        ("a", D("100.00"), D("20")),
        ("b", D("20.00"), D("0")),
    ]
    # 0 % and 20 % are both listed; tax 100.00 × 20 % = 20.00
    assert jan.taxes == (
        TaxLine(D("0"), D("20.00"), D("0.00")),
        TaxLine(D("20"), D("100.00"), D("20.00")),
    )
    assert (jan.subtotal, jan.tax_total, jan.total) == (D("120.00"), D("20.00"), D("140.00"))
    assert (jan.issue_date, jan.due_date) == (date(2025, 2, 1), date(2025, 3, 3))
    assert jan.credited_invoice_id is None


def test_credits_are_left_off_invoices() -> None:
    ledger = Ledger(subscribe(date(2025, 1, 1), Frequency.MONTHLY, [spec("a", PRO, "3")]))
    ledger.run(date(2025, 1, 1))
    ledger.amend(date(2025, 1, 22), [spec("a", PRO, "1")])
    plan = ledger.run(date(2025, 2, 1))
    # Jan 22..31 = 10 of 31 days: -200.00 × 10 / 31 = -64.516... -> -64.52; February 100.00
    assert [(c.key_date, c.amount) for c in plan.charges] == [
        (date(2025, 1, 1), D("-64.52")),
        (date(2025, 2, 1), D("100.00")),
    ]
    invoices = draft_invoices(
        plan.charges,
        currency=USD,
        tax_rate=lambda _product: D("0"),
        issue_date=date(2025, 2, 1),
        due_date=date(2025, 2, 1),
        rounding=Rounding.HALF_UP,
    )
    assert [(i.period, i.total) for i in invoices] == [(FEB, D("100.00"))]
    (note,) = ledger.credit_notes
    assert (note.credited_invoice_id, note.total) == (1, D("64.52"))


def test_downgrade_credit_note_corrects_the_invoice_of_its_period() -> None:
    ledger = Ledger(subscribe(date(2025, 1, 1), Frequency.MONTHLY, [spec("a", PRO, "3")]))
    ledger.run(date(2025, 4, 1))  # one invoice each for January..April
    assert [(i, d.period.start, d.total) for i, d in ledger.invoices] == [
        (1, date(2025, 1, 1), D("300.00")),
        (3, date(2025, 2, 1), D("300.00")),
        (5, date(2025, 3, 1), D("300.00")),
        (7, date(2025, 4, 1), D("300.00")),
    ]
    ledger.amend(date(2025, 4, 21), [spec("a", PRO, "1")])
    ledger.run(date(2025, 4, 21))
    # Apr 21..30 = 10 of 30 days: (100.00 - 300.00) × 10 / 30 = -66.67, on April's line 8.
    (note,) = ledger.credit_notes
    assert note.kind is DocumentKind.CREDIT_NOTE
    assert note.credited_invoice_id == 7
    assert note.period == Period(date(2025, 4, 1), date(2025, 4, 30))
    assert [(x.amount, x.credited_line_id) for x in note.lines] == [(D("66.67"), 8)]
    assert (note.issue_date, note.due_date) == (date(2025, 4, 21), date(2025, 4, 21))
    assert note.total == D("66.67")
    remaining = {x.line_id: x.remaining for x in ledger.invoiced}
    assert remaining == {2: D("300.00"), 4: D("300.00"), 6: D("300.00"), 8: D("233.33")}


def test_credit_is_allocated_to_the_newest_line_first_at_its_tax_rate() -> None:
    ledger = Ledger(
        subscribe(date(2025, 1, 1), Frequency.MONTHLY, [spec("a", PRO, "3")]),
        tax_rate=lambda _product: D("20"),
    )
    ledger.run(date(2025, 4, 1))  # invoice 7, line 8: 300.00 at 20 %
    ledger.amend(date(2025, 4, 11), [spec("a", PRO, "4")])
    ledger.tax_rate = lambda _product: D("10")  # the customer's rate changed since
    ledger.run(date(2025, 4, 11))  # invoice 9, line 10: 100.00 × 20 / 30 = 66.67 at 10 %
    assert ledger.invoices[-1][0] == 9
    assert [(x.amount, x.tax_rate) for x in ledger.invoices[-1][1].lines] == [(D("66.67"), D("10"))]
    ledger.amend(date(2025, 4, 21), [spec("a", PRO, "1")])
    plan = ledger.run(date(2025, 4, 21))
    # April is due: 300.00 + 66.67 + (100.00 - 400.00) × 10 / 30 = 266.67; billed 366.67.
    assert [c.amount for c in plan.charges] == [D("-100.00")]
    # The newest line (10) takes what it holds, 66.67, the older line 8 the other 33.33.
    notes = {n.credited_invoice_id: n for n in ledger.credit_notes}
    assert sorted(notes) == [7, 9]
    assert [(x.amount, x.credited_line_id, x.tax_rate) for x in notes[9].lines] == [
        (D("66.67"), 10, D("10"))
    ]
    assert [(x.amount, x.credited_line_id, x.tax_rate) for x in notes[7].lines] == [
        (D("33.33"), 8, D("20"))
    ]
    # Tax at each credited invoice's rate: 66.67 × 10 % = 6.667 -> 6.67; 33.33 × 20 % = 6.666
    # -> 6.67
    assert notes[9].taxes == (TaxLine(D("10"), D("66.67"), D("6.67")),)
    assert notes[7].taxes == (TaxLine(D("20"), D("33.33"), D("6.67")),)
    assert notes[7].total == D("40.00")


def test_backdated_cancellation_credits_each_invoice() -> None:
    ledger = Ledger(subscribe(date(2025, 1, 1), Frequency.MONTHLY, [spec("a", PRO)]))
    ledger.run_all([date(2025, 1, 1), date(2025, 2, 1), date(2025, 3, 1), date(2025, 4, 1)])
    ledger.cancel(date(2025, 2, 15))
    ledger.run(date(2025, 4, 5))
    # Invoices 1 (Jan), 3 (Feb), 5 (Mar), 7 (Apr); Feb is credited 14 of 28 days.
    assert [(n.credited_invoice_id, n.total) for n in ledger.credit_notes] == [
        (3, D("50.00")),
        (5, D("100.00")),
        (7, D("100.00")),
    ]


def test_credit_without_an_invoice_line_is_refused() -> None:
    subscription = subscribe(date(2025, 1, 1), Frequency.MONTHLY, [spec("a", PRO)])
    subscription = subscription.with_terms(cancel_date=date(2025, 1, 16))
    state = BillingState(
        billed_until=date(2025, 2, 1),
        billed_as_of=date(2025, 1, 1),
        reconcile_from=date(2025, 1, 16),
        billed={("a", date(2025, 1, 1)): D("100.00")},
    )
    charges = plan_billing(subscription, date(2025, 1, 20), state).charges
    assert [c.amount for c in charges] == [D("-51.61")]  # 100.00 × 16 / 31 = 51.612...
    with pytest.raises(BillingError, match="no invoice line to correct"):
        draft_credit_notes(
            charges, [], currency=USD, issue_date=date(2025, 1, 20), rounding=Rounding.HALF_UP
        )


def test_allocate_credit_newest_first_up_to_what_each_line_holds() -> None:
    lines = [line(10, 9, "66.67"), line(8, 7, "300.00"), line(6, 5, "300.00")]
    parts = allocate_credit(D("100.00"), lines)
    assert [(p.line_id, amount) for p, amount in parts] == [(10, D("66.67")), (8, D("33.33"))]


def test_allocate_credit_skips_fully_credited_lines() -> None:
    lines = [line(10, 9, "0.00"), line(8, 7, "300.00")]
    assert [(p.line_id, a) for p, a in allocate_credit(D("50.00"), lines)] == [(8, D("50.00"))]


def test_allocate_credit_puts_a_leftover_on_the_first_line() -> None:
    lines = [line(10, 9, "66.66"), line(8, 7, "33.33")]
    # 100.00 but the lines hold 99.99: the extra cent goes on the first line.
    parts = allocate_credit(D("100.00"), lines)
    assert [(p.line_id, a) for p, a in parts] == [(10, D("66.67")), (8, D("33.33"))]
    empty = [line(10, 9, "0.00")]
    assert [(p.line_id, a) for p, a in allocate_credit(D("0.01"), empty)] == [(10, D("0.01"))]


def test_reverse_charged_invoice_has_one_line_at_zero_and_the_note() -> None:
    subscription = subscribe(date(2025, 1, 1), Frequency.MONTHLY, [spec("a", PRO, "2")])
    charges = plan_billing(subscription, date(2025, 1, 1), BillingState()).charges
    (invoice,) = draft_invoices(
        charges,
        currency=USD,
        tax_rate=lambda _product: D("0"),
        issue_date=date(2025, 1, 1),
        due_date=date(2025, 1, 31),
        rounding=Rounding.HALF_UP,
        jurisdiction="FR",
        reverse_charge=True,
    )
    assert invoice.taxes == (TaxLine(D("0"), D("200.00"), D("0.00"), "FR", True),)
    assert invoice.tax_note == REVERSE_CHARGE_NOTE
    assert invoice.total == D("200.00")


def test_taxed_invoice_names_its_jurisdiction_and_has_no_note() -> None:
    subscription = subscribe(date(2025, 1, 1), Frequency.MONTHLY, [spec("a", PRO)])
    charges = plan_billing(subscription, date(2025, 1, 1), BillingState()).charges
    (invoice,) = draft_invoices(
        charges,
        currency=USD,
        tax_rate=lambda _product: D("7.25"),
        issue_date=date(2025, 1, 1),
        due_date=date(2025, 1, 31),
        rounding=Rounding.HALF_UP,
        jurisdiction="US-CA",
    )
    assert invoice.taxes == (TaxLine(D("7.25"), D("100.00"), D("7.25"), "US-CA"),)
    assert invoice.tax_note is None


def test_credit_note_is_taxed_where_and_as_its_invoice_was() -> None:
    """The customer moved, or its VAT id changed, since: the credit note still follows its
    invoice (its jurisdiction, its reverse charge and note), not the customer's new state."""
    subscription = subscribe(date(2025, 4, 1), Frequency.MONTHLY, [spec("a", PRO, "3")])
    state = BillingState()
    plan = plan_billing(subscription, date(2025, 4, 1), state)
    billed = {(c.item.key, c.key_date): c.amount for c in plan.charges}
    amended = subscription.with_items(date(2025, 4, 21), [spec("a", PRO, "1")])
    later = plan_billing(
        amended,
        date(2025, 4, 21),
        BillingState(
            billed_until=plan.billed_until,
            billed_as_of=date(2025, 4, 1),
            reconcile_from=date(2025, 4, 21),
            billed=billed,
        ),
    )
    invoiced = [
        InvoicedLine(
            2,
            1,
            "a",
            date(2025, 4, 1),
            D("300.00"),
            D("0"),
            Period(date(2025, 4, 1), date(2025, 4, 30)),
        )
    ]
    history = {
        1: {D("0"): CreditedTax(D("300.00"), D("0.00"), jurisdiction="FR", reverse_charge=True)}
    }
    (note,) = draft_credit_notes(
        later.charges,
        invoiced,
        currency=USD,
        issue_date=date(2025, 4, 21),
        rounding=Rounding.HALF_UP,
        tax_history=history,
        jurisdiction="DE",  # where the customer is now
    )
    assert note.taxes == (TaxLine(D("0"), D("66.67"), D("0.00"), "FR", True),)
    assert note.tax_note == REVERSE_CHARGE_NOTE
    # an invoice taxed normally: its credit note too, in its jurisdiction
    taxed = {1: {D("0"): CreditedTax(D("300.00"), D("0.00"), jurisdiction="GB")}}
    (plain,) = draft_credit_notes(
        later.charges,
        invoiced,
        currency=USD,
        issue_date=date(2025, 4, 21),
        rounding=Rounding.HALF_UP,
        tax_history=taxed,
        jurisdiction="DE",
    )
    assert plain.taxes == (TaxLine(D("0"), D("66.67"), D("0.00"), "GB"),)
    assert plain.tax_note is None
