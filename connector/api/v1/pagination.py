"""Pages by cursor: keyset on the id (ascending), so a page costs the same however deep it
is, and rows added meanwhile are neither skipped nor repeated. The cursor is opaque to
clients: the last id of the page, encoded."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Query, Request

from connector.api.auth import instance_of
from connector.api.problems import ApiProblem

MAX_LIMIT = 1000
T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class PageRequest:
    """The rows wanted: those with an id above ``after``, at most ``limit`` of them."""

    after: int
    limit: int

    @property
    def fetch(self) -> int:
        """Rows to read: one more than the page, to know whether another page follows."""
        return self.limit + 1


def encode_cursor(last_id: int) -> str:
    raw = json.dumps({"after": last_id}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The id a cursor we gave continues after; a 400 problem for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        after = json.loads(raw)["after"]
    except (binascii.Error, ValueError, TypeError, KeyError):
        after = None
    if not isinstance(after, int) or isinstance(after, bool) or after < 0:
        raise ApiProblem(
            400,
            f"cursor {cursor[:40]!r} is not one this API gave: pass the next_cursor of the "
            "previous page as it is, or leave it out for the first page",
            slug="invalid-cursor",
        )
    return after


def page_request(
    request: Request,
    cursor: Annotated[
        str | None,
        Query(description="The next_cursor of the previous page; none for the first page."),
    ] = None,
    limit: Annotated[
        int | None,
        Query(
            ge=1,
            le=MAX_LIMIT,
            description="Items per page (1 to 1000; default: the server's api.page_size).",
        ),
    ] = None,
) -> PageRequest:
    chosen = limit if limit is not None else instance_of(request).settings.api.page_size
    return PageRequest(decode_cursor(cursor) if cursor else 0, chosen)


Paging = Annotated[PageRequest, Depends(page_request)]


def paged(
    rows: Sequence[T], page: PageRequest, id_of: Callable[[T], int]
) -> tuple[Sequence[T], str | None]:
    """The rows of the page (``rows`` read with ``page.fetch``) and the next page's cursor."""
    if len(rows) <= page.limit:
        return rows, None
    kept = rows[: page.limit]
    return kept, encode_cursor(id_of(kept[-1]))


def page_body(items: Sequence[Any], next_cursor: str | None) -> dict[str, Any]:
    return {"data": list(items), "next_cursor": next_cursor}
