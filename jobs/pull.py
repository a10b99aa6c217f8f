"""Pull: bring accounts and deals changed in Salesforce into the billing core."""

from __future__ import annotations

from datetime import date

from connector.sync.cycle import JobRun, Runtime


def pull(runtime: Runtime, as_of: date | None = None) -> JobRun:
    return runtime.run("pull", as_of)
