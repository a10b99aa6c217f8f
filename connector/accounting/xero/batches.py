"""Batched calls: chunks of at most 50 elements, Xero's ``where`` filter for a set of values,
and the per-element results of a write."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from connector.accounting.xero.client import Answer, error_text, validation_errors

BATCH = 50


def chunks(items: Sequence[Any], size: int = BATCH) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def where_any(field: str, values: Iterable[str]) -> str:
    """``Field=="a" OR Field=="b"``: Xero's filter for any of these values."""
    return " OR ".join(f"{field}=={json.dumps(value)}" for value in values)


def elements(answer: Answer, plural: str, expected: int) -> list[dict[str, Any]]:
    """The per-element results of a batched write; a whole-request refusal (400) is repeated
    for each element, so that each document carries Xero's message."""
    elements = answer.body.get(plural) or answer.body.get("Elements")
    if answer.status == 200 and isinstance(elements, list) and len(elements) == expected:
        return elements
    if answer.status == 400 and isinstance(elements, list) and len(elements) == expected:
        return [
            element
            if validation_errors(element)
            else {**element, "ValidationErrors": [{"Message": error_text(answer.body)}]}
            for element in elements
        ]
    message = error_text(answer.body) if answer.status != 200 else "unexpected answer"
    return [{"ValidationErrors": [{"Message": f"HTTP {answer.status}: {message}"}]}] * expected
