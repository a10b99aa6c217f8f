"""Billing runs: charges due by an as-of date, reconciliation of later changes."""

from datetime import date
from decimal import Decimal

from connector.billing.charges import BillingState, next_billing_date, plan_billing
from connector.billing.periods import Frequency, Period
from connector.billing.pricing import ChargeKind
from connector.billing.subscriptions import ItemSpec

from .helpers import JPY, Ledger, amounts, flat, per_unit, run_cycles, spec, subscribe

D = Decimal
PRO = per_unit("100.00")


def monthly_2025(quantity: str = "1", **kwargs) -> Ledger:
    subscription = subscribe(
        date(2025, 1, 1), Frequency.MONTHLY, [spec("a", PRO, quantity)], **kwargs
    )
    return Ledger(subscription)


def test_first_run_bills_every_period_started_by_the_as_of_date() -> None:
    ledger = monthly_2025()
    plan = ledger.run(date(2025, 3, 15))
    assert amounts(plan.charges) == [
        ("a", date(2025, 1, 1), D("100.00")),
        ("a", date(2025, 2, 1), D("100.00")),
        ("a", date(2025, 3, 1), D("100.00")),
    ]
    assert plan.billed_until == date(2025, 4, 1)
    assert plan.next_billing_date == date(2025, 4, 1)
    charge = plan.charges[0]
    assert charge.period == charge.service == Period(date(2025, 1, 1), date(2025, 1, 31))
    assert charge.quantity == D("1")
    assert not charge.adjustment
    assert charge.description == "PRO plan × 1, 2025-01-01..2025-01-31"


def test_running_again_bills_nothing() -> None:
    ledger = monthly_2025()
    ledger.run(date(2025, 3, 15))
    assert ledger.run(date(2025, 3, 15)).charges == ()
    assert ledger.run(date(2025, 3, 31)).charges == ()
    assert ledger.total == D("300.00")


def test_jan_31_anchor_2024_bills_on_month_ends() -> None:
    ledger = Ledger(subscribe(date(2024, 1, 31), Frequency.MONTHLY, [spec("a", PRO)]))
    first = ledger.run(date(2024, 1, 31))
    assert [c.service for c in first.charges] == [Period(date(2024, 1, 31), date(2024, 2, 28))]
    assert first.next_billing_date == date(2024, 2, 29)
    assert ledger.run(date(2024, 2, 28)).charges == ()
    ledger.run_all([date(2024, 2, 29), date(2024, 3, 31), date(2024, 4, 30)])
    assert [c.key_date for c in ledger.charges] == [
        date(2024, 1, 31),
        date(2024, 2, 29),
        date(2024, 3, 31),
        date(2024, 4, 30),
    ]
    assert [c.service.end for c in ledger.charges] == [
        date(2024, 2, 28),
        date(2024, 3, 30),
        date(2024, 4, 29),
        date(2024, 5, 30),
    ]
    assert ledger.billed_until == date(2024, 5, 31)
    assert ledger.total == D("400.00")


def test_jan_31_anchor_2026_bills_on_month_ends() -> None:
    ledger = Ledger(subscribe(date(2026, 1, 31), Frequency.MONTHLY, [spec("a", PRO)]))
    assert [c.key_date for c in ledger.run(date(2026, 2, 27)).charges] == [date(2026, 1, 31)]
    second = ledger.run(date(2026, 2, 28))
    assert [c.service for c in second.charges] == [Period(date(2026, 2, 28), date(2026, 3, 30))]
    assert second.next_billing_date == date(2026, 3, 31)


def test_trial_bills_from_the_end_of_the_trial() -> None:
    ledger = monthly_2025(trial_days=14)
    during = ledger.run(date(2025, 1, 10))
    assert during.charges == ()
    assert during.billed_until == date(2025, 1, 15)
    assert during.next_billing_date == date(2025, 1, 15)
    plan = ledger.run(date(2025, 1, 15))
    assert amounts(plan.charges) == [("a", date(2025, 1, 15), D("100.00"))]
    assert plan.charges[0].service == Period(date(2025, 1, 15), date(2025, 2, 14))
    assert plan.next_billing_date == date(2025, 2, 15)


def test_cancelled_during_the_trial_bills_nothing() -> None:
    ledger = monthly_2025(trial_days=30)
    ledger.cancel(date(2025, 1, 20))
    plan = ledger.run(date(2025, 6, 1))
    assert plan.charges == ()
    assert plan.next_billing_date is None


