"""Four customers billed by the real billing run, as the document tests see them: in the US
(New York tax, a discount), in the UK (VAT 20 %), in Germany with a valid VAT id (reverse
charge, the seller in the US), and in Japan (consumption tax 10 % and the reduced 8 %)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connector.db import tables
from connector.db.engine import transaction
from connector.settings import Settings, load_settings
from connector.sync import contracts
from connector.sync.billing_run import run_billing
from connector.sync.mapping import Address
from tests import builders

JAN = date(2026, 1, 1)
REGISTRATION = "T5835678256246"
VALID_DE = "DE136695976"


@dataclass(frozen=True)
class Customer:
    ref: str
    name: str
    country: str
    currency: str
    tax_id: str | None
    address: Address
    items: tuple[
        tuple[str, str, str, int, int, str | None], ...
    ]  # code, name, price, qty, %off, tax code
    region: str | None = None


CUSTOMERS = (
    Customer(
        "us",
        "Acme Robotics Inc.",
        "US",
        "USD",
        None,
        Address("500 Fifth Avenue\nSuite 12", "New York", "NY", "10110"),
        (
            ("SEATS", "Seats", "12.50", 24, 0, None),
            ("SUPPORT", "Premium support", "199.99", 1, 15, None),
        ),
        region="NY",
    ),
    Customer(
        "uk",
        "Brightwater Analytics Ltd",
        "GB",
        "GBP",
        "GB980780684",
        Address("14 Bishopsgate", "London", None, "EC2N 4BQ"),
        (
            ("ANALYTICS", "Analytics platform", "849.00", 1, 0, None),
            ("SEATS_GB", "Seats", "9.75", 7, 0, None),
        ),
    ),
    Customer(
        "de",
        "Nordlicht Software GmbH",
        "DE",
        "EUR",
        VALID_DE,
        Address("Friedrichstraße 68", "Berlin", None, "10117"),
        (
            ("PLATFORM", "Platform licence", "1250.00", 1, 10, None),
            ("API", "API calls (package)", "0.35", 1000, 0, None),
        ),
    ),
    Customer(
        "jp",
        "株式会社さくらデータ",
        "JP",
        "JPY",
        None,
        Address(
            "丸の内一丁目9番2号 グラントウキョウサウスタワー", "千代田区", "東京都", "100-6690"
        ),
        (
            ("CLOUD", "クラウド利用料", "48000", 1, 0, None),
            ("SEATS_JP", "ユーザーライセンス", "1980", 15, 0, None),
            # 8 % of each line would round down (241.2, 40.4), 8 % of both rounds up (281.6).
            ("CATERING", "会議用軽食（飲食料品）", "1005", 3, 0, "food"),
            ("DRINKS", "お茶・飲料", "505", 1, 0, "food"),
        ),
    ),
)


@pytest.fixture
def doc_settings(database_url: str, tmp_path: Path) -> Settings:
    return sample_settings(database_url, tmp_path)


def sample_settings(database_url: str, tmp_path: Path, **overrides: object) -> Settings:
    return load_settings(
        None,
        database_url=database_url,
        ledger={"path": tmp_path / "ledger.beancount"},
        tax={
            "rates": {"GB": "20", "DE": "19", "JP": "10", "US-NY": "8.875"},
            "code_rates": {"food": {"JP": "8"}},
            "home_country": "US",
        },
        seller={
            "name": "Northwind Billing Co.",
            "address": "1 Market Street\nSan Francisco, CA 94105\nUnited States",
            "tax_id": "US-EIN 12-3456789",
            "registration_number": REGISTRATION,
            "bank_details": "Bank: First Republic, 1 Market St\nAccount 000123456789, ABA 321081669"
            "\nIBAN GB33BUKB20201555555555, SWIFT BUKBGB22",
        },
        **overrides,
    )


def bill_samples(factory: sessionmaker[Session], settings: Settings) -> dict[str, str]:
    """Bill the four customers in January; their invoice numbers by customer ref."""
    with transaction(factory) as session:
        for sample in CUSTOMERS:
            customer = contracts.upsert_customer(
                session,
                name=sample.name,
                country=sample.country,
                currency=sample.currency,
                tax_id=sample.tax_id,
                system="test",
                external_id=sample.ref,
                region=sample.region,
                address=sample.address,
            )
            specs = [
                builders.spec(
                    session,
                    builders.price(
                        session,
                        code,
                        currency=sample.currency,
                        unit_amount=price,
                        tax_code=tax_code,
                    ),
                    quantity,
                    discount,
                )
                for code, _, price, quantity, discount, tax_code in sample.items
            ]
            for (code, name, *_), _spec in zip(sample.items, specs, strict=True):
                product = session.scalars(
                    select(tables.Product).where(tables.Product.code == code)
                ).one()
                product.name = name
            builders.subscription(session, customer, specs, start=JAN, name=sample.name)
    run_billing(factory, settings, JAN)
    with factory() as session:
        rows = session.execute(
            select(tables.ExternalId.external_id, tables.Document.number)
            .join(
                tables.Document,
                tables.Document.customer_id == tables.ExternalId.entity_id,
            )
            .where(tables.ExternalId.entity == "customers")
        )
        return {ref: number for ref, number in rows}


@pytest.fixture
def samples(factory: sessionmaker[Session], doc_settings: Settings) -> dict[str, str]:
    return bill_samples(factory, doc_settings)
