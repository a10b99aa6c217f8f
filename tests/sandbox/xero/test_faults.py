"""Fault injection: each kind, the method and path filters, rules set at start and at run time."""

from __future__ import annotations

import time

import pytest
import requests
from pydantic import ValidationError

from connector.errors import ConfigError
from sandbox.xero.faults import XeroFaultRule, XeroFaults, parse_xero_rule
from sandbox.xero.server import XeroSandbox
from tests.sandbox.xero.conftest import Api, body, contact_body


def test_server_errors_for_a_method_and_path(api: Api, xero_sandbox: XeroSandbox) -> None:
    xero_sandbox.faults.add({"kind": "503", "count": 2, "method": "PUT", "path": "Contacts"})
    xero_sandbox.faults.add({"kind": "500", "count": 1, "path": "invoices"})
    assert api.get("Contacts").status_code == 200  # another method
    first = api.put("Contacts", {"Contacts": [contact_body(1)]})
    assert first.status_code == 503
    assert body(first)["Title"] == "Service Unavailable"
    assert "X-MinLimit-Remaining" in first.headers
    assert api.put("Contacts", {"Contacts": [contact_body(1)]}).status_code == 503
    assert api.put("Contacts", {"Contacts": [contact_body(1)]}).status_code == 200
    assert api.get("Invoices").status_code == 500
    assert api.get("Invoices").status_code == 200
    assert xero_sandbox.faults.rules() == []
    assert len(xero_sandbox.store.contacts) == 1


def test_an_injected_429(api: Api, xero_sandbox: XeroSandbox) -> None:
    xero_sandbox.faults.add({"kind": "429", "count": 1, "retry_after": 7})
    refused = api.get("Organisation")
    assert refused.status_code == 429
    assert (refused.headers["Retry-After"], refused.headers["X-Rate-Limit-Problem"]) == (
        "7",
        "minute",
    )
    assert refused.headers["X-MinLimit-Remaining"] == "60"  # not counted
    assert api.get("Organisation").headers["X-MinLimit-Remaining"] == "59"


def test_slow(api: Api, xero_sandbox: XeroSandbox) -> None:
    xero_sandbox.faults.add({"kind": "slow", "delay": 0.3, "count": 1})
    started = time.monotonic()
    assert api.get("Organisation").status_code == 200
    assert time.monotonic() - started >= 0.3


def test_drop_before_applies_nothing(api: Api, xero_sandbox: XeroSandbox) -> None:
    xero_sandbox.faults.add({"kind": "drop", "count": 1, "method": "PUT"})
    with pytest.raises(requests.ConnectionError):
        api.put("Contacts", {"Contacts": [contact_body(1)]})
    assert xero_sandbox.store.contacts == {}
    last = xero_sandbox.requests[-1]
    assert (last.method, last.path, last.status, last.dropped) == (
        "PUT",
        "/api.xro/2.0/Contacts",
        None,
        True,
    )


def test_drop_after_applies_the_write(api: Api, xero_sandbox: XeroSandbox) -> None:
    xero_sandbox.faults.add({"kind": "drop", "when": "after", "count": 1})
    with pytest.raises(requests.ConnectionError):
        api.put("Contacts", {"Contacts": [contact_body(1)]})
    assert len(xero_sandbox.store.contacts) == 1
    assert (xero_sandbox.requests[-1].status, xero_sandbox.requests[-1].dropped) == (200, True)
    # the server goes on answering
    assert Api(xero_sandbox).get("Contacts").status_code == 200


@pytest.mark.xero(faults=[{"kind": "503", "rate": 0.5}], fault_seed=3)
def test_rules_given_at_start_with_a_rate(api: Api, xero_sandbox: XeroSandbox) -> None:
    statuses = [api.get("Organisation").status_code for _ in range(20)]
    assert set(statuses) == {200, 503}
    xero_sandbox.faults.clear()
    assert [api.get("Organisation").status_code for _ in range(3)] == [200, 200, 200]


def test_the_same_seed_draws_the_same_faults() -> None:
    def draws(seed: int) -> list[bool]:
        faults = XeroFaults([XeroFaultRule(kind="503", rate=0.5)], seed)
        return [faults.pick("GET", "Organisation") is not None for _ in range(30)]

    assert draws(1) == draws(1)
    assert draws(1) != draws(2)


