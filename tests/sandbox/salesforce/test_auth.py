"""The sandbox's logins and sessions: the OAuth token endpoint, SOAP login, bearer checks.

OAuth is driven with plain ``requests`` (simple-salesforce always logs in at
``https://{domain}.salesforce.com``); where simple-salesforce's own login code is exercised, its
``soap_login`` / ``token_login`` are redirected to the sandbox so the exact request it builds
reaches the sandbox.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from simple_salesforce import Salesforce
from simple_salesforce import login as sf_login
from simple_salesforce.exceptions import SalesforceAuthenticationFailed, SalesforceExpiredSession

from sandbox.salesforce.server import Sandbox
from sandbox.salesforce.testing import trusting_session

USERNAME = "admin@sandbox.example.com"
PASSWORD = "sandbox-password"
SECURITY_TOKEN = "SANDBOXTOKEN"
CLIENT_ID = "sandbox-connected-app"
CLIENT_SECRET = "sandbox-client-secret"
ORG_ID = "00D5g0000000001EAA"
USER_ID = "0055g0000000001AAA"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
INVALID_SESSION = [
    {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID", "fields": []}
]
TOKEN_KEYS = {"access_token", "instance_url", "id", "token_type", "issued_at", "signature", "scope"}
SOAP_LOGIN_FAILURE = "Invalid username, password, security token; or user locked out."


# -- helpers -------------------------------------------------------------------------------
def post_token(sandbox: Sandbox, data: dict[str, str], **kwargs: Any) -> requests.Response:
    return trusting_session(sandbox).post(
        f"{sandbox.instance_url}/services/oauth2/token", data=data, timeout=10, **kwargs
    )


def password_form(password: str = PASSWORD, **overrides: str) -> dict[str, str]:
    return {
        "grant_type": "password",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "username": USERNAME,
        "password": password,
        **overrides,
    }


def client(sandbox: Sandbox, session_id: str, instance_url: str | None = None) -> Salesforce:
    return Salesforce(
        instance_url=instance_url or sandbox.instance_url,
        session_id=session_id,
        version="59.0",
        session=trusting_session(sandbox),
    )


def assert_session_works(sandbox: Sandbox, session_id: str) -> None:
    """The session can query the org (a fresh org: no accounts)."""
    result = client(sandbox, session_id).query("SELECT Id FROM Account")
    assert result == {"totalSize": 0, "done": True, "records": []}


def get_limits(sandbox: Sandbox, authorization: str | None) -> requests.Response:
    headers = {"Authorization": authorization} if authorization is not None else {}
    return trusting_session(sandbox).get(
        f"{sandbox.instance_url}/services/data/v59.0/limits/", headers=headers, timeout=10
    )


def assert_oauth_error(response: requests.Response, error: str, description: str) -> None:
    assert response.status_code == 400
    assert response.json() == {"error": error, "error_description": description}


def expected_signature(identity: str, issued_at: str) -> str:
    digest = hmac.new(
        CLIENT_SECRET.encode(), (identity + issued_at).encode(), hashlib.sha256
    ).digest()
    return base64.b64encode(digest).decode()


def assert_token_answer(
    sandbox: Sandbox, body: dict[str, Any], *, refresh: bool, before_ms: int
) -> None:
    after_ms = int(time.time() * 1000)
    assert set(body) == (TOKEN_KEYS | {"refresh_token"} if refresh else TOKEN_KEYS)
    assert body["instance_url"] == sandbox.instance_url
    assert body["id"] == f"{sandbox.instance_url}/id/{ORG_ID}/{USER_ID}"
    assert body["token_type"] == "Bearer"
    assert re.fullmatch(r"\d{13}", body["issued_at"])
    assert before_ms <= int(body["issued_at"]) <= after_ms
    assert body["signature"] == expected_signature(body["id"], body["issued_at"])
    assert body["scope"] == "api refresh_token"
    assert body["access_token"].startswith("00D5g0000000001!")
    assert body["access_token"] != sandbox.session_id
    if refresh:
        assert isinstance(body["refresh_token"], str)
        assert len(body["refresh_token"]) >= 32


@functools.cache
def other_private_key() -> bytes:
    """A key the sandbox does not know (made once per test process)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def assertion(sandbox: Sandbox, key: bytes | None = None, **claims: Any) -> str:
    payload: dict[str, Any] = {
        "iss": CLIENT_ID,
        "sub": USERNAME,
        "aud": "https://login.salesforce.com",
        "exp": int(time.time()) + 180,
    }
    payload.update(claims)
    payload = {name: value for name, value in payload.items() if value is not None}
    signing_key = key if key is not None else sandbox.jwt_private_key_file.read_bytes()
    return jwt.encode(payload, signing_key, algorithm="RS256")


