"""Fault injection: rules set at start and through the admin API, each kind, the filters."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
)

from connector.errors import ConfigError
from sandbox.salesforce.faults import FaultRule, parse_rule
from sandbox.salesforce.server import Sandbox
from sandbox.salesforce.testing import connect, running_sandbox, trusting_session

INVALID_SESSION = [
    {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID", "fields": []}
]
LOCK_ROW_MESSAGE = "unable to obtain exclusive access to this record"
LOCK_ROW_ERROR = {"statusCode": "UNABLE_TO_LOCK_ROW", "message": LOCK_ROW_MESSAGE, "fields": []}
EMPTY = {"totalSize": 0, "done": True, "records": []}


# -- helpers -------------------------------------------------------------------------------
def admin(
    sandbox: Sandbox,
    method: str,
    path: str = "faults",
    *,
    json: Any = None,
    session_id: str | None = None,
    **kwargs: Any,
) -> requests.Response:
    token = sandbox.session_id if session_id is None else session_id
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return trusting_session(sandbox).request(
        method,
        f"{sandbox.instance_url}/sandbox/{path}",
        json=json,
        headers=headers,
        timeout=10,
        **kwargs,
    )


def add_fault(sandbox: Sandbox, **rule: Any) -> None:
    response = admin(sandbox, "POST", json=rule)
    assert response.status_code == 201, response.text


def rules(sandbox: Sandbox) -> list[dict[str, Any]]:
    response = admin(sandbox, "GET")
    assert response.status_code == 200
    return response.json()["faults"]


def used(sandbox: Sandbox) -> int:
    response = admin(sandbox, "GET", "usage")
    assert response.status_code == 200
    return int(response.json()["used"])


def count_accounts(sf: Salesforce) -> int:
    return int(sf.query("SELECT COUNT() FROM Account")["totalSize"])


def outcome(call: Callable[[], Any]) -> int | str:
    """``"ok"``, or the HTTP status of the Salesforce error the call raised."""
    try:
        call()
    except SalesforceError as error:
        return error.status
    return "ok"


def limits_outcomes(sf: Salesforce, calls: int) -> list[int | str]:
    return [outcome(sf.limits) for _ in range(calls)]


def collection_create(sf: Salesforce, kind: str, names: list[str], **extra: Any) -> Any:
    records = [{"attributes": {"type": kind}, "Name": name, **extra} for name in names]
    return sf.restful(
        "composite/sobjects", method="POST", json={"allOrNone": False, "records": records}
    )


def opportunity_fields(account_id: str, name: str = "Deal") -> dict[str, Any]:
    return {
        "AccountId": account_id,
        "Name": name,
        "StageName": "Prospecting",
        "CloseDate": "2025-01-31",
    }


# -- admin API -----------------------------------------------------------------------------
def test_admin_api_adds_lists_and_clears_rules(salesforce_sandbox: Sandbox, sf: Salesforce) -> None:
    response = admin(salesforce_sandbox, "POST", json={"kind": "503", "count": 2})
    assert response.status_code == 201
    assert response.json() == {
        "faults": [{"kind": "503", "count": 2, "delay": 2.0, "when": "before"}]
    }
    response = admin(
        salesforce_sandbox,
        "POST",
        json=[
            {"kind": "slow", "rate": 0.5, "delay": 0.1, "path": "query"},
            {"kind": "drop", "count": 1, "when": "after", "sobject": "Account"},
        ],
    )
    assert response.status_code == 201
    expected = [
        {"kind": "503", "count": 2, "delay": 2.0, "when": "before"},
        {"kind": "slow", "rate": 0.5, "path": "query", "delay": 0.1, "when": "before"},
        {"kind": "drop", "count": 1, "sobject": "Account", "delay": 2.0, "when": "after"},
    ]
    assert response.json() == {"faults": expected}
    assert rules(salesforce_sandbox) == expected
    response = admin(salesforce_sandbox, "DELETE")
    assert response.status_code == 204
    assert response.content == b""
    assert rules(salesforce_sandbox) == []
    assert sf.query("SELECT Id FROM Account") == EMPTY


def test_admin_api_is_not_counted(salesforce_sandbox: Sandbox, sf: Salesforce) -> None:
    sf.limits()
    assert used(salesforce_sandbox) == 1
    add_fault(salesforce_sandbox, kind="503", count=1)
    rules(salesforce_sandbox)
    admin(salesforce_sandbox, "DELETE")
    assert used(salesforce_sandbox) == 1


@pytest.mark.parametrize(
    "rule",
    [
        {"kind": "bogus", "count": 1},
        {"kind": "503"},
        {"kind": "503", "count": 1, "rate": 0.5},
        {"kind": "503", "count": 0},
        {"kind": "503", "count": -1},
        {"kind": "503", "rate": 0},
        {"kind": "503", "rate": 1.5},
        {"kind": "503", "count": 1, "color": "red"},
        {"kind": "slow", "count": 1, "delay": -1},
        {"kind": "slow", "count": 1, "delay": 601},
        {"kind": "drop", "count": 1, "when": "during"},
        {"count": 1},
        [{"kind": "503", "count": 1}, {"kind": "bogus", "count": 1}],
        "503",
        None,
    ],
    ids=[
        "unknown-kind",
        "neither-count-nor-rate",
        "both-count-and-rate",
        "count-zero",
        "count-negative",
        "rate-zero",
        "rate-above-one",
        "extra-field",
        "negative-delay",
        "delay-too-long",
        "bad-when",
        "no-kind",
        "list-with-one-bad",
        "string",
        "no-body",
    ],
)
def test_admin_api_refuses_invalid_rules(salesforce_sandbox: Sandbox, rule: Any) -> None:
    response = admin(salesforce_sandbox, "POST", json=rule)
    assert response.status_code == 400
    [error] = response.json()
    assert error["errorCode"] == "INVALID_FAULT"
    assert error["fields"] == []
    assert "validation error for FaultRule" in error["message"]
    assert rules(salesforce_sandbox) == []


def test_admin_api_refuses_a_body_that_is_not_json(salesforce_sandbox: Sandbox) -> None:
    response = trusting_session(salesforce_sandbox).post(
        f"{salesforce_sandbox.instance_url}/sandbox/faults",
        data=b"kind=503,count=1",
        headers={
            "Authorization": f"Bearer {salesforce_sandbox.session_id}",
            "Content-Type": "application/json",
        },
        timeout=10,
    )
    assert response.status_code == 400
    assert response.json()[0]["errorCode"] == "INVALID_FAULT"
    assert rules(salesforce_sandbox) == []


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
@pytest.mark.parametrize("session_id", ["", "no-such-session"], ids=["missing", "unknown"])
def test_admin_api_needs_a_session(
    salesforce_sandbox: Sandbox, method: str, session_id: str
) -> None:
    body = {"kind": "503", "count": 1} if method == "POST" else None
    response = admin(salesforce_sandbox, method, json=body, session_id=session_id)
    assert response.status_code == 401
    assert response.json() == INVALID_SESSION
    assert rules(salesforce_sandbox) == []


def test_admin_api_unknown_path(salesforce_sandbox: Sandbox) -> None:
    response = admin(salesforce_sandbox, "GET", "nothing-here")
    assert response.status_code == 404
    assert response.json()[0]["errorCode"] == "NOT_FOUND"


# -- kinds ---------------------------------------------------------------------------------
KIND_ERRORS: dict[str, tuple[type[SalesforceError], int, str, str]] = {
    "500": (
        SalesforceGeneralError,
        500,
        "UNKNOWN_EXCEPTION",
        "An unexpected error occurred. Please include this ErrorId if you contact support: "
        "sandbox-fault",
    ),
    "503": (SalesforceGeneralError, 503, "SERVER_UNAVAILABLE", "Service temporarily unavailable"),
    "request_limit": (
        SalesforceRefusedRequest,
        403,
        "REQUEST_LIMIT_EXCEEDED",
        "TotalRequests Limit exceeded.",
    ),
    "expired_session": (
        SalesforceExpiredSession,
        401,
        "INVALID_SESSION_ID",
        "Session expired or invalid",
    ),
    "lock_row": (SalesforceMalformedRequest, 400, "UNABLE_TO_LOCK_ROW", LOCK_ROW_MESSAGE),
}


@pytest.mark.parametrize("kind", list(KIND_ERRORS))
def test_error_kinds(salesforce_sandbox: Sandbox, sf: Salesforce, kind: str) -> None:
    exception, status, code, message = KIND_ERRORS[kind]
    add_fault(salesforce_sandbox, kind=kind, count=1)
    with pytest.raises(exception) as raised:
        sf.query("SELECT Id FROM Account")
    assert raised.value.status == status
    assert raised.value.content == [{"message": message, "errorCode": code, "fields": []}]
    # injected before processing: not counted
    assert used(salesforce_sandbox) == 0
    # the fault is used up; the same session goes on working (expired_session included)
    assert sf.query("SELECT Id FROM Account") == EMPTY
    assert used(salesforce_sandbox) == 1
    assert rules(salesforce_sandbox) == []


@pytest.mark.parametrize("kind", list(KIND_ERRORS))
def test_error_kinds_write_nothing(salesforce_sandbox: Sandbox, sf: Salesforce, kind: str) -> None:
    exception, status, code, message = KIND_ERRORS[kind]
    add_fault(salesforce_sandbox, kind=kind, count=1)
    with pytest.raises(exception) as raised:
        sf.Account.create({"Name": "Refused"})
    assert raised.value.status == status
    assert raised.value.content == [{"message": message, "errorCode": code, "fields": []}]
    assert count_accounts(sf) == 0


def test_faulted_calls_are_not_counted(salesforce_sandbox: Sandbox, sf: Salesforce) -> None:
    sf.limits()
    add_fault(salesforce_sandbox, kind="503", count=3)
    assert limits_outcomes(sf, 3) == [503, 503, 503]
    assert used(salesforce_sandbox) == 1
    limits = sf.limits()
    assert limits["DailyApiRequests"] == {"Max": 15000, "Remaining": 14998}
    assert sf.api_usage["api-usage"].used == 2
    assert sf.api_usage["api-usage"].total == 15000


def test_lock_row_on_collections_create(salesforce_sandbox: Sandbox, sf: Salesforce) -> None:
    add_fault(salesforce_sandbox, kind="lock_row", count=1)
    results = collection_create(sf, "Account", ["A", "B", "C"])
    assert results == [{"success": False, "errors": [LOCK_ROW_ERROR]}] * 3
    assert count_accounts(sf) == 0
    assert used(salesforce_sandbox) == 1  # the query; the refused call was not counted


def test_lock_row_on_collections_update_and_delete(
    salesforce_sandbox: Sandbox, sf: Salesforce
) -> None:
    created = collection_create(sf, "Account", ["A", "B"])
    ids = [result["id"] for result in created]
    add_fault(salesforce_sandbox, kind="lock_row", count=2)
    updated = sf.restful(
        "composite/sobjects",
        method="PATCH",
        json={
            "allOrNone": False,
            "records": [
                {"attributes": {"type": "Account"}, "Id": record_id, "Name": "Changed"}
                for record_id in ids
            ],
        },
    )
    # a failed result carries no id, as in Salesforce
    assert updated == [{"success": False, "errors": [LOCK_ROW_ERROR]}] * 2
    deleted = sf.restful("composite/sobjects", method="DELETE", params={"ids": ",".join(ids)})
    assert deleted == [{"success": False, "errors": [LOCK_ROW_ERROR]}] * 2
    names = sf.query("SELECT Id, Name FROM Account ORDER BY Name")["records"]
    assert [(record["Id"], record["Name"]) for record in names] == list(
        zip(ids, ["A", "B"], strict=True)
    )


def test_slow(salesforce_sandbox: Sandbox, sf: Salesforce) -> None:
    add_fault(salesforce_sandbox, kind="slow", count=1, delay=0.3)
    started = time.monotonic()
    created = sf.Account.create({"Name": "Slow"})
    assert time.monotonic() - started >= 0.3
    assert created["success"] is True
    assert count_accounts(sf) == 1
    assert used(salesforce_sandbox) == 2  # a slow call is still processed, so counted


def test_drop_before(salesforce_sandbox: Sandbox, sf: Salesforce) -> None:
    add_fault(salesforce_sandbox, kind="drop", count=1)
    with pytest.raises(requests.exceptions.ConnectionError):
        sf.Account.create({"Name": "Dropped"})
    assert used(salesforce_sandbox) == 0
    assert count_accounts(sf) == 0
    assert sf.Account.create({"Name": "Second try"})["success"] is True
    assert count_accounts(sf) == 1


def test_drop_after(salesforce_sandbox: Sandbox, sf: Salesforce) -> None:
    add_fault(salesforce_sandbox, kind="drop", count=1, when="after")
    with pytest.raises(requests.exceptions.ConnectionError):
        sf.Account.create({"Name": "Written anyway"})
    result = sf.query("SELECT Name FROM Account")
    assert result["totalSize"] == 1
    assert result["records"][0]["Name"] == "Written anyway"
    assert used(salesforce_sandbox) == 2


def test_drop_after_on_collections(salesforce_sandbox: Sandbox, sf: Salesforce) -> None:
    add_fault(salesforce_sandbox, kind="drop", count=1, when="after")
    with pytest.raises(requests.exceptions.ConnectionError):
        collection_create(sf, "Account", ["A", "B"])
    assert count_accounts(sf) == 2


def test_when_after_is_never_silently_ignored(salesforce_sandbox: Sandbox, sf: Salesforce) -> None:
    """``when: after`` on a kind other than drop is either refused or injected after the call
    is applied (a 503 whose write happened); a rule that is accepted must not do nothing."""
    response = admin(salesforce_sandbox, "POST", json={"kind": "503", "count": 1, "when": "after"})
    if response.status_code == 400:
        assert response.json()[0]["errorCode"] == "INVALID_FAULT"
        return
    assert response.status_code == 201
    assert outcome(lambda: sf.Account.create({"Name": "Applied"})) == 503
    assert count_accounts(sf) == 1


# -- count, rate, seeds --------------------------------------------------------------------
def test_count_fails_exactly_the_next_n_calls(salesforce_sandbox: Sandbox, sf: Salesforce) -> None:
    add_fault(salesforce_sandbox, kind="503", count=3)
    assert outcome(sf.limits) == 503
    assert rules(salesforce_sandbox) == [
        {"kind": "503", "count": 2, "delay": 2.0, "when": "before"}
    ]
    assert limits_outcomes(sf, 4) == [503, 503, "ok", "ok"]
    assert rules(salesforce_sandbox) == []


@pytest.mark.sandbox(faults=[FaultRule(kind="503", count=2)])
def test_rules_given_at_start(salesforce_sandbox: Sandbox, sf: Salesforce) -> None:
    assert rules(salesforce_sandbox) == [
        {"kind": "503", "count": 2, "delay": 2.0, "when": "before"}
    ]
    assert limits_outcomes(sf, 4) == [503, 503, "ok", "ok"]


def test_rule_objects_can_start_several_sandboxes() -> None:
    """The same configured rule fails the first call of every sandbox started with it."""
    rule = FaultRule(kind="503", count=1)
    for _ in range(2):
        with running_sandbox(faults=[rule]) as sandbox:
            assert limits_outcomes(connect(sandbox), 3) == [503, "ok", "ok"]


def test_two_rules_both_fire(salesforce_sandbox: Sandbox, sf: Salesforce) -> None:
    add_fault(salesforce_sandbox, kind="500", count=1)
    add_fault(salesforce_sandbox, kind="request_limit", count=1)
    assert limits_outcomes(sf, 3) == [500, 403, "ok"]


def test_rate_one_always_fails(salesforce_sandbox: Sandbox, sf: Salesforce) -> None:
    add_fault(salesforce_sandbox, kind="503", rate=1.0)
    assert limits_outcomes(sf, 10) == [503] * 10
    assert rules(salesforce_sandbox) == [
        {"kind": "503", "rate": 1.0, "delay": 2.0, "when": "before"}
    ]
    assert used(salesforce_sandbox) == 0


def seeded_outcomes(seed: int, calls: int = 20) -> list[int | str]:
    with running_sandbox(fault_seed=seed, faults=[FaultRule(kind="503", rate=0.5)]) as sandbox:
        return limits_outcomes(connect(sandbox), calls)


@pytest.mark.sandbox(fault_seed=7)
def test_rate_with_seed_is_deterministic(salesforce_sandbox: Sandbox, sf: Salesforce) -> None:
    add_fault(salesforce_sandbox, kind="503", rate=0.5)
    first = limits_outcomes(sf, 20)
    assert set(first) == {503, "ok"}
    assert seeded_outcomes(7) == first
    assert seeded_outcomes(8) != first


# -- filters -------------------------------------------------------------------------------
def test_path_filter(salesforce_sandbox: Sandbox, sf: Salesforce) -> None:
    add_fault(salesforce_sandbox, kind="503", count=1, path="query")
    assert sf.Account.create({"Name": "A"})["success"] is True
    sf.limits()
    assert rules(salesforce_sandbox)[0]["count"] == 1
    assert outcome(lambda: sf.query("SELECT Id FROM Account")) == 503
    assert count_accounts(sf) == 1


def test_path_filter_with_sobject_path(salesforce_sandbox: Sandbox, sf: Salesforce) -> None:
    account = sf.Account.create({"Name": "A"})["id"]
    add_fault(salesforce_sandbox, kind="503", rate=1.0, path="/sobjects/Account")
    assert outcome(lambda: sf.Account.get(account)) == 503
    assert outcome(lambda: sf.Account.create({"Name": "B"})) == 503
    assert outcome(lambda: sf.Account.update(account, {"Name": "C"})) == 503
    assert outcome(lambda: sf.query("SELECT Id FROM Account")) == "ok"
    assert outcome(lambda: sf.Contact.create({"LastName": "Smith"})) == "ok"
    assert outcome(lambda: collection_create(sf, "Account", ["D"])) == "ok"


def test_sobject_filter(salesforce_sandbox: Sandbox, sf: Salesforce) -> None:
    account = sf.Account.create({"Name": "A"})["id"]
    opportunity = sf.Opportunity.create(opportunity_fields(account))["id"]
    add_fault(salesforce_sandbox, kind="503", rate=1.0, sobject="Opportunity")
    calls: dict[str, Callable[[], Any]] = {
        "account create": lambda: sf.Account.create({"Name": "B"}),
        "account get": lambda: sf.Account.get(account),
        "account query": lambda: sf.query("SELECT Id FROM Account"),
        "line item query": lambda: sf.query("SELECT Id FROM OpportunityLineItem"),
        "limits": sf.limits,
        "account collection": lambda: collection_create(sf, "Account", ["C"]),
        "opportunity create": lambda: sf.Opportunity.create(opportunity_fields(account, "X")),
        "opportunity get": lambda: sf.Opportunity.get(opportunity),
        "opportunity update": lambda: sf.Opportunity.update(opportunity, {"Name": "Y"}),
        "opportunity describe": sf.Opportunity.describe,
        "opportunity query": lambda: sf.query("SELECT Id, Name FROM Opportunity"),
        "opportunity query lower case": lambda: sf.query("select id from opportunity"),
        "opportunity collection": lambda: collection_create(
            sf,
            "Opportunity",
            ["Z"],
            AccountId=account,
            StageName="Prospecting",
            CloseDate="2025-01-31",
        ),
        "opportunity collection retrieve": lambda: sf.restful(
            "composite/sobjects/Opportunity", params={"ids": opportunity, "fields": "Id,Name"}
        ),
    }
    outcomes = {name: outcome(call) for name, call in calls.items()}
    assert outcomes == {
        "account create": "ok",
        "account get": "ok",
        "account query": "ok",
        "line item query": "ok",
        "limits": "ok",
        "account collection": "ok",
        "opportunity create": 503,
        "opportunity get": 503,
        "opportunity update": 503,
        "opportunity describe": 503,
        "opportunity query": 503,
        "opportunity query lower case": 503,
        "opportunity collection": 503,
        "opportunity collection retrieve": 503,
    }
    admin(salesforce_sandbox, "DELETE")
    opportunities = sf.query("SELECT Id, Name FROM Opportunity")["records"]
    assert [(record["Id"], record["Name"]) for record in opportunities] == [(opportunity, "Deal")]


def test_sobject_filter_on_collections_delete(salesforce_sandbox: Sandbox, sf: Salesforce) -> None:
    """A collections delete of Opportunity ids touches Opportunity, so the rule applies."""
    account = sf.Account.create({"Name": "A"})["id"]
    opportunity = sf.Opportunity.create(opportunity_fields(account))["id"]
    add_fault(salesforce_sandbox, kind="503", count=1, sobject="Opportunity")
    deleted = outcome(
        lambda: sf.restful("composite/sobjects", method="DELETE", params={"ids": opportunity})
    )
    assert deleted == 503
    assert sf.query("SELECT Id FROM Opportunity")["totalSize"] == 1


def test_lock_row_with_sobject_filter_on_collections(
    salesforce_sandbox: Sandbox, sf: Salesforce
) -> None:
    add_fault(salesforce_sandbox, kind="lock_row", rate=1.0, sobject="Contact")
    results = collection_create(sf, "Account", ["A"])
    assert results[0]["success"] is True
    records = [{"attributes": {"type": "Contact"}, "LastName": name} for name in ("X", "Y")]
    refused = sf.restful(
        "composite/sobjects", method="POST", json={"allOrNone": False, "records": records}
    )
    assert refused == [{"success": False, "errors": [LOCK_ROW_ERROR]}] * 2
    admin(salesforce_sandbox, "DELETE")
    assert sf.query("SELECT COUNT() FROM Contact")["totalSize"] == 0


# -- parse_rule ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("kind=503,count=3,path=query", FaultRule(kind="503", count=3, path="query")),
        (
            " kind = lock_row , rate = 0.25 , sobject = Opportunity ",
            FaultRule(kind="lock_row", rate=0.25, sobject="Opportunity"),
        ),
        (
            "kind=drop,count=1,when=after,path=composite/sobjects",
            FaultRule(kind="drop", count=1, when="after", path="composite/sobjects"),
        ),
        ("kind=slow,rate=1,delay=0.5", FaultRule(kind="slow", rate=1.0, delay=0.5)),
    ],
)
def test_parse_rule(text: str, expected: FaultRule) -> None:
    assert parse_rule(text) == expected


def test_parse_rule_defaults() -> None:
    rule = parse_rule("kind=expired_session,count=2")
    assert rule.model_dump() == {
        "kind": "expired_session",
        "count": 2,
        "rate": None,
        "path": None,
        "sobject": None,
        "delay": 2.0,
        "when": "before",
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("kind=503,count", "--fault kind=503,count: expected key=value pairs, got 'count'"),
        ("", "--fault : expected key=value pairs, got ''"),
        ("kind=503,,count=1", "--fault kind=503,,count=1: expected key=value pairs, got ''"),
        ("503", "--fault 503: expected key=value pairs, got '503'"),
    ],
)
def test_parse_rule_refuses_malformed_text(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_rule(text)
    assert str(refused.value) == message


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ("kind=503", "give exactly one of count (the next N calls) or rate (a fraction)"),
        (
            "kind=503,count=1,rate=0.5",
            "give exactly one of count (the next N calls) or rate (a fraction)",
        ),
        (
            "kind=nope,count=1",
            "kind\n  Input should be '500', '503', 'request_limit', "
            "'expired_session', 'lock_row', 'query_timeout', 'slow' or 'drop'",
        ),
        ("kind=503,count=0", "count\n  Input should be greater than or equal to 1"),
        ("kind=503,count=x", "count\n  Input should be a valid integer"),
        ("kind=503,rate=2", "rate\n  Input should be less than or equal to 1"),
        ("kind=503,rate=0", "rate\n  Input should be greater than 0"),
        ("kind=503,count=1,bogus=x", "bogus\n  Extra inputs are not permitted"),
        ("kind=drop,count=1,when=later", "when\n  Input should be 'before' or 'after'"),
        ("count=1", "kind\n  Field required"),
    ],
)
def test_parse_rule_refuses_invalid_rules(text: str, detail: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_rule(text)
    assert str(refused.value).startswith(f"--fault {text}: 1 validation error for FaultRule\n")
    assert detail in str(refused.value)