def test_non_renewing_weekly_term_prorates_the_last_period() -> None:
    subscription = subscribe(
        date(2025, 1, 1), Frequency.WEEKLY, [spec("a", PRO)], term_months=1, auto_renew=False
    )
    ledger = Ledger(subscription)
    plan = ledger.run(date(2025, 3, 1))
    # Service ends Jan 31. Weeks start Jan 1, 8, 15, 22, 29; the last week Jan 29..Feb 4 is
    # served 3 of 7 days: 100.00 - round(100.00 × 4 / 7 = 57.1428...) = 100.00 - 57.14
    assert amounts(plan.charges) == [
        ("a", date(2025, 1, 1), D("100.00")),
        ("a", date(2025, 1, 8), D("100.00")),
        ("a", date(2025, 1, 15), D("100.00")),
        ("a", date(2025, 1, 22), D("100.00")),
        ("a", date(2025, 1, 29), D("42.86")),
    ]
    last = plan.charges[-1]
    assert last.period == Period(date(2025, 1, 29), date(2025, 2, 4))
    assert last.service == Period(date(2025, 1, 29), date(2025, 1, 31))
    assert last.description == "PRO plan × 1, prorated 2025-01-29..2025-01-31"
    assert plan.next_billing_date is None
    assert ledger.run(date(2025, 6, 1)).charges == ()
    assert ledger.total == D("442.86")


def test_non_renewing_annual_term_ends_with_the_term() -> None:
    subscription = subscribe(
        date(2024, 2, 29),
        Frequency.QUARTERLY,
        [spec("a", per_unit("300.00"))],
        term_months=12,
        auto_renew=False,
    )
    ledger = Ledger(subscription)
    plan = ledger.run(date(2026, 1, 1))
    assert [c.key_date for c in plan.charges] == [
        date(2024, 2, 29),
        date(2024, 5, 29),
        date(2024, 8, 29),
        date(2024, 11, 29),
    ]
    assert ledger.total == D("1200.00")
    assert plan.next_billing_date is None


def test_upgrade_mid_period_charges_the_rest_of_the_period() -> None:
    ledger = monthly_2025()
    ledger.run(date(2025, 4, 1))  # Jan..Apr: 400.00
    ledger.amend(date(2025, 4, 16), [spec("a", PRO, "3")])
    plan = ledger.run(date(2025, 4, 16))
    # April has 30 days; Apr 16..30 = 15: (300.00 - 100.00) × 15 / 30 = 100.00
    assert amounts(plan.charges) == [("a", date(2025, 4, 1), D("100.00"))]
    charge = plan.charges[0]
    assert charge.adjustment
    assert charge.service == Period(date(2025, 4, 16), date(2025, 4, 30))
    assert charge.quantity == D("2")  # the units added
    assert charge.description == "PRO plan × 2: change for 2025-04-16..2025-04-30"
    assert plan.billed_until == date(2025, 5, 1)
    # The next period is billed at the new quantity.
    assert amounts(ledger.run(date(2025, 5, 1)).charges) == [("a", date(2025, 5, 1), D("300.00"))]


def test_downgrade_mid_period_credits_the_unused_days() -> None:
    ledger = monthly_2025("3")
    ledger.run(date(2025, 4, 1))
    ledger.amend(date(2025, 4, 21), [spec("a", PRO, "1")])
    plan = ledger.run(date(2025, 4, 22))
    # Apr 21..30 = 10 of 30 days: (100.00 - 300.00) × 10 / 30 = -66.666... -> -66.67
    assert amounts(plan.charges) == [("a", date(2025, 4, 1), D("-66.67"))]
    charge = plan.charges[0]
    assert charge.service == Period(date(2025, 4, 21), date(2025, 4, 30))
    assert charge.description == "PRO plan: unused time 2025-04-21..2025-04-30"


def test_cancellation_credits_unused_prepaid_days() -> None:
    ledger = monthly_2025()
    ledger.run(date(2025, 1, 1))
    ledger.cancel(date(2025, 1, 20))
    plan = ledger.run(date(2025, 1, 20))
    # Jan 20..31 = 12 of 31 days unused: 100.00 × 12 / 31 = 38.709... -> 38.71
    assert amounts(plan.charges) == [("a", date(2025, 1, 1), D("-38.71"))]
    assert plan.charges[0].service == Period(date(2025, 1, 20), date(2025, 1, 31))
    assert plan.next_billing_date is None
    assert ledger.run(date(2025, 5, 1)).charges == ()
    assert ledger.total == D("61.29")