def jwt_form(token: str) -> dict[str, str]:
    return {"grant_type": JWT_GRANT, "assertion": token}


@pytest.fixture
def redirect_logins(
    monkeypatch: pytest.MonkeyPatch, salesforce_sandbox: Sandbox
) -> list[tuple[str, Any]]:
    """Send simple-salesforce's SOAP and OAuth logins to the sandbox instead of
    ``https://{domain}.salesforce.com``; the list records (original URL, body) of each login."""
    sent: list[tuple[str, Any]] = []
    real_soap, real_token = sf_login.soap_login, sf_login.token_login

    def to_sandbox(url: str) -> str:
        return re.sub(r"^https://[^/]+\.salesforce\.com", salesforce_sandbox.instance_url, url)

    def soap(url: str, body: str, *rest: Any) -> Any:
        sent.append((url, body))
        return real_soap(to_sandbox(url), body, *rest)

    def token(url: str, data: dict[str, Any], *rest: Any) -> Any:
        sent.append((url, data))
        return real_token(to_sandbox(url), data, *rest)

    monkeypatch.setattr(sf_login, "soap_login", soap)
    monkeypatch.setattr(sf_login, "token_login", token)
    return sent


# -- password grant ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "password", [PASSWORD, PASSWORD + SECURITY_TOKEN], ids=["password", "password+token"]
)
def test_password_grant_answers_a_working_token(salesforce_sandbox: Sandbox, password: str) -> None:
    before_ms = int(time.time() * 1000)
    response = post_token(salesforce_sandbox, password_form(password))
    assert response.status_code == 200
    body = response.json()
    assert_token_answer(salesforce_sandbox, body, refresh=True, before_ms=before_ms)
    assert_session_works(salesforce_sandbox, body["access_token"])


def test_password_grant_gives_a_new_token_each_time(salesforce_sandbox: Sandbox) -> None:
    first = post_token(salesforce_sandbox, password_form()).json()
    second = post_token(salesforce_sandbox, password_form()).json()
    assert first["access_token"] != second["access_token"]
    assert first["refresh_token"] != second["refresh_token"]
    assert_session_works(salesforce_sandbox, first["access_token"])
    assert_session_works(salesforce_sandbox, second["access_token"])


def test_password_grant_through_simple_salesforce(
    salesforce_sandbox: Sandbox, redirect_logins: list[tuple[str, Any]]
) -> None:
    session_id, instance = sf_login.SalesforceLogin(
        username=USERNAME,
        password=PASSWORD,
        consumer_key=CLIENT_ID,
        consumer_secret=CLIENT_SECRET,
        session=trusting_session(salesforce_sandbox),
    )
    assert redirect_logins[0][0] == "https://login.salesforce.com/services/oauth2/token"
    assert instance == f"127.0.0.1:{salesforce_sandbox.port}"
    assert_session_works(salesforce_sandbox, session_id)


