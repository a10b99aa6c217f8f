"""OAuth 2.0 as Xero's identity server does it, for one app (client id and secret).

Grants at ``/connect/token`` (the client authenticates with HTTP Basic): client_credentials
(an access token), authorization_code (adds a refresh token; a code works once) and
refresh_token (a new access token and a new refresh token: the old one is refused from then
on). ``/identity/connect/authorize`` consents at once and redirects with a code. Access tokens
live ``access_token_ttl`` seconds; the API answers 401 for a missing, unknown or expired one.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from connector.errors import ConnectorError
from sandbox.xero.errors import ApiError, problem_body

DEFAULT_SCOPE = "offline_access accounting.transactions accounting.contacts accounting.settings"
CODE_TTL = 300.0


class OAuthError(ConnectorError):
    """A refused token or authorize request: ``{"error": ...}`` with this status."""

    def __init__(self, error: str, description: str = "", status: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status

    def body(self) -> dict[str, str]:
        body = {"error": self.error}
        if self.description:
            body["error_description"] = self.description
        return body


@dataclass
class _Code:
    redirect_uri: str | None
    scope: str
    expires: float


@dataclass
class _Access:
    scope: str
    expires: float  # monotonic
    expires_utc: datetime


def unauthorized(detail: str = "AuthenticationUnsuccessful") -> ApiError:
    return ApiError(
        401,
        problem_body(401, "Unauthorized", detail),
        {"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


class Tokens:
    """The app's authorization codes, access tokens and refresh tokens."""

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        access_token_ttl: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.access_token_ttl = access_token_ttl
        self.clock = clock
        self._codes: dict[str, _Code] = {}
        self._access: dict[str, _Access] = {}
        self._refresh: dict[str, str] = {}  # refresh token -> scope
        self._lock = threading.Lock()

    # -- issuing ---------------------------------------------------------------------------
    def issue_authorization_code(
        self, redirect_uri: str | None = None, scope: str = DEFAULT_SCOPE
    ) -> str:
        """A code the authorization_code grant accepts once (with this redirect_uri, if any)."""
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = _Code(redirect_uri, scope, self.clock() + CODE_TTL)
        return code

    def issue_access_token(self, scope: str = DEFAULT_SCOPE) -> dict[str, Any]:
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._access[token] = _Access(
                scope,
                self.clock() + self.access_token_ttl,
                datetime.now(UTC) + timedelta(seconds=self.access_token_ttl),
            )
        return {
            "access_token": token,
            "expires_in": int(self.access_token_ttl),
            "token_type": "Bearer",
            "scope": scope,
        }

    def _with_refresh(self, scope: str) -> dict[str, Any]:
        answer = self.issue_access_token(scope)
        refresh = secrets.token_urlsafe(32)
        with self._lock:
            self._refresh[refresh] = scope
        return {**answer, "refresh_token": refresh}

    def expire_access_tokens(self) -> int:
        """Make every access token expired (tests of refreshing); returns how many."""
        with self._lock:
            for access in self._access.values():
                access.expires = self.clock() - 1
                access.expires_utc = min(access.expires_utc, datetime.now(UTC))
            return len(self._access)

    # -- endpoints -------------------------------------------------------------------------
    def _client(self, authorization: str | None) -> None:
        scheme, _, encoded = (authorization or "").partition(" ")
        try:
            decoded = base64.b64decode(encoded, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            decoded = ""
        client_id, _, secret = decoded.partition(":")
        if scheme.lower() != "basic" or not (
            secrets.compare_digest(client_id, self.client_id)
            and secrets.compare_digest(secret, self.client_secret)
        ):
            raise OAuthError("invalid_client")

    def token(self, form: Mapping[str, str], authorization: str | None) -> dict[str, Any]:
        """Answer a POST to /connect/token."""
        self._client(authorization)
        grant = form.get("grant_type")
        if grant == "client_credentials":
            return self.issue_access_token(form.get("scope") or DEFAULT_SCOPE)
        if grant == "authorization_code":
            with self._lock:
                code = self._codes.pop(form.get("code", ""), None)
            if code is None or code.expires < self.clock():
                raise OAuthError("invalid_grant")
            if code.redirect_uri is not None and form.get("redirect_uri") != code.redirect_uri:
                raise OAuthError("invalid_grant", "redirect_uri does not match")
            return self._with_refresh(code.scope)
        if grant == "refresh_token":
            with self._lock:
                scope = self._refresh.pop(form.get("refresh_token", ""), None)
            if scope is None:
                raise OAuthError("invalid_grant")
            return self._with_refresh(scope)
        if not grant:
            raise OAuthError("invalid_request", "grant_type is missing")
        raise OAuthError("unsupported_grant_type")

    def authorize(self, args: Mapping[str, str]) -> str:
        """Answer GET /identity/connect/authorize: where to redirect (consent is automatic)."""
        if args.get("client_id") != self.client_id:
            raise OAuthError("invalid_client", "unknown client_id")
        redirect_uri = args.get("redirect_uri")
        if not redirect_uri:
            raise OAuthError("invalid_request", "redirect_uri is missing")
        if args.get("response_type") != "code":
            raise OAuthError("unsupported_response_type", "response_type must be code")
        code = self.issue_authorization_code(redirect_uri, args.get("scope") or DEFAULT_SCOPE)
        query = {"code": code, **({"state": args["state"]} if "state" in args else {})}
        separator = "&" if "?" in redirect_uri else "?"
        return f"{redirect_uri}{separator}{urlencode(query)}"

    def check(self, authorization: str | None) -> None:
        """Raise a 401 unless ``authorization`` is ``Bearer <a live access token>``."""
        scheme, _, token = (authorization or "").partition(" ")
        with self._lock:
            access = self._access.get(token) if scheme.lower() == "bearer" else None
        if access is None:
            raise unauthorized()
        if access.expires <= self.clock():
            stamp = access.expires_utc.strftime("%m/%d/%Y %H:%M:%S")
            raise unauthorized(f"TokenExpired: token expired at {stamp}")
