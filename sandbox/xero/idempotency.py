"""Idempotency keys, per tenant, as Xero keeps them for writes.

A first request with a key is processed and, when it answers 200 or 400, its answer is kept
for ``ttl`` seconds. The same key with the same request (method, path, query and body) gets
that answer again, byte for byte, with ``Idempotent-Replayed: true``; with a different request
it is refused (400); while the first is still being processed, 409.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sandbox.xero.errors import ApiError, problem_body, validation_exception
from sandbox.xero.replies import Reply

MAX_KEY_LENGTH = 128
KEPT_STATUSES = (200, 400)


@dataclass
class _Entry:
    fingerprint: str
    expires: float
    reply: Reply | None = None  # None while the first request is in flight


def fingerprint(method: str, path: str, query: Iterable[tuple[str, str]], body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (method.upper(), path, "&".join(f"{k}={v}" for k, v in sorted(query))):
        digest.update(part.encode() + b"\0")
    digest.update(body)
    return digest.hexdigest()


class IdempotencyKeys:
    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._lock = threading.Lock()

    def _purge(self) -> None:
        now = self.clock()
        for key in [key for key, entry in self._entries.items() if entry.expires <= now]:
            if self._entries[key].reply is not None:
                del self._entries[key]

    def begin(self, tenant_id: str, key: str, request_fingerprint: str) -> Reply | None:
        """The stored answer to replay, or None when the request is to be processed.

        Raises :class:`ApiError` for a key that is too long, used for another request, or
        still in flight.
        """
        if len(key) > MAX_KEY_LENGTH:
            raise validation_exception(
                f"Idempotency-Key must be at most {MAX_KEY_LENGTH} characters (got {len(key)})"
            )
        with self._lock:
            self._purge()
            entry = self._entries.get((tenant_id, key))
            if entry is None:
                self._entries[(tenant_id, key)] = _Entry(
                    request_fingerprint, self.clock() + self.ttl
                )
                return None
        if entry.fingerprint != request_fingerprint:
            raise validation_exception(
                "Idempotency key has already been used for a different request"
            )
        if entry.reply is None:
            raise ApiError(
                409,
                problem_body(
                    409, "Conflict", "A request with this Idempotency-Key is still in progress"
                ),
            )
        stored = entry.reply
        return Reply(
            stored.status,
            stored.payload(),
            {**stored.headers, "Idempotent-Replayed": "true"},
            stored.content_type,
        )

    def finish(self, tenant_id: str, key: str, reply: Reply | None) -> None:
        """Keep ``reply`` for the key (200 and 400 only); otherwise forget the key."""
        with self._lock:
            entry = self._entries.get((tenant_id, key))
            if entry is None:
                return
            if reply is None or reply.status not in KEPT_STATUSES:
                del self._entries[(tenant_id, key)]
                return
            entry.reply = Reply(reply.status, reply.payload(), {}, reply.content_type)
            entry.expires = self.clock() + self.ttl

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
