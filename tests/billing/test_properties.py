"""Property tests: billing, reconciliation, revenue and metrics invariants."""

import calendar
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from connector.billing.metrics import compute_metrics
from connector.billing.money import Currency
from connector.billing.periods import Frequency, Period, add_months
from connector.billing.revenue import RevenueSchedule
from connector.billing.subscriptions import Subscription

from .helpers import BHD, JPY, USD, Ledger, flat, per_unit, spec, subscribe

D = Decimal
SETTINGS = settings(max_examples=80, deadline=None)
MONTH_BASED = [Frequency.MONTHLY, Frequency.QUARTERLY, Frequency.SEMI_ANNUAL, Frequency.ANNUAL]
CURRENCIES = [USD, JPY, BHD]


@st.composite
def start_dates(draw: st.DrawFn) -> date:
    """Dates from 2023 to 2026, often on the 28th..31st (clamped to the month's end)."""
    year = draw(st.integers(2023, 2026))
    month = draw(st.integers(1, 12))
    day = draw(st.one_of(st.sampled_from([28, 29, 30, 31]), st.integers(1, 31)))
    return date(year, month, min(day, calendar.monthrange(year, month)[1]))


def amounts_in(cur: Currency, low: int, high: int) -> st.SearchStrategy[Decimal]:
    """Amounts with exactly the currency's minor unit, ``low``..``high`` minor units."""
    return st.integers(low, high).map(lambda units: D(units).scaleb(-cur.exponent))


def spec_period_amount(gross: Decimal, percent: Decimal, cur: Currency) -> Decimal:
    """round(gross) - round(round(gross) × pct / 100), half up: the discount is a percentage
    of the subtotal as the invoice shows it."""
    quantum = D(1).scaleb(-cur.exponent)
    rounded = gross.quantize(quantum, rounding=ROUND_HALF_UP)
    return rounded - (rounded * percent / 100).quantize(quantum, rounding=ROUND_HALF_UP)


@SETTINGS
@given(
    data=st.data(),
    frequency=st.sampled_from(MONTH_BASED),
    periods=st.integers(1, 4),
    start=start_dates(),
    trial=st.integers(0, 45),
    cur=st.sampled_from(CURRENCIES),
    quantity=st.integers(1, 50),
    discount=st.decimals(0, 100, places=2),
)
def test_full_term_bills_the_contracted_value(
    *,
    data: st.DataObject,
    frequency: Frequency,
    periods: int,
    start: date,
    trial: int,
    cur: Currency,
    quantity: int,
    discount: Decimal,
) -> None:
    unit = data.draw(amounts_in(cur, 1, 500_000), label="unit")
    term_months = periods * frequency.months
    subscription = subscribe(
        start,
        frequency,
        [spec("a", per_unit(str(unit), cur), str(quantity), str(discount))],
        cur=cur,
        term_months=term_months,
        auto_renew=False,
        trial_days=trial,
    )
    term_end = add_months(start + timedelta(days=trial), term_months) - timedelta(days=1)
    horizon = (term_end - start).days + 40
    offsets = data.draw(st.lists(st.integers(0, horizon), max_size=6), label="runs")
    ledger = Ledger(subscription)
    for offset in sorted(offsets):
        ledger.run(start + timedelta(days=offset))
    final = ledger.run(term_end + timedelta(days=1))
    assert final.next_billing_date is None
    assert ledger.run(term_end + timedelta(days=400)).charges == ()

    period_amount = spec_period_amount(unit * quantity, discount, cur)
    assert ledger.total == periods * period_amount
    # One charge per period, each the full period amount (none when that rounds to zero).
    assert [c.amount for c in ledger.charges] == [period_amount] * periods * bool(period_amount)