@pytest.mark.parametrize(
    "form",
    [
        password_form("wrong-password"),
        password_form(PASSWORD + "WRONGTOKEN"),
        password_form(SECURITY_TOKEN),
        password_form(username="someone@sandbox.example.com"),
        {key: value for key, value in password_form().items() if key != "password"},
    ],
    ids=["wrong-password", "wrong-token", "token-alone", "unknown-user", "no-password"],
)
def test_password_grant_refuses_bad_credentials(
    salesforce_sandbox: Sandbox, form: dict[str, str]
) -> None:
    response = post_token(salesforce_sandbox, form)
    assert_oauth_error(response, "invalid_grant", "authentication failure")


def test_password_grant_wrong_client_id(salesforce_sandbox: Sandbox) -> None:
    response = post_token(salesforce_sandbox, password_form(client_id="someone-else"))
    assert_oauth_error(response, "invalid_client_id", "client identifier invalid")


def test_password_grant_wrong_client_secret(salesforce_sandbox: Sandbox) -> None:
    response = post_token(salesforce_sandbox, password_form(client_secret="not-the-secret"))
    assert_oauth_error(response, "invalid_client", "invalid client credentials")


# -- client credentials --------------------------------------------------------------------
def test_client_credentials_with_basic_auth(salesforce_sandbox: Sandbox) -> None:
    before_ms = int(time.time() * 1000)
    response = post_token(
        salesforce_sandbox, {"grant_type": "client_credentials"}, auth=(CLIENT_ID, CLIENT_SECRET)
    )
    assert response.status_code == 200
    body = response.json()
    assert_token_answer(salesforce_sandbox, body, refresh=False, before_ms=before_ms)
    assert_session_works(salesforce_sandbox, body["access_token"])


