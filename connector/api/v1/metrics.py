"""``/v1/metrics/mrr``: MRR, ARR, ARPU, movements, churn and retention per currency and month
(as `connector report mrr` gives them for one day)."""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Query, Request

from connector.api.auth import ReadKey, instance_of
from connector.api.problems import ApiProblem
from connector.api.v1.schemas import PROBLEMS, DecimalText, Model, Money, money, money_or_none
from connector.billing.metrics import Metrics
from connector.billing.periods import add_months
from connector.db.engine import reading
from connector.db.types import utc_now
from connector.sync.reports import windows_metrics

router = APIRouter(tags=["metrics"], responses=PROBLEMS)

MAX_MONTHS = 120
MONTH = re.compile(r"^([0-9]{4})-(0[1-9]|1[0-2])$")


class Movements(Model):
    new: Money
    expansion: Money
    contraction: Money
    churn: Money
    reactivation: Money
    net: Money


class MrrMonth(Model):
    """One currency in one month: MRR at the month's end (or today, in the current month) and
    the movements since the end of the month before."""

    month: str
    currency: str
    since: date
    as_of: date
    mrr: Money
    arr: Money
    active_customers: int
    arpu: Money | None
    mrr_at_start: Money
    customers_at_start: int
    movements: Movements
    churned_customers: int
    logo_churn: DecimalText | None
    revenue_churn: DecimalText | None
    net_revenue_retention: DecimalText | None
    ltv: Money | None


class MrrReport(Model):
    data: list[MrrMonth]


def _month(text: str | None, default: date, name: str) -> date:
    if text is None:
        return default.replace(day=1)
    found = MONTH.match(text)
    if found is None:  # the query's pattern refuses it first
        raise ApiProblem(400, f"{name}: give a month as YYYY-MM, not {text!r}")
    return date(int(found[1]), int(found[2]), 1)


def _row(month: date, metrics: Metrics) -> MrrMonth:
    code = metrics.currency.code
    moves = metrics.movements

    def amount(value: Decimal) -> str:
        return money(value, code)

    def rate(value: Decimal | None) -> str | None:
        return None if value is None else format(value, "f")

    return MrrMonth(
        month=month.strftime("%Y-%m"),
        currency=code,
        since=metrics.since,
        as_of=metrics.as_of,
        mrr=amount(metrics.mrr),
        arr=amount(metrics.arr),
        active_customers=metrics.active_customers,
        arpu=money_or_none(metrics.arpu, code),
        mrr_at_start=amount(metrics.mrr_at_start),
        customers_at_start=metrics.customers_at_start,
        movements=Movements(
            new=amount(moves.new),
            expansion=amount(moves.expansion),
            contraction=amount(moves.contraction),
            churn=amount(moves.churn),
            reactivation=amount(moves.reactivation),
            net=amount(moves.net),
        ),
        churned_customers=metrics.churned_customers,
        logo_churn=rate(metrics.logo_churn),
        revenue_churn=rate(metrics.revenue_churn),
        net_revenue_retention=rate(metrics.net_revenue_retention),
        ltv=money_or_none(metrics.ltv, code),
    )


@router.get("/metrics/mrr", response_model=MrrReport, summary="MRR per currency and month")
def mrr(
    request: Request,
    _key: ReadKey,
    first: Annotated[
        str | None,
        Query(
            alias="from",
            pattern=MONTH.pattern,
            description="First month, YYYY-MM (default: 11 months before to).",
        ),
    ] = None,
    last: Annotated[
        str | None,
        Query(alias="to", pattern=MONTH.pattern, description="Last month, YYYY-MM (default: now)."),
    ] = None,
) -> MrrReport:
    today = utc_now().date()
    end = _month(last, today, "to")
    start = _month(first, add_months(end, -11), "from")
    if start > end:
        raise ApiProblem(400, f"from ({start:%Y-%m}) is after to ({end:%Y-%m})")
    months = []
    month = start
    while month <= end:
        months.append(month)
        month = add_months(month, 1)
    if len(months) > MAX_MONTHS:
        raise ApiProblem(400, f"ask for at most {MAX_MONTHS} months at once, not {len(months)}")
    windows = []
    for month in months:
        month_end = add_months(month, 1) - timedelta(days=1)
        as_of = today if month <= today <= month_end else month_end
        windows.append((month - timedelta(days=1), as_of))
    with reading(instance_of(request).factory) as session:
        found = windows_metrics(session, windows)
    return MrrReport(
        data=[
            _row(month, metrics)
            for month, each in zip(months, found, strict=True)
            for metrics in each
        ]
    )
