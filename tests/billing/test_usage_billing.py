"""Usage billed in arrears: which periods' usage is due, the parts a change cuts, and the
charges a plan makes of them (exact amounts, corrections when a change reaches back)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from connector.billing.charges import BillingState, plan_billing
from connector.billing.invoicing import draft_invoices
from connector.billing.metered import MeteredModel, MeteredPrice
from connector.billing.money import Rounding, currency
from connector.billing.periods import Frequency, Period
from connector.billing.pricing import ChargeKind, Price, PricingModel, Product
from connector.billing.revenue import recognition_service, scheduled
from connector.billing.subscriptions import ItemSpec, Subscription, SubscriptionTerms
from connector.billing.usage import Aggregation, HourlyUsage, Metric, Usage
from connector.billing.usage_billing import (
    Meter,
    metered_parts,
    next_usage_date,
    usage_periods,
)
from connector.errors import InvalidInputError

D = Decimal
USD = currency("USD")
CALLS = Metric("api_calls", Aggregation.COUNT, group_by="region", name="API calls")
API = Product("API", "API", id=2)
PLAN = Price(
    Product("PLAN", "Plan", id=1), USD, ChargeKind.RECURRING, PricingModel.PER_UNIT, D(100)
)


def metered(unit: str, minimum: str | None = None, free: str = "0") -> Price:
    terms = MeteredPrice(
        "api_calls",
        USD,
        MeteredModel.PER_UNIT,
        D(unit),
        free_units=D(free),
        minimum=None if minimum is None else D(minimum),
    )
    return Price.of_usage(API, terms)


def subscription(
    *, fee: bool = True, unit: str = "0.10", minimum: str | None = None
) -> Subscription:
    specs = [ItemSpec("API", metered(unit, minimum), D(1))]
    if fee:
        specs.insert(0, ItemSpec("PLAN", PLAN, D(1)))
    terms = SubscriptionTerms(date(2026, 1, 1), Frequency.MONTHLY)
    return Subscription(USD, terms).with_items(date(2026, 1, 1), specs)


def hour(day: int, month: int = 1, at: int = 9) -> datetime:
    return datetime(2026, month, day, at, tzinfo=UTC)


def meter(*hours: tuple[str, datetime, int]) -> Meter:
    return Meter(
        {"api_calls": CALLS},
        {"api_calls": [HourlyUsage(group, at, Usage(events=n)) for group, at, n in hours]},
        {},
        Rounding.HALF_UP,
    )


def test_a_metered_price_is_priced_on_usage_only() -> None:
    price = metered("0.10")
    assert (price.kind, price.model, price.metered.metric) == (  # type: ignore[union-attr]
        ChargeKind.METERED,
        PricingModel.PER_UNIT,
        "api_calls",
    )
    with pytest.raises(InvalidInputError, match="priced on usage"):
        price.amount_for(D(1))
    with pytest.raises(InvalidInputError, match="package pricing is for metered prices only"):
        Price(API, USD, ChargeKind.RECURRING, PricingModel.PACKAGE, D(1))
    with pytest.raises(InvalidInputError, match="needs its metric"):
        Price(API, USD, ChargeKind.METERED, PricingModel.PER_UNIT, D(1))


def test_usage_is_due_once_its_period_is_served() -> None:
    sub = subscription()
    assert [p.period.start for p in usage_periods(sub, date(2026, 3, 1), None)] == [
        date(2026, 1, 1),
        date(2026, 2, 1),
    ]
    assert [p.due_by(date(2026, 3, 1)) for p in usage_periods(sub, date(2026, 3, 1), None)] == [
        True,
        True,
    ]
    # the run of 1 February billed January's usage: March's run looks at February only
    later = usage_periods(sub, date(2026, 3, 1), date(2026, 2, 1))
    assert [p.period.start for p in later] == [date(2026, 2, 1)]
    assert next_usage_date(sub, None) == date(2026, 2, 1)
    assert next_usage_date(sub, date(2026, 2, 1)) == date(2026, 3, 1)
    cancelled = sub.with_terms(cancel_date=date(2026, 2, 15))
    assert next_usage_date(cancelled, date(2026, 2, 1)) == date(2026, 2, 15)
    assert next_usage_date(cancelled, date(2026, 2, 15)) is None


def test_versions_cut_the_served_days_into_parts() -> None:
    a, b = metered("0.10").metered, metered("0.20").metered
    served = Period(date(2026, 2, 1), date(2026, 2, 28))
    assert metered_parts(
        [(date(2026, 1, 1), a, D(1)), (date(2026, 2, 10), b, D(1)), (date(2026, 2, 20), b, D(0))],
        served,
    ) == [
        (Period(date(2026, 2, 1), date(2026, 2, 9)), a),
        (Period(date(2026, 2, 10), date(2026, 2, 19)), b),
    ]


def test_each_group_is_a_line_and_a_shortfall_one_more() -> None:
    sub = subscription(fee=False, unit="0.10", minimum="5.00")
    usage = meter(("eu", hour(3), 7), ("us", hour(4), 12), ("eu", hour(5, 2), 100))

    plan = plan_billing(sub, date(2026, 2, 1), BillingState(), usage)

    (charge,) = plan.charges
    assert (charge.key_date, charge.period, charge.amount) == (
        date(2026, 1, 1),
        Period(date(2026, 1, 1), date(2026, 1, 31)),  # no fee: the period's own invoice
        D("5.00"),
    )
    assert [(u.description, u.quantity, u.amount) for u in charge.usage] == [
        ("API calls [eu] (count) × 7, 2026-01-01 00:00 – 2026-02-01 00:00 UTC", D(7), D("0.70")),
        ("API calls [us] (count) × 12, 2026-01-01 00:00 – 2026-02-01 00:00 UTC", D(12), D("1.20")),
        (
            "API calls: minimum commitment 5.00, 1.90 used, "
            "2026-01-01 00:00 – 2026-02-01 00:00 UTC",
            D(0),
            D("3.10"),
        ),
    ]
    (invoice,) = draft_invoices(
        plan.charges,
        currency=USD,
        tax_rate=lambda product: D(0),
        issue_date=date(2026, 2, 1),
        due_date=date(2026, 3, 3),
        rounding=Rounding.HALF_UP,
    )
    assert (invoice.period, invoice.subtotal, len(invoice.lines)) == (
        Period(date(2026, 1, 1), date(2026, 1, 31)),
        D("5.00"),
        3,
    )
    assert plan.next_billing_date == date(2026, 3, 1)


def test_a_meter_until_an_instant_measures_to_then_and_keeps_each_parts_minimum() -> None:
    january = Period(date(2026, 1, 1), date(2026, 1, 31))
    parts = metered_parts(
        [
            (date(2026, 1, 1), metered("0.10", "3.10").metered, D(1)),
            (date(2026, 1, 16), metered("0.20", "3.10").metered, D(1)),
        ],
        january,
    )
    hours = (("", hour(3), 7), ("", hour(20), 5), ("", hour(25), 30))
    usage = replace(meter(*hours), until=datetime(2026, 1, 20, 10, tzinfo=UTC))

    found = [
        ([(c.quantity, c.amount) for c in priced.charges], priced.shortfall)
        for _part, priced in usage.priced(january, parts)
    ]

    # to Jan 20 10:00: 7 calls before the change, 5 after (the 30 of the 25th not yet);
    # each part's minimum is its share of 3.10 (15 and 16 of 31 days), whole
    assert [(charges, s.minimum if s else None) for charges, s in found] == [
        ([(D(7), D("0.70"))], D("1.50")),
        ([(D(5), D("1.00"))], D("1.60")),
    ]
    assert usage.measured(CALLS, january, Period(date(2026, 1, 21), date(2026, 1, 31))) == {}
    assert replace(usage, until=None).measured(CALLS, january, january) == {"": D(42)}


def test_a_cancellation_reaching_back_into_billed_usage_credits_the_difference() -> None:
    sub = subscription(unit="0.10")
    usage = meter(("", hour(5), 10), ("", hour(20), 30))
    first = plan_billing(sub, date(2026, 2, 1), BillingState(), usage)
    usage_charge = next(c for c in first.charges if c.item.key == "API")
    assert (usage_charge.amount, usage_charge.period.start) == (D("4.00"), date(2026, 2, 1))

    cancelled = sub.with_terms(cancel_date=date(2026, 1, 15))
    state = BillingState(
        billed_until=date(2026, 3, 1),
        billed_as_of=date(2026, 2, 1),
        reconcile_from=date(2026, 1, 15),
        billed={
            ("PLAN", date(2026, 1, 1)): D(100),
            ("PLAN", date(2026, 2, 1)): D(100),
            ("API", date(2026, 1, 1)): D("4.00"),
        },
    )
    again = plan_billing(cancelled, date(2026, 2, 2), state, usage)

    credit = next(c for c in again.charges if c.item.key == "API")
    assert (credit.amount, credit.service, credit.adjustment) == (
        D("-3.00"),  # 10 calls to 14 January stay billed, 30 after are taken back
        Period(date(2026, 1, 1), date(2026, 1, 14)),
        True,
    )
    assert credit.description == "API: usage credited for 2026-01-01..2026-01-14"


def test_usage_revenue_is_recognised_on_its_last_day_of_service() -> None:
    service = Period(date(2026, 1, 1), date(2026, 1, 31))
    assert recognition_service("metered", service) == Period(date(2026, 1, 31), date(2026, 1, 31))
    assert recognition_service("recurring", service) == service
    assert scheduled("metered", "invoice", date(2026, 1, 1), date(2026, 2, 1))
