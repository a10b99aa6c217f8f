"""Logging in to Salesforce, every way an integration does.

- ``jwt``: the OAuth 2.0 JWT bearer flow, what production integrations use: an assertion
  (``iss`` the connected app, ``sub`` the user, ``aud`` the login host) signed RS256 with the
  private key whose certificate the connected app holds.
- ``password``: the OAuth username-password flow when a connected app is configured, else SOAP
  login; the security token is appended to the password.
- ``client_credentials``: the OAuth client credentials flow (My Domain login URLs).
- ``session``: an instance URL and a session id used as they are.

simple-salesforce can only reach ``https://{domain}.salesforce.com``; these requests go to the
configured login URL instead (a My Domain, a sandbox, or the local sandbox), then the session is
handed to simple-salesforce. Credentials and tokens are never logged.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

import jwt
import requests
from defusedxml import ElementTree

from connector.errors import ConfigError, LoginError
from connector.settings import SalesforceSettings

TOKEN_PATH = "/services/oauth2/token"  # noqa: S105 - a URL path, not a secret
ASSERTION_LIFETIME = 180  # seconds; Salesforce accepts at most a few minutes
SOAP_NS = {
    "soapenv": "http://schemas.xmlsoap.org/soap/envelope/",
    "p": "urn:partner.soap.sforce.com",
    "sf": "urn:fault.partner.soap.sforce.com",
}


@dataclass(frozen=True)
class SalesforceSession:
    instance_url: str
    session_id: str = field(repr=False)


def auth_kind(settings: SalesforceSettings) -> str:
    """The login to use: the configured one, or the one the settings make possible."""
    if settings.auth != "auto":
        return settings.auth
    if settings.session_id.get_secret_value():
        return "session"
    if settings.private_key_file:
        return "jwt"
    if settings.password.get_secret_value():
        return "password"
    if settings.client_secret.get_secret_value():
        return "client_credentials"
    raise ConfigError(
        "no Salesforce login is configured: set CONNECTOR_SALESFORCE__INSTANCE_URL and "
        "CONNECTOR_SALESFORCE__SESSION_ID, or a private key (jwt), a password, or a client secret"
    )


# The settings each login needs.
REQUIRED: dict[str, tuple[str, ...]] = {
    "session": ("instance_url", "session_id"),
    "jwt": ("username", "client_id", "private_key_file"),
    "password": ("username", "password"),
    "client_credentials": ("client_id", "client_secret"),
}


def check_settings(settings: SalesforceSettings) -> None:
    """Raise the configuration error a login would, without logging in: a login is chosen,
    it has what it needs, and a JWT bearer's private key signs."""
    kind = auth_kind(settings)
    _require(settings, kind, *REQUIRED[kind])
    if kind == "jwt":
        _assertion(settings)


def _require(settings: SalesforceSettings, kind: str, *names: str) -> None:
    missing = []
    for name in names:
        value = getattr(settings, name)
        text = value.get_secret_value() if hasattr(value, "get_secret_value") else value
        if not text:
            missing.append(f"salesforce.{name} (CONNECTOR_SALESFORCE__{name.upper()})")
    if missing:
        raise ConfigError(f"{kind} login needs {', '.join(missing)}")


def jwt_audience(settings: SalesforceSettings) -> str:
    if settings.jwt_audience:
        return settings.jwt_audience
    host = settings.login_url.lower()
    if "test.salesforce.com" in host or ".sandbox.my.salesforce.com" in host:
        return "https://test.salesforce.com"
    if host.endswith("salesforce.com"):
        return "https://login.salesforce.com"
    return settings.login_url


