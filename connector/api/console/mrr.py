"""MRR and its movements per currency, by month, as charts (and the same figures as tables),
from :func:`connector.sync.reports.monthly_metrics`."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from fastapi import APIRouter, Request
from fastapi.responses import Response
from markupsafe import Markup

from connector.api.auth import instance_of
from connector.api.console import charts, views
from connector.api.console.guard import User
from connector.billing.metrics import Metrics
from connector.db.engine import reading
from connector.db.types import utc_now
from connector.render import money
from connector.sync.reports import MonthlyMetrics, monthly_metrics

router = APIRouter(include_in_schema=False)
MONTHS = 12
MOVEMENTS = (  # name, field of MrrMovements, CSS class, drawn below zero
    ("new", "new", "new", False),
    ("expansion", "expansion", "expansion", False),
    ("reactivation", "reactivation", "reactivation", False),
    ("contraction", "contraction", "contraction", True),
    ("churn", "churn", "churn", True),
)


@dataclass(frozen=True)
class CurrencyCharts:
    code: str
    latest: Metrics
    months: list[Metrics]
    labels: list[str]
    mrr_chart: Markup
    movement_chart: Markup


def month_label(metrics: Metrics) -> str:
    return metrics.as_of.strftime("%b %y")


def charts_of(monthly: MonthlyMetrics) -> CurrencyCharts:
    code, months = monthly.code, monthly.months
    labels = [month_label(m) for m in months]
    first, last = months[0].as_of.strftime("%B %Y"), months[-1].as_of.strftime("%B %Y")
    mrr = charts.bar_chart(
        f"mrr-{code}",
        f"MRR in {code} by month",
        f"Monthly recurring revenue in {code} at the end of each month from {first} to {last}"
        f" (the last month to today); now {money(months[-1].mrr, code)}.",
        labels=labels,
        values=[m.mrr for m in months],
        tips=[f"{m.as_of:%B %Y}: {money(m.mrr, code)}" for m in months],
    )
    series = [
        charts.Series(name, css, [getattr(m.movements, field) for m in months], down)
        for name, field, css, down in MOVEMENTS
    ]
    movements = charts.movement_chart(
        f"movements-{code}",
        f"MRR movements in {code} by month",
        f"New, expansion and reactivation above zero; contraction and churn below; the line is "
        f"the net movement of each month from {first} to {last}.",
        labels=labels,
        series=series,
        net=[m.movements.net for m in months],
        tip=lambda name, label, amount: f"{name}, {label}: {money(amount, code)}",
    )
    return CurrencyCharts(code, months[-1], months, labels, mrr, movements)


@router.get("/mrr")
def mrr(request: Request, user: User) -> Response:
    today = utc_now().date()
    with reading(instance_of(request).factory) as session:
        found = monthly_metrics(session, today, MONTHS)
    currencies = [charts_of(monthly) for monthly in found if _any(monthly)]
    return views.page(request, "mrr.html", user, currencies=currencies, today=today, months=MONTHS)


def _any(monthly: MonthlyMetrics) -> bool:
    """A currency with revenue or movement in the window (not one long gone)."""
    return any(m.mrr or m.mrr_at_start or m.movements.net != Decimal(0) for m in monthly.months)
