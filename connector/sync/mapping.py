"""The Salesforce mapping (``mappings/salesforce.yaml``): loading it, and applying it to records.

Loading validates the file and names the file, line and key of every problem. Mapping is pure:
a raw Salesforce record (as the REST API returns it) becomes a :class:`CustomerData` or a
:class:`DealData`, or raises :class:`MappingError` with the reason the record is quarantined.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from connector.billing.money import currency as currency_of
from connector.billing.periods import Frequency
from connector.billing.pricing import ChargeKind
from connector.billing.tax import country_code, region_code
from connector.errors import ConfigError, InvalidInputError
from connector.yamlfile import YamlDocument, load_yaml

FIELD_PATH = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)*$")


class MappingError(InvalidInputError):
    """A record the mapping cannot turn into billing data; the reason is shown in quarantine."""


def _path(value: str) -> str:
    if value and not FIELD_PATH.match(value):
        raise ValueError(f"{value!r} is not a field name (Field, Custom__c or Parent.Field)")
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Defaulted(_Model):
    field: str
    default: Any = None

    check_paths = field_validator("field")(lambda cls, value: _path(value))


class ValueMap(_Model):
    field: str
    default: str
    values: dict[str, str]

    check_paths = field_validator("field")(lambda cls, value: _path(value))


class CustomerMapping(_Model):
    object: str = "Account"
    name: str
    country: str
    currency: str = ""
    tax_id: str = ""
    region: str = ""
    owner: str = ""  # the account owner: collections Tasks are assigned to them
    street: str = ""
    city: str = ""
    state: str = ""
    postal_code: str = ""
    language: str = ""
    billing_email: str = ""

    check_paths = field_validator(
        "name",
        "country",
        "currency",
        "tax_id",
        "region",
        "owner",
        "street",
        "city",
        "state",
        "postal_code",
        "language",
        "billing_email",
    )(lambda cls, value: _path(value))


class AmendmentMapping(_Model):
    type_field: str
    types: tuple[str, ...]
    amends: str

    check_paths = field_validator("type_field", "amends")(lambda cls, value: _path(value))


class ContractMapping(_Model):
    object: str = "Opportunity"
    account: str
    name: str
    won: str
    currency: str = ""
    service_start: tuple[str, ...] = Field(min_length=1)
    term_months: Defaulted
    frequency: ValueMap
    auto_renew: Defaulted
    trial_days: Defaulted
    cancellation_date: str = ""
    amendment: AmendmentMapping | None = None

    check_paths = field_validator("account", "name", "won", "currency", "cancellation_date")(
        lambda cls, value: _path(value)
    )

    @field_validator("service_start")
    @classmethod
    def _paths(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_path(item) for item in value)

    @field_validator("frequency")
    @classmethod
    def _frequencies(cls, value: ValueMap) -> ValueMap:
        for target in value.values.values():
            Frequency.parse(target)
        if value.default not in value.values:
            raise ValueError(f"default {value.default!r} is not one of the mapped values")
        return value


class ItemsMapping(_Model):
    relationship: str
    product_code: str
    product_name: str
    product_family: str = ""
    billing_type: ValueMap
    quantity: str
    unit_price: str
    discount_percent: str = ""
    service_date: str = ""
    metric: str = ""  # a product's billable metric (mappings/usage.yaml): a metered item

    check_paths = field_validator(
        "product_code",
        "product_name",
        "product_family",
        "quantity",
        "unit_price",
        "discount_percent",
        "service_date",
        "metric",
    )(lambda cls, value: _path(value))

    @field_validator("billing_type")
    @classmethod
    def _kinds(cls, value: ValueMap) -> ValueMap:
        # A metered price needs its metric and terms, which a billing type cannot give.
        kinds = [kind.value for kind in ChargeKind if kind is not ChargeKind.METERED]
        for source, target in value.values.items():
            if target not in kinds:
                raise ValueError(
                    f"{source!r} maps to {target!r}, which is not one of {', '.join(kinds)}"
                )
        if value.default not in value.values:
            raise ValueError(f"default {value.default!r} is not one of the mapped values")
        return value


class SalesforceMapping(_Model):
    customer: CustomerMapping
    contract: ContractMapping
    items: ItemsMapping

    def fields_of(self, section: str) -> Iterator[tuple[tuple[str | int, ...], str]]:
        """(location in the file, field path) of every field a section reads."""
        model = getattr(self, section)
        for name, value in model:
            if isinstance(value, str) and name not in ("object", "relationship") and value:
                yield (section, name), value
            elif isinstance(value, (Defaulted, ValueMap)):
                yield (section, name, "field"), value.field
            elif isinstance(value, AmendmentMapping):
                yield (section, name, "type_field"), value.type_field
                yield (section, name, "amends"), value.amends
            elif name == "service_start":
                yield from (((section, name, index), item) for index, item in enumerate(value))

    def query_fields(self, section: str) -> list[str]:
        return list(dict.fromkeys(path for _, path in self.fields_of(section)))


@dataclass(frozen=True)
class LoadedMapping:
    mapping: SalesforceMapping
    document: YamlDocument

    def where_field(self, object_name: str, field_name: str) -> str | None:
        """``file:line: key`` of the mapping entry that reads ``field_name``, if any."""
        sections = {
            "customer": self.mapping.customer.object,
            "contract": self.mapping.contract.object,
        }
        for section in ("customer", "contract", "items"):
            if section in sections and sections[section].lower() != object_name.lower():
                continue
            for location, path in self.mapping.fields_of(section):
                if path.split(".")[-1].lower() == field_name.lower():
                    key = ".".join(str(part) for part in location)
                    return f"{self.document.where(location)}: {key}"
        return None


def load_mapping(path: Path) -> LoadedMapping:
    """The mapping in ``path``; a missing, unreadable or invalid file is a configuration
    error that names the file and line."""
    try:
        document = load_yaml(path)
        return LoadedMapping(document.validate(SalesforceMapping), document)
    except InvalidInputError as error:
        raise ConfigError(str(error)) from None


# -- applying the mapping (pure) ---------------------------------------------------------------
@dataclass(frozen=True)
class Address:
    """A billing address as the CRM holds it, shown on documents."""

    street: str | None = None
    city: str | None = None
    state: str | None = None
    postal_code: str | None = None

    def columns(self) -> dict[str, str | None]:
        """The customer's columns that hold it."""
        return {
            "address_street": self.street,
            "address_city": self.city,
            "address_state": self.state,
            "address_postal_code": self.postal_code,
        }


