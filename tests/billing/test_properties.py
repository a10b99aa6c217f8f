"""Property tests: billing, reconciliation, revenue and metrics invariants."""

import calendar
import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from connector.billing.metrics import compute_metrics
from connector.billing.money import Currency
from connector.billing.periods import Frequency, Period, add_months
from connector.billing.pricing import ChargeKind
from connector.billing.revenue import RevenueSchedule
from connector.billing.subscriptions import ItemSpec, Subscription

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
    assert frequency.months is not None
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


PERIODS_PER_YEAR = {
    Frequency.WEEKLY: 52,
    Frequency.BIWEEKLY: 26,
    Frequency.MONTHLY: 12,
    Frequency.QUARTERLY: 4,
    Frequency.SEMI_ANNUAL: 2,
    Frequency.ANNUAL: 1,
}
MOVEMENTS = ("new", "expansion", "contraction", "churn", "reactivation")


def half_up(value: Fraction, cur: Currency) -> Decimal:
    """``value`` rounded to the currency's minor unit, half away from zero, in exact arithmetic."""
    units = value * 10**cur.exponent
    whole = math.floor(abs(units) + Fraction(1, 2))
    return D(whole if units >= 0 else -whole).scaleb(-cur.exponent)


def months_later(day: date, months: int) -> date:
    """The same day of the month ``months`` later, or that month's last day."""
    year, month = divmod(day.year * 12 + day.month - 1 + months, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


@dataclass(frozen=True)
class Deal:
    """A subscription as sales sold it: seats at a unit price with a discount, maybe a flat
    add-on and a one-time setup fee, maybe a change of seats and a cancellation."""

    customer: int
    cur: Currency
    frequency: Frequency
    start: date
    trial: int
    renews: bool
    term_months: int
    unit: int  # minor units per seat
    seats: int
    discount: Decimal
    addon: int  # minor units per period (0: no add-on)
    setup: bool
    change: tuple[int, int] | None  # (days after the start, seats from then on)
    cancel: int | None  # the first day without service, in days after the start

    def money(self, units: int) -> str:
        return str(D(units).scaleb(-self.cur.exponent))

    def specs(self, seats: int) -> list[ItemSpec]:
        specs = [
            spec("seats", per_unit(self.money(self.unit), self.cur), str(seats), str(self.discount))
        ]
        if self.addon:
            specs.append(spec("addon", flat(self.money(self.addon), self.cur, code="ADDON")))
        if self.setup:
            fee = per_unit("250", self.cur, code="SETUP", kind=ChargeKind.ONE_TIME)
            specs.append(spec("setup", fee))
        return specs

    def subscription(self) -> Subscription:
        subscription = subscribe(
            self.start,
            self.frequency,
            self.specs(self.seats),
            cur=self.cur,
            term_months=self.term_months,
            auto_renew=self.renews,
            trial_days=self.trial,
            customer_id=self.customer,
        )
        if self.change is not None:
            effective = self.start + timedelta(days=self.change[0])
            subscription = subscription.with_items(effective, self.specs(self.change[1]))
        if self.cancel is not None:
            subscription = subscription.with_terms(
                cancel_date=self.start + timedelta(days=self.cancel)
            )
        return subscription

    @property
    def billing_start(self) -> date:
        return self.start + timedelta(days=self.trial)

    def mrr(self, day: date) -> Fraction:
        """Monthly value on ``day``: the period amount (seats at the unit price less the
        discount, a percentage of that subtotal rounded to the minor unit, plus the add-on)
        times periods per year over 12, while service runs past the trial."""
        if day < self.billing_start:
            return Fraction(0)
        if self.cancel is not None and day >= self.start + timedelta(days=self.cancel):
            return Fraction(0)
        if not self.renews and day >= months_later(self.billing_start, self.term_months):
            return Fraction(0)
        seats = self.seats
        if self.change is not None and day >= self.start + timedelta(days=self.change[0]):
            seats = self.change[1]
        minor = Fraction(1, 10**self.cur.exponent)
        gross = self.unit * seats * minor
        discount = Fraction(half_up(gross * Fraction(self.discount) / 100, self.cur))
        period_amount = gross - discount + self.addon * minor
        return period_amount * PERIODS_PER_YEAR[self.frequency] / 12

    def first_revenue(self) -> date | None:
        """The first day with a monthly value: the value only starts on the first billed day
        or on the change of seats."""
        days = [self.billing_start]
        if self.change is not None:
            days.append(max(self.billing_start, self.start + timedelta(days=self.change[0])))
        return min((day for day in days if self.mrr(day) > 0), default=None)


@st.composite
def deals(draw: st.DrawFn) -> Deal:
    cur = draw(st.sampled_from(CURRENCIES))
    top = 500 * 10**cur.exponent  # up to 500 whole units
    return Deal(
        customer=draw(st.integers(1, 4), label="customer"),
        cur=cur,
        frequency=draw(st.sampled_from(list(Frequency))),
        start=draw(start_dates()),
        trial=draw(st.sampled_from([0, 0, 14, 30])),
        renews=draw(st.booleans()),
        term_months=draw(st.integers(1, 24)),
        unit=draw(st.integers(1, top), label="unit"),
        seats=draw(st.integers(0, 7), label="seats"),
        discount=D(draw(st.sampled_from(["0", "0", "10", "12.5", "33.33"]))),
        addon=draw(st.one_of(st.just(0), st.integers(1, top)), label="addon"),
        setup=draw(st.booleans()),
        change=draw(st.none() | st.tuples(st.integers(0, 700), st.integers(0, 7))),
        cancel=draw(st.none() | st.integers(0, 700)),
    )


@settings(max_examples=150, deadline=None)
@given(books=st.lists(deals(), max_size=10), as_of=start_dates(), window=st.integers(1, 400))
def test_mrr_is_the_exact_monthly_value_of_active_deals_rounded_once(
    books: list[Deal], as_of: date, window: int
) -> None:
    """MRR, ARR, ARPU and movements per currency against the deals' own numbers: each deal's
    monthly value summed exactly per currency over every customer, rounded once half up to
    the minor unit (ARR: 12 × the exact sum, rounded once)."""
    since = as_of - timedelta(days=window)
    subscriptions = [deal.subscription() for deal in books]  # all currencies, every time
    for cur in CURRENCIES:
        at_start: dict[int, Fraction] = defaultdict(Fraction)
        at_end: dict[int, Fraction] = defaultdict(Fraction)
        first: dict[int, date] = {}
        for deal in books:
            if deal.cur != cur:
                continue
            at_start[deal.customer] += deal.mrr(since)
            at_end[deal.customer] += deal.mrr(as_of)
            day = deal.first_revenue()
            if day is not None:
                first[deal.customer] = min(day, first.get(deal.customer, day))
        exact: dict[str, Fraction] = dict.fromkeys(MOVEMENTS, Fraction(0))
        churned = 0
        for customer, before in at_start.items():
            after = at_end[customer]
            if not before and after:
                exact["new" if first[customer] > since else "reactivation"] += after
            elif before and not after:
                exact["churn"] += before
                churned += 1
            elif after > before:
                exact["expansion"] += after - before
            else:
                exact["contraction"] += before - after
        mrr = sum(at_end.values(), Fraction(0))
        active = sum(1 for value in at_end.values() if value)

        metrics = compute_metrics(subscriptions, cur, as_of, since)

        assert metrics.mrr == half_up(mrr, cur)
        assert metrics.arr == half_up(12 * mrr, cur)
        assert metrics.mrr_at_start == half_up(sum(at_start.values(), Fraction(0)), cur)
        assert metrics.active_customers == active
        assert metrics.customers_at_start == sum(1 for value in at_start.values() if value)
        assert metrics.arpu == (half_up(mrr / active, cur) if active else None)
        assert metrics.churned_customers == churned
        # Each movement summed exactly and rounded so that they add up to the change of the
        # rounded MRR: every one within less than a minor unit of its exact value.
        assert metrics.movements.net == metrics.mrr - metrics.mrr_at_start
        for name in MOVEMENTS:
            assert abs(Fraction(getattr(metrics.movements, name)) - exact[name]) < Fraction(
                cur.quantum
            ), name