def test_a_rule_is_copied(xero_sandbox: XeroSandbox) -> None:
    rule = XeroFaultRule(kind="500", count=1)
    xero_sandbox.faults.add(rule)
    assert xero_sandbox.faults.pick("GET", "Contacts") is not None
    assert rule.count == 1
    assert xero_sandbox.faults.rules() == []


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"kind": "503"}, "give exactly one of count"),
        ({"kind": "503", "count": 1, "rate": 0.5}, "give exactly one of count"),
        ({"kind": "500", "count": 1, "when": "after"}, "when: after applies to drop only"),
        ({"kind": "teapot", "count": 1}, "Input should be '500', '503', '429', 'slow' or 'drop'"),
        ({"kind": "500", "count": 1, "sobject": "Account"}, "Extra inputs are not permitted"),
    ],
)
def test_bad_rules(rule: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        XeroFaults([rule])


# -- at run time, through /sandbox/faults ---------------------------------------------------
def faults_url(xero: XeroSandbox) -> str:
    return f"{xero.url}/sandbox/faults"


def test_the_admin_api_adds_lists_and_clears_rules(api: Api, xero_sandbox: XeroSandbox) -> None:
    added = api.session.post(
        faults_url(xero_sandbox),
        json=[
            {"kind": "429", "count": 1, "retry_after": 30, "path": "Contacts"},
            {"kind": "drop", "when": "after", "count": 1, "method": "PUT"},
        ],
        timeout=10,
    )

    assert added.status_code == 201
    rules = [
        {
            "kind": "429",
            "count": 1,
            "path": "Contacts",
            "delay": 2.0,
            "retry_after": 30,
            "when": "before",
        },
        {
            "kind": "drop",
            "count": 1,
            "method": "PUT",
            "delay": 2.0,
            "retry_after": 1,
            "when": "after",
        },
    ]
    assert added.json() == {"faults": rules}
    assert api.session.get(faults_url(xero_sandbox), timeout=10).json() == {"faults": rules}
    refused = api.get("Contacts")
    assert (refused.status_code, refused.headers["Retry-After"]) == (429, "30")
    with pytest.raises(requests.ConnectionError):
        api.put("Contacts", {"Contacts": [contact_body(1)]})
    assert len(xero_sandbox.store.contacts) == 1  # applied before the connection dropped
    assert api.session.get(faults_url(xero_sandbox), timeout=10).json() == {"faults": []}

    api.session.post(faults_url(xero_sandbox), json={"kind": "500", "rate": 1}, timeout=10)
    assert api.get("Organisation").status_code == 500
    cleared = api.session.delete(faults_url(xero_sandbox), timeout=10)
    assert (cleared.status_code, cleared.text) == (204, "")
    assert api.get("Organisation").status_code == 200


def test_the_admin_api_needs_an_access_token(xero_sandbox: XeroSandbox) -> None:
    session = requests.Session()
    session.trust_env = False
    session.verify = str(xero_sandbox.ca_file)

    refused = session.post(faults_url(xero_sandbox), json={"kind": "503", "count": 1}, timeout=10)

    assert refused.status_code == 401
    assert xero_sandbox.faults.rules() == []


def test_the_admin_api_refuses_an_invalid_rule(api: Api, xero_sandbox: XeroSandbox) -> None:
    refused = api.session.post(faults_url(xero_sandbox), json={"kind": "503"}, timeout=10)

    assert refused.status_code == 400
    assert refused.json()["Title"] == "Invalid fault rule"
    assert (
        "give exactly one of count (the next N calls) or rate (a fraction)"
        in (refused.json()["Detail"])
    )
    assert xero_sandbox.faults.rules() == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("kind=503,count=3", XeroFaultRule(kind="503", count=3)),
        (
            "kind=429, count=1, retry_after=30, method=PUT, path=Invoices",
            XeroFaultRule(kind="429", count=1, retry_after=30, method="PUT", path="Invoices"),
        ),
        ("kind=slow,rate=0.5,delay=0.25", XeroFaultRule(kind="slow", rate=0.5, delay=0.25)),
        ("kind=drop,count=1,when=after", XeroFaultRule(kind="drop", count=1, when="after")),
    ],
)
def test_parse_xero_rule(text: str, expected: XeroFaultRule) -> None:
    assert parse_xero_rule(text) == expected


def test_parse_xero_rule_refuses_malformed_and_invalid_rules() -> None:
    with pytest.raises(ConfigError) as malformed:
        parse_xero_rule("kind")
    with pytest.raises(ConfigError) as invalid:
        parse_xero_rule("kind=teapot,count=1")

    assert str(malformed.value) == "--xero-fault kind: expected key=value pairs, got 'kind'"
    assert str(invalid.value).startswith(
        "--xero-fault kind=teapot,count=1: 1 validation error for XeroFaultRule\nkind\n"
        "  Input should be '500', '503', '429', 'slow' or 'drop'"
    )