@dataclass(frozen=True)
class CustomerData:
    external_id: str
    name: str
    country: str
    currency: str
    tax_id: str | None
    region: str | None = None  # ISO 3166-2 (US-CA), when the record names a known one
    address: Address = Address()
    language: str | None = None  # an ISO 639-1 code (ja), when the record names one
    billing_email: str | None = None  # where its documents are e-mailed


@dataclass(frozen=True)
class ItemData:
    key: str
    line_id: str
    product_code: str
    product_name: str
    product_family: str | None
    kind: ChargeKind
    quantity: Decimal
    unit_price: Decimal
    discount_percent: Decimal
    service_date: date | None
    metric: str | None = None  # a metered item: the billable metric its product names


@dataclass(frozen=True)
class DealData:
    external_id: str
    account_id: str
    name: str
    won: bool
    currency: str | None
    start: date
    term_months: int
    frequency: Frequency
    auto_renew: bool
    trial_days: int
    cancel_date: date | None
    amends: str | None
    items: tuple[ItemData, ...]


def value_at(record: dict[str, Any] | None, path: str) -> Any:
    """The value at ``Parent.Field`` in a REST record (None when a parent is null, and for an
    empty path: a setting left empty maps no field)."""
    if not path:
        return None
    current: Any = record
    for part in path.split("."):
        if not isinstance(current, dict):
            return None
        if part in current:  # as Salesforce spells it, most often: no need to look further
            current = current[part]
            continue
        lowered = part.lower()
        current = next((value for key, value in current.items() if key.lower() == lowered), None)
    return None if current == "" else current