def test_cancellation_inside_an_unbilled_period_bills_the_served_days() -> None:
    ledger = monthly_2025()
    ledger.run(date(2025, 1, 1))
    ledger.cancel(date(2025, 2, 15))
    plan = ledger.run(date(2025, 2, 1))
    # Feb: 100.00 - 100.00 × 14 / 28 (Feb 15..28 unused) = 50.00, billed once, not adjusted.
    assert amounts(plan.charges) == [("a", date(2025, 2, 1), D("50.00"))]
    assert not plan.charges[0].adjustment
    assert plan.charges[0].service == Period(date(2025, 2, 1), date(2025, 2, 14))


def test_change_with_no_net_effect_bills_nothing() -> None:
    specs = [spec("a", PRO, "2"), spec("b", flat("15.00"))]
    ledger = Ledger(subscribe(date(2025, 1, 1), Frequency.MONTHLY, specs))
    ledger.run(date(2025, 4, 1))
    ledger.amend(date(2025, 2, 10), specs)  # the same item set, even backdated
    assert ledger.run(date(2025, 4, 2)).charges == ()
    # A different price with the same amount has no net effect either.
    ledger.amend(date(2025, 3, 5), [spec("a", per_unit("200.00")), spec("b", flat("15.00"))])
    assert ledger.run(date(2025, 4, 3)).charges == ()
    assert ledger.total == D("860.00")  # 4 × (200.00 + 15.00)


def test_backdated_cancellation_across_several_billed_periods() -> None:
    ledger = monthly_2025()
    ledger.run_all([date(2025, 1, 1), date(2025, 2, 1), date(2025, 3, 1), date(2025, 4, 1)])
    assert ledger.total == D("400.00")
    ledger.cancel(date(2025, 2, 15))
    plan = ledger.run(date(2025, 4, 5))
    # Feb 15..28 = 14 of 28 days unused: -50.00; March and April fully: -100.00 each.
    assert amounts(plan.charges) == [
        ("a", date(2025, 2, 1), D("-50.00")),
        ("a", date(2025, 3, 1), D("-100.00")),
        ("a", date(2025, 4, 1), D("-100.00")),
    ]
    assert [c.service for c in plan.charges] == [
        Period(date(2025, 2, 15), date(2025, 2, 28)),
        Period(date(2025, 3, 1), date(2025, 3, 31)),
        Period(date(2025, 4, 1), date(2025, 4, 30)),
    ]
    assert all(c.adjustment for c in plan.charges)
    assert plan.billed_until == date(2025, 5, 1)
    assert plan.next_billing_date is None
    assert ledger.total == D("150.00")  # January + half of February
    assert ledger.run(date(2025, 6, 1)).charges == ()


def test_lifting_a_backdated_cancellation_bills_again() -> None:
    ledger = monthly_2025()
    ledger.run(date(2025, 4, 1))
    ledger.cancel(date(2025, 2, 15))
    ledger.run(date(2025, 4, 5))
    ledger.cancel(None)
    plan = ledger.run(date(2025, 4, 6))
    assert amounts(plan.charges) == [
        ("a", date(2025, 2, 1), D("50.00")),
        ("a", date(2025, 3, 1), D("100.00")),
        ("a", date(2025, 4, 1), D("100.00")),
    ]
    assert plan.next_billing_date == date(2025, 5, 1)
    assert ledger.total == D("400.00")


def test_backdated_upgrade_across_several_billed_periods() -> None:
    ledger = monthly_2025()
    ledger.run(date(2025, 4, 1))
    ledger.amend(date(2025, 2, 15), [spec("a", PRO, "3")])
    plan = ledger.run(date(2025, 4, 2))
    # Feb: 200.00 × 14 / 28 = 100.00; March and April: 200.00 each.
    assert amounts(plan.charges) == [
        ("a", date(2025, 2, 1), D("100.00")),
        ("a", date(2025, 3, 1), D("200.00")),
        ("a", date(2025, 4, 1), D("200.00")),
    ]
    assert plan.charges[0].quantity == D("2")  # 1 -> 3 on Feb 15: two units added
    assert plan.charges[0].service == Period(date(2025, 2, 15), date(2025, 2, 28))


def test_backdated_upgrade_adjustment_lines_show_the_units_changed() -> None:
    ledger = monthly_2025()
    ledger.run(date(2025, 4, 1))
    ledger.amend(date(2025, 2, 15), [spec("a", PRO, "3")])
    plan = ledger.run(date(2025, 4, 2))
    # Every adjustment pays for the 2 units added (200.00 a month), so each line shows 2.
    assert [c.quantity for c in plan.charges] == [D("2"), D("2"), D("2")]


