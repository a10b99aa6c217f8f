"""Webhooks: deliver the events written since the last run (and retry those due)."""

from __future__ import annotations

from datetime import date

from connector.sync.cycle import JobRun, Runtime


def webhooks(runtime: Runtime, as_of: date | None = None) -> JobRun:
    return runtime.run("webhooks", as_of)
