"""Field values: from what clients send (JSON or CSV text) to storage, and back to JSON.

Storage keeps text for text, dates (``2024-01-31``) and datetimes (always
``2024-01-31T10:00:00.000+0000``, UTC, so that text order is time order), 0/1 for booleans,
integers for int fields and floats rounded to the field's scale for other numbers. Salesforce
does not tell an empty text from null, so neither do we. An ``anyType`` value (a field history's
OldValue and NewValue) is kept as JSON text, so that it reads back as the type it was.
"""

from __future__ import annotations

import decimal
import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sandbox.salesforce.errors import ApiError, bad_request
from sandbox.salesforce.ids import normalize_id
from sandbox.salesforce.schema import Field

DATETIME_FORMAT = "%Y-%m-%dT%H:%M:%S.{ms}+0000"
TRUE_TEXT = frozenset({"true", "1", "yes"})
MAX_NUMBER = Decimal(10) ** 18  # numbers have at most 18 digits
HISTORY_TEXT = 255  # a field history keeps the first 255 characters of a text
FALSE_TEXT = frozenset({"false", "0", "no"})


def format_datetime(moment: datetime) -> str:
    """A datetime as Salesforce writes it: ``2024-01-01T00:00:00.000+0000`` (UTC)."""
    moment = moment.astimezone(UTC)
    return moment.strftime(DATETIME_FORMAT.format(ms=f"{moment.microsecond // 1000:03d}"))


def parse_datetime(text: str) -> datetime:
    """Read an ISO 8601 datetime with an offset or ``Z`` (``+0000`` also accepted)."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    elif len(value) > 5 and value[-5] in "+-" and value[-4:].isdigit():
        value = f"{value[:-2]}:{value[-2:]}"
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError("a datetime needs a time zone offset")
    return moment.astimezone(UTC)


def _type_error(spec: Field, value: Any) -> ApiError:
    return bad_request(
        "INVALID_TYPE_ON_FIELD_IN_RECORD",
        f"{spec.name}: value not of required type: {value}",
        [spec.name],
    )


def check_range(spec: Field, number: Decimal) -> None:
    """NUMBER_OUTSIDE_VALID_RANGE naming the field when ``number`` has more than 18 digits
    before the point (a value sent, or one the org derives, such as a line's total)."""
    if abs(number) >= MAX_NUMBER:
        raise bad_request(
            "NUMBER_OUTSIDE_VALID_RANGE",
            f"{spec.name}: value outside of valid range on numeric field: {float(number)!r}",
            [spec.name],
        )


def _number(spec: Field, value: Any) -> int | float:
    if isinstance(value, bool):
        raise _type_error(spec, value)
    try:
        number = Decimal(value) if isinstance(value, (int, str, Decimal)) else Decimal(str(value))
    except (decimal.InvalidOperation, ValueError):
        raise _type_error(spec, value) from None
    if not number.is_finite():
        raise _type_error(spec, value)
    check_range(spec, number)
    rounded = number.quantize(Decimal(1).scaleb(-spec.scale), rounding=decimal.ROUND_HALF_UP)
    check_range(spec, rounded)
    if spec.type == "int":
        if rounded != number:
            raise _type_error(spec, value)
        return int(rounded)
    return float(rounded)


def to_storage(spec: Field, value: Any) -> Any:
    """The stored form of ``value`` for ``spec``; None for null or an empty text."""
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return 0 if spec.type == "boolean" else None  # a checkbox is never null
    kind = spec.type
    if kind == "boolean":
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, str) and value.strip().lower() in TRUE_TEXT | FALSE_TEXT:
            return int(value.strip().lower() in TRUE_TEXT)
        raise _type_error(spec, value)
    if spec.is_number:
        return _number(spec, value)
    if kind == "date":
        try:
            return date.fromisoformat(str(value).strip()).isoformat()
        except ValueError:
            raise _type_error(spec, value) from None
    if kind == "datetime":
        try:
            return format_datetime(parse_datetime(str(value)))
        except ValueError:
            raise _type_error(spec, value) from None
    if isinstance(value, (dict, list)):
        raise _type_error(spec, value)
    text = str(value) if not isinstance(value, bool) else str(value).lower()
    if kind in ("id", "reference"):
        normalized = normalize_id(text.strip())
        if normalized is None:
            raise bad_request(
                "MALFORMED_ID", f"{spec.name}: id value of incorrect type: {text}", [spec.name]
            )
        return normalized
    if len(text) > spec.length:
        raise bad_request(
            "STRING_TOO_LONG",
            f"{spec.name}: data value too large: {text[:40]} (max length={spec.length})",
            [spec.name],
        )
    if kind == "email" and ("@" not in text or " " in text.strip()):
        raise bad_request(
            "INVALID_EMAIL_ADDRESS", f"{spec.name}: invalid email address: {text}", [spec.name]
        )
    return text


def to_history(spec: Field, stored: Any) -> str | None:
    """A stored value of ``spec`` as a field history keeps it (an ``anyType`` value): its JSON
    value, a text cut to 255 characters; nothing of a Long Text Area, whose changes Salesforce
    records without their values."""
    value = to_json(spec, stored)
    if value is None or spec.long_text:
        return None
    if isinstance(value, str):
        value = value[:HISTORY_TEXT]
    return json.dumps(value)


def to_json(spec: Field, stored: Any) -> Any:
    """The JSON value of a stored value, as the REST API answers it."""
    if stored is None:
        return None
    if spec.type == "anyType":
        return json.loads(stored)
    if spec.type == "boolean":
        return bool(stored)
    if spec.type == "int":
        return int(stored)
    if spec.is_number:
        return float(stored)
    return stored


def to_csv(spec: Field, stored: Any) -> str:
    """The text of a stored value in a Bulk API CSV (empty for null)."""
    if stored is None:
        return ""
    if spec.type == "anyType":
        value = json.loads(stored)
        if isinstance(value, bool):
            return "true" if value else "false"
        return repr(value) if isinstance(value, float) else str(value)
    if spec.type == "boolean":
        return "true" if stored else "false"
    if spec.type == "int":
        return str(int(stored))
    if spec.is_number:
        return repr(float(stored))
    if spec.type == "datetime":
        return str(stored).replace("+0000", "Z")  # Bulk API results write UTC as Z
    return str(stored)
