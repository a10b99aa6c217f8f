"""Billing: invoice everything due by today, and journal the revenue recognized so far."""

from __future__ import annotations

from datetime import date

from connector.sync.cycle import JobRun, Runtime


def bill(runtime: Runtime, as_of: date | None = None) -> JobRun:
    return runtime.run("bill", as_of)


def close_revenue(runtime: Runtime, as_of: date | None = None) -> JobRun:
    return runtime.run("revenue", as_of)
