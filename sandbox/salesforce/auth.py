"""Logins and sessions: the OAuth token endpoint, SOAP login, and session checks.

Grants: ``password`` (with the connected app's id and secret), ``client_credentials`` (Basic
auth or form fields; runs as the admin user), JWT bearer (RS256, checked against the configured
public key; ``aud`` may be login.salesforce.com, test.salesforce.com or the sandbox's own URL)
and ``refresh_token``. SOAP login takes the password with or without the security token, as a
real org does from a trusted IP range (the loopback interface). Sessions end after
``session_ttl`` seconds without use, and then answer 401 INVALID_SESSION_ID.
"""

from __future__ import annotations

import base64
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from hashlib import sha256
from typing import Any
from xml.sax.saxutils import escape

import jwt
from defusedxml import ElementTree

from sandbox.salesforce.errors import ApiError
from sandbox.salesforce.ids import make_id

SOAP_NS = "{urn:partner.soap.sforce.com}"
AUDIENCES = ("https://login.salesforce.com", "https://test.salesforce.com")
ORG_ID = make_id("00D", 1)
USER_ID = make_id("005", 1)


@dataclass(frozen=True)
class Credentials:
    """Who may log in to the sandbox, and how."""

    username: str = "admin@sandbox.example.com"
    password: str = "sandbox-password"  # noqa: S105 - the sandbox's documented local login
    security_token: str = "SANDBOXTOKEN"  # noqa: S105
    client_id: str = "sandbox-connected-app"
    client_secret: str = "sandbox-client-secret"  # noqa: S105
    jwt_public_key: bytes | None = None


@dataclass
class Session:
    token: str
    username: str
    last_used: float