def test_client_credentials_with_form_fields(salesforce_sandbox: Sandbox) -> None:
    before_ms = int(time.time() * 1000)
    response = post_token(
        salesforce_sandbox,
        {
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert_token_answer(salesforce_sandbox, body, refresh=False, before_ms=before_ms)
    assert_session_works(salesforce_sandbox, body["access_token"])


def test_client_credentials_through_simple_salesforce(
    salesforce_sandbox: Sandbox, redirect_logins: list[tuple[str, Any]]
) -> None:
    session_id, instance = sf_login.SalesforceLogin(
        consumer_key=CLIENT_ID,
        consumer_secret=CLIENT_SECRET,
        domain="acme.my",
        session=trusting_session(salesforce_sandbox),
    )
    assert redirect_logins == [
        (
            "https://acme.my.salesforce.com/services/oauth2/token",
            {"grant_type": "client_credentials"},
        )
    ]
    assert instance == f"127.0.0.1:{salesforce_sandbox.port}"
    assert_session_works(salesforce_sandbox, session_id)


@pytest.mark.parametrize(
    ("auth", "description"),
    [
        ((CLIENT_ID, "not-the-secret"), "invalid client credentials"),
        (("someone-else", CLIENT_SECRET), "client identifier invalid"),
        (None, "client identifier invalid"),
    ],
    ids=["wrong-secret", "wrong-id", "no-credentials"],
)
def test_client_credentials_refused(
    salesforce_sandbox: Sandbox, auth: tuple[str, str] | None, description: str
) -> None:
    response = post_token(salesforce_sandbox, {"grant_type": "client_credentials"}, auth=auth)
    assert_oauth_error(response, "invalid_client", description)


# -- JWT bearer ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "audience",
    ["https://login.salesforce.com", "https://test.salesforce.com", "instance"],
    ids=["login", "test", "sandbox-url"],
)
def test_jwt_bearer_grant(salesforce_sandbox: Sandbox, audience: str) -> None:
    aud = salesforce_sandbox.instance_url if audience == "instance" else audience
    before_ms = int(time.time() * 1000)
    response = post_token(salesforce_sandbox, jwt_form(assertion(salesforce_sandbox, aud=aud)))
    assert response.status_code == 200
    body = response.json()
    assert_token_answer(salesforce_sandbox, body, refresh=False, before_ms=before_ms)
    assert_session_works(salesforce_sandbox, body["access_token"])


@pytest.mark.parametrize("domain", ["login", "test"])
def test_jwt_bearer_through_simple_salesforce(
    salesforce_sandbox: Sandbox, redirect_logins: list[tuple[str, Any]], domain: str
) -> None:
    """simple-salesforce's own assertion (``exp`` sent as a string) is accepted."""
    session_id, instance = sf_login.SalesforceLogin(
        username=USERNAME,
        consumer_key=CLIENT_ID,
        privatekey_file=str(salesforce_sandbox.jwt_private_key_file),
        domain=domain,
        session=trusting_session(salesforce_sandbox),
    )
    url, data = redirect_logins[0]
    assert url == f"https://{domain}.salesforce.com/services/oauth2/token"
    assert data["grant_type"] == JWT_GRANT
    assert instance == f"127.0.0.1:{salesforce_sandbox.port}"
    assert_session_works(salesforce_sandbox, session_id)


def test_jwt_bearer_subject_is_case_insensitive(salesforce_sandbox: Sandbox) -> None:
    token = assertion(salesforce_sandbox, sub=USERNAME.upper())
    response = post_token(salesforce_sandbox, jwt_form(token))
    assert response.status_code == 200
    assert_session_works(salesforce_sandbox, response.json()["access_token"])


@pytest.mark.parametrize(
    ("make", "error", "description"),
    [
        (
            lambda sandbox: assertion(sandbox, key=other_private_key()),
            "invalid_grant",
            "invalid assertion",
        ),
        (
            lambda sandbox: assertion(sandbox, aud="https://example.com"),
            "invalid_grant",
            "audience is invalid",
        ),
        (
            lambda sandbox: assertion(sandbox, exp=int(time.time()) - 300),
            "invalid_grant",
            "expired authorization code",
        ),
        (
            lambda sandbox: assertion(sandbox, iss="someone-else"),
            "invalid_client_id",
            "client identifier invalid",
        ),
        (
            lambda sandbox: assertion(sandbox, sub="someone@sandbox.example.com"),
            "invalid_grant",
            "user hasn't approved this consumer",
        ),
        (
            lambda sandbox: assertion(sandbox, exp=None),
            "invalid_grant",
            "invalid assertion",
        ),
        (
            lambda sandbox: jwt.encode(
                {
                    "iss": CLIENT_ID,
                    "sub": USERNAME,
                    "aud": "https://login.salesforce.com",
                    "exp": int(time.time()) + 180,
                },
                CLIENT_SECRET * 2,
                algorithm="HS256",
            ),
            "invalid_grant",
            "invalid assertion",
        ),
        (lambda sandbox: "not-a-jwt", "invalid_grant", "invalid assertion"),
    ],
    ids=[
        "other-key",
        "wrong-aud",
        "expired",
        "wrong-iss",
        "unknown-sub",
        "no-exp",
        "hs256",
        "garbage",
    ],
)
def test_jwt_bearer_refused(
    salesforce_sandbox: Sandbox, make: Callable[[Sandbox], str], error: str, description: str
) -> None:
    response = post_token(salesforce_sandbox, jwt_form(make(salesforce_sandbox)))
    assert_oauth_error(response, error, description)


# -- refresh token -------------------------------------------------------------------------
@pytest.mark.parametrize("with_secret", [True, False], ids=["with-secret", "without-secret"])
def test_refresh_token_grant_gives_a_new_working_token(
    salesforce_sandbox: Sandbox, with_secret: bool
) -> None:
    first = post_token(salesforce_sandbox, password_form()).json()
    form = {
        "grant_type": "refresh_token",
        "client_id": CLIENT_ID,
        "refresh_token": first["refresh_token"],
    }
    if with_secret:
        form["client_secret"] = CLIENT_SECRET
    before_ms = int(time.time() * 1000)
    response = post_token(salesforce_sandbox, form)
    assert response.status_code == 200
    body = response.json()
    assert_token_answer(salesforce_sandbox, body, refresh=False, before_ms=before_ms)
    assert body["access_token"] != first["access_token"]
    assert_session_works(salesforce_sandbox, body["access_token"])
    assert_session_works(salesforce_sandbox, first["access_token"])


def test_refresh_token_unknown(salesforce_sandbox: Sandbox) -> None:
    response = post_token(
        salesforce_sandbox,
        {
            "grant_type": "refresh_token",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "refresh_token": "no-such-refresh-token",
        },
    )
    assert_oauth_error(response, "invalid_grant", "expired access/refresh token")


def test_refresh_token_wrong_client(salesforce_sandbox: Sandbox) -> None:
    first = post_token(salesforce_sandbox, password_form()).json()
    response = post_token(
        salesforce_sandbox,
        {
            "grant_type": "refresh_token",
            "client_id": "someone-else",
            "refresh_token": first["refresh_token"],
        },
    )
    assert_oauth_error(response, "invalid_client_id", "client identifier invalid")


@pytest.mark.parametrize("grant", ["authorization_code", "", "PASSWORD"])
def test_unsupported_grant_type(salesforce_sandbox: Sandbox, grant: str) -> None:
    response = post_token(salesforce_sandbox, {**password_form(), "grant_type": grant})
    assert_oauth_error(response, "unsupported_grant_type", "grant type not supported")


def test_token_endpoint_without_grant_type(salesforce_sandbox: Sandbox) -> None:
    response = post_token(salesforce_sandbox, {"client_id": CLIENT_ID})
    assert_oauth_error(response, "unsupported_grant_type", "grant type not supported")


# -- SOAP login ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("login_args", "password_element"),
    [
        (
            {"security_token": SECURITY_TOKEN},
            f"<n1:password>{PASSWORD}{SECURITY_TOKEN}</n1:password>",
        ),
        ({}, f"<urn:password>{PASSWORD}</urn:password>"),
        ({"organizationId": "00D5g0000000001"}, f"<urn:password>{PASSWORD}</urn:password>"),
    ],
    ids=["with-security-token", "without-security-token", "organization-id"],
)
def test_soap_login_as_simple_salesforce_sends_it(
    salesforce_sandbox: Sandbox,
    redirect_logins: list[tuple[str, Any]],
    login_args: dict[str, str],
    password_element: str,
) -> None:
    session_id, instance = sf_login.SalesforceLogin(
        username=USERNAME,
        password=PASSWORD,
        session=trusting_session(salesforce_sandbox),
        **login_args,
    )
    [(url, body)] = redirect_logins
    assert url == "https://login.salesforce.com/services/Soap/u/59.0"
    assert password_element in body
    assert instance == f"127.0.0.1:{salesforce_sandbox.port}"
    assert session_id.startswith("00D5g0000000001!")
    sf = Salesforce(
        instance=instance,
        session_id=session_id,
        version="59.0",
        session=trusting_session(salesforce_sandbox),
    )
    assert sf.query("SELECT Id FROM Account") == {"totalSize": 0, "done": True, "records": []}