def test_jpy_upgrade_rounds_half_up() -> None:
    price = per_unit("1000", JPY)
    subscription = subscribe(date(2025, 4, 1), Frequency.MONTHLY, [spec("a", price)], cur=JPY)
    ledger = Ledger(subscription)
    ledger.run(date(2025, 4, 1))
    ledger.amend(date(2025, 4, 16), [spec("a", price), spec("b", per_unit("1001", JPY))])
    plan = ledger.run(date(2025, 4, 16))
    # 1001 JPY × 15 / 30 = 500.5 -> 501 JPY (half up)
    assert amounts(plan.charges) == [("b", date(2025, 4, 1), D("501"))]
    assert not plan.charges[0].adjustment  # b was never billed for April before
    assert plan.charges[0].service == Period(date(2025, 4, 16), date(2025, 4, 30))
    assert plan.charges[0].description == "PRO plan × 1, prorated 2025-04-16..2025-04-30"


def test_upgrade_and_reverse_downgrade_billed_separately_net_to_zero() -> None:
    ledger = monthly_2025()
    ledger.run(date(2025, 4, 1))
    ledger.amend(date(2025, 4, 11), [spec("a", PRO, "2")])
    # Apr 11..30 = 20 of 30: 100.00 × 20 / 30 = 66.67
    assert amounts(ledger.run(date(2025, 4, 11)).charges) == [("a", date(2025, 4, 1), D("66.67"))]
    ledger.amend(date(2025, 4, 11), [spec("a", PRO, "1")])
    assert amounts(ledger.run(date(2025, 4, 12)).charges) == [("a", date(2025, 4, 1), D("-66.67"))]
    assert ledger.total == D("400.00")


def test_one_time_charge_rides_on_the_period_invoice() -> None:
    setup = flat("250.00", kind=ChargeKind.ONE_TIME, code="SETUP")
    subscription = subscribe(
        date(2025, 1, 1),
        Frequency.MONTHLY,
        [spec("a", PRO), ItemSpec("setup", setup, D(1), service_date=date(2025, 1, 10))],
    )
    ledger = Ledger(subscription)
    first = ledger.run(date(2025, 1, 5))
    assert amounts(first.charges) == [("a", date(2025, 1, 1), D("100.00"))]
    assert first.next_billing_date == date(2025, 1, 10)
    second = ledger.run(date(2025, 1, 10))
    assert amounts(second.charges) == [("setup", date(2025, 1, 10), D("250.00"))]
    assert second.charges[0].period == Period(date(2025, 1, 1), date(2025, 1, 31))
    assert second.charges[0].service == Period(date(2025, 1, 10), date(2025, 1, 10))
    assert second.charges[0].description == "SETUP plan × 1"
    assert second.next_billing_date == date(2025, 2, 1)
    assert ledger.run(date(2025, 2, 1)).charges[0].item.key == "a"
    assert ledger.total == D("450.00")


def test_one_time_charge_during_a_trial_gets_its_own_document() -> None:
    setup = flat("250.00", kind=ChargeKind.ONE_TIME, code="SETUP")
    subscription = subscribe(
        date(2025, 1, 1), Frequency.MONTHLY, [spec("a", PRO), spec("setup", setup)], trial_days=14
    )
    plan = Ledger(subscription).run(date(2025, 1, 1))
    assert amounts(plan.charges) == [("setup", date(2025, 1, 1), D("250.00"))]
    assert plan.charges[0].period == Period(date(2025, 1, 1), date(2025, 1, 1))
    assert plan.next_billing_date == date(2025, 1, 15)


def test_discount_applies_to_every_period() -> None:
    ledger = Ledger(
        subscribe(date(2025, 1, 1), Frequency.MONTHLY, [spec("a", per_unit("19.99"), "3", "10")])
    )
    plan = ledger.run(date(2025, 1, 1))
    # 59.97 - round(5.997) = 53.97
    assert amounts(plan.charges) == [("a", date(2025, 1, 1), D("53.97"))]
    assert plan.charges[0].description == "PRO plan × 3, 2025-01-01..2025-01-31 (discount 10%)"


