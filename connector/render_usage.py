"""Tables of ``connector usage show``."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from rich import box
from rich.table import Table

if TYPE_CHECKING:
    from connector.sync.usage_report import UsageReport


SHOWN_PLACES = Decimal("0.000001")


def _short(quantity: str) -> str:
    """A quantity with six decimals at most (``--json`` shows it exactly)."""
    value = Decimal(quantity)
    if value.as_tuple().exponent >= -6:  # type: ignore[operator]
        return quantity
    return f"≈{value.quantize(SHOWN_PLACES):f}"


def usage_table(report: UsageReport) -> Table:
    """The usage of a customer's period to date, per metric and group, with its charges."""
    data = report.to_dict()
    last = report.period.end - timedelta(microseconds=1)
    table = Table(
        title=f"Usage of {report.customer_name} (customer {report.customer_id}), "
        f"{report.period.start:%Y-%m-%d} – {last:%Y-%m-%d}",
        caption=f"to {report.until:%Y-%m-%d %H:%M} UTC; total {data['total']} {report.currency}",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
    )
    for name in ("metric", "group", "aggregation", "quantity", "billable", "amount"):
        table.add_column(
            name,
            no_wrap=True,
            justify="right" if name in ("quantity", "billable", "amount") else "left",
        )
    for line in data["usage"]:
        table.add_row(
            line["metric"],
            line["group"] or "",
            line["aggregation"],
            _short(line["quantity"]),
            _short(line["billable"]) if line["billable"] else "",
            line["amount"] or "no price",
        )
    for shortfall in data["shortfalls"]:
        table.add_row(
            shortfall["metric"],
            "",
            "minimum",
            "",
            shortfall["minimum"],
            shortfall["amount"],
        )
    return table
