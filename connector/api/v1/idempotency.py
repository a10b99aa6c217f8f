"""Writes made once: every write takes an ``Idempotency-Key`` header, and the first answer to a
key is replayed (status and body, with ``Idempotent-Replayed: true``) for the same key, method,
path and body. The same key on another request is refused (409), and so is a second request
while the first is still in hand.

The key is claimed by inserting its row (unique per API key and key) before any work. Where the
work is one transaction of ours (a payment, a credit note, an approval) the claim, the work and
the answer commit together: a crash leaves nothing, and a duplicate sent meanwhile waits for
the first to commit, then gets its answer. A stage run commits as it goes, so its claim is
committed first (in hand: ``status`` empty) and its answer stored after; a claim left in hand
by a process that died is taken over after ``STALE_AFTER`` (running a stage again is safe).
Refusals (problems) are not kept: the same request may be sent again. Rows older than
``api.idempotency_days`` are deleted as new keys are claimed."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from connector.api.auth import instance_of
from connector.api.instance import Instance
from connector.api.keys import KeyInfo
from connector.api.problems import ApiProblem
from connector.db import tables
from connector.db.engine import is_unique_violation, transaction
from connector.db.types import utc_now

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
STALE_AFTER = timedelta(hours=1)
PARAMETER = {
    "name": HEADER,
    "in": "header",
    "required": True,
    "description": "A key of your choosing (up to 255 characters; a UUID is a good one), the "
    "same when you send the same write again: its first answer is replayed.",
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH},
}
OPENAPI = {"parameters": [PARAMETER]}


@dataclass(frozen=True)
class Claim:
    """A write as its key names it: who, the key, and what was asked."""

    api_key_id: int
    key: str
    method: str
    path: str
    request_hash: str


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any  # JSON-ready

    def response(self, *, replayed: bool = False) -> JSONResponse:
        headers = {REPLAYED: "true"} if replayed else {}
        return JSONResponse(self.body, status_code=self.status, headers=headers)


async def claim_of(request: Request) -> Claim:
    """The claim of this write: its key (a 400 problem without one), its caller, and the hash
    of the request."""
    key = request.headers.get(HEADER, "").strip()
    if not key:
        raise ApiProblem(
            400,
            f"a write needs an {HEADER} header: a key of your choosing (a UUID), the same when "
            "the request is sent again",
            slug="idempotency-key-missing",
        )
    if len(key) > MAX_KEY_LENGTH:
        raise ApiProblem(
            400,
            f"the {HEADER} is {len(key)} characters long, more than {MAX_KEY_LENGTH}",
            slug="idempotency-key-invalid",
        )
    digest = request_hash(request.method, request.url.path, await request.body())
    info = request.state.api_key
    assert isinstance(info, KeyInfo)
    return Claim(info.id, key, request.method, request.url.path, digest)


def request_hash(method: str, path: str, body: bytes) -> str:
    """What identifies a request under its key: its method, path and body (JSON compared as
    data: key order and spacing do not count)."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        canonical = body
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), canonical):
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()


IdempotencyClaim = Annotated[Claim, Depends(claim_of)]


def once(request: Request, claim: Claim, work: Callable[[Session], Answer]) -> JSONResponse:
    """Answer the write of ``claim`` by ``work``, run in the transaction that claims the key and
    keeps the answer; or the first answer again. One more try when the work meets a concurrent
    writer's unique row (it then finds what that writer made)."""
    instance = instance_of(request)
    for attempt in (1, 2):
        try:
            with transaction(instance.factory) as session:
                earlier = _claim(session, instance, claim)
                if earlier is not None:
                    replay = _answer_again(earlier, claim, stale=False)
                    assert replay is not None  # never taken over: it commits with its work
                    return replay
                answer = work(session)
                _keep(session, claim, answer)
                return answer.response()
        except IntegrityError as error:
            if attempt == 2 or not is_unique_violation(error):
                raise
    raise AssertionError("unreachable")


def once_apart(request: Request, claim: Claim, work: Callable[[], Answer]) -> JSONResponse:
    """The same for work that commits as it goes (a stage): the claim is committed first, and
    released again when the work raises (nothing is kept of a refusal)."""
    instance = instance_of(request)
    with transaction(instance.factory) as session:
        earlier = _claim(session, instance, claim)
        if earlier is not None:
            replay = _answer_again(earlier, claim, stale=True)
            if replay is not None:
                return replay
            earlier.created_at = utc_now()  # taken over: its first request died in hand
    try:
        answer = work()
    except BaseException:
        with transaction(instance.factory) as session:
            session.execute(_row_of(claim, delete(tables.IdempotentRequest)))
        raise
    with transaction(instance.factory) as session:
        _keep(session, claim, answer)
    return answer.response()


def _row_of(claim: Claim, statement: Any) -> Any:
    row = tables.IdempotentRequest
    return statement.where(row.api_key_id == claim.api_key_id, row.key == claim.key)


def _claim(session: Session, instance: Instance, claim: Claim) -> tables.IdempotentRequest | None:
    """Claim the key (None), or the row of its earlier request. Rows past
    ``api.idempotency_days`` are deleted first."""
    row = tables.IdempotentRequest
    cutoff = utc_now() - timedelta(days=instance.settings.api.idempotency_days)
    session.execute(delete(row).where(row.created_at < cutoff))
    earlier = session.scalar(_row_of(claim, select(row)))
    if earlier is not None:
        return earlier
    try:
        with session.begin_nested():
            session.add(
                row(
                    api_key_id=claim.api_key_id,
                    key=claim.key,
                    method=claim.method,
                    path=claim.path,
                    request_hash=claim.request_hash,
                )
            )
    except IntegrityError as error:  # claimed meanwhile, and committed: its answer is kept
        if not is_unique_violation(error):
            raise
        return session.scalar(_row_of(claim, select(row)))
    return None


def _answer_again(
    earlier: tables.IdempotentRequest, claim: Claim, *, stale: bool
) -> JSONResponse | None:
    """The kept answer of the earlier request; a 409 problem when it was another request or
    is still in hand; None when it was left in hand longer than ``STALE_AFTER`` and ``stale``
    requests may be taken over."""
    if (earlier.method, earlier.path, earlier.request_hash) != (
        claim.method,
        claim.path,
        claim.request_hash,
    ):
        raise ApiProblem(
            409,
            f"the {HEADER} {claim.key!r} was first used for another request "
            f"({earlier.method} {earlier.path} with another body): send a new key with a new "
            "request",
            slug="idempotency-key-reused",
        )
    if earlier.status is None or earlier.response is None:
        if stale and utc_now() - earlier.created_at > STALE_AFTER:
            return None
        raise ApiProblem(
            409,
            f"the request with the {HEADER} {claim.key!r} is still in hand: send it again "
            "once it is done to get its answer",
            slug="request-in-hand",
            headers={"Retry-After": "5"},
        )
    return Answer(earlier.status, json.loads(earlier.response)).response(replayed=True)


def _keep(session: Session, claim: Claim, answer: Answer) -> None:
    session.execute(
        _row_of(claim, update(tables.IdempotentRequest)).values(
            status=answer.status, response=json.dumps(answer.body, separators=(",", ":"))
        )
    )
