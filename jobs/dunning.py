"""Collections: record the steps of the dunning schedule open invoices reach today."""

from __future__ import annotations

from datetime import date

from connector.sync.cycle import JobRun, Runtime


def dunning(runtime: Runtime, as_of: date | None = None) -> JobRun:
    return runtime.run("dunning", as_of)
