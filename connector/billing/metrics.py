"""Subscription metrics as of a date, per currency (amounts are never converted).

- MRR: recurring items normalized to a month (weekly × 52/12, quarterly ÷ 3, annual ÷ 12),
  discounts applied; trials, ended service and one-time charges excluded. Totals are summed
  exactly over customers and rounded once, per currency, to the minor unit; ARR is 12 × the
  exact MRR, rounded once (never 12 × a rounded MRR).
- ARR = MRR × 12; ARPU = MRR / active customers (customers with MRR above zero).
- Movements between two dates, per customer: new (first revenue ever), reactivation (revenue
  again after none), expansion, contraction, churn (to zero). MRR(end) − MRR(start) equals
  new + reactivation + expansion − contraction − churn: each movement is summed exactly and
  rounded once, and the units that rounding leaves over go to the movements with the largest
  remainders, so the identity holds to the minor unit.
- Logo churn = churned customers / customers active at the start; revenue churn =
  (churn + contraction) / MRR at the start; net revenue retention = (MRR at the start +
  expansion − contraction − churn) / MRR at the start; LTV = ARPU / monthly revenue churn (none
  when churn is 0).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from fractions import Fraction

from connector.billing.money import ZERO, Currency, round_money
from connector.billing.periods import add_months
from connector.billing.subscriptions import Subscription

RATE_QUANTUM = Decimal("0.0001")
AVERAGE_MONTH_DAYS = Decimal("30.436875")  # 365.2425 / 12


@dataclass(frozen=True, slots=True)
class MrrMovements:
    new: Decimal = ZERO
    expansion: Decimal = ZERO
    contraction: Decimal = ZERO
    churn: Decimal = ZERO
    reactivation: Decimal = ZERO

    @property
    def net(self) -> Decimal:
        return self.new + self.reactivation + self.expansion - self.contraction - self.churn


@dataclass(frozen=True, slots=True)
class Metrics:
    currency: Currency
    since: date
    as_of: date
    mrr: Decimal
    arr: Decimal
    active_customers: int
    arpu: Decimal | None
    mrr_at_start: Decimal
    customers_at_start: int
    movements: MrrMovements
    churned_customers: int
    logo_churn: Decimal | None
    revenue_churn: Decimal | None
    net_revenue_retention: Decimal | None
    ltv: Decimal | None


def to_money(value: Fraction, currency: Currency) -> Decimal:
    return round_money(Decimal(value.numerator) / Decimal(value.denominator), currency)


@dataclass(slots=True)
class CustomerRevenue:
    """One customer's MRR at the start and end of a window (full precision), and the first day
    it ever had recurring revenue. Built subscription by subscription, so any number of them can
    be folded in without holding them all."""

    at_start: Fraction = Fraction(0)
    at_end: Fraction = Fraction(0)
    first_revenue: date | None = None

    def add(self, subscription: Subscription, since: date, as_of: date) -> None:
        self.at_start += subscription.monthly_recurring_revenue(since)
        self.at_end += subscription.monthly_recurring_revenue(as_of)
        day = subscription.revenue_start()
        if day is not None and (self.first_revenue is None or day < self.first_revenue):
            self.first_revenue = day


def accumulate(
    revenues: dict[tuple[str, int | None], CustomerRevenue],
    subscriptions: Iterable[Subscription],
    since: date,
    as_of: date,
) -> None:
    """Fold subscriptions into per-(currency, customer) revenue."""
    for subscription in subscriptions:
        key = (subscription.currency.code, subscription.customer_id)
        revenues.setdefault(key, CustomerRevenue()).add(subscription, since, as_of)


# How each movement counts in MRR(end) − MRR(start), in the order of MrrMovements' fields.
_MOVEMENT_SIGNS = (1, 1, -1, -1, 1)


def _movements(
    exact: tuple[Fraction, ...], net: Decimal, currency: Currency
) -> tuple[Decimal, ...]:
    """Movements rounded to the minor unit so that their signed sum equals ``net`` (the
    difference of the rounded totals): each rounded down in its signed direction, then the
    units still missing go to the largest remainders (ties: the first)."""
    quantum = Fraction(currency.quantum)
    units = [
        Fraction(sign) * value / quantum for sign, value in zip(_MOVEMENT_SIGNS, exact, strict=True)
    ]
    floors = [math.floor(u) for u in units]
    missing = int(net / currency.quantum) - sum(floors)
    order = sorted(range(len(units)), key=lambda i: (-(units[i] - floors[i]), i))
    for i in order[: max(missing, 0)]:
        floors[i] += 1
    return tuple(
        round_money(Decimal(sign * part) * currency.quantum, currency)
        for sign, part in zip(_MOVEMENT_SIGNS, floors, strict=True)
    )


def _ratio(numerator: Decimal, denominator: Decimal) -> Decimal | None:
    if not denominator:
        return None
    return (numerator / denominator).quantize(RATE_QUANTUM)


def compute_metrics(
    subscriptions: Sequence[Subscription],
    currency: Currency,
    as_of: date,
    since: date | None = None,
) -> Metrics:
    """Metrics in one currency on ``as_of``, with movements since ``since`` (default: one month
    earlier). Subscriptions in other currencies are ignored."""
    since = since if since is not None else add_months(as_of, -1)
    revenues: dict[tuple[str, int | None], CustomerRevenue] = {}
    accumulate(revenues, (s for s in subscriptions if s.currency == currency), since, as_of)
    return metrics_from(
        [r for (code, _), r in revenues.items() if code == currency.code], currency, as_of, since
    )


def metrics_from(
    revenues: Iterable[CustomerRevenue], currency: Currency, as_of: date, since: date
) -> Metrics:
    """Metrics from per-customer revenue in one currency: sums exact, each figure rounded once."""
    new = expansion = contraction = churn = reactivation = Fraction(0)
    churned = customers_at_start = active = 0
    exact_mrr = exact_at_start = Fraction(0)
    for revenue in revenues:
        before, after = revenue.at_start, revenue.at_end
        exact_mrr += after
        exact_at_start += before
        customers_at_start += before > 0
        active += after > 0
        if not before and not after:
            continue
        if not before:
            if revenue.first_revenue is not None and revenue.first_revenue > since:
                new += after
            else:
                reactivation += after
        elif not after:
            churn += before
            churned += 1
        elif after > before:
            expansion += after - before
        else:
            contraction += before - after

    mrr = to_money(exact_mrr, currency)
    mrr_at_start = to_money(exact_at_start, currency)
    movements = _movements(
        (new, expansion, contraction, churn, reactivation), mrr - mrr_at_start, currency
    )
    _, expansion_m, contraction_m, churn_m, _ = movements
    arpu = to_money(exact_mrr / active, currency) if active else None
    revenue_churn = _ratio(churn_m + contraction_m, mrr_at_start)
    monthly_churn = None
    if revenue_churn is not None:
        months = (
            Decimal(1)
            if add_months(as_of, -1) == since
            else Decimal((as_of - since).days) / AVERAGE_MONTH_DAYS
        )
        monthly_churn = (churn_m + contraction_m) / mrr_at_start / months if months else None
    ltv = round_money(arpu / monthly_churn, currency) if arpu and monthly_churn else None
    return Metrics(
        currency=currency,
        since=since,
        as_of=as_of,
        mrr=mrr,
        arr=to_money(exact_mrr * 12, currency),
        active_customers=active,
        arpu=arpu,
        mrr_at_start=mrr_at_start,
        customers_at_start=customers_at_start,
        movements=MrrMovements(*movements),
        churned_customers=churned,
        logo_churn=_ratio(Decimal(churned), Decimal(customers_at_start)),
        revenue_churn=revenue_churn,
        net_revenue_retention=_ratio(
            mrr_at_start + expansion_m - contraction_m - churn_m, mrr_at_start
        ),
        ltv=ltv,
    )
