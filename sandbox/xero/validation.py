"""Request bodies: JSON with exact decimals, checked against the schemas in ``schemas/``.

Each schema is stricter than Xero's published description (no unknown fields, every field the
connector sends required, enums and formats) and is compiled once per process.
"""

from __future__ import annotations

import functools
import json
from decimal import Decimal
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError, best_match

from sandbox.xero.errors import post_data_invalid

SCHEMAS = (
    "contacts",
    "invoices",
    "invoices-void",
    "credit-notes",
    "allocations",
    "payments",
    "manual-journals",
)


def load_schema(name: str) -> dict[str, Any]:
    text = resources.files("sandbox.xero").joinpath("schemas", f"{name}.json")
    schema: dict[str, Any] = json.loads(text.read_text(encoding="utf-8"))
    return schema


@functools.cache
def validator(name: str) -> Draft202012Validator:
    schema = load_schema(name)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FormatChecker(formats=("date",)))


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def parse_json(body: bytes) -> Any:
    """The body as JSON (floats as Decimal), or a 400 PostDataInvalidException."""
    try:
        return json.loads(body, parse_float=Decimal, parse_constant=_refuse_constant)
    except (ValueError, UnicodeDecodeError) as error:
        raise post_data_invalid(f"The request body is not valid JSON: {error}") from None


def json_path(error: ValidationError) -> str:
    path = ""
    for part in error.absolute_path:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path.lstrip(".") or "(body)"


def check(name: str, body: Any) -> None:
    """Raise a 400 PostDataInvalidException naming the first place ``body`` breaks schema
    ``name``."""
    error = best_match(validator(name).iter_errors(body))
    if error is not None:
        raise post_data_invalid(f"{json_path(error)}: {error.message}")
