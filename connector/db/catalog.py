"""Customers, products and prices in storage, and their domain form."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.billing import pricing
from connector.billing.metered import MeteredModel, MeteredPrice
from connector.billing.money import currency as currency_of
from connector.billing.money import to_decimal
from connector.db import tables
from connector.errors import InvalidInputError, NotFoundError


def product_from_row(row: tables.Product) -> pricing.Product:
    return pricing.Product(row.code, row.name, row.family, row.tax_code, row.id)


def tiers_to_json(tiers: Iterable[pricing.Tier]) -> list[dict[str, Any]]:
    return [
        {
            "first_unit": tier.first_unit,
            "last_unit": tier.last_unit,
            "unit_amount": format(tier.unit_amount, "f"),
            "flat_amount": format(tier.flat_amount, "f"),
        }
        for tier in tiers
    ]


def tiers_from_json(
    data: Iterable[Mapping[str, Any]] | None, where: str
) -> tuple[pricing.Tier, ...]:
    tiers = []
    for number, entry in enumerate(data or (), start=1):
        label = f"{where}: tier {number}"
        try:
            first = int(entry["first_unit"])
            last = entry.get("last_unit")
            tiers.append(
                pricing.Tier(
                    first,
                    None if last is None else int(last),
                    to_decimal(entry.get("unit_amount", "0"), what=f"{label} unit_amount"),
                    to_decimal(entry.get("flat_amount", "0"), what=f"{label} flat_amount"),
                )
            )
        except KeyError as missing:
            raise InvalidInputError(f"missing {missing.args[0]}", where=label) from None
        except (TypeError, ValueError) as error:
            if isinstance(error, InvalidInputError):
                raise
            raise InvalidInputError(
                f"unit bounds must be whole numbers ({error})", where=label
            ) from None
    return tuple(tiers)


def price_from_row(row: tables.Price, product: pricing.Product) -> pricing.Price:
    where = f"price {row.lookup_key or row.id}"
    if row.kind == pricing.ChargeKind.METERED.value:
        return pricing.Price.of_usage(product, metered_from_row(row, where), row.id)
    return pricing.Price(
        product=product,
        currency=currency_of(row.currency),
        kind=pricing.ChargeKind(row.kind),
        model=pricing.PricingModel(row.model),
        unit_amount=row.unit_amount,
        flat_amount=row.flat_amount,
        tiers=tiers_from_json(row.tiers, where),
        id=row.id,
    )


def metered_from_row(row: tables.Price, where: str) -> MeteredPrice:
    """The terms of a stored metered price."""
    if not row.metric:
        raise InvalidInputError("a metered price needs a metric", where=where)
    return MeteredPrice(
        row.metric,
        currency_of(row.currency),
        MeteredModel(row.model),
        row.unit_amount,
        tiers_from_json(row.tiers, where),
        row.package_size,
        row.package_amount,
        row.free_units if row.free_units is not None else Decimal(0),
        row.minimum,
    )


def metered_columns(metered: MeteredPrice | None) -> dict[str, Any]:
    """The columns only a metered price sets (None on the others)."""
    return {
        "metric": metered.metric if metered else None,
        "package_size": metered.package_size if metered else None,
        "package_amount": metered.package_amount if metered else None,
        "free_units": metered.free_units if metered else None,
        "minimum": metered.minimum if metered else None,
    }


@dataclass
class PriceCache:
    """Prices and products by id, loaded on first use and kept for a run."""

    prices: dict[int, pricing.Price] = field(default_factory=dict)
    products: dict[int, pricing.Product] = field(default_factory=dict)
    broken: dict[int, InvalidInputError] = field(default_factory=dict)  # price id -> why

    def price(self, price_id: int) -> pricing.Price:
        """A loaded price; raises the price's own error when its stored terms are invalid."""
        if price_id in self.broken:
            raise self.broken[price_id]
        return self.prices[price_id]

    def load_products(self, session: Session, ids: Iterable[int]) -> None:
        missing = set(ids) - self.products.keys()
        if missing:
            rows = session.scalars(select(tables.Product).where(tables.Product.id.in_(missing)))
            for row in rows:
                self.products[row.id] = product_from_row(row)

    def load_prices(self, session: Session, ids: Iterable[int]) -> None:
        missing = set(ids) - self.prices.keys() - self.broken.keys()
        if not missing:
            return
        rows = list(session.scalars(select(tables.Price).where(tables.Price.id.in_(missing))))
        self.load_products(session, (row.product_id for row in rows))
        for row in rows:
            try:
                self.prices[row.id] = price_from_row(row, self.products[row.product_id])
            except InvalidInputError as error:
                self.broken[row.id] = error