def test_soap_login_with_soap_login_directly(salesforce_sandbox: Sandbox) -> None:
    """``soap_login`` on the body SalesforceLogin builds (security-token form)."""
    body = f"""<?xml version="1.0" encoding="utf-8" ?>
<env:Envelope
        xmlns:xsd="http://www.w3.org/2001/XMLSchema"
        xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
        xmlns:env="http://schemas.xmlsoap.org/soap/envelope/"
        xmlns:urn="urn:partner.soap.sforce.com">
    <env:Header>
        <urn:CallOptions>
            <urn:client>simple-salesforce</urn:client>
            <urn:defaultNamespace>sf</urn:defaultNamespace>
        </urn:CallOptions>
    </env:Header>
    <env:Body>
        <n1:login xmlns:n1="urn:partner.soap.sforce.com">
            <n1:username>{USERNAME}</n1:username>
            <n1:password>{PASSWORD}{SECURITY_TOKEN}</n1:password>
        </n1:login>
    </env:Body>
</env:Envelope>"""
    headers = {"content-type": "text/xml", "charset": "UTF-8", "SOAPAction": "login"}
    session_id, instance = sf_login.soap_login(
        f"{salesforce_sandbox.instance_url}/services/Soap/u/59.0",
        body,
        headers,
        None,
        trusting_session(salesforce_sandbox),
    )
    assert instance == f"127.0.0.1:{salesforce_sandbox.port}"
    assert_session_works(salesforce_sandbox, session_id)


