"""Send: e-mail new documents to their customers."""

from __future__ import annotations

from datetime import date

from connector.sync.cycle import JobRun, Runtime


def send(runtime: Runtime, as_of: date | None = None) -> JobRun:
    return runtime.run("send", as_of)
