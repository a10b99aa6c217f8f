"""Accounting: post documents from the outbox, and read the payments recorded there."""

from __future__ import annotations

from datetime import date

from connector.sync.cycle import JobRun, Runtime


def push(runtime: Runtime, as_of: date | None = None) -> JobRun:
    return runtime.run("push", as_of)


def read_payments(runtime: Runtime, as_of: date | None = None) -> JobRun:
    return runtime.run("payments", as_of)
