"""Write-back: show in Salesforce what was billed and paid, and why a deal did not bill."""

from __future__ import annotations

from datetime import date

from connector.sync.cycle import JobRun, Runtime


def write_back(runtime: Runtime, as_of: date | None = None) -> JobRun:
    return runtime.run("writeback", as_of)
