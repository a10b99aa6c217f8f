"""Signing in to Xero: OAuth 2.0 as Xero does it for server integrations.

- ``client_credentials`` (a custom connection): the app's id and secret buy a 30-minute access
  token whenever one is needed; nothing is stored.
- ``authorization_code`` (a web app): someone consents once (``connector xero connect``); the
  refresh token that comes back buys access tokens, and each use of it returns a new one
  (rotation). The new refresh token is committed to the database before the access token is
  used, under a row lock, so two processes never spend the same one. When Xero refuses it, the
  connection is marked ``reconnect`` with Xero's reason: ``connector status`` shows it and every
  push stops with the same clear message until someone connects again.

Tokens never reach a log or an error message, and are stored encrypted
(:mod:`connector.encryption`); tokens stored in plain text by an earlier version, or with an
older key, are encrypted again with the current key when next used. Tokens no key decrypts (the
key was lost or replaced) mark the connection ``reconnect`` like a refused refresh token; the
connection comes back by itself once the right key is found again.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import requests
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connector.db import tables
from connector.db.engine import transaction
from connector.encryption import TokenCipher
from connector.errors import AccountingAuthError, AccountingError, SecretKeyError
from connector.settings import XeroSettings

log = logging.getLogger(__name__)

TARGET = "xero"
CONNECTED = "connected"
RECONNECT = "reconnect"
EARLY = timedelta(seconds=60)  # a token this close to its expiry counts as expired


@dataclass(frozen=True)
class AccessToken:
    value: str
    expires_at: datetime

    def fresh(self, now: datetime) -> bool:
        return now + EARLY < self.expires_at


UNREADABLE = "Xero's stored tokens cannot be decrypted: "


def reconnect_message(reason: str) -> str:
    return (
        f"Xero refused the stored refresh token ({reason}): reconnect Xero with "
        "`connector xero connect`"
    )


def unreadable_message(error: SecretKeyError) -> str:
    return f"{UNREADABLE}{error}; reconnect Xero with `connector xero connect`"


class XeroAuth:
    def __init__(
        self,
        settings: XeroSettings,
        factory: sessionmaker[Session],
        http: requests.Session,
        cipher: TokenCipher,
    ) -> None:
        self.settings = settings
        self.factory = factory
        self.http = http
        self.cipher = cipher
        self._token: AccessToken | None = None

    @property
    def scopes(self) -> str:
        scopes = self.settings.scopes.split()
        if self.settings.grant == "authorization_code" and "offline_access" not in scopes:
            scopes.append("offline_access")
        return " ".join(scopes)

    # -- access tokens ---------------------------------------------------------------------
    def access_token(self) -> str:
        now = datetime.now(UTC)
        if self._token is None or not self._token.fresh(now):
            if self.settings.grant == "client_credentials":
                self._token = self._client_credentials()
            else:
                self._token = self._refreshed(now)
        return self._token.value

    def invalidate(self) -> None:
        """Xero refused the access token (401): the next call gets a new one."""
        self._token = None

    def _client_credentials(self) -> AccessToken:
        answer = self._token_call({"grant_type": "client_credentials", "scope": self.scopes})
        return _access(answer)

    def _refreshed(self, now: datetime) -> AccessToken:
        refused: AccountingAuthError | None = None
        token: AccessToken | None = None
        with transaction(self.factory) as session:
            row = session.scalar(
                select(tables.AccountingConnection)
                .where(tables.AccountingConnection.target == TARGET)
                .with_for_update()
            )
            if row is None or not row.refresh_token:
                raise AccountingAuthError(
                    "Xero is not connected: run `connector xero connect` (authorization_code)"
                )
            key_was_lost = (row.error or "").startswith(UNREADABLE)
            if row.state == RECONNECT and not key_was_lost:
                raise AccountingAuthError(row.error or reconnect_message("refused"))
            try:
                refresh_token = self.cipher.open(row.refresh_token)
                access_token = self.cipher.open(row.access_token) if row.access_token else None
            except SecretKeyError as error:  # committed, then raised
                refused = AccountingAuthError(unreadable_message(error))
                row.state, row.error = RECONNECT, str(refused)
                log.error("%s", refused)
            else:
                if key_was_lost:  # the right key is back
                    row.state, row.error = CONNECTED, None
                if access_token and row.access_expires_at:
                    stored = AccessToken(access_token, row.access_expires_at)
                    if stored.fresh(now):  # another process refreshed a moment ago
                        self._reseal(row, refresh_token, access_token)
                        return stored
                token, refused = self._refresh(row, refresh_token)
        if refused is not None:
            raise refused
        assert token is not None
        return token

    def _refresh(
        self, row: tables.AccountingConnection, refresh_token: str
    ) -> tuple[AccessToken | None, AccountingAuthError | None]:
        """Spend the refresh token and store the new ones (encrypted) in ``row``; Xero's
        refusal marks the connection ``reconnect`` and is returned, to raise after commit."""
        self.cipher.prepare()  # the new tokens can be stored once Xero has rotated them
        try:
            answer = self._token_call(
                {"grant_type": "refresh_token", "refresh_token": refresh_token}
            )
        except AccountingAuthError as error:
            row.state, row.error = RECONNECT, str(error)
            row.access_token = row.access_expires_at = None
            log.error("%s", error)
            return None, error
        token = _access(answer)
        self._store(row, str(answer.get("refresh_token") or refresh_token), token)
        return token, None

    def _store(
        self, row: tables.AccountingConnection, refresh_token: str, token: AccessToken
    ) -> None:
        row.refresh_token = self.cipher.seal(refresh_token)
        row.access_token, row.access_expires_at = self.cipher.seal(token.value), token.expires_at
        row.state, row.error = CONNECTED, None

    def _reseal(
        self, row: tables.AccountingConnection, refresh_token: str, access_token: str
    ) -> None:
        """Tokens in plain text (an earlier version's) or under an old key: encrypted anew."""
        if row.refresh_token and self.cipher.stale(row.refresh_token):
            row.refresh_token = self.cipher.seal(refresh_token)
        if row.access_token and self.cipher.stale(row.access_token):
            row.access_token = self.cipher.seal(access_token)

    def _token_call(self, form: dict[str, str]) -> dict[str, Any]:
        try:
            response = self.http.post(
                self.settings.token_url,
                data=form,
                auth=(self.settings.client_id, self.settings.client_secret.get_secret_value()),
                timeout=(10, self.settings.timeout_seconds),
            )
        except (requests.ConnectionError, requests.Timeout) as error:
            raise AccountingError(f"Xero's token endpoint could not be reached: {error}") from None
        try:
            answer: dict[str, Any] = response.json()
        except ValueError:
            answer = {}
        if response.status_code == 200 and answer.get("access_token"):
            return answer
        reason = str(answer.get("error") or f"HTTP {response.status_code}")
        if reason == "invalid_grant":
            raise AccountingAuthError(reconnect_message(reason), status=response.status_code)
        if reason in ("invalid_client", "unauthorized_client") or response.status_code == 401:
            raise AccountingAuthError(
                f"Xero refused the app's credentials ({reason}): check xero.client_id and "
                "xero.client_secret",
                status=response.status_code,
            )
        raise AccountingError(
            f"Xero's token endpoint answered {response.status_code} {reason}",
            status=response.status_code,
        )

    # -- connecting (authorization_code) ---------------------------------------------------
    def authorization_url(self, state: str | None = None) -> tuple[str, str]:
        """Where a person consents, and the ``state`` to expect back."""
        state = state or secrets.token_urlsafe(16)
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.settings.client_id,
                "redirect_uri": self.settings.redirect_uri,
                "scope": f"openid profile email {self.scopes}",
                "state": state,
            }
        )
        return f"{self.settings.authorize_url}?{query}", state

    def connect(self, code: str) -> None:
        """Trade an authorization code for tokens and store them (the connection is usable
        from then on, and any ``reconnect`` state is cleared)."""
        self.cipher.prepare()
        answer = self._token_call(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": self.settings.redirect_uri,
            }
        )
        token = _access(answer)
        if not answer.get("refresh_token"):
            raise AccountingAuthError(
                "Xero gave no refresh token: the app must ask for the offline_access scope"
            )
        with transaction(self.factory) as session:
            row = session.get(tables.AccountingConnection, TARGET, with_for_update=True)
            if row is None:
                row = tables.AccountingConnection(target=TARGET, state=CONNECTED)
                session.add(row)
            self._store(row, str(answer["refresh_token"]), token)
        self._token = token

    def tenants(self) -> list[dict[str, Any]]:
        """The organisations the token may use (``GET /connections``)."""
        response = self.http.get(
            self.settings.connections_url,
            headers={"Authorization": f"Bearer {self.access_token()}"},
            timeout=(10, self.settings.timeout_seconds),
        )
        if response.status_code != 200:
            raise AccountingError(
                f"Xero's connections endpoint answered {response.status_code}",
                status=response.status_code,
            )
        found: list[dict[str, Any]] = response.json()
        return found


def _access(answer: dict[str, Any]) -> AccessToken:
    expires_in = int(answer.get("expires_in") or 1800)
    return AccessToken(
        str(answer["access_token"]), datetime.now(UTC) + timedelta(seconds=expires_in)
    )