class OAuthError(Exception):
    """A refused login, answered as ``{"error", "error_description"}`` with status 400."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status


def expired_session() -> ApiError:
    return ApiError(401, "INVALID_SESSION_ID", "Session expired or invalid")


class Sessions:
    def __init__(self, credentials: Credentials, ttl: float) -> None:
        self.credentials = credentials
        self.ttl = ttl
        self._sessions: dict[str, Session] = {}
        self._refresh_tokens: dict[str, str] = {}
        self._lock = threading.Lock()

    def open(self, username: str) -> str:
        token = f"{ORG_ID[:15]}!{secrets.token_urlsafe(48)}"
        with self._lock:
            self._sessions[token] = Session(token, username, time.monotonic())
        return token

    def check(self, authorization: str | None) -> Session:
        """The live session named by an ``Authorization: Bearer|OAuth <id>`` header."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() not in ("bearer", "oauth") or not token:
            raise expired_session()
        found = self.session(token.strip())
        if found is None:
            raise expired_session()
        return found

    def session(self, token: str) -> Session | None:
        """The live session with this id (its use keeps it alive), or None."""
        now = time.monotonic()
        with self._lock:
            session = self._sessions.get(token)
            if session is None or now - session.last_used > self.ttl:
                self._sessions.pop(token, None)
                return None
            session.last_used = now
            return session

    def expire_all(self) -> int:
        with self._lock:
            count = len(self._sessions)
            self._sessions.clear()
            return count

    # -- OAuth -----------------------------------------------------------------------------
    def token(
        self, form: dict[str, str], authorization: str | None, instance_url: str
    ) -> dict[str, Any]:
        grant = form.get("grant_type", "")
        refresh = None
        if grant == "password":
            self._check_client(form.get("client_id"), form.get("client_secret"))
            username = self._check_password(form.get("username"), form.get("password"))
            refresh = secrets.token_urlsafe(48)
        elif grant == "client_credentials":
            client_id, client_secret = _basic(authorization) or (
                form.get("client_id"),
                form.get("client_secret"),
            )
            self._check_client(client_id, client_secret, error="invalid_client")
            username = self.credentials.username
        elif grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            username = self._check_assertion(form.get("assertion", ""), instance_url)
        elif grant == "refresh_token":
            self._check_client(
                form.get("client_id"), form.get("client_secret"), secret_optional=True
            )
            with self._lock:
                found = self._refresh_tokens.get(form.get("refresh_token", ""))
            if found is None:
                raise OAuthError("invalid_grant", "expired access/refresh token")
            username = found
        else:
            raise OAuthError("unsupported_grant_type", "grant type not supported")
        access = self.open(username)
        issued = str(int(time.time() * 1000))
        identity = f"{instance_url}/id/{ORG_ID}/{USER_ID}"
        signature = hmac.new(
            self.credentials.client_secret.encode(), (identity + issued).encode(), sha256
        ).digest()
        answer = {
            "access_token": access,
            "instance_url": instance_url,
            "id": identity,
            "token_type": "Bearer",
            "issued_at": issued,
            "signature": base64.b64encode(signature).decode(),
            "scope": "api refresh_token",
        }
        if refresh is not None:
            with self._lock:
                self._refresh_tokens[refresh] = username
            answer["refresh_token"] = refresh
        return answer

    def _check_client(
        self,
        client_id: str | None,
        client_secret: str | None,
        *,
        error: str = "invalid_client_id",
        secret_optional: bool = False,
    ) -> None:
        if not client_id or not hmac.compare_digest(client_id, self.credentials.client_id):
            raise OAuthError(error, "client identifier invalid")
        if secret_optional and client_secret is None:
            return
        if not client_secret or not hmac.compare_digest(
            client_secret, self.credentials.client_secret
        ):
            raise OAuthError("invalid_client", "invalid client credentials")

    def _check_password(self, username: str | None, password: str | None) -> str:
        expected = self.credentials
        if (username or "").lower() != expected.username.lower() or password not in (
            expected.password,
            expected.password + expected.security_token,
        ):
            raise OAuthError("invalid_grant", "authentication failure")
        return expected.username

    def _check_assertion(self, assertion: str, instance_url: str) -> str:
        key = self.credentials.jwt_public_key
        if key is None:
            raise OAuthError("invalid_grant", "no certificate is configured for the connected app")
        try:
            claims = jwt.decode(
                assertion,
                key,
                algorithms=["RS256"],
                audience=[*AUDIENCES, instance_url],
                issuer=self.credentials.client_id,
                options={"require": ["exp", "iss", "sub", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise OAuthError("invalid_grant", "expired authorization code") from None
        except jwt.InvalidAudienceError:
            raise OAuthError("invalid_grant", "audience is invalid") from None
        except jwt.InvalidIssuerError:
            raise OAuthError("invalid_client_id", "client identifier invalid") from None
        except jwt.PyJWTError:
            raise OAuthError("invalid_grant", "invalid assertion") from None
        if str(claims["sub"]).lower() != self.credentials.username.lower():
            raise OAuthError("invalid_grant", "user hasn't approved this consumer")
        return self.credentials.username

    # -- SOAP ------------------------------------------------------------------------------
    def soap_login(self, body: bytes, instance_url: str, version: str) -> tuple[int, str]:
        try:
            root = ElementTree.fromstring(body)
        except ElementTree.ParseError:
            return 500, _soap_fault("INVALID_LOGIN", "Invalid login request")
        username = root.find(f".//{SOAP_NS}username")
        password = root.find(f".//{SOAP_NS}password")
        try:
            self._check_password(
                username.text if username is not None else None,
                password.text if password is not None else None,
            )
        except OAuthError:
            return 500, _soap_fault(
                "INVALID_LOGIN", "Invalid username, password, security token; or user locked out."
            )
        session = self.open(self.credentials.username)
        server = f"{instance_url}/services/Soap/u/{version}/{ORG_ID[:15]}"
        return 200, (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns="urn:partner.soap.sforce.com" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            "<soapenv:Body><loginResponse><result>"
            f"<metadataServerUrl>{instance_url}/services/Soap/m/{version}/{ORG_ID[:15]}"
            "</metadataServerUrl><passwordExpired>false</passwordExpired><sandbox>true</sandbox>"
            f"<serverUrl>{server}</serverUrl><sessionId>{escape(session)}</sessionId>"
            f"<userId>{USER_ID}</userId><userInfo><organizationId>{ORG_ID}</organizationId>"
            f"<userName>{escape(self.credentials.username)}</userName></userInfo>"
            "</result></loginResponse></soapenv:Body></soapenv:Envelope>"
        )


def _basic(authorization: str | None) -> tuple[str, str] | None:
    scheme, _, value = (authorization or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        client_id, _, secret = base64.b64decode(value).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return client_id, secret


def _soap_fault(code: str, message: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:sf="urn:fault.partner.soap.sforce.com" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        f"<soapenv:Body><soapenv:Fault><faultcode>sf:{code}</faultcode>"
        f"<faultstring>{code}: {escape(message)}</faultstring><detail>"
        f'<sf:LoginFault xsi:type="sf:LoginFault"><sf:exceptionCode>{code}</sf:exceptionCode>'
        f"<sf:exceptionMessage>{escape(message)}</sf:exceptionMessage></sf:LoginFault>"
        "</detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    )