@SETTINGS
@given(
    data=st.data(),
    frequency=st.sampled_from(list(Frequency)),
    start=start_dates(),
    trial=st.integers(0, 20),
    quantity=st.integers(1, 5),
    added=st.integers(1, 5),
    separate=st.booleans(),
    unit=st.decimals("0.01", "999.99", places=2),
)
def test_upgrade_and_reverse_downgrade_on_the_same_day_net_to_zero(
    *,
    data: st.DataObject,
    frequency: Frequency,
    start: date,
    trial: int,
    quantity: int,
    added: int,
    separate: bool,
    unit: Decimal,
) -> None:
    price = per_unit(str(unit))
    original = [spec("a", price, str(quantity)), spec("b", flat("9.99", code="ADDON"))]
    upgraded = [spec("a", price, str(quantity + added)), spec("b", flat("9.99", code="ADDON"))]
    subscription = subscribe(start, frequency, original, trial_days=trial)
    day = lambda offset: start + timedelta(days=offset)  # noqa: E731
    first, second, third = sorted(data.draw(st.lists(st.integers(0, 400), min_size=3, max_size=3)))
    effective = day(data.draw(st.integers(0, 400), label="effective"))

    changed, control = Ledger(subscription), Ledger(subscription)
    changed.run(day(first))
    control.run(day(first))
    changed.amend(effective, upgraded)
    if separate:
        changed.run(day(second))
        control.run(day(second))
    changed.amend(effective, original)
    changed.run(day(third))
    control.run(day(third))

    assert changed.subscription == subscription
    assert changed.total == control.total
    assert {k: v for k, v in changed.billed.items() if v} == {
        k: v for k, v in control.billed.items() if v
    }


PRICES = [per_unit("10.00"), per_unit("33.33"), flat("99.99"), per_unit("0.125")]
EVENTS = st.one_of(
    st.tuples(
        st.just("amend"),
        st.integers(0, 400),
        st.lists(
            st.tuples(
                st.sampled_from("abc"),
                st.integers(0, len(PRICES) - 1),
                st.integers(0, 5),
                st.sampled_from(["0", "10", "50"]),
            ),
            max_size=3,
            unique_by=lambda item: item[0],
        ),
    ),
    st.tuples(st.just("cancel"), st.integers(0, 400), st.none()),
    st.tuples(st.just("uncancel"), st.integers(0, 400), st.none()),
    st.tuples(st.just("run"), st.integers(0, 400), st.none()),
)


@SETTINGS
@given(
    frequency=st.sampled_from(list(Frequency)),
    start=start_dates(),
    trial=st.integers(0, 20),
    auto_renew=st.booleans(),
    term_months=st.integers(1, 13),
    events=st.lists(EVENTS, max_size=8),
)
def test_successive_runs_bill_what_one_run_of_the_final_contract_bills(
    *,
    frequency: Frequency,
    start: date,
    trial: int,
    auto_renew: bool,
    term_months: int,
    events: list[tuple[str, int, list | None]],
) -> None:
    """Whatever changes (backdated or not) came between the runs, the net billed per item and
    period ends up as if the final contract had been billed once."""
    subscription = subscribe(
        start,
        frequency,
        [spec("a", per_unit("10.00"), "3")],
        term_months=term_months,
        auto_renew=auto_renew,
        trial_days=trial,
    )
    ledger = Ledger(subscription)
    for kind, offset, items in events:
        day = start + timedelta(days=offset)
        if kind == "amend":
            ledger.amend(day, [spec(k, PRICES[p], str(q), d) for k, p, q, d in items or []])
        elif kind == "cancel":
            ledger.cancel(day)
        elif kind == "uncancel":
            ledger.cancel(None)
        else:
            ledger.run(day)
    final = start + timedelta(days=500)
    ledger.run(final)
    fresh = Ledger(ledger.subscription)
    fresh.run(final)
    assert {k: v for k, v in ledger.billed.items() if v} == {
        k: v for k, v in fresh.billed.items() if v
    }
    assert ledger.total == fresh.total


