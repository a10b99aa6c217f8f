"""SalesforceClient against the sandbox: retries, re-logins, quota, paging, Decimal, TLS trust."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
import trustme
import truststore
from simple_salesforce import Salesforce

from connector.crm.client import SalesforceClient
from connector.errors import CrmError, LoginError, QuotaExhaustedError
from connector.settings import SalesforceSettings
from connector.tls import TrustAdapter
from sandbox.salesforce.faults import FaultRule
from sandbox.salesforce.server import Sandbox
from sandbox.salesforce.testing import connect
from tests.crm.helpers import (
    expire_sessions,
    jwt_settings,
    oauth_password_settings,
    session_settings,
)

FIRST_ACCOUNT = "SELECT Id, Name FROM Account ORDER BY Name LIMIT 1"
SERVER_ERROR = (
    "An unexpected error occurred. Please include this ErrorId if you contact support: "
    "sandbox-fault"
)


# -- helpers -------------------------------------------------------------------------------
def query(soql: str = FIRST_ACCOUNT) -> Any:
    return lambda sf: sf.query(soql)


def counters(client: SalesforceClient) -> tuple[int, int, int]:
    return client.logins, client.calls, client.retries


def create_accounts(sf: Salesforce, count: int, prefix: str) -> list[str]:
    """``count`` accounts named ``{prefix} 0000``... made 200 at a time; their ids."""
    ids: list[str] = []
    for start in range(0, count, 200):
        records = [
            {"attributes": {"type": "Account"}, "Name": f"{prefix} {number:04d}"}
            for number in range(start, min(start + 200, count))
        ]
        results = sf.restful(
            "composite/sobjects", method="POST", json={"allOrNone": True, "records": records}
        )
        assert all(result["success"] for result in results), results
        ids += [result["id"] for result in results]
    return ids


# -- retries -------------------------------------------------------------------------------
@pytest.mark.sandbox(seed="demo", faults=[FaultRule(kind="503", count=2, path="query")])
def test_503_twice_then_success(salesforce_sandbox: Sandbox) -> None:
    client = SalesforceClient(session_settings(salesforce_sandbox))
    answer = client.call("query", query())
    assert answer["totalSize"] == 1
    assert counters(client) == (1, 3, 2)
    assert client.budget.spent == 3  # every attempt counts against the budget
    assert salesforce_sandbox.usage.used == 1  # the faults answered before the org counted
    assert (client.budget.org_used, client.budget.org_limit) == (1, 15_000)
    assert salesforce_sandbox.faults.rules() == []


@pytest.mark.sandbox(seed="demo")
def test_lock_row_is_retried_and_the_write_lands(salesforce_sandbox: Sandbox) -> None:
    admin = connect(salesforce_sandbox)
    account_id = admin.query(FIRST_ACCOUNT)["records"][0]["Id"]
    salesforce_sandbox.faults.add(FaultRule(kind="lock_row", count=2, path="sobjects/Account"))
    client = SalesforceClient(session_settings(salesforce_sandbox))
    status = client.call("update", lambda sf: sf.Account.update(account_id, {"Name": "Locked"}))
    assert status == 204
    assert counters(client) == (1, 3, 2)
    assert admin.Account.get(account_id)["Name"] == "Locked"


@pytest.mark.sandbox(seed="demo", faults=[FaultRule(kind="500", count=5)])
def test_500_beyond_max_attempts_is_a_crm_error(salesforce_sandbox: Sandbox) -> None:
    client = SalesforceClient(session_settings(salesforce_sandbox, max_attempts=3))
    with pytest.raises(CrmError) as caught:
        client.call("query", query())
    assert type(caught.value) is CrmError
    assert (caught.value.code, caught.value.status) == ("UNKNOWN_EXCEPTION", 500)
    assert str(caught.value) == f"query: Salesforce answered 500 UNKNOWN_EXCEPTION: {SERVER_ERROR}"
    assert counters(client) == (1, 3, 2)
    assert salesforce_sandbox.usage.used == 0
    assert salesforce_sandbox.faults.rules() == [
        {"kind": "500", "count": 2, "delay": 2.0, "when": "before"}
    ]


@pytest.mark.sandbox(seed="demo", faults=[FaultRule(kind="drop", count=2, when="before")])
def test_a_dropped_connection_is_retried(salesforce_sandbox: Sandbox) -> None:
    client = SalesforceClient(session_settings(salesforce_sandbox))
    assert client.call("query", query())["totalSize"] == 1
    assert counters(client) == (1, 3, 2)
    assert client.budget.spent == 3
    assert salesforce_sandbox.usage.used == 1


@pytest.mark.sandbox(seed="demo", faults=[FaultRule(kind="drop", count=3, when="before")])
def test_a_connection_dropped_on_every_try_is_a_crm_error(salesforce_sandbox: Sandbox) -> None:
    client = SalesforceClient(session_settings(salesforce_sandbox, max_attempts=3))
    with pytest.raises(CrmError) as caught:
        client.call("query", query())
    assert type(caught.value) is CrmError
    assert str(caught.value).startswith("query: Salesforce could not be reached: ")
    assert (caught.value.code, caught.value.status) == (None, None)
    assert counters(client) == (1, 3, 2)


@pytest.mark.sandbox(seed="demo", faults=[FaultRule(kind="slow", count=1, delay=1.5)])
def test_a_slow_answer_times_out_and_is_retried(salesforce_sandbox: Sandbox) -> None:
    client = SalesforceClient(session_settings(salesforce_sandbox, timeout_seconds=0.5))
    assert client.call("query", query())["totalSize"] == 1
    assert counters(client) == (1, 2, 1)


@pytest.mark.sandbox(seed="demo")
def test_bad_soql_fails_at_once(salesforce_sandbox: Sandbox) -> None:
    client = SalesforceClient(session_settings(salesforce_sandbox))
    with pytest.raises(CrmError) as caught:
        client.call("query", query("SELEC Id FROM Account"))
    assert type(caught.value) is CrmError
    assert (caught.value.code, caught.value.status) == ("MALFORMED_QUERY", 400)
    assert str(caught.value) == (
        "query: Salesforce answered 400 MALFORMED_QUERY: "
        "unexpected token: 'SELEC' at Row:1:Column:1"
    )
    assert counters(client) == (1, 1, 0)


@pytest.mark.sandbox(seed="demo")
def test_a_missing_record_fails_at_once(salesforce_sandbox: Sandbox) -> None:
    client = SalesforceClient(session_settings(salesforce_sandbox))
    with pytest.raises(CrmError) as caught:
        client.call("get", lambda sf: sf.Account.get("001000000000000AAA"))
    assert (caught.value.code, caught.value.status) == ("NOT_FOUND", 404)
    assert counters(client) == (1, 1, 0)


# -- sessions ------------------------------------------------------------------------------
@pytest.mark.sandbox(seed="demo", faults=[FaultRule(kind="expired_session", count=1)])
@pytest.mark.parametrize("make", [jwt_settings, oauth_password_settings, session_settings])
def test_an_expired_session_gets_a_fresh_login(salesforce_sandbox: Sandbox, make: Any) -> None:
    client = SalesforceClient(make(salesforce_sandbox))
    assert client.call("query", query())["totalSize"] == 1
    assert counters(client) == (2, 2, 0)


@pytest.mark.sandbox(seed="demo")
def test_sessions_ended_by_the_org_get_a_fresh_login(salesforce_sandbox: Sandbox) -> None:
    client = SalesforceClient(jwt_settings(salesforce_sandbox))
    client.call("query", query())
    first = client.sf.session_id
    assert expire_sessions(salesforce_sandbox) == 2  # the admin's and the client's
    assert client.call("query", query())["totalSize"] == 1
    assert client.sf.session_id != first
    assert counters(client) == (2, 3, 0)


@pytest.mark.sandbox(seed="demo")
@pytest.mark.parametrize("max_relogins", [0, 1, 2, 3])
def test_a_session_that_never_clears_fails_after_max_relogins(
    salesforce_sandbox: Sandbox, max_relogins: int
) -> None:
    client = SalesforceClient(session_settings(salesforce_sandbox, max_relogins=max_relogins))
    expire_sessions(salesforce_sandbox)  # the configured session id is dead for good
    with pytest.raises(CrmError) as caught:
        client.call("query", query())
    assert (caught.value.code, caught.value.status) == ("INVALID_SESSION_ID", 401)
    assert str(caught.value) == (
        "query: Salesforce answered 401 INVALID_SESSION_ID: Session expired or invalid"
    )
    assert counters(client) == (max_relogins + 1, max_relogins + 1, 0)
    assert salesforce_sandbox.usage.used == 0


@pytest.mark.sandbox(seed="demo", faults=[FaultRule(kind="expired_session", count=20)])
def test_relogins_are_bounded_per_call_not_per_client(salesforce_sandbox: Sandbox) -> None:
    client = SalesforceClient(jwt_settings(salesforce_sandbox, max_relogins=2))
    with pytest.raises(CrmError, match="INVALID_SESSION_ID"):
        client.call("query", query())
    assert counters(client) == (3, 3, 0)  # the first login, then two fresh ones
    with pytest.raises(CrmError, match="INVALID_SESSION_ID"):
        client.call("query", query())
    # The next call starts on the last session and may log in twice again.
    assert counters(client) == (5, 6, 0)


@pytest.mark.sandbox(seed="demo", session_ttl=0.2)
def test_an_idle_session_that_times_out_gets_a_fresh_login(salesforce_sandbox: Sandbox) -> None:
    client = SalesforceClient(oauth_password_settings(salesforce_sandbox))
    client.call("query", query())
    time.sleep(0.4)
    assert client.call("query", query())["totalSize"] == 1
    assert counters(client) == (2, 3, 0)


# -- quota ---------------------------------------------------------------------------------
@pytest.mark.sandbox(seed="demo", faults=[FaultRule(kind="request_limit", count=1)])
def test_request_limit_exceeded_stops_at_once(salesforce_sandbox: Sandbox) -> None:
    client = SalesforceClient(session_settings(salesforce_sandbox))
    with pytest.raises(QuotaExhaustedError) as caught:
        client.call("query", query())
    assert (caught.value.code, caught.value.status) == ("REQUEST_LIMIT_EXCEEDED", 403)
    assert str(caught.value) == (
        "query: Salesforce answered 403 REQUEST_LIMIT_EXCEEDED: TotalRequests Limit exceeded."
    )
    assert counters(client) == (1, 1, 0)


@pytest.mark.sandbox(seed="demo", daily_api_limit=100)
def test_an_org_spent_by_others_stops_at_once(salesforce_sandbox: Sandbox) -> None:
    client = SalesforceClient(session_settings(salesforce_sandbox, quota_share=Decimal("1")))
    client.call("query", query())
    salesforce_sandbox.usage.set(limit=None, used=100)
    with pytest.raises(QuotaExhaustedError) as caught:
        client.call("query", query())
    assert (caught.value.code, caught.value.status) == ("REQUEST_LIMIT_EXCEEDED", 403)
    assert counters(client) == (1, 2, 0)


@pytest.mark.sandbox(seed="demo", daily_api_limit=10)
def test_the_budget_stops_the_sixth_call_before_it_reaches_the_org(
    salesforce_sandbox: Sandbox,
) -> None:
    client = SalesforceClient(session_settings(salesforce_sandbox, quota_share=Decimal("0.5")))
    for number in range(1, 6):
        client.call("query", query())
        assert salesforce_sandbox.usage.used == number
    with pytest.raises(QuotaExhaustedError) as caught:
        client.call("query", query())
    assert str(caught.value) == (
        "the connector has spent 5 of the 5 API requests it may use today "
        "(50% of the org's 10); it resumes tomorrow (UTC)"
    )
    assert (caught.value.code, caught.value.status) == ("CONNECTOR_QUOTA", None)
    assert salesforce_sandbox.usage.used == 5
    assert counters(client) == (1, 5, 0)
    assert (client.budget.spent, client.budget.org_used, client.budget.org_limit) == (5, 5, 10)


@pytest.mark.sandbox(seed="demo", daily_api_limit=10)
def test_the_budget_resumes_the_next_day(salesforce_sandbox: Sandbox) -> None:
    days = [date(2024, 3, 14)]
    client = SalesforceClient(
        session_settings(salesforce_sandbox, quota_share=Decimal("0.2")), today=lambda: days[0]
    )
    client.call("query", query())
    client.call("query", query())
    with pytest.raises(QuotaExhaustedError, match="spent 2 of the 2"):
        client.call("query", query())
    days[0] = date(2024, 3, 15)
    assert client.call("query", query())["totalSize"] == 1
    assert client.budget.spent == 1
    assert salesforce_sandbox.usage.used == 3


@pytest.mark.sandbox(seed="demo", daily_api_limit=10, faults=[FaultRule(kind="503", count=10)])
def test_retries_stop_when_the_budget_is_spent(salesforce_sandbox: Sandbox) -> None:
    client = SalesforceClient(
        session_settings(salesforce_sandbox, quota_share=Decimal("0.3"), max_attempts=10)
    )
    salesforce_sandbox.faults.clear()
    client.call("query", query())  # learns the org's limit: 3 calls allowed
    salesforce_sandbox.faults.add(FaultRule(kind="503", count=10))
    with pytest.raises(QuotaExhaustedError) as caught:
        client.call("query", query())
    assert caught.value.code == "CONNECTOR_QUOTA"
    assert counters(client) == (1, 3, 2)


# -- paging --------------------------------------------------------------------------------
@pytest.mark.sandbox(daily_api_limit=1_000)
def test_query_pages_reads_2500_accounts_in_three_pages(salesforce_sandbox: Sandbox) -> None:
    ids = create_accounts(connect(salesforce_sandbox), 2_500, "Paged")
    before = salesforce_sandbox.usage.used
    client = SalesforceClient(session_settings(salesforce_sandbox, page_size=1000))
    pages = list(client.query_pages("SELECT Id, Name FROM Account ORDER BY Name"))
    assert [len(page) for page in pages] == [1000, 1000, 500]
    names = [record["Name"] for page in pages for record in page]
    assert names == [f"Paged {number:04d}" for number in range(2_500)]
    assert sorted(record["Id"] for page in pages for record in page) == sorted(ids)
    assert counters(client) == (1, 3, 0)
    assert salesforce_sandbox.usage.used - before == 3


@pytest.mark.sandbox(daily_api_limit=1_000)
def test_query_pages_is_lazy_and_survives_faults_between_pages(
    salesforce_sandbox: Sandbox,
) -> None:
    create_accounts(connect(salesforce_sandbox), 2_500, "Paged")
    client = SalesforceClient(oauth_password_settings(salesforce_sandbox, page_size=1000))
    pages = client.query_pages("SELECT Id FROM Account")
    first = next(pages)
    assert (len(first), client.calls) == (1000, 1)
    salesforce_sandbox.faults.add(FaultRule(kind="503", count=1, path="query"))
    second = next(pages)
    expire_sessions(salesforce_sandbox)
    third = next(pages)
    assert [len(second), len(third)] == [1000, 500]
    assert len({record["Id"] for record in [*first, *second, *third]}) == 2_500
    assert counters(client) == (2, 5, 1)


@pytest.mark.sandbox(seed="demo")
def test_query_pages_with_one_page(salesforce_sandbox: Sandbox) -> None:
    client = SalesforceClient(session_settings(salesforce_sandbox, page_size=200))
    pages = list(client.query_pages("SELECT Id FROM Account WHERE Name = 'nobody at all'"))
    assert pages == [[]]
    assert client.calls == 1


@pytest.mark.sandbox(daily_api_limit=1_000)
def test_query_pages_include_deleted(salesforce_sandbox: Sandbox) -> None:
    admin = connect(salesforce_sandbox)
    ids = create_accounts(admin, 300, "Gone")
    for account_id in ids[:250]:
        admin.Account.delete(account_id)
    client = SalesforceClient(session_settings(salesforce_sandbox, page_size=200))
    live = list(client.query_pages("SELECT Id FROM Account"))
    everything = list(client.query_pages("SELECT Id, IsDeleted FROM Account", include_deleted=True))
    assert [len(page) for page in live] == [50]
    assert [len(page) for page in everything] == [200, 100]
    deleted = [record for page in everything for record in page if record["IsDeleted"]]
    assert len(deleted) == 250


# -- the org's time ------------------------------------------------------------------------
def test_the_org_time_is_the_date_header_of_the_latest_answer(salesforce_sandbox: Sandbox) -> None:
    now = [datetime(2031, 5, 6, 7, 8, 9, 999_000, tzinfo=UTC)]
    salesforce_sandbox.org.clock = lambda: now[0]
    client = SalesforceClient(session_settings(salesforce_sandbox))
    assert client.org_time is None

    list(client.query_pages("SELECT Id FROM Account"))
    first = client.org_time
    now[0] = datetime(2031, 5, 6, 7, 9, 0, tzinfo=UTC)
    client.call("limits", lambda sf: sf.limits())

    assert first == datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)  # whole seconds
    assert client.org_time == client.org_now() == datetime(2031, 5, 6, 7, 9, tzinfo=UTC)


# -- values --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "amount", ["1234.56", "0.10", "19999999.99", "0.01", "100", "1E+2", "33333.33"]
)
def test_amounts_come_back_as_decimal(salesforce_sandbox: Sandbox, amount: str) -> None:
    admin = connect(salesforce_sandbox)
    created = admin.Opportunity.create(
        {
            "Name": "Decimal deal",
            "StageName": "Prospecting",
            "CloseDate": "2024-06-30",
            "Amount": float(amount),
        }
    )
    client = SalesforceClient(session_settings(salesforce_sandbox))
    answer = client.call(
        "query", query(f"SELECT Amount FROM Opportunity WHERE Id = '{created['id']}'")
    )
    value = answer["records"][0]["Amount"]
    assert isinstance(value, Decimal)
    assert value == Decimal(amount)


# -- TLS -----------------------------------------------------------------------------------
@pytest.fixture
def other_ca_bundle(tmp_path: Path) -> Path:
    path = tmp_path / "other-ca.pem"
    trustme.CA(organization_name="Someone else").cert_pem.write_to_path(str(path))
    return path


@pytest.mark.sandbox(seed="demo")
@pytest.mark.parametrize("make", [oauth_password_settings, jwt_settings, session_settings])
def test_the_ca_file_wins_over_ca_bundles_in_the_environment(
    salesforce_sandbox: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    other_ca_bundle: Path,
    make: Any,
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(other_ca_bundle))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(other_ca_bundle))
    # The environment really does override a plain session's own trust...
    plain = requests.Session()
    plain.verify = str(salesforce_sandbox.ca_file)
    with pytest.raises(requests.exceptions.SSLError):
        plain.get(f"{salesforce_sandbox.instance_url}/services/data", timeout=10)
    # ...but not the client's.
    client = SalesforceClient(make(salesforce_sandbox))
    assert client.call("query", query())["totalSize"] == 1
    assert counters(client) == (1, 1, 0)


@pytest.mark.sandbox(seed="demo")
@pytest.mark.parametrize("environment", [True, False])
def test_without_a_ca_file_a_token_login_fails_on_the_certificate(
    salesforce_sandbox: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    other_ca_bundle: Path,
    environment: bool,
) -> None:
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        if environment:
            monkeypatch.setenv(name, str(other_ca_bundle))
        else:
            monkeypatch.delenv(name, raising=False)
    client = SalesforceClient(oauth_password_settings(salesforce_sandbox, ca_file=""))
    with pytest.raises(LoginError) as caught:
        client.call("query", query())
    assert str(caught.value).startswith(
        f"cannot reach {salesforce_sandbox.instance_url}/services/oauth2/token: "
    )
    assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value)
    assert counters(client) == (0, 0, 0)


@pytest.mark.sandbox(seed="demo")
@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"])
@pytest.mark.parametrize("make", [oauth_password_settings, session_settings])
def test_a_ca_bundle_in_the_environment_is_not_trusted_without_a_ca_file(
    salesforce_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, variable: str, make: Any
) -> None:
    """The environment names the sandbox's own CA: the client still trusts only the system's
    store, which does not hold it."""
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    monkeypatch.setenv(variable, str(salesforce_sandbox.ca_file))
    plain = requests.Session()  # the environment does make a plain session trust it
    assert plain.get(f"{salesforce_sandbox.instance_url}/services/data", timeout=10).ok

    client = SalesforceClient(make(salesforce_sandbox, ca_file="", max_attempts=1))
    with pytest.raises(CrmError) as caught:  # LoginError for a token login
        client.call("query", query())
    assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value)
    assert salesforce_sandbox.usage.used == 0  # no request reached the org

    trusting = SalesforceClient(make(salesforce_sandbox, max_attempts=1))  # with its ca_file
    assert trusting.call("query", query())["totalSize"] == 1


def test_without_a_ca_file_the_client_verifies_with_the_system_trust_store() -> None:
    client = SalesforceClient(session_settings_without_sandbox())
    adapter = client.http.get_adapter("https://example.my.salesforce.com")
    assert isinstance(adapter, TrustAdapter)
    assert type(adapter.context) is truststore.SSLContext


def session_settings_without_sandbox() -> SalesforceSettings:
    return SalesforceSettings(
        auth="session", instance_url="https://example.my.salesforce.com", session_id="x"
    )


@pytest.mark.sandbox(seed="demo")
def test_without_a_ca_file_a_session_fails_on_the_certificate(
    salesforce_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    client = SalesforceClient(session_settings(salesforce_sandbox, ca_file="", max_attempts=2))
    with pytest.raises(CrmError) as caught:
        client.call("query", query())
    assert str(caught.value).startswith("query: Salesforce could not be reached: ")
    assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value)
    assert salesforce_sandbox.usage.used == 0
