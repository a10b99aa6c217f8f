"""Properties of the billing run on real storage, over random histories.

Random plans (every frequency, month-end starts, trials, terms that end or renew, seats at a
unit price with a discount, a flat add-on under a reduced tax code) in five currencies (JPY
without minor units, BHD with three), for customers in countries taxed at random rates, are
billed by the real run on a real database while upgrades, downgrades and cancellations are
entered between runs, backdated or not. The documents are then read back from the database:

- what each subscription was invoiced less what it was credited, before tax, per item and
  period, is the value of the service delivered in that period, worked out here day by day in
  exact arithmetic: billing is in advance, so every period started by the last run counts, as
  far as service runs in it. Each proration (a change of amount, or the end of service, inside
  the period) is rounded on its own, so the two differ by at most half a minor unit per such
  event; a period served in full without a change is billed exactly;
- an upgrade reversed on the same day nets to nothing: line by line as an unchanged twin, and,
  when no run billed it in between, with no document drafted for it at all;
- an invoice's tax is, per rate, its taxable amount (the sum of its lines at that rate) times
  the rate, rounded once half up to the minor unit; a credit note's tax is what makes the tax
  credited so far against its invoice, per rate, equal to the credited taxable so far times the
  rate, rounded once (so a fully credited invoice has all of its tax back, never more); every
  document's total is its subtotal plus its tax;
- a credit note corrects lines of the invoice it names, for the same item and period, at their
  rate, and never takes back more than a line, or the invoice, holds.
"""

from __future__ import annotations

import calendar
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from connector.billing.periods import Frequency
from connector.billing.pricing import PricingModel
from connector.billing.subscriptions import ItemSpec
from connector.db import tables
from connector.db.engine import session_factory, transaction
from connector.settings import Settings, load_settings
from connector.sync import contracts
from connector.sync.billing_run import run_billing
from tests import builders

D = Decimal
ONE_DAY = timedelta(days=1)
BASE = date(2026, 1, 1)
EXPONENTS = {"USD": 2, "EUR": 2, "GBP": 2, "JPY": 0, "BHD": 3}
TAXED = ("GB", "DE", "JP", "FR")  # the United States has no rate: taxed at 0
MONTHS = {
    Frequency.MONTHLY: 1,
    Frequency.QUARTERLY: 3,
    Frequency.SEMI_ANNUAL: 6,
    Frequency.ANNUAL: 12,
}
WEEKS = {Frequency.WEEKLY: 1, Frequency.BIWEEKLY: 2}
PROPERTIES = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


# --- exact arithmetic, independent of the billing core -------------------------------------


def half_up(value: Fraction, exponent: int) -> Decimal:
    """``value`` rounded half away from zero to ``exponent`` decimals."""
    units = value * 10**exponent
    whole = math.floor(abs(units) + Fraction(1, 2))
    return D(whole if units >= 0 else -whole).scaleb(-exponent)