def test_run_cycles_helper_reconciles_versions() -> None:
    base = subscribe(date(2025, 1, 1), Frequency.MONTHLY, [spec("a", PRO)])
    cancelled = base.with_terms(cancel_date=date(2025, 3, 1))
    ledger = run_cycles(
        [(base, None), (cancelled, date(2025, 3, 1))], [date(2025, 3, 10), date(2025, 3, 11)]
    )
    assert amounts(ledger.charges) == [
        ("a", date(2025, 1, 1), D("100.00")),
        ("a", date(2025, 2, 1), D("100.00")),
        ("a", date(2025, 3, 1), D("100.00")),
        ("a", date(2025, 3, 1), D("-100.00")),
    ]


def test_plan_billing_from_a_stored_state() -> None:
    subscription = subscribe(date(2025, 1, 1), Frequency.MONTHLY, [spec("a", PRO, "2")])
    subscription = subscription.with_terms(cancel_date=date(2025, 3, 17))
    # Storage says Jan..Mar were billed at 200.00 each; the cancellation came later.
    state = BillingState(
        billed_until=date(2025, 4, 1),
        billed_as_of=date(2025, 3, 1),
        reconcile_from=date(2025, 3, 17),
        billed={("a", date(2025, 3, 1)): D("200.00")},
    )
    plan = plan_billing(subscription, date(2025, 3, 20), state)
    # Mar 17..31 = 15 of 31 days: 200.00 × 15 / 31 = 96.774... -> 96.77
    assert amounts(plan.charges) == [("a", date(2025, 3, 1), D("-96.77"))]
    assert plan.billed_until == date(2025, 4, 1)
    assert plan.next_billing_date is None


def test_next_billing_date() -> None:
    subscription = subscribe(date(2025, 1, 1), Frequency.MONTHLY, [spec("a", PRO)])
    assert next_billing_date(subscription, None, None) == date(2025, 1, 1)
    assert next_billing_date(subscription, date(2025, 2, 1), date(2025, 1, 1)) == date(2025, 2, 1)
    ended = subscription.with_terms(cancel_date=date(2025, 2, 1))
    assert next_billing_date(ended, date(2025, 2, 1), date(2025, 1, 1)) is None
    assert next_billing_date(subscribe(date(2025, 1, 1), Frequency.MONTHLY, []), None, None) is None


def test_one_time_charge_changed_after_billing_is_reconciled() -> None:
    setup = per_unit("100.00", kind=ChargeKind.ONE_TIME, code="SETUP")
    day = date(2025, 1, 10)
    recurring = spec("a", PRO)
    ledger = Ledger(
        subscribe(
            date(2025, 1, 1),
            Frequency.MONTHLY,
            [recurring, ItemSpec("setup", setup, D(1), service_date=day)],
        )
    )
    ledger.run(date(2025, 1, 15))
    assert ledger.total == D("200.00")
    ledger.amend(day, [recurring, ItemSpec("setup", setup, D(3), service_date=day)])
    assert amounts(ledger.run(date(2025, 1, 16)).charges) == [("setup", day, D("200.00"))]
    ledger.amend(date(2025, 1, 5), [recurring])  # the setup is dropped altogether
    assert amounts(ledger.run(date(2025, 1, 17)).charges) == [("setup", day, D("-300.00"))]
    # The credit goes newest line first: 200.00 on the second invoice, 100.00 on the first.
    assert [(n.credited_invoice_id, n.total) for n in ledger.credit_notes] == [
        (1, D("100.00")),
        (4, D("200.00")),
    ]
    assert ledger.total == D("100.00")


def test_an_adjustment_pays_for_the_days_its_own_change_touches() -> None:
    # Seats 10 × 10.00 from Mar 1; an SMS item is added on Mar 18 and the subscription is
    # cancelled from Mar 23, all before the next run: the seats credit covers Mar 23–31 only.
    sms = per_unit("0.01", code="SMS")
    ledger = Ledger(
        subscribe(date(2026, 3, 1), Frequency.MONTHLY, [spec("seats", per_unit("10"), "10")])
    )
    ledger.run(date(2026, 3, 1))
    ledger.amend(date(2026, 3, 18), [spec("seats", per_unit("10"), "10"), spec("sms", sms, "1")])
    ledger.cancel(date(2026, 3, 23))

    plan = ledger.run(date(2026, 3, 24))

    # 100.00 × 9/31 days = 29.03 credited; SMS: 0.01 × 5/31 → 0.00, nothing billed.
    assert [(c.item.key, c.service.start, c.service.end, c.amount) for c in plan.charges] == [
        ("seats", date(2026, 3, 23), date(2026, 3, 31), D("-29.03"))
    ]
