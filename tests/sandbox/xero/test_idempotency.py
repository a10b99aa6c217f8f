"""Idempotency keys: replays, mismatches, requests in flight, what is kept and for how long."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import requests

from sandbox.xero.server import XeroSandbox
from tests.sandbox.xero.conftest import Api, body, contact_body


def put_contacts(
    api: Api, key: str, *elements: dict[str, Any], query: str = ""
) -> requests.Response:
    return api.put(
        f"Contacts{query}", {"Contacts": list(elements)}, headers={"Idempotency-Key": key}
    )


def test_the_same_request_is_replayed(api: Api, xero_sandbox: XeroSandbox) -> None:
    first = put_contacts(api, "contact-1-v1", contact_body(1))
    assert first.status_code == 200
    assert "Idempotent-Replayed" not in first.headers
    again = put_contacts(api, "contact-1-v1", contact_body(1))
    assert again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.content == first.content
    assert len(xero_sandbox.store.contacts) == 1
    assert [r.idempotency_key for r in xero_sandbox.requests if r.method == "PUT"] == [
        "contact-1-v1",
        "contact-1-v1",
    ]
    # limit headers are fresh on a replay
    assert (
        int(again.headers["X-MinLimit-Remaining"]) == int(first.headers["X-MinLimit-Remaining"]) - 1
    )


def test_refusals_are_replayed_too(api: Api, xero_sandbox: XeroSandbox) -> None:
    api.contact(1)
    first = put_contacts(api, "dup", contact_body(2, Name="Customer 1"))
    assert first.status_code == 400
    again = put_contacts(api, "dup", contact_body(2, Name="Customer 1"))
    assert (again.status_code, again.content) == (400, first.content)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(xero_sandbox.store.contacts) == 1


@pytest.mark.parametrize(
    ("second", "query"),
    [
        (contact_body(2), ""),  # another body
        (contact_body(1), "?summarizeErrors=false"),  # another query
    ],
)
def test_a_key_for_another_request_is_refused(api: Api, second: dict[str, Any], query: str) -> None:
    assert put_contacts(api, "k", contact_body(1)).status_code == 200
    response = put_contacts(api, "k", second, query=query)
    assert response.status_code == 400
    assert body(response) == {
        "ErrorNumber": 10,
        "Type": "ValidationException",
        "Message": "Idempotency key has already been used for a different request",
    }
    post = api.post("Contacts", {"Contacts": [contact_body(1)]}, headers={"Idempotency-Key": "k"})
    assert post.status_code == 400  # another method


def test_keys_of_at_most_128_characters(api: Api) -> None:
    assert put_contacts(api, "k" * 128, contact_body(1)).status_code == 200
    response = put_contacts(api, "k" * 129, contact_body(2))
    assert response.status_code == 400
    assert body(response)["Message"] == "Idempotency-Key must be at most 128 characters (got 129)"


def test_a_key_in_flight_answers_409(api: Api, xero_sandbox: XeroSandbox) -> None:
    xero_sandbox.faults.add({"kind": "slow", "delay": 1.0, "count": 1, "path": "Contacts"})
    answers: list[requests.Response] = []
    first = threading.Thread(
        target=lambda: answers.append(put_contacts(api, "slow", contact_body(1)))
    )
    first.start()
    deadline = time.monotonic() + 5
    while xero_sandbox.limits.in_flight() == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)
    second = put_contacts(Api(xero_sandbox), "slow", contact_body(1))
    first.join()
    assert second.status_code == 409
    assert body(second)["Detail"] == "A request with this Idempotency-Key is still in progress"
    assert answers[0].status_code == 200


def test_a_dropped_write_is_replayed_on_retry(api: Api, xero_sandbox: XeroSandbox) -> None:
    xero_sandbox.faults.add({"kind": "drop", "when": "after", "count": 1, "method": "PUT"})
    with pytest.raises(requests.ConnectionError):
        put_contacts(api, "dropped", contact_body(1))
    assert len(xero_sandbox.store.contacts) == 1  # applied before the drop
    retry = put_contacts(Api(xero_sandbox), "dropped", contact_body(1))
    assert (retry.status_code, retry.headers["Idempotent-Replayed"]) == (200, "true")
    assert len(xero_sandbox.store.contacts) == 1


def test_server_errors_are_not_kept(api: Api, xero_sandbox: XeroSandbox) -> None:
    xero_sandbox.faults.add({"kind": "503", "count": 1})
    assert put_contacts(api, "retry-me", contact_body(1)).status_code == 503
    retry = put_contacts(api, "retry-me", contact_body(1))
    assert retry.status_code == 200
    assert "Idempotent-Replayed" not in retry.headers


@pytest.mark.xero(idempotency_ttl=0.3)
def test_answers_are_kept_for_the_ttl(api: Api, xero_sandbox: XeroSandbox) -> None:
    assert put_contacts(api, "short", contact_body(1)).status_code == 200
    assert put_contacts(api, "short", contact_body(1)).headers["Idempotent-Replayed"] == "true"
    time.sleep(0.35)
    after = put_contacts(api, "short", contact_body(1))
    assert "Idempotent-Replayed" not in after.headers
    assert after.status_code == 400  # processed again: the name is taken now
    assert len(xero_sandbox.idempotency) == 1


def test_reads_ignore_keys(api: Api) -> None:
    first = api.get("Contacts", headers={"Idempotency-Key": "read"})
    second = api.get("Contacts", headers={"Idempotency-Key": "read"})
    assert "Idempotent-Replayed" not in second.headers
    assert body(first)["Id"] != body(second)["Id"]