def months_later(day: date, months: int) -> date:
    """The same day of the month ``months`` later, or that month's last day."""
    year, month = divmod(day.year * 12 + day.month - 1 + months, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def percent(amount: Fraction, rate: Decimal) -> Fraction:
    return amount * Fraction(rate) / 100


# --- what is sold ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    country: str
    currency: str
    frequency: Frequency
    start: date
    trial: int
    renews: bool
    term_months: int
    unit: int  # minor units per seat
    seats: int
    discount: Decimal
    addon: int  # minor units per period, taxed under the reduced code (0: no add-on)

    @property
    def exponent(self) -> int:
        return EXPONENTS[self.currency]

    def money(self, units: int) -> str:
        return str(D(units).scaleb(-self.exponent))

    @property
    def billing_start(self) -> date:
        return self.start + timedelta(days=self.trial)

    def period_start(self, index: int) -> date:
        """Periods are anchored on the first billed day, each month-based one counted from
        there (a Jan 31 anchor gives Feb 28, Mar 31)."""
        if self.frequency in MONTHS:
            return months_later(self.billing_start, index * MONTHS[self.frequency])
        return self.billing_start + timedelta(weeks=index * WEEKS[self.frequency])

    def term_end(self) -> date | None:
        """The last day of the only term, when it does not renew."""
        return None if self.renews else months_later(self.billing_start, self.term_months) - ONE_DAY

    def seats_amount(self, seats: int) -> Fraction:
        """A period's seats: the unit price times the seats, less the discount (a percentage
        of that subtotal, rounded to the minor unit)."""
        minor = Fraction(1, 10**self.exponent)
        gross = self.unit * seats * minor
        return gross - Fraction(half_up(percent(gross, self.discount), self.exponent))


@dataclass
class History:
    """What the test itself knows of a subscription: its plan, the seats in effect from each
    date (as the amendments left them), and its cancellation date."""

    plan: Plan
    seats: list[tuple[date, int]]
    ref: int  # items are keyed ``seats-<ref>``, ``addon-<ref>``
    cancel: date | None = None
    id: int = 0  # the subscription's id in storage

    def amend(self, effective: date, seats: int) -> None:
        self.seats = [(day, n) for day, n in self.seats if day < effective] + [(effective, seats)]

    def service_end(self) -> date | None:
        ends = [day for day in (self.plan.term_end(),) if day is not None]
        if self.cancel is not None:
            ends.append(self.cancel - ONE_DAY)
        return min(ends, default=None)

    def amount(self, item: str, day: date) -> Fraction:
        """A full period's amount of ``item`` as in effect on ``day``."""
        if item == "addon":
            return Fraction(self.plan.addon, 10**self.plan.exponent)
        seats = [n for start, n in self.seats if start <= day][-1]
        return self.plan.seats_amount(seats)

    def items(self) -> list[str]:
        return ["seats", "addon"] if self.plan.addon else ["seats"]

    def expected(self, last_run: date) -> dict[tuple[str, date], tuple[Fraction, int]]:
        """Per (item, period start) of every period started by ``last_run``: the exact value
        of the days served in it, and how many prorations it holds (changes of amount, and
        the end of service, inside the period)."""
        plan, end = self.plan, self.service_end()
        result: dict[tuple[str, date], tuple[Fraction, int]] = {}
        index = 0
        while (start := plan.period_start(index)) <= last_run:
            following = plan.period_start(index + 1)
            days = (following - start).days
            for item in self.items():
                value, events, before = Fraction(0), 0, None
                day = start
                while day < following and (end is None or day <= end):
                    amount = self.amount(item, day)
                    value += amount / days
                    events += before is not None and amount != before
                    before, day = amount, day + ONE_DAY
                if day < following and before:  # service ends inside the period
                    events += 1
                result[(f"{item}-{self.ref}", start)] = (value, events)
            index += 1
        return result


def add_days(day: date, days: int, earliest: date) -> date:
    return max(day + timedelta(days=days), earliest)


# --- strategies -----------------------------------------------------------------------------

RATES = st.one_of(
    st.sampled_from(["0", "5", "7.5", "10", "19", "20", "21", "25"]).map(D),
    st.integers(1, 27_000).map(lambda n: D(n).scaleb(-3)),  # 0.001% .. 27.000%
)


@st.composite
def start_dates(draw: st.DrawFn) -> date:
    """From January to April 2026, often on the 28th..31st (clamped to the month's end)."""
    month = draw(st.integers(1, 4))
    day = draw(st.one_of(st.sampled_from([28, 29, 30, 31]), st.integers(1, 31)))
    return date(2026, month, min(day, calendar.monthrange(2026, month)[1]))


@st.composite
def plans(draw: st.DrawFn) -> Plan:
    currency = draw(st.sampled_from(sorted(EXPONENTS)))
    top = 400 * 10 ** EXPONENTS[currency]  # up to 400 whole units
    return Plan(
        country=draw(st.sampled_from([*TAXED, "US"])),
        currency=currency,
        frequency=draw(st.sampled_from(list(Frequency))),
        start=draw(start_dates()),
        trial=draw(st.sampled_from([0, 0, 0, 10])),
        renews=draw(st.booleans()),
        term_months=draw(st.integers(1, 12)),
        unit=draw(st.integers(1, top), label="unit"),
        seats=draw(st.integers(1, 20), label="seats"),
        discount=D(draw(st.sampled_from(["0", "0", "10", "12.5", "33.33"]))),
        addon=draw(st.one_of(st.just(0), st.integers(1, top)), label="addon"),
    )


@dataclass(frozen=True)
class TaxRates:
    standard: dict[str, Decimal]
    reduced: dict[str, Decimal]

    def settings(self, database_url: str) -> Settings:
        return load_settings(
            database_url=database_url,
            tax={"rates": self.standard, "code_rates": {"reduced": self.reduced}},
        )

    def rate(self, country: str, item: str) -> Decimal:
        table = self.reduced if item.startswith("addon") else self.standard
        return table.get(country, D(0))


TAX_RATES = st.builds(
    TaxRates,
    standard=st.fixed_dictionaries({country: RATES for country in TAXED}),
    reduced=st.fixed_dictionaries({country: RATES for country in TAXED}),
)


@dataclass(frozen=True)
class Change:
    after_run: int  # entered after this run
    plan: int
    days: int  # effective so many days from the day it is entered (never before the start)
    seats: int | None  # the new number of seats; None: a cancellation from that day


CHANGES = st.builds(
    Change,
    after_run=st.integers(0, 4),
    plan=st.integers(0, 2),
    days=st.integers(-90, 60),
    seats=st.one_of(st.none(), st.integers(0, 25)),
)


# --- storage --------------------------------------------------------------------------------


def empty_database(engine: Engine) -> None:
    """Every table emptied: each example starts afresh on the migrated schema (a DELETE per
    table is much quicker than PostgreSQL's TRUNCATE on tables this small)."""
    with engine.begin() as connection:
        for table in reversed(tables.Base.metadata.sorted_tables):
            connection.execute(table.delete())


def create(factory: sessionmaker[Session], history: History) -> None:
    plan, ref = history.plan, history.ref
    with transaction(factory) as session:
        buyer = builders.customer(session, f"C{ref}", country=plan.country, currency=plan.currency)
        history.id = builders.subscription(
            session,
            buyer,
            specs(session, plan, plan.seats, ref),
            start=plan.start,
            frequency=plan.frequency,
            term_months=plan.term_months,
            auto_renew=plan.renews,
            trial_days=plan.trial,
        ).id


def specs(session: Session, plan: Plan, seats: int, ref: int) -> list[ItemSpec]:
    """The item set: ``seats`` (key ``seats-<ref>``) and the add-on (``addon-<ref>``)."""
    price = builders.price(
        session, f"seats-{ref}", currency=plan.currency, unit_amount=plan.money(plan.unit)
    )
    items = [builders.spec(session, price, seats, str(plan.discount), key=f"seats-{ref}")]
    if plan.addon:
        addon = builders.price(
            session,
            f"addon-{ref}",
            currency=plan.currency,
            unit_amount=None,
            model=PricingModel.FLAT,
            flat_amount=plan.money(plan.addon),
            tax_code="reduced",
        )
        items.append(builders.spec(session, addon, 1, key=f"addon-{ref}"))
    return items


def enter(
    factory: sessionmaker[Session], history: History, effective: date, seats: int | None
) -> None:
    """A new number of seats from ``effective``, or (``seats`` None) a cancellation from it."""
    with transaction(factory) as session:
        if seats is None:
            contracts.cancel_subscription(session, history.id, cancel_date=effective)
            history.cancel = effective
        else:
            contracts.amend_subscription(
                session,
                history.id,
                effective=effective,
                items=specs(session, history.plan, seats, history.ref),
            )
            history.amend(effective, seats)


def bill(factory: sessionmaker[Session], settings: Settings, day: date) -> None:
    result = run_billing(factory, settings, day)
    assert result.failed == {}


@dataclass
class Line:
    id: int
    key: tuple[str, date]  # (item key, period start)
    amount: Decimal
    rate: Decimal
    credited_line_id: int | None
    credited_amount: Decimal


@dataclass
class Document:
    id: int
    kind: str
    subscription_id: int | None  # the billing run's documents all have one
    invoice_id: int | None
    currency: str
    subtotal: Decimal
    tax_total: Decimal
    total: Decimal
    period_start: date
    lines: list[Line] = field(default_factory=list)
    taxes: dict[Decimal, tuple[Decimal, Decimal]] = field(
        default_factory=dict
    )  # rate: taxable, tax
    jurisdictions: set[tuple[str, bool]] = field(default_factory=set)


def read_documents(factory: sessionmaker[Session]) -> list[Document]:
    """Every document with its lines (keyed by item and period) and taxes, in id order."""
    doc, line, tax = tables.Document, tables.DocumentLine, tables.DocumentTax
    charge, item = tables.Charge, tables.SubscriptionItem
    with factory() as session:
        documents = {
            row.id: Document(
                row.id,
                row.kind,
                row.subscription_id,
                row.invoice_id,
                row.currency,
                row.subtotal,
                row.tax_total,
                row.total,
                row.period_start,
            )
            for row in session.scalars(select(doc).order_by(doc.id))
        }
        rows = session.execute(
            select(
                line.document_id,
                line.id,
                item.item_key,
                charge.period_start,
                line.amount,
                line.tax_rate,
                line.credited_line_id,
                line.credited_amount,
            )
            .join(charge, charge.id == line.charge_id)
            .join(item, item.id == charge.subscription_item_id)
            .order_by(line.id)
        ).all()
        assert len(rows) == session.scalar(select(func.count()).select_from(line))
        for row in rows:
            documents[row.document_id].lines.append(
                Line(
                    row.id,
                    (row.item_key, row.period_start),
                    row.amount,
                    row.tax_rate,
                    row.credited_line_id,
                    row.credited_amount,
                )
            )
        for taxed in session.scalars(select(tax)):
            document = documents[taxed.document_id]
            document.taxes[taxed.rate] = (taxed.taxable, taxed.tax)
            document.jurisdictions.add((taxed.jurisdiction, taxed.reverse_charge))
    return list(documents.values())


def net_by_key(
    documents: Iterable[Document], subscription_id: int
) -> dict[tuple[str, date], Decimal]:
    """Invoiced less credited, before tax, per (item, period start) of one subscription."""
    net: dict[tuple[str, date], Decimal] = defaultdict(Decimal)
    for document in documents:
        if document.subscription_id == subscription_id:
            sign = 1 if document.kind == "invoice" else -1
            for line in document.lines:
                net[line.key] += sign * line.amount
    return dict(net)


# --- the checks -----------------------------------------------------------------------------


def check_documents(documents: list[Document], histories: list[History], rates: TaxRates) -> None:
    """Tax, totals and credit limits of every document (see the module's docstring)."""
    plans = {history.id: history.plan for history in histories}
    lines = {line.id: (document, line) for document in documents for line in document.lines}
    credited: dict[int, Decimal] = defaultdict(Decimal)  # invoice line id: credited so far
    # (invoice id, rate): (taxable, tax) credited so far
    taken: dict[tuple[int, Decimal], tuple[Decimal, Decimal]] = defaultdict(lambda: (D(0), D(0)))
    credit_totals: dict[int, Decimal] = defaultdict(Decimal)
    for document in documents:  # in id order: the order they were issued in
        assert document.subscription_id is not None
        plan = plans[document.subscription_id]
        quantum = D(1).scaleb(-plan.exponent)
        taxable: dict[Decimal, Decimal] = defaultdict(Decimal)
        for line in document.lines:
            assert line.amount > 0
            assert line.amount == line.amount.quantize(quantum)
            taxable[line.rate] += line.amount
        assert document.currency == plan.currency
        assert document.subtotal == sum(line.amount for line in document.lines)
        assert {rate: base for rate, (base, _) in document.taxes.items()} == taxable
        assert document.tax_total == sum(tax for _, tax in document.taxes.values())
        assert document.total == document.subtotal + document.tax_total
        assert document.jurisdictions == {(plan.country, False)}
        if document.kind == "invoice":
            assert document.invoice_id is None
            for line in document.lines:
                assert line.rate == rates.rate(plan.country, line.key[0])
                assert line.credited_line_id is None
            for rate, (base, tax) in document.taxes.items():
                assert tax == half_up(percent(Fraction(base), rate), plan.exponent)
            continue
        assert document.kind == "credit_note"
        assert document.invoice_id is not None
        for line in document.lines:
            assert line.credited_line_id is not None
            invoice, target = lines[line.credited_line_id]
            assert invoice.id == document.invoice_id
            assert invoice.subscription_id == document.subscription_id
            assert (target.key, target.rate) == (line.key, line.rate)
            credited[target.id] += line.amount
            assert credited[target.id] <= target.amount  # never more than the line holds
        for rate, (base, tax) in document.taxes.items():
            so_far_base, so_far_tax = taken[(document.invoice_id, rate)]
            so_far_base, so_far_tax = so_far_base + base, so_far_tax + tax
            assert so_far_tax == half_up(percent(Fraction(so_far_base), rate), plan.exponent)
            taken[(document.invoice_id, rate)] = (so_far_base, so_far_tax)
        credit_totals[document.invoice_id] += document.total
    for document in documents:
        if document.kind != "invoice":
            continue
        for line in document.lines:
            assert line.credited_amount == credited[line.id]
        for rate, (base, tax) in document.taxes.items():
            credited_base, credited_tax = taken[(document.id, rate)]
            assert credited_base <= base
            assert credited_tax <= tax
            if credited_base == base:
                assert credited_tax == tax  # fully credited: all of its tax, never more
        assert credit_totals[document.id] <= document.total


def check_value(documents: list[Document], history: History, last_run: date) -> None:
    """Invoiced less credited per item and period against the value of the days served."""
    expected = history.expected(last_run)
    net = net_by_key(documents, history.id)
    assert set(net) <= set(expected), sorted(set(net) - set(expected))
    for key, (value, events) in expected.items():
        billed = Fraction(net.get(key, D(0)))
        slack = Fraction(events, 2 * 10**history.plan.exponent)  # half a minor unit each
        assert abs(billed - value) <= slack, (key, billed, value, events)


# --- the properties -------------------------------------------------------------------------


def run_offsets() -> st.SearchStrategy[list[int]]:
    """Days after January 1 of up to five runs (kept in order, as document dates must be)."""
    return st.lists(st.integers(0, 300), min_size=1, max_size=5).map(sorted)


@PROPERTIES
@given(
    rates=TAX_RATES,
    plan_list=st.lists(plans(), min_size=1, max_size=3),
    runs=run_offsets(),
    changes=st.lists(CHANGES, max_size=6),
    settle=st.integers(0, 60),
)
def test_billed_value_tax_and_credits_over_random_histories(
    engine: Engine,
    database_url: str,
    *,
    rates: TaxRates,
    plan_list: list[Plan],
    runs: list[int],
    changes: list[Change],
    settle: int,
) -> None:
    """Up to three subscriptions, changed between up to five runs, then settled by a last run
    on or after the last of them."""
    empty_database(engine)
    factory = session_factory(engine)
    settings = rates.settings(database_url)
    histories = [
        History(plan, [(plan.start, plan.seats)], ref) for ref, plan in enumerate(plan_list)
    ]
    for history in histories:
        create(factory, history)
    days = [BASE + timedelta(days=offset) for offset in runs]
    for index, day in enumerate(days):
        bill(factory, settings, day)
        for change in changes:
            if change.after_run == index and change.plan < len(histories):
                history = histories[change.plan]
                effective = add_days(day, change.days, history.plan.start)
                enter(factory, history, effective, change.seats)
    last_run = days[-1] + timedelta(days=settle)  # settles the changes entered after the last
    bill(factory, settings, last_run)

    documents = read_documents(factory)
    check_documents(documents, histories, rates)
    for history in histories:
        check_value(documents, history, last_run)


@PROPERTIES
@given(
    rates=TAX_RATES,
    plan=plans(),
    runs=run_offsets(),
    effective=st.integers(0, 300),
    added=st.integers(1, 5),
    upgrade_after=st.integers(0, 4),
    reverse_later=st.integers(0, 4),
)
def test_an_upgrade_reversed_on_the_same_day_nets_to_nothing(
    engine: Engine,
    database_url: str,
    *,
    rates: TaxRates,
    plan: Plan,
    runs: list[int],
    effective: int,
    added: int,
    upgrade_after: int,
    reverse_later: int,
) -> None:
    """One subscription is upgraded from a day and reversed to its plan from that same day;
    its twin (same plan, same country) is left alone. Both are billed by the same runs."""
    empty_database(engine)
    factory = session_factory(engine)
    settings = rates.settings(database_url)
    changed = History(plan, [(plan.start, plan.seats)], ref=0)
    twin = History(plan, [(plan.start, plan.seats)], ref=1)
    create(factory, changed)
    create(factory, twin)
    days = [BASE + timedelta(days=offset) for offset in runs]
    upgrade_after = min(upgrade_after, len(days) - 1)
    reverse_after = min(upgrade_after + reverse_later, len(days) - 1)
    day_changed = plan.start + timedelta(days=effective)
    for index, day in enumerate(days):
        bill(factory, settings, day)
        if index == upgrade_after:
            enter(factory, changed, day_changed, plan.seats + added)
        if index == reverse_after:
            enter(factory, changed, day_changed, plan.seats)
    last_run = days[-1] + timedelta(days=30)
    bill(factory, settings, last_run)

    documents = read_documents(factory)
    check_documents(documents, [changed, twin], rates)
    as_changed = {f"{item}-1": f"{item}-0" for item in ("seats", "addon")}
    assert {key: net for key, net in net_by_key(documents, changed.id).items() if net} == {
        (as_changed[item], start): net
        for (item, start), net in net_by_key(documents, twin.id).items()
        if net
    }
    if reverse_after == upgrade_after:  # no run billed the upgrade: nothing drafted for it

        def shown(subscription_id: int) -> list[tuple[object, ...]]:
            return [
                (d.kind, d.period_start, d.subtotal, d.taxes, d.total)
                for d in documents
                if d.subscription_id == subscription_id
            ]

        assert shown(changed.id) == shown(twin.id)
    for history in (changed, twin):
        check_value(documents, history, last_run)
