"""Answers of the fake Xero: a status, a JSON body (Decimals written exactly) and headers."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import simplejson

from sandbox.xero.dates import envelope_timestamp

PROVIDER_NAME = "Billing connector Xero sandbox"
JSON_TYPE = "application/json; charset=utf-8"


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = JSON_TYPE

    def payload(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        return simplejson.dumps(self.body, use_decimal=True, separators=(",", ":")).encode()


def envelope(
    plural: str, items: list[Any], now_ms: int, pagination: dict[str, int] | None = None
) -> dict[str, Any]:
    """The body Xero wraps every list in: ``{"Id", "Status", ..., "<Plural>": [...]}``."""
    body: dict[str, Any] = {
        "Id": str(uuid.uuid4()),
        "Status": "OK",
        "ProviderName": PROVIDER_NAME,
        "DateTimeUTC": envelope_timestamp(now_ms),
    }
    if pagination is not None:
        body["pagination"] = pagination
    body[plural] = items
    return body