@settings(max_examples=100, deadline=None)
@given(
    cur=st.sampled_from(CURRENCIES),
    units=st.integers(-(10**9), 10**9),
    start=start_dates(),
    length=st.integers(0, 400),
)
def test_revenue_schedule_sums_to_its_line(
    cur: Currency, units: int, start: date, length: int
) -> None:
    amount = D(units).scaleb(-cur.exponent)
    end = start + timedelta(days=length)
    schedule = RevenueSchedule(amount, cur, Period(start, end))
    months = list(schedule.by_month())
    assert sum((a for _, a in months), D(0)) == amount
    assert all(a != 0 for _, a in months)
    assert [m for m, _ in months] == sorted({m for m, _ in months})
    assert schedule.recognized_through(end) == amount
    assert schedule.recognized_through(start - timedelta(days=1)) == 0
    previous = D(0)
    for offset in range(length + 1):
        day = start + timedelta(days=offset)
        recognized = schedule.recognized_through(day)
        assert recognized + schedule.deferred_after(day) == amount
        step = recognized - previous
        assert step == 0 or (step > 0) == (amount > 0)  # never the wrong sign
        assert step == step.quantize(cur.quantum)  # whole minor units
        previous = recognized


MONTHS_PER_PERIOD = {
    Frequency.WEEKLY: Fraction(52, 12),
    Frequency.BIWEEKLY: Fraction(26, 12),
    Frequency.MONTHLY: Fraction(1),
    Frequency.QUARTERLY: Fraction(1, 3),
    Frequency.SEMI_ANNUAL: Fraction(1, 6),
    Frequency.ANNUAL: Fraction(1, 12),
}


def round_half_up(value: Fraction) -> Decimal:
    return (D(value.numerator) / D(value.denominator)).quantize(D("0.01"), ROUND_HALF_UP)


SUBSCRIPTIONS = st.tuples(
    st.integers(1, 4),  # customer
    st.sampled_from(list(Frequency)),
    start_dates(),
    st.decimals("0.01", "2000.00", places=2),
    st.integers(0, 3),  # quantity
    st.integers(0, 30),  # trial days
    st.one_of(st.none(), st.integers(0, 700)),  # cancelled after so many days
    st.one_of(st.none(), st.tuples(st.integers(0, 700), st.integers(0, 4))),  # amendment
)


@SETTINGS
@given(
    books=st.lists(SUBSCRIPTIONS, max_size=8),
    as_of=start_dates(),
    window=st.integers(1, 400),
)
def test_mrr_movements_add_up(books: list[tuple], as_of: date, window: int) -> None:
    subscriptions: list[Subscription] = []
    exact: dict[date, Fraction] = {as_of: Fraction(0), as_of - timedelta(days=window): Fraction(0)}
    for customer, frequency, start, unit, quantity, trial, cancel, change in books:
        price = per_unit(str(unit))
        subscription = subscribe(
            start,
            frequency,
            [spec("a", price, str(quantity))],
            trial_days=trial,
            customer_id=customer,
        )
        if change is not None:
            subscription = subscription.with_items(
                start + timedelta(days=change[0]), [spec("a", price, str(change[1]))]
            )
        if cancel is not None:
            subscription = subscription.with_terms(cancel_date=start + timedelta(days=cancel))
        subscriptions.append(subscription)
        # The same figure, worked out here from the deal's own numbers: the period amount
        # (unit × quantity) as a month's worth while service runs, past the trial.
        for day in exact:
            billing = start + timedelta(days=trial)
            cancelled = cancel is not None and day >= start + timedelta(days=cancel)
            if day < billing or cancelled:
                continue
            units = quantity
            if change is not None and day >= start + timedelta(days=change[0]):
                units = change[1]
            exact[day] += Fraction(unit * units) * MONTHS_PER_PERIOD[frequency]
    since = as_of - timedelta(days=window)
    metrics = compute_metrics(subscriptions, USD, as_of, since)
    movements = metrics.movements
    # Summed exactly, rounded once: never a sum of rounded customers (nor 12 × a rounded MRR).
    assert metrics.mrr == round_half_up(exact[as_of])
    assert metrics.mrr_at_start == round_half_up(exact[since])
    assert metrics.arr == round_half_up(12 * exact[as_of])
    assert metrics.mrr - metrics.mrr_at_start == movements.net
    assert all(
        value >= 0
        for value in (
            movements.new,
            movements.expansion,
            movements.contraction,
            movements.churn,
            movements.reactivation,
        )
    )
    assert metrics.churned_customers <= metrics.customers_at_start
    assert metrics.active_customers <= len({b[0] for b in books})
