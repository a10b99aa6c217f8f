"""What the business rules share: Xero's messages, amounts, dates and summaries."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from sandbox.xero.dates import date_string, ms_date

CENT = Decimal("0.01")
NOT_FOUND = "The document with the supplied id was not found for this endpoint."
EXCEEDS_OUTSTANDING = "Payment amount exceeds the amount outstanding on this document"
LOCKED_BY_PAYMENT = (
    "This document cannot be edited as it has a payment or credit note allocated to it."
)
INVALID_STATUS = "Invoice not of valid status for modification"
NOT_AUTHORISED = "Payments can only be made against Authorised documents"


def invalid_account(code: str) -> str:
    return f"Account code '{code}' is not a valid code for this document."


def currency_not_enabled(code: str) -> str:
    return f"The currency {code} is not enabled for this organisation."


def decimal_places(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def amount(value: Any, label: str, places: int, errors: list[str]) -> Decimal:
    """``value`` as a Decimal, noting an error when it has more than ``places`` decimals."""
    number = Decimal(value)
    if decimal_places(number) > places:
        errors.append(f"{label} {number} has more than {places} decimal places.")
    return number


def money(value: Any, label: str, errors: list[str]) -> Decimal:
    """A two-decimal amount, written with two decimals (``40.00``) as Xero does."""
    number = amount(value, label, 2, errors)
    return number.quantize(CENT) if decimal_places(number) <= 2 else number


def day(text: str) -> date:
    return date.fromisoformat(text)  # the schema has checked the format


def dated(key: str, when: date) -> dict[str, str]:
    """``{"Date": "/Date(ms+0000)/", "DateString": "2026-03-15T00:00:00"}`` for ``key``."""
    return {key: ms_date(when), f"{key}String": date_string(when)}


def contact_summary(contact: dict[str, Any]) -> dict[str, Any]:
    summary = {"ContactID": contact["ContactID"], "Name": contact["Name"]}
    if contact.get("ContactNumber"):
        summary["ContactNumber"] = contact["ContactNumber"]
    return summary


def unique(messages: list[str]) -> list[str]:
    """The messages in order, each once (Xero does not repeat a message per line)."""
    return list(dict.fromkeys(messages))
