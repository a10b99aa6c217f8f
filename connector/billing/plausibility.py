"""Plausibility of input: dates and amounts a person should see before anything is billed.

A typo in a CRM (a close date of 1900-01-01, a quantity of 1e15) would otherwise bill a century
of invoices or an absurd amount in one run. Two limits, both settings, are checked on what a
record adds or changes:

- a date (a service start, a one-time item's service date) more than ``max_backdate_days``
  before the business date;
- one item's amount for one billing period (a one-time item: its amount), after its discount
  and before tax, above the ceiling of its currency (``max_amount``: a code, or ``default`` for
  every other currency).

A date before the books' open date is a third problem, and the one a person cannot wave
through: nothing is ever dated before the ledger opens. The others can be approved.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from connector.billing.money import round_money
from connector.billing.subscriptions import ItemSpec, ItemVersion

DEFAULT = "default"


@dataclass(frozen=True)
class Limits:
    max_backdate_days: int
    max_amount: Mapping[str, Decimal]  # currency code, or "default", -> ceiling
    open_date: date
    open_date_source: str = "the chart of accounts"  # where open_date is set, for messages

    def ceiling(self, code: str) -> Decimal | None:
        return ceiling_of(self.max_amount, code)


def ceiling_of(max_amount: Mapping[str, Decimal], code: str) -> Decimal | None:
    """``billing.max_amount`` for ``code``: its own ceiling, else the ``default`` one."""
    return max_amount.get(code, max_amount.get(DEFAULT))


@dataclass(frozen=True)
class Problem:
    text: str
    approvable: bool  # False: no approval may apply it (a date before the books open)


@dataclass(frozen=True)
class DatedItem:
    """A date a record asks for: what it is (``service start``) and the day."""

    what: str
    day: date


@dataclass(frozen=True)
class PricedItem:
    """One item a record asks for: how to name it, its terms, and whether it is billed once."""

    label: str
    spec: ItemSpec
    one_time: bool


def date_problems(dated: DatedItem, as_of: date, limits: Limits) -> list[Problem]:
    found = []
    if dated.day < limits.open_date:
        found.append(
            Problem(
                f"{dated.what} {dated.day} is before the books open on {limits.open_date} "
                f"(open_date in {limits.open_date_source})",
                approvable=False,
            )
        )
    back = (as_of - dated.day).days
    if back > limits.max_backdate_days:
        found.append(
            Problem(
                f"{dated.what} {dated.day} is {back:,} days before {as_of}, more than "
                f"billing.max_backdate_days ({limits.max_backdate_days})",
                approvable=True,
            )
        )
    return found


def period_amount(spec: ItemSpec) -> Decimal:
    """The item's amount for one billing period, discounted, rounded as an invoice rounds it."""
    return ItemVersion(date.min, spec.price, spec.quantity, spec.discount_percent).period_amount()


def amount_problem(item: PricedItem, frequency: str, limits: Limits) -> Problem | None:
    money = item.spec.price.currency
    ceiling = limits.ceiling(money.code)
    if ceiling is None:
        return None
    amount = period_amount(item.spec)
    if amount <= ceiling:
        return None
    per = "once" if item.one_time else f"a {frequency.replace('_', '-')} period"
    which = money.code if money.code in limits.max_amount else DEFAULT
    return Problem(
        f"{item.label} bills {amount:,} {money.code} {per}, more than billing.max_amount "
        f"({which}: {round_money(ceiling, money):,})",
        approvable=True,
    )


def problems(
    dates: Sequence[DatedItem],
    items: Sequence[PricedItem],
    *,
    frequency: str,
    as_of: date,
    limits: Limits,
) -> list[Problem]:
    """What is implausible in these dates and items, in that order; empty when nothing is."""
    found = [problem for dated in dates for problem in date_problems(dated, as_of, limits)]
    for item in items:
        problem = amount_problem(item, frequency, limits)
        if problem is not None:
            found.append(problem)
    return found


def reason(found: Sequence[Problem], *, approve: str, fix: str) -> str:
    """The one-line reason a record is held: every problem, then what a person can do
    (``approve``: how to approve it; ``fix``: where to correct it)."""
    what = "; ".join(problem.text for problem in found)
    if all(problem.approvable for problem in found):
        return f"held for review: {what}; {approve}, or {fix}"
    return f"held: {what}; {fix} (nothing may be dated before the books open)"
