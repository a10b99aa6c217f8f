"""Console sign-ins: a session opened with an API key, kept as a row of ``console_sessions``.

The browser holds a random token in an HttpOnly, SameSite=Strict cookie; the database keeps
only its SHA-256 (like an API key, the token is random enough that one hash suffices), the key
it was opened with, a CSRF token for the session's forms, and when it expires. Revoking the key
ends its sessions (:func:`connector.api.keys.revoke_key` deletes them); a session whose key is
revoked or that has expired is never found."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from connector.api.keys import KeyInfo
from connector.db import tables

COOKIE = "connector_console"
SIGN_IN_COOKIE = "connector_console_sign_in"  # the sign-in form's CSRF token, before a session


@dataclass(frozen=True)
class ConsoleUser:
    """Who is signed in: the key's name and scope (never the key), and the session's CSRF
    token, which every form of the session carries."""

    session_id: int
    key_name: str
    key_prefix: str
    scope: str
    csrf_token: str
    expires_at: datetime


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


def open_session(session: Session, key: KeyInfo, now: datetime, hours: float) -> str:
    """A new session for ``key``, lasting ``hours``: the cookie's token (kept only as its hash).
    Sessions already expired are removed on the way."""
    session.execute(delete(tables.ConsoleSession).where(tables.ConsoleSession.expires_at <= now))
    token = new_token()
    session.add(
        tables.ConsoleSession(
            token_hash=token_hash(token),
            api_key_id=key.id,
            csrf_token=new_token(),
            expires_at=now + timedelta(hours=hours),
        )
    )
    session.flush()
    return token


def find_session(session: Session, token: str, now: datetime) -> ConsoleUser | None:
    """The signed-in user of the cookie's ``token``, or None when it is unknown, expired, or
    its key is revoked."""
    row = session.execute(
        select(tables.ConsoleSession, tables.ApiKey)
        .join(tables.ApiKey, tables.ApiKey.id == tables.ConsoleSession.api_key_id)
        .where(
            tables.ConsoleSession.token_hash == token_hash(token),
            tables.ConsoleSession.expires_at > now,
            tables.ApiKey.revoked_at.is_(None),
        )
    ).first()
    if row is None:
        return None
    console, key = row
    return ConsoleUser(
        console.id, key.name, key.prefix, key.scope, console.csrf_token, console.expires_at
    )


def close_session(session: Session, session_id: int) -> None:
    session.execute(delete(tables.ConsoleSession).where(tables.ConsoleSession.id == session_id))


def same_token(given: str | None, expected: str) -> bool:
    """A form's CSRF token is the expected one (compared in constant time)."""
    return given is not None and secrets.compare_digest(given.encode(), expected.encode())
