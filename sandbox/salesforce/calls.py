"""One API call as the handlers see it, and the answer they give."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sandbox.salesforce.errors import bad_request


@dataclass
class Call:
    method: str
    parts: list[str]
    args: dict[str, str]
    body: bytes
    headers: dict[str, str]
    version: str
    instance_url: str

    @property
    def path(self) -> str:
        return "/".join(self.parts)

    def json(self) -> Any:
        if not self.body.strip():
            return None
        try:
            return json.loads(self.body, parse_float=Decimal)
        except (ValueError, UnicodeDecodeError) as error:
            raise bad_request(
                "JSON_PARSER_ERROR", f"Invalid JSON in the request body: {error}"
            ) from None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json;charset=UTF-8"

    def payload(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body, default=_json_default, separators=(",", ":")).encode()


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")