def login(settings: SalesforceSettings, http: requests.Session) -> SalesforceSession:
    kind = auth_kind(settings)
    if kind == "session":
        _require(settings, "session", *REQUIRED["session"])
        return SalesforceSession(settings.instance_url, settings.session_id.get_secret_value())
    if kind == "jwt":
        _require(settings, "jwt", *REQUIRED["jwt"])
        return _token(
            settings,
            http,
            {
                "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                "assertion": _assertion(settings),
            },
        )
    if kind == "password":
        _require(settings, "password", *REQUIRED["password"])
        secret = settings.password.get_secret_value() + settings.security_token.get_secret_value()
        if settings.client_id and settings.client_secret.get_secret_value():
            return _token(
                settings,
                http,
                {
                    "grant_type": "password",
                    "client_id": settings.client_id,
                    "client_secret": settings.client_secret.get_secret_value(),
                    "username": settings.username,
                    "password": secret,
                },
            )
        return _soap(settings, http, secret)
    _require(settings, "client_credentials", *REQUIRED["client_credentials"])
    return _token(
        settings,
        http,
        {"grant_type": "client_credentials"},
        auth=(settings.client_id, settings.client_secret.get_secret_value()),
    )


def _assertion(settings: SalesforceSettings) -> str:
    path = Path(settings.private_key_file)
    try:
        key = path.read_bytes()
    except OSError as error:
        raise ConfigError(
            f"salesforce.private_key_file: cannot read {path}: {error.strerror}"
        ) from None
    claims = {
        "iss": settings.client_id,
        "sub": settings.username,
        "aud": jwt_audience(settings),
        "exp": int(time.time()) + ASSERTION_LIFETIME,
    }
    try:
        return jwt.encode(claims, key, algorithm="RS256")
    except (ValueError, TypeError, AttributeError, jwt.PyJWTError) as error:
        # AttributeError: a public key where the private key belongs
        raise ConfigError(
            f"salesforce.private_key_file: {path} is not a usable RSA private key ({error})"
        ) from None


def _token(
    settings: SalesforceSettings,
    http: requests.Session,
    form: dict[str, str],
    auth: tuple[str, str] | None = None,
) -> SalesforceSession:
    url = settings.login_url + TOKEN_PATH
    try:
        response = http.post(url, data=form, auth=auth, timeout=settings.timeout_seconds)
    except requests.RequestException as error:
        raise LoginError(f"cannot reach {url}: {error}") from None
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code != 200 or not isinstance(body, dict) or "access_token" not in body:
        reason = body.get("error", "") if isinstance(body, dict) else ""
        description = body.get("error_description", "") if isinstance(body, dict) else ""
        raise LoginError(
            f"Salesforce refused the {form['grant_type'].rsplit(':', 1)[-1]} login at {url}: "
            f"{reason or response.status_code} {description}".strip(),
            code=reason or None,
            status=response.status_code,
        )
    return SalesforceSession(str(body["instance_url"]).rstrip("/"), str(body["access_token"]))


def _soap(settings: SalesforceSettings, http: requests.Session, secret: str) -> SalesforceSession:
    url = f"{settings.login_url}/services/Soap/u/{settings.api_version}"
    envelope = (
        '<?xml version="1.0" encoding="utf-8" ?>'
        '<env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:n1="urn:partner.soap.sforce.com"><env:Body><n1:login>'
        f"<n1:username>{escape(settings.username)}</n1:username>"
        f"<n1:password>{escape(secret)}</n1:password>"
        "</n1:login></env:Body></env:Envelope>"
    )
    headers = {"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": "login"}
    try:
        response = http.post(
            url, data=envelope.encode(), headers=headers, timeout=settings.timeout_seconds
        )
        root = ElementTree.fromstring(response.content)
    except requests.RequestException as error:
        raise LoginError(f"cannot reach {url}: {error}") from None
    except ElementTree.ParseError:
        raise LoginError(
            f"Salesforce answered the SOAP login at {url} with {response.status_code} and no XML"
        ) from None
    session = root.findtext(".//p:sessionId", namespaces=SOAP_NS)
    server = root.findtext(".//p:serverUrl", namespaces=SOAP_NS)
    if response.status_code != 200 or not session or not server:
        code = root.findtext(".//sf:exceptionCode", namespaces=SOAP_NS) or str(response.status_code)
        message = root.findtext(".//sf:exceptionMessage", namespaces=SOAP_NS) or ""
        raise LoginError(
            f"Salesforce refused the SOAP login at {url}: {code} {message}".strip(),
            code=code,
            status=response.status_code,
        )
    scheme, _, rest = server.partition("://")
    return SalesforceSession(f"{scheme}://{rest.split('/', 1)[0]}", session)