def test_soap_login_answer(salesforce_sandbox: Sandbox) -> None:
    body = (
        '<?xml version="1.0" encoding="utf-8" ?><soapenv:Envelope '
        'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:urn="urn:partner.soap.sforce.com"><soapenv:Body><urn:login>'
        f"<urn:username>{USERNAME}</urn:username><urn:password>{PASSWORD}</urn:password>"
        "</urn:login></soapenv:Body></soapenv:Envelope>"
    )
    response = trusting_session(salesforce_sandbox).post(
        f"{salesforce_sandbox.instance_url}/services/Soap/u/59.0",
        data=body,
        headers={"content-type": "text/xml", "SOAPAction": "login"},
        timeout=10,
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/xml")
    text = response.text
    server_url = f"{salesforce_sandbox.instance_url}/services/Soap/u/59.0/00D5g0000000001"
    assert f"<serverUrl>{server_url}</serverUrl>" in text
    assert f"<userId>{USER_ID}</userId>" in text
    assert f"<organizationId>{ORG_ID}</organizationId>" in text
    assert f"<userName>{USERNAME}</userName>" in text
    assert "<passwordExpired>false</passwordExpired>" in text


@pytest.mark.parametrize(
    "login_args",
    [
        {"username": USERNAME, "password": "wrong-password", "security_token": SECURITY_TOKEN},
        {"username": USERNAME, "password": PASSWORD, "security_token": "WRONGTOKEN"},
        {"username": USERNAME, "password": "wrong-password"},
        {"username": "someone@sandbox.example.com", "password": PASSWORD},
    ],
    ids=["wrong-password", "wrong-token", "wrong-password-no-token", "unknown-user"],
)
def test_soap_login_refused(
    salesforce_sandbox: Sandbox,
    redirect_logins: list[tuple[str, Any]],
    login_args: dict[str, str],
) -> None:
    with pytest.raises(SalesforceAuthenticationFailed) as failed:
        sf_login.SalesforceLogin(session=trusting_session(salesforce_sandbox), **login_args)
    assert failed.value.code == "INVALID_LOGIN"
    assert failed.value.auth_message == SOAP_LOGIN_FAILURE


def test_soap_login_malformed_body(salesforce_sandbox: Sandbox) -> None:
    with pytest.raises(SalesforceAuthenticationFailed) as failed:
        sf_login.soap_login(
            f"{salesforce_sandbox.instance_url}/services/Soap/u/59.0",
            "this is not xml",
            {"content-type": "text/xml", "SOAPAction": "login"},
            None,
            trusting_session(salesforce_sandbox),
        )
    assert failed.value.code == "INVALID_LOGIN"
    assert failed.value.auth_message == "Invalid login request"


# -- bearer checks -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer ", "Bearer no-such-session", "Basic dXNlcjpwYXNz"],
    ids=["missing", "empty", "scheme-only", "scheme-space", "unknown", "basic"],
)
def test_missing_or_unknown_bearer_is_refused(
    salesforce_sandbox: Sandbox, authorization: str | None
) -> None:
    response = get_limits(salesforce_sandbox, authorization)
    assert response.status_code == 401
    assert response.json() == INVALID_SESSION


def test_known_session_with_bearer_and_oauth_schemes(salesforce_sandbox: Sandbox) -> None:
    session_id = salesforce_sandbox.session_id
    assert get_limits(salesforce_sandbox, f"Bearer {session_id}").status_code == 200
    assert get_limits(salesforce_sandbox, f"OAuth {session_id}").status_code == 200


