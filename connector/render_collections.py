"""The collections part of ``connector report aging``: each past-due invoice, what it owes,
the latest step of the dunning schedule it reached and whether it is disputed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from rich import box
from rich.table import Table

from connector.render import money
from connector.sync.aging import PastDueInvoice


def collections_dict(lines: Sequence[PastDueInvoice]) -> list[dict[str, Any]]:
    return [
        {
            "number": line.number,
            "customer": line.customer,
            "currency": line.currency,
            "due_date": line.due_date,
            "days_past_due": line.days_past_due,
            "owed": money(line.owed, line.currency, code=False),
            "dunning_step": line.step,
            "disputed": line.disputed,
        }
        for line in lines
    ]


def _step(line: PastDueInvoice) -> str:
    step = line.step or "—"
    return f"{step} (disputed)" if line.disputed else step


def collections_table(lines: Sequence[PastDueInvoice], as_of: date) -> Table:
    """One row per invoice, most overdue first; names wrap, numbers and amounts never do."""
    table = Table(
        title=f"Past-due invoices and collections as of {as_of}",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
    )
    table.add_column("invoice", no_wrap=True)
    table.add_column("customer", overflow="fold")
    table.add_column("due", no_wrap=True)
    table.add_column("days", justify="right", no_wrap=True)
    table.add_column("owed", justify="right", no_wrap=True)
    table.add_column("step", overflow="fold")
    for line in lines:
        table.add_row(
            line.number,
            line.customer,
            line.due_date.isoformat(),
            str(line.days_past_due),
            money(line.owed, line.currency),
            _step(line),
        )
    return table
