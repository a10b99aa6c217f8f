"""Logging in to the sandbox every way the connector can, and every way it can go wrong."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
import trustme
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pydantic import SecretStr, ValidationError
from simple_salesforce import Salesforce

from connector.crm.client import SalesforceClient, http_session
from connector.crm.login import (
    ASSERTION_LIFETIME,
    SalesforceSession,
    _assertion,
    auth_kind,
    jwt_audience,
    login,
)
from connector.errors import ConfigError, CrmError, LoginError
from connector.settings import SalesforceSettings, load_settings
from sandbox.salesforce.auth import Credentials
from sandbox.salesforce.server import Sandbox
from sandbox.salesforce.testing import connect
from tests.crm.helpers import (
    CLIENT_ID,
    CLIENT_SECRET,
    ENV_NAMES,
    PASSWORD,
    SECURITY_TOKEN,
    USERNAME,
    base_settings,
    client_credentials_settings,
    closed_port,
    expire_sessions,
    jwt_settings,
    oauth_password_settings,
    session_settings,
    soap_password_settings,
)

SettingsFor = Callable[..., SalesforceSettings]
KINDS: dict[str, SettingsFor] = {
    "session": session_settings,
    "jwt": jwt_settings,
    "password-oauth": oauth_password_settings,
    "password-soap": soap_password_settings,
    "client_credentials": client_credentials_settings,
}
SOAP_FAILURE = "INVALID_LOGIN Invalid username, password, security token; or user locked out."
NO_LOGIN = (
    "no Salesforce login is configured: set CONNECTOR_SALESFORCE__INSTANCE_URL and "
    "CONNECTOR_SALESFORCE__SESSION_ID, or a private key (jwt), a password, or a client secret"
)


# -- helpers -------------------------------------------------------------------------------
def account_count(sandbox: Sandbox) -> int:
    return int(connect(sandbox).query("SELECT COUNT() FROM Account")["totalSize"])


def query_with(session: SalesforceSession, settings: SalesforceSettings) -> int:
    """Accounts counted through simple-salesforce on ``session``."""
    sf = Salesforce(
        instance_url=session.instance_url,
        session_id=session.session_id,
        version=settings.api_version,
        session=http_session(settings),
    )
    return int(sf.query("SELECT COUNT() FROM Account")["totalSize"])


def do_login(settings: SalesforceSettings) -> SalesforceSession:
    return login(settings, http_session(settings))


def write_key(path: Path, key: Any, encryption: Any = None) -> Path:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            encryption or serialization.NoEncryption(),
        )
    )
    return path


# -- every login kind ----------------------------------------------------------------------
@pytest.mark.sandbox(seed="demo")
@pytest.mark.parametrize("kind", list(KINDS))
def test_each_login_kind_gives_a_session_that_queries(
    salesforce_sandbox: Sandbox, kind: str
) -> None:
    settings = KINDS[kind](salesforce_sandbox)
    session = do_login(settings)
    assert session.instance_url == salesforce_sandbox.instance_url
    assert session.session_id
    expected = account_count(salesforce_sandbox)
    assert expected == 50
    assert query_with(session, settings) == expected


@pytest.mark.sandbox(seed="demo")
@pytest.mark.parametrize("kind", list(KINDS))
def test_each_login_kind_through_the_client(salesforce_sandbox: Sandbox, kind: str) -> None:
    client = SalesforceClient(KINDS[kind](salesforce_sandbox))
    for _ in range(3):
        answer = client.call("count", lambda sf: sf.query("SELECT COUNT() FROM Account"))
        assert answer["totalSize"] == 50
    assert (client.logins, client.calls, client.retries) == (1, 3, 0)


def test_session_login_uses_the_configured_session_as_it_is(salesforce_sandbox: Sandbox) -> None:
    session = do_login(session_settings(salesforce_sandbox))
    assert session == SalesforceSession(
        salesforce_sandbox.instance_url, salesforce_sandbox.session_id
    )


def test_token_logins_open_new_sessions(salesforce_sandbox: Sandbox) -> None:
    ids = {
        do_login(make(salesforce_sandbox)).session_id
        for name, make in KINDS.items()
        if name != "session"
    }
    assert len(ids) == 4
    assert salesforce_sandbox.session_id not in ids


# -- auth="auto" ---------------------------------------------------------------------------
EVERYTHING: dict[str, Any] = {
    "instance_url": "https://example.my.salesforce.com",
    "session_id": "00D!session",
    "username": USERNAME,
    "private_key_file": "/keys/salesforce.pem",
    "client_id": CLIENT_ID,
    "password": PASSWORD,
    "client_secret": CLIENT_SECRET,
}


@pytest.mark.parametrize(
    ("without", "expected"),
    [
        ((), "session"),
        (("session_id",), "jwt"),
        (("session_id", "private_key_file"), "password"),
        (("session_id", "private_key_file", "password"), "client_credentials"),
    ],
)
def test_auto_picks_session_then_jwt_then_password_then_client_credentials(
    without: tuple[str, ...], expected: str
) -> None:
    values = {key: value for key, value in EVERYTHING.items() if key not in without}
    assert auth_kind(SalesforceSettings(**values)) == expected


@pytest.mark.parametrize("kind", ["jwt", "password", "client_credentials", "session"])
def test_an_explicit_kind_wins_over_auto(kind: str) -> None:
    assert auth_kind(SalesforceSettings(auth=kind, **EVERYTHING)) == kind


def test_auto_with_nothing_configured_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        auth_kind(SalesforceSettings())
    assert str(caught.value) == NO_LOGIN
    with pytest.raises(ConfigError) as caught:
        login(SalesforceSettings(), http_session(SalesforceSettings()))
    assert str(caught.value) == NO_LOGIN


def test_auto_uses_the_session_before_anything_else(salesforce_sandbox: Sandbox) -> None:
    settings = base_settings(
        salesforce_sandbox,
        instance_url=salesforce_sandbox.instance_url,
        session_id=salesforce_sandbox.session_id,
        username=USERNAME,
        client_id=CLIENT_ID,
        private_key_file="/nowhere/key.pem",  # would fail if jwt were tried
        password="wrong",  # would fail if password were tried
        client_secret="wrong",
    )
    assert do_login(settings).session_id == salesforce_sandbox.session_id


def test_auto_uses_jwt_before_a_password(salesforce_sandbox: Sandbox) -> None:
    settings = base_settings(
        salesforce_sandbox,
        username=USERNAME,
        client_id=CLIENT_ID,
        private_key_file=str(salesforce_sandbox.jwt_private_key_file),
        password="wrong",  # a password login would be refused
        client_secret="wrong",
    )
    session = do_login(settings)
    assert query_with(session, settings) == account_count(salesforce_sandbox)


def test_auto_uses_a_password_before_client_credentials(salesforce_sandbox: Sandbox) -> None:
    # No client id: the password goes through SOAP; client credentials would need the id.
    settings = base_settings(
        salesforce_sandbox, username=USERNAME, password=PASSWORD, client_secret="wrong"
    )
    session = do_login(settings)
    assert query_with(session, settings) == account_count(salesforce_sandbox)


def test_auto_falls_back_to_client_credentials(salesforce_sandbox: Sandbox) -> None:
    settings = base_settings(salesforce_sandbox, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    session = do_login(settings)
    assert query_with(session, settings) == account_count(salesforce_sandbox)


# -- password: SOAP or OAuth, and the security token -------------------------------------
def test_password_without_a_connected_app_goes_through_soap(salesforce_sandbox: Sandbox) -> None:
    # A client id alone (no secret) is not a connected app login either: still SOAP.
    for extra in ({}, {"client_id": CLIENT_ID}, {"client_secret": CLIENT_SECRET}):
        settings = soap_password_settings(salesforce_sandbox, password="wrong", **extra)
        url = f"{salesforce_sandbox.instance_url}/services/Soap/u/59.0"
        with pytest.raises(LoginError) as caught:
            do_login(settings)
        assert str(caught.value) == f"Salesforce refused the SOAP login at {url}: {SOAP_FAILURE}"
        assert (caught.value.code, caught.value.status) == ("INVALID_LOGIN", 500)


def test_password_with_a_connected_app_uses_the_oauth_password_grant(
    salesforce_sandbox: Sandbox,
) -> None:
    # The OAuth grant checks the app's secret: a wrong one is refused even with a good password.
    settings = oauth_password_settings(salesforce_sandbox, client_secret="wrong-secret")
    url = f"{salesforce_sandbox.instance_url}/services/oauth2/token"
    with pytest.raises(LoginError) as caught:
        do_login(settings)
    assert str(caught.value) == (
        f"Salesforce refused the password login at {url}: invalid_client invalid client credentials"
    )
    assert (caught.value.code, caught.value.status) == ("invalid_client", 400)


def test_soap_login_uses_the_api_version(salesforce_sandbox: Sandbox) -> None:
    settings = soap_password_settings(salesforce_sandbox, api_version="61.0", password="wrong")
    with pytest.raises(LoginError, match=r"/services/Soap/u/61\.0: INVALID_LOGIN"):
        do_login(settings)


@pytest.mark.parametrize("make", [soap_password_settings, oauth_password_settings])
@pytest.mark.parametrize(
    ("password", "token", "accepted"),
    [
        (PASSWORD, SECURITY_TOKEN, True),
        (PASSWORD, "", True),  # the sandbox trusts the loopback range, as an org trusts an IP
        ("sandbox-pass", "word", True),  # the token is appended to the password
        (PASSWORD, "WRONGTOKEN", False),
        ("word", "sandbox-pass", False),  # appended, not prepended
        ("wrong", SECURITY_TOKEN, False),
    ],
)
def test_the_security_token_is_appended_to_the_password(
    salesforce_sandbox: Sandbox, make: SettingsFor, password: str, token: str, accepted: bool
) -> None:
    settings = make(salesforce_sandbox, password=password, security_token=token)
    if accepted:
        assert query_with(do_login(settings), settings) == account_count(salesforce_sandbox)
    else:
        with pytest.raises(LoginError):
            do_login(settings)


@pytest.mark.sandbox(credentials=Credentials(password="p&<x>'\"]]>"))
@pytest.mark.parametrize("make", [soap_password_settings, oauth_password_settings])
def test_passwords_with_markup_characters_log_in(
    salesforce_sandbox: Sandbox, make: SettingsFor
) -> None:
    settings = make(salesforce_sandbox, password="p&<x>'\"]]>")
    assert query_with(do_login(settings), settings) == 0


# -- JWT -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("login_url", "audience"),
    [
        ("https://login.salesforce.com", "https://login.salesforce.com"),
        ("https://test.salesforce.com", "https://test.salesforce.com"),
        ("https://acme.my.salesforce.com", "https://login.salesforce.com"),
        ("https://ACME.My.Salesforce.com/", "https://login.salesforce.com"),
        ("https://acme--uat.sandbox.my.salesforce.com", "https://test.salesforce.com"),
        ("https://127.0.0.1:8443", "https://127.0.0.1:8443"),
        ("https://localhost:8443/", "https://localhost:8443"),
    ],
)
def test_jwt_audience_follows_the_login_url(login_url: str, audience: str) -> None:
    assert jwt_audience(SalesforceSettings(login_url=login_url)) == audience


@pytest.mark.parametrize(
    "login_url",
    ["https://acme.my.salesforce.com", "https://acme--uat.sandbox.my.salesforce.com"],
)
def test_an_explicit_jwt_audience_wins(login_url: str) -> None:
    settings = SalesforceSettings(login_url=login_url, jwt_audience="https://audience.example")
    assert jwt_audience(settings) == "https://audience.example"


def test_the_assertion_carries_issuer_subject_audience_and_a_short_expiry(
    salesforce_sandbox: Sandbox,
) -> None:
    settings = jwt_settings(salesforce_sandbox)
    before = int(time.time())
    claims = jwt.decode(
        _assertion(settings),
        (salesforce_sandbox.state_dir / "jwt-public.pem").read_bytes(),
        algorithms=["RS256"],
        audience=salesforce_sandbox.instance_url,
    )
    assert claims["iss"] == CLIENT_ID
    assert claims["sub"] == USERNAME
    assert claims["aud"] == salesforce_sandbox.instance_url
    assert before + ASSERTION_LIFETIME <= claims["exp"] <= int(time.time()) + ASSERTION_LIFETIME
    assert set(claims) == {"iss", "sub", "aud", "exp"}


@pytest.mark.parametrize(
    "audience", ["https://login.salesforce.com", "https://test.salesforce.com"]
)
def test_jwt_login_with_an_explicit_audience_the_org_accepts(
    salesforce_sandbox: Sandbox, audience: str
) -> None:
    settings = jwt_settings(salesforce_sandbox, jwt_audience=audience)
    assert query_with(do_login(settings), settings) == account_count(salesforce_sandbox)


def test_jwt_login_with_an_audience_the_org_refuses(salesforce_sandbox: Sandbox) -> None:
    settings = jwt_settings(salesforce_sandbox, jwt_audience="https://elsewhere.example")
    url = f"{salesforce_sandbox.instance_url}/services/oauth2/token"
    with pytest.raises(LoginError) as caught:
        do_login(settings)
    assert str(caught.value) == (
        f"Salesforce refused the jwt-bearer login at {url}: invalid_grant audience is invalid"
    )
    assert (caught.value.code, caught.value.status) == ("invalid_grant", 400)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"username": "someone@else.example"}, "invalid_grant user hasn't approved this consumer"),
        ({"client_id": "another-app"}, "invalid_client_id client identifier invalid"),
    ],
)
def test_jwt_login_refused_for_another_user_or_app(
    salesforce_sandbox: Sandbox, overrides: dict[str, str], message: str
) -> None:
    url = f"{salesforce_sandbox.instance_url}/services/oauth2/token"
    with pytest.raises(LoginError) as caught:
        do_login(jwt_settings(salesforce_sandbox, **overrides))
    assert str(caught.value) == f"Salesforce refused the jwt-bearer login at {url}: {message}"


def test_jwt_signed_with_another_key_is_refused(
    salesforce_sandbox: Sandbox, tmp_path: Path
) -> None:
    other = write_key(
        tmp_path / "other.pem", rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    with pytest.raises(LoginError) as caught:
        do_login(jwt_settings(salesforce_sandbox, private_key_file=str(other)))
    assert caught.value.code == "invalid_grant"
    assert str(caught.value).endswith(": invalid_grant invalid assertion")


# -- refused logins ------------------------------------------------------------------------
def test_wrong_password_with_oauth_names_the_login_url_and_invalid_grant(
    salesforce_sandbox: Sandbox,
) -> None:
    settings = oauth_password_settings(salesforce_sandbox, password="not-the-password")
    with pytest.raises(LoginError) as caught:
        do_login(settings)
    url = f"{salesforce_sandbox.instance_url}/services/oauth2/token"
    assert str(caught.value) == (
        f"Salesforce refused the password login at {url}: invalid_grant authentication failure"
    )
    assert (caught.value.code, caught.value.status) == ("invalid_grant", 400)
    assert "not-the-password" not in str(caught.value)
    assert CLIENT_SECRET not in str(caught.value)


def test_wrong_password_with_soap_names_the_login_url_and_invalid_login(
    salesforce_sandbox: Sandbox,
) -> None:
    settings = soap_password_settings(salesforce_sandbox, password="not-the-password")
    with pytest.raises(LoginError) as caught:
        do_login(settings)
    url = f"{salesforce_sandbox.instance_url}/services/Soap/u/59.0"
    assert str(caught.value) == f"Salesforce refused the SOAP login at {url}: {SOAP_FAILURE}"
    assert "not-the-password" not in str(caught.value)


def test_wrong_client_secret_for_client_credentials(salesforce_sandbox: Sandbox) -> None:
    settings = client_credentials_settings(salesforce_sandbox, client_secret="wrong-secret")
    url = f"{salesforce_sandbox.instance_url}/services/oauth2/token"
    with pytest.raises(LoginError) as caught:
        do_login(settings)
    assert str(caught.value) == (
        f"Salesforce refused the client_credentials login at {url}: "
        "invalid_client invalid client credentials"
    )
    assert "wrong-secret" not in str(caught.value)


def test_a_login_url_that_is_not_salesforce(salesforce_sandbox: Sandbox) -> None:
    login_url = f"{salesforce_sandbox.instance_url}/nowhere"
    with pytest.raises(LoginError) as caught:
        do_login(oauth_password_settings(salesforce_sandbox, login_url=login_url))
    assert str(caught.value) == (
        f"Salesforce refused the password login at {login_url}/services/oauth2/token: 404"
    )
    assert (caught.value.code, caught.value.status) == (None, 404)
    with pytest.raises(LoginError) as caught:
        do_login(soap_password_settings(salesforce_sandbox, login_url=login_url))
    assert str(caught.value) == (
        f"Salesforce answered the SOAP login at {login_url}/services/Soap/u/59.0 "
        "with 404 and no XML"
    )


def test_a_token_endpoint_that_answers_xml(salesforce_sandbox: Sandbox) -> None:
    # Under the SOAP endpoint the form is not XML: the sandbox answers a SOAP fault (500).
    login_url = f"{salesforce_sandbox.instance_url}/services/Soap/u/59.0"
    with pytest.raises(LoginError) as caught:
        do_login(oauth_password_settings(salesforce_sandbox, login_url=login_url))
    assert str(caught.value) == (
        f"Salesforce refused the password login at {login_url}/services/oauth2/token: 500"
    )
    assert (caught.value.code, caught.value.status) == (None, 500)


@pytest.mark.parametrize(
    ("make", "path"),
    [
        (oauth_password_settings, "/services/oauth2/token"),
        (soap_password_settings, "/services/Soap/u/59.0"),
        (jwt_settings, "/services/oauth2/token"),
        (client_credentials_settings, "/services/oauth2/token"),
    ],
)
def test_an_unreachable_login_url_is_a_login_error(
    salesforce_sandbox: Sandbox, make: SettingsFor, path: str
) -> None:
    login_url = f"https://127.0.0.1:{closed_port()}"
    with pytest.raises(LoginError) as caught:
        do_login(make(salesforce_sandbox, login_url=login_url))
    assert str(caught.value).startswith(f"cannot reach {login_url}{path}: ")
    assert (caught.value.code, caught.value.status) == (None, None)


def test_an_unreachable_login_url_through_the_client(salesforce_sandbox: Sandbox) -> None:
    login_url = f"https://127.0.0.1:{closed_port()}"
    client = SalesforceClient(oauth_password_settings(salesforce_sandbox, login_url=login_url))
    with pytest.raises(LoginError, match=f"^cannot reach {login_url}/services/oauth2/token: "):
        client.call("query", lambda sf: sf.query("SELECT Id FROM Account"))
    assert (client.logins, client.calls) == (0, 0)


# -- the private key -----------------------------------------------------------------------
def test_a_missing_private_key_file_is_a_config_error(
    salesforce_sandbox: Sandbox, tmp_path: Path
) -> None:
    missing = tmp_path / "missing.pem"
    with pytest.raises(ConfigError) as caught:
        do_login(jwt_settings(salesforce_sandbox, private_key_file=str(missing)))
    assert str(caught.value) == (
        f"salesforce.private_key_file: cannot read {missing}: No such file or directory"
    )


def test_a_directory_as_private_key_file_is_a_config_error(
    salesforce_sandbox: Sandbox, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError) as caught:
        do_login(jwt_settings(salesforce_sandbox, private_key_file=str(tmp_path)))
    assert (
        str(caught.value) == f"salesforce.private_key_file: cannot read {tmp_path}: Is a directory"
    )


def test_a_private_key_path_through_a_file_is_a_config_error(
    salesforce_sandbox: Sandbox, tmp_path: Path
) -> None:
    (tmp_path / "keys").write_text("a file, not a directory")
    path = tmp_path / "keys" / "salesforce.pem"
    with pytest.raises(ConfigError) as caught:
        do_login(jwt_settings(salesforce_sandbox, private_key_file=str(path)))
    assert str(caught.value) == f"salesforce.private_key_file: cannot read {path}: Not a directory"


def _garbage(tmp_path: Path) -> Path:
    path = tmp_path / "garbage.pem"
    path.write_bytes(b"-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n")
    return path


def _empty(tmp_path: Path) -> Path:
    path = tmp_path / "empty.pem"
    path.write_bytes(b"")
    return path


def _certificate(tmp_path: Path) -> Path:
    path = tmp_path / "certificate.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    return path


def _ec_key(tmp_path: Path) -> Path:
    return write_key(tmp_path / "ec.pem", ec.generate_private_key(ec.SECP256R1()))


def _encrypted_key(tmp_path: Path) -> Path:
    return write_key(
        tmp_path / "encrypted.pem",
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
        serialization.BestAvailableEncryption(b"passphrase"),
    )


def _public_key(tmp_path: Path) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "public.pem"
    path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return path


@pytest.mark.parametrize(
    "make_key",
    [_garbage, _empty, _certificate, _ec_key, _encrypted_key, _public_key],
    ids=["garbage", "empty", "certificate", "ec-key", "encrypted-key", "public-key"],
)
def test_a_private_key_that_is_not_a_usable_rsa_key_is_a_config_error(
    salesforce_sandbox: Sandbox, tmp_path: Path, make_key: Callable[[Path], Path]
) -> None:
    path = make_key(tmp_path)
    with pytest.raises(ConfigError) as caught:
        do_login(jwt_settings(salesforce_sandbox, private_key_file=str(path)))
    assert str(caught.value).startswith(
        f"salesforce.private_key_file: {path} is not a usable RSA private key ("
    )


# -- missing settings ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("settings", "kind", "missing"),
    [
        ({"auth": "session"}, "session", ["instance_url", "session_id"]),
        ({"session_id": "00D!x"}, "session", ["instance_url"]),
        (
            {"auth": "session", "instance_url": "https://acme.my.salesforce.com"},
            "session",
            ["session_id"],
        ),
        ({"auth": "jwt"}, "jwt", ["username", "client_id", "private_key_file"]),
        ({"private_key_file": "/keys/k.pem"}, "jwt", ["username", "client_id"]),
        ({"auth": "password"}, "password", ["username", "password"]),
        ({"password": PASSWORD}, "password", ["username"]),
        ({"auth": "client_credentials"}, "client_credentials", ["client_id", "client_secret"]),
        ({"client_secret": CLIENT_SECRET}, "client_credentials", ["client_id"]),
    ],
)
def test_missing_settings_are_named_with_their_environment_variables(
    settings: dict[str, str], kind: str, missing: list[str]
) -> None:
    config = SalesforceSettings(**settings)
    with pytest.raises(ConfigError) as caught:
        login(config, http_session(config))
    names = ", ".join(f"salesforce.{name} ({ENV_NAMES[name]})" for name in missing)
    assert str(caught.value) == f"{kind} login needs {names}"


# -- settings validation -------------------------------------------------------------------
@pytest.mark.parametrize("field", ["login_url", "instance_url"])
@pytest.mark.parametrize("url", ["http://login.salesforce.com", "login.salesforce.com"])
def test_urls_other_than_https_are_refused(field: str, url: str) -> None:
    with pytest.raises(ValidationError) as caught:
        SalesforceSettings(**{field: url})
    assert (
        f"must be an https:// URL (Salesforce speaks TLS only), not {url}"
        in caught.value.errors()[0]["msg"]
    )


def test_an_http_login_url_in_the_configuration_names_the_key_and_variable() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(salesforce={"login_url": "http://test.salesforce.com"})
    assert (
        "  salesforce.login_url (CONNECTOR_SALESFORCE__LOGIN_URL): must be an https:// URL "
        "(Salesforce speaks TLS only), not http://test.salesforce.com"
    ) in str(caught.value).splitlines()


def test_urls_are_trimmed() -> None:
    settings = SalesforceSettings(
        login_url="  https://test.salesforce.com/ ", instance_url="https://acme.my.salesforce.com/"
    )
    assert settings.login_url == "https://test.salesforce.com"
    assert settings.instance_url == "https://acme.my.salesforce.com"


# -- secrets stay secret -------------------------------------------------------------------
def test_the_session_id_is_not_in_the_repr_of_a_session() -> None:
    session = SalesforceSession("https://acme.my.salesforce.com", "00D!very-secret-session")
    assert repr(session) == "SalesforceSession(instance_url='https://acme.my.salesforce.com')"
    assert "very-secret" not in str(session)
    assert session.session_id == "00D!very-secret-session"


def test_the_session_id_is_not_in_the_repr_of_settings(salesforce_sandbox: Sandbox) -> None:
    settings = session_settings(salesforce_sandbox, password=PASSWORD, client_secret=CLIENT_SECRET)
    for text in (repr(settings), str(settings)):
        assert salesforce_sandbox.session_id not in text
        assert PASSWORD not in text
        assert CLIENT_SECRET not in text
    assert settings.session_id == SecretStr(salesforce_sandbox.session_id)


@pytest.mark.parametrize("make", [oauth_password_settings, soap_password_settings])
def test_a_login_error_never_shows_a_session_id(
    salesforce_sandbox: Sandbox, make: SettingsFor
) -> None:
    settings = make(salesforce_sandbox, password="wrong", session_id=salesforce_sandbox.session_id)
    with pytest.raises(LoginError) as caught:
        do_login(settings)
    assert salesforce_sandbox.session_id not in str(caught.value)
    assert salesforce_sandbox.session_id not in repr(caught.value)


def test_an_expired_session_error_never_shows_the_session_id(
    salesforce_sandbox: Sandbox,
) -> None:
    client = SalesforceClient(session_settings(salesforce_sandbox, max_relogins=0))
    expire_sessions(salesforce_sandbox)
    with pytest.raises(CrmError) as caught:
        client.call("query", lambda sf: sf.query("SELECT Id FROM Account"))
    assert salesforce_sandbox.session_id not in str(caught.value)
    assert salesforce_sandbox.session_id not in repr(caught.value)


@pytest.mark.parametrize("kind", list(KINDS))
def test_no_secret_is_logged(
    salesforce_sandbox: Sandbox, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    client = SalesforceClient(KINDS[kind](salesforce_sandbox))
    client.call("query", lambda sf: sf.query("SELECT Id FROM Account"))
    secrets = {salesforce_sandbox.session_id, client.sf.session_id, PASSWORD, CLIENT_SECRET}
    for secret in secrets:
        assert secret not in caplog.text
