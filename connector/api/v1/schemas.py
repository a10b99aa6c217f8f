"""What the ``/v1`` API answers with, shared by its routes: a page of items, money as a decimal
string in its currency's minor-unit precision, the problem details of an error, and the
responses every route documents besides its own."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from connector.billing.money import currency, round_money

T = TypeVar("T")

Money = Annotated[
    str,
    Field(
        pattern=r"^-?[0-9]+(\.[0-9]+)?$",
        description="A decimal amount in the currency's minor-unit precision (JPY 0 digits, "
        "USD 2, BHD 3), as a string: never a binary float.",
        examples=["120.00"],
    ),
]
DecimalText = Annotated[
    str,
    Field(pattern=r"^-?[0-9]+(\.[0-9]+)?$", description="An exact decimal, as a string."),
]


def money(value: Decimal, code: str) -> str:
    """``value`` in ``code``'s minor-unit precision, as the API writes it."""
    return format(round_money(value, currency(code)), "f")


def money_or_none(value: Decimal | None, code: str) -> str | None:
    return None if value is None else money(value, code)


def decimal_text(value: Decimal) -> str:
    """An exact decimal without exponent or trailing zeros beyond the integer (10, 2.5)."""
    text = format(value.normalize(), "f")
    return text if "." not in text else text.rstrip("0").rstrip(".") or "0"


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Page(Model, Generic[T]):
    """One page of a list, in ascending id order. ``next_cursor`` gives the next page (as the
    ``cursor`` parameter, with the same filters); null on the last page."""

    data: list[T]
    next_cursor: str | None


class FieldError(Model):
    location: str
    message: str


class Problem(BaseModel):
    """An error, as RFC 9457 problem details (``application/problem+json``)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(examples=["https://connector.invalid/problems/not-found"])
    title: str = Field(examples=["Not found"])
    status: int = Field(examples=[404])
    detail: str = Field(examples=["unknown document 'INV-000999'"])
    instance: str | None = Field(default=None, examples=["/v1/invoices/INV-000999"])
    errors: list[FieldError] | None = Field(
        default=None, description="Each field at fault, for a request that is not valid."
    )


PROBLEMS: dict[int | str, dict[str, Any]] = {
    "default": {"model": Problem, "description": "An error, as problem details (RFC 9457)."}
}