def test_simple_salesforce_raises_expired_session_on_unknown_session(
    salesforce_sandbox: Sandbox,
) -> None:
    sf = client(salesforce_sandbox, "00D5g0000000001!no-such-session")
    with pytest.raises(SalesforceExpiredSession) as expired:
        sf.query("SELECT Id FROM Account")
    assert expired.value.status == 401
    assert expired.value.content == INVALID_SESSION


@pytest.mark.sandbox(session_ttl=1)
def test_session_expires_after_ttl_without_use(salesforce_sandbox: Sandbox) -> None:
    """A session used within the TTL stays alive; one left unused for longer expires."""
    busy = salesforce_sandbox.session_id
    idle = post_token(salesforce_sandbox, password_form()).json()["access_token"]
    time.sleep(0.6)
    assert get_limits(salesforce_sandbox, f"Bearer {busy}").status_code == 200
    time.sleep(0.6)
    # 1.2 s since the idle session was made, 0.6 s since the busy one was last used
    assert get_limits(salesforce_sandbox, f"Bearer {busy}").status_code == 200
    response = get_limits(salesforce_sandbox, f"Bearer {idle}")
    assert response.status_code == 401
    assert response.json() == INVALID_SESSION
    with pytest.raises(SalesforceExpiredSession):
        client(salesforce_sandbox, idle).query("SELECT Id FROM Account")
    # once expired it stays expired
    assert get_limits(salesforce_sandbox, f"Bearer {idle}").status_code == 401


def test_expire_endpoint_ends_all_sessions(salesforce_sandbox: Sandbox, sf: Salesforce) -> None:
    answer = post_token(salesforce_sandbox, password_form()).json()
    other = answer["access_token"]
    assert_session_works(salesforce_sandbox, other)
    response = trusting_session(salesforce_sandbox).post(
        f"{salesforce_sandbox.instance_url}/sandbox/sessions/expire",
        headers={"Authorization": f"Bearer {salesforce_sandbox.session_id}"},
        timeout=10,
    )
    assert response.status_code == 200
    assert response.json() == {"expired": 2}
    with pytest.raises(SalesforceExpiredSession) as expired:
        sf.query("SELECT Id FROM Account")
    assert expired.value.content == INVALID_SESSION
    assert get_limits(salesforce_sandbox, f"Bearer {other}").json() == INVALID_SESSION
    again = trusting_session(salesforce_sandbox).post(
        f"{salesforce_sandbox.instance_url}/sandbox/sessions/expire",
        headers={"Authorization": f"Bearer {salesforce_sandbox.session_id}"},
        timeout=10,
    )
    assert again.status_code == 401
    assert again.json() == INVALID_SESSION
    # a refresh token outlives the sessions and gives a working one
    refreshed = post_token(
        salesforce_sandbox,
        {
            "grant_type": "refresh_token",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "refresh_token": answer["refresh_token"],
        },
    )
    assert refreshed.status_code == 200
    assert_session_works(salesforce_sandbox, refreshed.json()["access_token"])


def test_simple_salesforce_logs_in_again_after_sessions_expire(
    salesforce_sandbox: Sandbox, redirect_logins: list[tuple[str, Any]]
) -> None:
    """A SOAP-logged-in client reads the 401 list body and logs in again transparently."""
    sf = Salesforce(
        username=USERNAME,
        password=PASSWORD,
        security_token=SECURITY_TOKEN,
        version="59.0",
        session=trusting_session(salesforce_sandbox),
    )
    first_session = sf.session_id
    assert sf.query("SELECT Id FROM Account")["totalSize"] == 0
    salesforce_sandbox.sessions.expire_all()
    assert sf.query("SELECT Id FROM Account")["totalSize"] == 0
    assert sf.session_id != first_session
    assert len(redirect_logins) == 2
