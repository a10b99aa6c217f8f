"""Tables of ``connector usage show``."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from connector.sync.usage_report_shape import UsageReport


SHOWN_PLACES = Decimal("0.000001")
LAST = timedelta(microseconds=1)


def _short(quantity: str) -> str:
    """A quantity with six decimals at most (``--json`` shows it exactly)."""
    value = Decimal(quantity)
    if value.as_tuple().exponent >= -6:  # type: ignore[operator]
        return quantity
    return f"≈{value.quantize(SHOWN_PLACES):f}"


def _days(window: dict[str, datetime], year: bool = True) -> str:
    """A window of instants as its days, both inclusive."""
    shape = "%Y-%m-%d" if year else "%m-%d"
    return f"{window['start']:{shape}} – {window['end'] - LAST:{shape}}"


def _table(columns: tuple[str, ...], caption: str | None = None) -> Table:
    table = Table(
        caption=caption,
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
        caption_justify="right",
    )
    for name in columns:
        right = name in ("quantity", "billable", "amount")
        table.add_column(name, no_wrap=name != "line", justify="right" if right else "left")
    return table


def _metric(line: dict[str, Any]) -> str:
    group = f" [{line['group']}]" if line["group"] else ""
    return escape(f"{line['metric']}{group} ({line['aggregation']})")


def usage_table(report: UsageReport) -> Group:
    """A table per subscription in service (its current period's usage per item, metric and
    group, shortfalls, and the next invoice's fees), then the metrics no item bills."""
    data: dict[str, Any] = report.to_dict()
    currency = report.currency
    shown: list[Any] = [
        Text(
            f"Usage of {report.customer_name} (customer {report.customer_id}) to "
            f"{report.until:%Y-%m-%d %H:%M} UTC; total {data['total']} {currency}"
        )
    ]
    columns = ("item", "line", "days", "quantity", "billable", "amount")
    for found in data["subscriptions"]:
        invoice = found["invoice_date"]
        title = (
            f"Subscription {found['id']} ({found['contract']}), {found['frequency']}, "
            f"{_days(found['period'])}" + (f"; invoice {invoice.isoformat()}" if invoice else "")
        )
        caption = f"usage {found['usage']} + fees {found['fees']} = {found['total']} {currency}"
        shown.extend((Text(""), Text(title)))
        table = _table(columns, caption)
        mine = found["id"]
        for line in data["usage"]:
            if line["subscription"] == mine:
                table.add_row(
                    escape(line["item"]),
                    _metric(line),
                    _days(line["period"], year=False),
                    _short(line["quantity"]),
                    _short(line["billable"]),
                    line["amount"],
                )
        for shortfall in data["shortfalls"]:
            if shortfall["subscription"] == mine:
                table.add_row(
                    escape(shortfall["item"]),
                    escape(f"{shortfall['metric']}: minimum {shortfall['minimum']}"),
                    _days(shortfall["period"], year=False),
                    "",
                    "",
                    shortfall["amount"],
                )
        for fee in data["fees"]:
            if fee["subscription"] == mine:
                service = fee["service"]
                table.add_row(
                    escape(fee["item"]),
                    "fee in advance",
                    f"{service['start']:%m-%d} – {service['end']:%m-%d}",
                    _short(fee["quantity"]),
                    "",
                    fee["amount"],
                )
        if table.row_count:
            shown.append(table)
        else:  # no metered item, and no fee asked for (--from/--to)
            shown.append(Text("nothing metered in these days"))
    unbilled = [line for line in data["usage"] if line["subscription"] is None]
    if unbilled:
        shown.extend((Text(""), Text(f"Not billed by any item, {_days(unbilled[0]['period'])}")))
        table = _table(("line", "quantity"))
        for line in unbilled:
            table.add_row(_metric(line), _short(line["quantity"]))
        shown.append(table)
    return Group(*shown)
