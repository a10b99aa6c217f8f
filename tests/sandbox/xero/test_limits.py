"""Rate limits: the remaining counts on every answer, and 429 for each kind of limit."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest
import requests

from sandbox.xero.server import XeroSandbox
from tests.sandbox.xero.conftest import Api


def remaining(response: requests.Response) -> tuple[str, str, str]:
    headers = response.headers
    return (
        headers["X-MinLimit-Remaining"],
        headers["X-DayLimit-Remaining"],
        headers["X-AppMinLimit-Remaining"],
    )


def test_counts_go_down_with_each_call(api: Api) -> None:
    answers = [api.get("Organisation") for _ in range(3)]
    assert [remaining(a) for a in answers] == [
        ("59", "4999", "9999"),
        ("58", "4998", "9998"),
        ("57", "4997", "9997"),
    ]
    # refusals before the limits (no token, wrong tenant) carry the counts but spend nothing
    refused = api.get("Organisation", headers={"xero-tenant-id": "nope"})
    assert refused.status_code == 403
    assert remaining(refused) == ("57", "4997", "9997")
    # the token endpoint is not counted either
    Api(api.xero)
    assert remaining(api.get("Organisation")) == ("56", "4996", "9996")


@pytest.mark.xero(minute_limit=3, minute_seconds=1.0)
def test_the_minute_window(api: Api) -> None:
    started = time.monotonic()
    assert [api.get("Organisation").status_code for _ in range(3)] == [200, 200, 200]
    refused = api.get("Organisation")
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "1"
    assert refused.headers["X-Rate-Limit-Problem"] == "minute"
    assert refused.json() == {
        "Type": None,
        "Title": "Too Many Requests",
        "Status": 429,
        "Detail": "Rate limit exceeded: minute",
    }
    assert remaining(refused)[:2] == ("0", "4997")  # a 429 is not a call
    time.sleep(max(0.0, started + 1.05 - time.monotonic()))
    again = api.get("Organisation")
    assert again.status_code == 200


@pytest.mark.xero(concurrent_limit=2)
def test_calls_in_flight(xero_sandbox: XeroSandbox) -> None:
    xero_sandbox.faults.add({"kind": "slow", "delay": 1.0, "rate": 1.0, "path": "Organisation"})
    clients = [Api(xero_sandbox) for _ in range(3)]
    answers: list[requests.Response] = []
    threads = [
        threading.Thread(target=lambda c=client: answers.append(c.get("Organisation")))
        for client in clients[:2]
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 5
    while xero_sandbox.limits.in_flight() < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    refused = clients[2].get("Organisation")
    for thread in threads:
        thread.join()
    assert refused.status_code == 429
    assert (refused.headers["Retry-After"], refused.headers["X-Rate-Limit-Problem"]) == (
        "1",
        "concurrent",
    )
    assert [a.status_code for a in answers] == [200, 200]
    assert xero_sandbox.limits.in_flight() == 0


def test_the_day_limit(api: Api, xero_sandbox: XeroSandbox) -> None:
    xero_sandbox.limits.clock = lambda: datetime(2026, 3, 15, 23, 59, 30, 250_000, tzinfo=UTC)
    xero_sandbox.limits.set_day_remaining(1)
    last = api.get("Organisation")
    assert (last.status_code, last.headers["X-DayLimit-Remaining"]) == (200, "0")
    refused = api.get("Organisation")
    assert refused.status_code == 429
    assert refused.headers["X-Rate-Limit-Problem"] == "daily"
    assert refused.headers["Retry-After"] == "30"
    # a new UTC day starts afresh
    xero_sandbox.limits.clock = lambda: datetime(2026, 3, 16, 0, 0, 1, tzinfo=UTC)
    assert remaining(api.get("Organisation"))[1] == "4999"


@pytest.mark.xero(app_minute_limit=2)
def test_the_app_minute_limit(api: Api) -> None:
    assert [api.get("Organisation").status_code for _ in range(2)] == [200, 200]
    refused = api.get("Organisation")
    assert (refused.status_code, refused.headers["X-Rate-Limit-Problem"]) == (429, "appminute")
