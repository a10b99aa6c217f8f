"""API keys: made here, printed once, stored only as their SHA-256.

A key is ``ck_`` and 43 URL-safe characters (32 random bytes): high entropy, so one SHA-256 is
enough to store it (no salt or slow hash is needed for a value no one can guess), and the hash
is its lookup key. The first characters (``prefix``) are kept to name a key in lists and logs.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from connector.db import tables
from connector.db.types import utc_now
from connector.errors import InvalidInputError, NotFoundError

Scope = Literal["read", "write"]
SCOPES: tuple[Scope, ...] = ("read", "write")
KEY_START = "ck_"
PREFIX_LENGTH = 10
USE_NOTED_EVERY = timedelta(minutes=5)  # last_used_at: coarse, so reads stay reads


@dataclass(frozen=True)
class KeyInfo:
    """A key as lists show it: never the key itself."""

    id: int
    name: str
    scope: Scope
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def allows(self, scope: Scope) -> bool:
        """A write key reads too."""
        return self.active and (scope == "read" or self.scope == "write")

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "scope": self.scope,
            "prefix": self.prefix,
            "created_at": self.created_at,
            "last_used_at": self.last_used_at,
            "revoked_at": self.revoked_at,
        }


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(session: Session, name: str, scope: str) -> tuple[KeyInfo, str]:
    """A new key named ``name`` with ``scope``: its record, and the key (shown once)."""
    name = name.strip()
    if not name or len(name) > 80:
        raise InvalidInputError("give a name of 1 to 80 characters", where="api key")
    if scope not in SCOPES:
        raise InvalidInputError(f"scope must be read or write, not {scope!r}", where=name)
    if session.scalar(select(tables.ApiKey.id).where(tables.ApiKey.name == name)) is not None:
        raise InvalidInputError("a key of this name exists (revoked keys keep theirs)", where=name)
    key = KEY_START + secrets.token_urlsafe(32)
    row = tables.ApiKey(name=name, scope=scope, prefix=key[:PREFIX_LENGTH], key_hash=hash_key(key))
    session.add(row)
    session.flush()
    return _info(row), key


def authenticate(session: Session, key: str) -> KeyInfo | None:
    """The active key ``key`` is, or None. Its use is noted (at most every few minutes)."""
    if not key.startswith(KEY_START):
        return None
    row = session.scalar(select(tables.ApiKey).where(tables.ApiKey.key_hash == hash_key(key)))
    if row is None or row.revoked_at is not None:
        return None
    return _info(row)


def note_use(session: Session, info: KeyInfo) -> None:
    """Record that ``info`` was used now, when the last record is older than a few minutes."""
    now = utc_now()
    if info.last_used_at is not None and now - info.last_used_at < USE_NOTED_EVERY:
        return
    session.execute(
        update(tables.ApiKey).where(tables.ApiKey.id == info.id).values(last_used_at=now)
    )


def list_keys(session: Session) -> list[KeyInfo]:
    rows = session.scalars(select(tables.ApiKey).order_by(tables.ApiKey.id))
    return [_info(row) for row in rows]


def revoke_key(session: Session, name: str) -> KeyInfo:
    """Revoke the key named ``name``: it stops working at once; its console sessions end."""
    row = session.scalar(select(tables.ApiKey).where(tables.ApiKey.name == name))
    if row is None:
        raise NotFoundError(f"no API key is named {name!r} (see `connector apikey list`)")
    if row.revoked_at is None:
        row.revoked_at = utc_now()
        session.execute(
            delete(tables.ConsoleSession).where(tables.ConsoleSession.api_key_id == row.id)
        )
    session.flush()
    return _info(row)


def _info(row: tables.ApiKey) -> KeyInfo:
    scope: Scope = "write" if row.scope == "write" else "read"
    return KeyInfo(
        row.id, row.name, scope, row.prefix, row.created_at, row.last_used_at, row.revoked_at
    )