def _date(value: Any, what: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise MappingError(f"{what} {value!r} is not a date") from None


def _decimal(value: Any, what: str) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise MappingError(f"{what} {value!r} is not a number")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise MappingError(f"{what} {value!r} is not a number") from None
    if not number.is_finite():
        raise MappingError(f"{what} {value!r} is not a number")
    return number


def _whole(value: Any, what: str, default: int) -> int:
    number = _decimal(value, what)
    if number is None:
        return default
    if number != number.to_integral_value():
        raise MappingError(f"{what} {value} is not a whole number")
    return int(number)


def _mapped(record: dict[str, Any], rule: ValueMap, what: str) -> str:
    raw = value_at(record, rule.field)
    key = rule.default if raw is None else str(raw)
    for source, target in rule.values.items():
        if source.lower() == key.lower():
            return target
    raise MappingError(f"{what} {rule.field} {key!r} is not one of {', '.join(rule.values)}")


def _currency(value: Any, what: str) -> str | None:
    if value is None:
        return None
    try:
        return currency_of(str(value)).code
    except InvalidInputError:
        raise MappingError(f"{what} currency {value!r} is not supported") from None


def map_customer(
    mapping: CustomerMapping, record: dict[str, Any], default_currency: str
) -> CustomerData:
    name = value_at(record, mapping.name)
    if not name:
        raise MappingError(f"account has no {mapping.name}")
    country = value_at(record, mapping.country)
    if not country:
        raise MappingError(f"account has no {mapping.country} (needed for tax)")
    code = _currency(value_at(record, mapping.currency), "account") or default_currency
    tax_id = value_at(record, mapping.tax_id) if mapping.tax_id else None
    region = _region(value_at(record, mapping.region) if mapping.region else None, country)
    address = Address(
        _text(record, mapping.street),
        _text(record, mapping.city),
        _text(record, mapping.state),
        _text(record, mapping.postal_code),
    )
    return CustomerData(
        str(record["Id"]),
        str(name),
        str(country),
        code,
        tax_id and str(tax_id),
        region,
        address,
        language_code(_text(record, mapping.language)),
        _email(value_at(record, mapping.billing_email) if mapping.billing_email else None),
    )


def _text(record: dict[str, Any], path: str) -> str | None:
    value = value_at(record, path)
    return None if value is None else str(value).strip() or None


def language_code(value: str | None) -> str | None:
    """The ISO 639-1 code of a language given as a code or a locale (ja, ja_JP, en-GB); None
    for anything else (the country decides)."""
    if not value:
        return None
    code = value.strip().replace("-", "_").split("_")[0].lower()
    return code if len(code) == 2 and code.isalpha() else None


def _email(value: Any) -> str | None:
    """An address (``someone@example.com``), or None for anything that is none."""
    text = str(value).strip() if value else ""
    return text if "@" in text and " " not in text else None


def _region(value: Any, country: Any) -> str | None:
    """The ISO 3166-2 code of a state or province given as a code or a name; None for one that
    is not a region of the country (free text), which matters only where the tax rates have
    regions of that country, and then the billing run says the customer has none."""
    if value is None:
        return None
    try:
        return region_code(country_code(str(country)), str(value))
    except InvalidInputError:
        return None


def _item(mapping: ItemsMapping, record: dict[str, Any], seen: dict[str, int]) -> ItemData:
    line = str(record.get("Id", ""))
    what = f"line item {line}"
    code = value_at(record, mapping.product_code)
    if not code:
        raise MappingError(f"{what} has no product ({mapping.product_code} is empty)")
    quantity = _decimal(value_at(record, mapping.quantity), f"{what} quantity")
    if quantity is None or quantity <= 0:
        raise MappingError(f"{what} quantity {quantity} must be positive")
    if quantity == quantity.to_integral_value():
        quantity = quantity.quantize(Decimal(1))  # Salesforce sends 3.0 for three
    price = _decimal(value_at(record, mapping.unit_price), f"{what} unit price")
    if price is None or price < 0:
        raise MappingError(f"{what} unit price {price} must be zero or more")
    discount = _decimal(value_at(record, mapping.discount_percent), f"{what} discount") or Decimal(
        0
    )
    if not Decimal(0) <= discount <= Decimal(100):
        raise MappingError(f"{what} discount {discount}% must be between 0 and 100")
    seen[str(code)] = seen.get(str(code), 0) + 1
    key = str(code) if seen[str(code)] == 1 else f"{code}#{seen[str(code)]}"
    metric = value_at(record, mapping.metric) if mapping.metric else None
    if metric is not None and not isinstance(metric, str):
        raise MappingError(f"{what} metric {metric!r} ({mapping.metric}) is not a text")
    metric = metric.strip() if metric else None
    return ItemData(
        key=key,
        line_id=line,
        product_code=str(code),
        product_name=str(value_at(record, mapping.product_name) or code),
        product_family=value_at(record, mapping.product_family) if mapping.product_family else None,
        kind=ChargeKind.METERED
        if metric
        else ChargeKind(_mapped(record, mapping.billing_type, what)),
        quantity=quantity,
        unit_price=price,
        discount_percent=discount,
        service_date=_date(value_at(record, mapping.service_date), f"{what} service date"),
        metric=metric,
    )


def map_deal(mapping: SalesforceMapping, record: dict[str, Any]) -> DealData:
    """A won or lost deal, mapped; the items are checked only when the deal is won."""
    contract = mapping.contract
    won = truthy(value_at(record, contract.won))
    start = next(
        (
            day
            for day in (_date(value_at(record, path), path) for path in contract.service_start)
            if day is not None
        ),
        None,
    )
    if start is None and won:
        raise MappingError(f"deal has no service start ({', '.join(contract.service_start)})")
    amends = None
    if contract.amendment is not None:
        kind = value_at(record, contract.amendment.type_field)
        if kind is not None and str(kind).lower() in {t.lower() for t in contract.amendment.types}:
            amends = value_at(record, contract.amendment.amends)
            if not amends and won:
                raise MappingError(
                    f"deal of type {kind!r} names no deal it amends ({contract.amendment.amends})"
                )
    children = value_at(record, mapping.items.relationship)
    rows = children.get("records", []) if isinstance(children, dict) else []
    seen: dict[str, int] = {}
    items = tuple(_item(mapping.items, row, seen) for row in rows) if won else ()
    if won and not items:
        raise MappingError("won deal has no line items")
    frequency = Frequency.parse(_mapped(record, contract.frequency, "deal"))
    return DealData(
        external_id=str(record["Id"]),
        account_id=str(value_at(record, contract.account) or ""),
        name=str(value_at(record, contract.name) or record["Id"]),
        won=won,
        currency=_currency(value_at(record, contract.currency), "deal"),
        start=start or date.min,
        term_months=_whole(
            value_at(record, contract.term_months.field),
            "term months",
            int(contract.term_months.default or 12),
        ),
        frequency=frequency,
        auto_renew=truthy(value_at(record, contract.auto_renew.field), contract.auto_renew.default),
        trial_days=_whole(
            value_at(record, contract.trial_days.field),
            "trial days",
            int(contract.trial_days.default or 0),
        ),
        cancel_date=_date(value_at(record, contract.cancellation_date), "cancellation date"),
        amends=str(amends) if amends else None,
        items=items,
    )


def truthy(value: Any, default: Any = False) -> bool:
    """A checkbox from JSON (true) or CSV text ("true"); ``default`` when it is not set."""
    if value is None:
        return bool(default) if default is not None else True
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)
