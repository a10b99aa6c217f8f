"""OAuth 2.0 at /connect/token and /identity/connect/authorize, /connections, and the gate in
front of the API (token, tenant, Accept)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from sandbox.xero.auth import DEFAULT_SCOPE
from sandbox.xero.server import DEFAULT_TENANT_ID, XeroSandbox
from sandbox.xero.testing import trusting_session
from tests.sandbox.xero.conftest import Api, body

CLIENT = ("fake-xero-client", "fake-xero-secret")


def token(xero: XeroSandbox, auth: Any = CLIENT, **form: str) -> requests.Response:
    return trusting_session(xero).post(xero.token_url, data=form, auth=auth, timeout=10)


def organisation(xero: XeroSandbox, access_token: str) -> requests.Response:
    return trusting_session(xero).get(
        f"{xero.api_url}/Organisation",
        headers={
            "Authorization": f"Bearer {access_token}",
            "xero-tenant-id": DEFAULT_TENANT_ID,
            "Accept": "application/json",
        },
        timeout=10,
    )


def test_client_credentials(xero_sandbox: XeroSandbox) -> None:
    response = token(xero_sandbox, grant_type="client_credentials")
    assert response.status_code == 200
    answer = response.json()
    assert set(answer) == {"access_token", "expires_in", "token_type", "scope"}
    assert answer["expires_in"] == 1800
    assert answer["token_type"] == "Bearer"
    assert answer["scope"] == DEFAULT_SCOPE
    assert organisation(xero_sandbox, answer["access_token"]).status_code == 200


def test_client_credentials_keeps_the_requested_scope(xero_sandbox: XeroSandbox) -> None:
    answer = token(xero_sandbox, grant_type="client_credentials", scope="accounting.contacts")
    assert answer.json()["scope"] == "accounting.contacts"


@pytest.mark.parametrize(
    "auth", [("fake-xero-client", "wrong"), ("someone-else", "fake-xero-secret"), None]
)
def test_a_bad_client_is_refused(xero_sandbox: XeroSandbox, auth: Any) -> None:
    response = token(xero_sandbox, auth=auth, grant_type="client_credentials")
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_client"}


def test_unknown_and_missing_grants(xero_sandbox: XeroSandbox) -> None:
    unknown = token(xero_sandbox, grant_type="password")
    assert (unknown.status_code, unknown.json()) == (400, {"error": "unsupported_grant_type"})
    missing = token(xero_sandbox)
    assert missing.status_code == 400
    assert missing.json()["error"] == "invalid_request"


def test_authorization_code_works_once(xero_sandbox: XeroSandbox) -> None:
    code = xero_sandbox.issue_authorization_code()
    first = token(xero_sandbox, grant_type="authorization_code", code=code)
    assert first.status_code == 200
    assert set(first.json()) == {
        "access_token",
        "expires_in",
        "token_type",
        "scope",
        "refresh_token",
    }
    again = token(xero_sandbox, grant_type="authorization_code", code=code)
    assert (again.status_code, again.json()) == (400, {"error": "invalid_grant"})
    unknown = token(xero_sandbox, grant_type="authorization_code", code="nope")
    assert unknown.json() == {"error": "invalid_grant"}


def test_authorize_redirects_with_a_code_and_the_state(xero_sandbox: XeroSandbox) -> None:
    redirect = "https://app.example/callback"
    response = trusting_session(xero_sandbox).get(
        xero_sandbox.authorize_url,
        params={
            "response_type": "code",
            "client_id": "fake-xero-client",
            "redirect_uri": redirect,
            "scope": "offline_access accounting.transactions",
            "state": "abc 123",
        },
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == redirect
    query = parse_qs(location.query)
    assert query["state"] == ["abc 123"]
    code = query["code"][0]
    wrong = token(
        xero_sandbox, grant_type="authorization_code", code=code, redirect_uri="https://x/"
    )
    assert wrong.json()["error"] == "invalid_grant"
    # a refused exchange uses the code up, as a real identity server does
    used = token(xero_sandbox, grant_type="authorization_code", code=code, redirect_uri=redirect)
    assert used.json()["error"] == "invalid_grant"
    fresh = xero_sandbox.issue_authorization_code(redirect)
    granted = token(
        xero_sandbox, grant_type="authorization_code", code=fresh, redirect_uri=redirect
    )
    assert granted.status_code == 200


@pytest.mark.parametrize(
    ("params", "error"),
    [
        (
            {"response_type": "code", "client_id": "other", "redirect_uri": "https://a/"},
            "invalid_client",
        ),
        ({"response_type": "code", "client_id": "fake-xero-client"}, "invalid_request"),
        (
            {
                "response_type": "token",
                "client_id": "fake-xero-client",
                "redirect_uri": "https://a/",
            },
            "unsupported_response_type",
        ),
    ],
)
def test_authorize_refusals(xero_sandbox: XeroSandbox, params: dict[str, str], error: str) -> None:
    response = trusting_session(xero_sandbox).get(
        xero_sandbox.authorize_url, params=params, allow_redirects=False, timeout=10
    )
    assert response.status_code == 400
    assert response.json()["error"] == error


def test_refresh_tokens_rotate(xero_sandbox: XeroSandbox) -> None:
    code = xero_sandbox.issue_authorization_code()
    first = token(xero_sandbox, grant_type="authorization_code", code=code).json()
    second = token(xero_sandbox, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert second.status_code == 200
    rotated = second.json()
    assert rotated["refresh_token"] != first["refresh_token"]
    assert rotated["access_token"] != first["access_token"]
    assert organisation(xero_sandbox, rotated["access_token"]).status_code == 200
    old = token(xero_sandbox, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert (old.status_code, old.json()) == (400, {"error": "invalid_grant"})
    third = token(xero_sandbox, grant_type="refresh_token", refresh_token=rotated["refresh_token"])
    assert third.status_code == 200
    unknown = token(xero_sandbox, grant_type="refresh_token", refresh_token="made-up")
    assert unknown.json() == {"error": "invalid_grant"}


def test_the_api_needs_a_live_token(xero_sandbox: XeroSandbox) -> None:
    missing = trusting_session(xero_sandbox).get(
        f"{xero_sandbox.api_url}/Organisation",
        headers={"xero-tenant-id": DEFAULT_TENANT_ID, "Accept": "application/json"},
        timeout=10,
    )
    assert missing.status_code == 401
    assert missing.json() == {
        "Type": None,
        "Title": "Unauthorized",
        "Status": 401,
        "Detail": "AuthenticationUnsuccessful",
    }
    assert organisation(xero_sandbox, "not-a-token").status_code == 401
    access = token(xero_sandbox, grant_type="client_credentials").json()["access_token"]
    assert xero_sandbox.tokens.expire_access_tokens() == 1
    expired = organisation(xero_sandbox, access)
    assert expired.status_code == 401
    assert expired.json()["Detail"].startswith("TokenExpired: token expired at ")


@pytest.mark.xero(access_token_ttl=1)
def test_access_tokens_expire_after_their_ttl(xero_sandbox: XeroSandbox) -> None:
    answer = token(xero_sandbox, grant_type="client_credentials").json()
    assert answer["expires_in"] == 1
    xero_sandbox.tokens.clock = lambda: float("inf")
    assert organisation(xero_sandbox, answer["access_token"]).status_code == 401


def test_the_api_needs_the_tenant(api: Api) -> None:
    forbidden = {
        "Type": None,
        "Title": "Forbidden",
        "Status": 403,
        "Detail": "AuthenticationUnsuccessful",
    }
    other = api.get(
        "Organisation", headers={"xero-tenant-id": "0" * 8 + "-0000-0000-0000-" + "0" * 12}
    )
    assert (other.status_code, other.json()) == (403, forbidden)
    del api.session.headers["xero-tenant-id"]
    missing = api.get("Organisation")
    assert (missing.status_code, missing.json()) == (403, forbidden)


def test_the_api_answers_json_only(api: Api) -> None:
    response = api.get("Organisation", headers={"Accept": "*/*"})
    assert response.status_code == 406
    assert response.json()["Detail"] == (
        "This sandbox answers JSON only: send Accept: application/json"
    )


def test_connections(xero_sandbox: XeroSandbox) -> None:
    access = token(xero_sandbox, grant_type="client_credentials").json()["access_token"]
    session = trusting_session(xero_sandbox)
    response = session.get(
        xero_sandbox.connections_url, headers={"Authorization": f"Bearer {access}"}, timeout=10
    )
    assert response.status_code == 200
    [connection] = response.json()
    assert connection["tenantId"] == DEFAULT_TENANT_ID
    assert connection["tenantType"] == "ORGANISATION"
    assert connection["tenantName"] == "Demo Company"
    assert set(connection) == {
        "id",
        "authEventId",
        "tenantId",
        "tenantType",
        "tenantName",
        "createdDateUtc",
        "updatedDateUtc",
    }
    refused = session.get(xero_sandbox.connections_url, timeout=10)
    assert refused.status_code == 401


def test_organisation(api: Api) -> None:
    response = api.get("Organisation")
    assert response.status_code == 200
    answer = body(response)
    assert set(answer) == {"Id", "Status", "ProviderName", "DateTimeUTC", "Organisations"}
    assert answer["Status"] == "OK"
    assert answer["DateTimeUTC"].startswith("/Date(")
    [org] = answer["Organisations"]
    assert (org["Name"], org["BaseCurrency"], org["OrganisationID"], org["Version"]) == (
        "Demo Company",
        "USD",
        DEFAULT_TENANT_ID,
        "US",
    )


def test_settings_lists(api: Api) -> None:
    accounts = body(api.get("Accounts"))["Accounts"]
    assert [(a["Code"], a["Type"], a["Name"]) for a in accounts] == [
        ("090", "BANK", "Business Bank Account"),
        ("200", "REVENUE", "Sales"),
        ("260", "REVENUE", "Other Revenue"),
        ("610", "CURRENT", "Accounts Receivable"),
        ("615", "CURRENT", "Accrued Revenue"),
        ("820", "CURRLIAB", "Sales Tax"),
        ("835", "CURRLIAB", "Revenue Received in Advance"),
    ]
    rates = {r["TaxType"]: r["EffectiveRate"] for r in body(api.get("TaxRates"))["TaxRates"]}
    assert rates["NONE"] == 0
    assert rates["TAX006"] == 10
    currencies = [c["Code"] for c in body(api.get("Currencies"))["Currencies"]]
    assert currencies == ["USD", "EUR", "GBP", "JPY", "CAD", "AUD"]


def test_unknown_paths(api: Api) -> None:
    assert api.get("Nothing").status_code == 404
    assert api.get("").status_code == 404
    assert api.request("DELETE", "Invoices").status_code == 405
    outside = api.session.get(f"{api.xero.url}/elsewhere", timeout=10)
    assert outside.status_code == 404