def find_product(session: Session, code: str) -> tables.Product:
    row = session.scalar(select(tables.Product).where(tables.Product.code == code))
    if row is None:
        raise NotFoundError(f"unknown product {code!r}")
    return row


def upsert_product(
    session: Session, code: str, name: str, family: str | None = None, tax_code: str | None = None
) -> tables.Product:
    product = pricing.Product(code.strip(), name.strip(), family, tax_code)
    row = session.scalar(select(tables.Product).where(tables.Product.code == product.code))
    if row is None:
        row = tables.Product(code=product.code)
        session.add(row)
    row.name, row.family, row.tax_code = product.name, family, tax_code
    session.flush()
    return row


def price_signature(price: pricing.Price) -> tuple[Any, ...]:
    return (
        price.product.code,
        price.currency.code,
        price.kind,
        price.model,
        price.unit_amount,
        price.flat_amount,
        price.tiers,
        price.metered,
    )


def upsert_price(
    session: Session,
    product: tables.Product,
    *,
    currency: str,
    kind: pricing.ChargeKind,
    model: pricing.PricingModel,
    unit_amount: Decimal | None = None,
    flat_amount: Decimal | None = None,
    tiers: Iterable[pricing.Tier] = (),
    lookup_key: str | None = None,
    metered: MeteredPrice | None = None,
) -> tables.Price:
    """A price with these terms: the one under ``lookup_key``, or an identical one, or a new
    one. A price in use never changes; a lookup key that already names other terms is refused.
    A metered price (``kind`` metered) takes its terms from ``metered``."""
    if kind is pricing.ChargeKind.METERED:
        if metered is None:
            raise InvalidInputError("a metered price needs a metric", where=f"price {lookup_key}")
        price = pricing.Price.of_usage(product_from_row(product), metered)
        model, unit_amount, flat_amount = price.model, price.unit_amount, None
        tiers = price.tiers
    else:
        price = pricing.Price(
            product_from_row(product),
            currency_of(currency),
            kind,
            model,
            unit_amount,
            flat_amount,
            tuple(tiers),
        )
    if lookup_key is not None:
        row = session.scalar(select(tables.Price).where(tables.Price.lookup_key == lookup_key))
        if row is not None:
            existing = price_from_row(row, product_from_row(product))
            if row.product_id != product.id or price_signature(existing) != price_signature(price):
                raise InvalidInputError(
                    "a price with this key already exists with other terms; prices never change "
                    "once created, so give the new terms a new key",
                    where=f"price {lookup_key}",
                )
            return row
    else:
        candidates = session.scalars(
            select(tables.Price).where(
                tables.Price.product_id == product.id,
                tables.Price.currency == price.currency.code,
                tables.Price.kind == kind.value,
                tables.Price.model == model.value,
                tables.Price.lookup_key.is_(None),
            )
        )
        for row in candidates:
            if price_signature(price_from_row(row, price.product)) == price_signature(price):
                return row
    row = tables.Price(
        product_id=product.id,
        lookup_key=lookup_key,
        currency=price.currency.code,
        kind=kind.value,
        model=model.value,
        unit_amount=unit_amount,
        flat_amount=flat_amount,
        tiers=tiers_to_json(price.tiers) if price.tiers else None,
        **metered_columns(price.metered),
    )
    session.add(row)
    session.flush()
    return row


def find_price(session: Session, lookup_key: str) -> tables.Price:
    row = session.scalar(select(tables.Price).where(tables.Price.lookup_key == lookup_key))
    if row is None:
        raise NotFoundError(f"unknown price {lookup_key!r}")
    return row


def _external_entity_id(session: Session, entity: str, system: str, external_id: str) -> int | None:
    return session.scalar(
        select(tables.ExternalId.entity_id).where(
            tables.ExternalId.system == system,
            tables.ExternalId.entity == entity,
            tables.ExternalId.external_id == external_id,
        )
    )


def find_by_external_id(
    session: Session, entity: type[tables.Base], system: str, external_id: str
) -> Any | None:
    """The record of type ``entity`` known as ``external_id`` in ``system``, if any."""
    entity_id = _external_entity_id(session, entity.__tablename__, system, external_id)
    return None if entity_id is None else session.get(entity, entity_id)


def link_external_id(session: Session, row: Any, system: str, external_id: str) -> None:
    """Remember that ``row`` is known as ``external_id`` in ``system`` (once)."""
    entity = type(row).__tablename__
    if _external_entity_id(session, entity, system, external_id) is None:
        session.add(
            tables.ExternalId(
                entity=entity, entity_id=row.id, system=system, external_id=external_id
            )
        )
        session.flush()
