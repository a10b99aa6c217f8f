"""Send: render each new invoice and credit note (and each new version of one) as PDF, and
e-mail new documents and the reminders due to their customers."""

from __future__ import annotations

from datetime import date

from connector.sync.cycle import JobRun, Runtime


def send(runtime: Runtime, as_of: date | None = None) -> JobRun:
    return runtime.run("send", as_of)
