from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from connector.billing.plausibility import Limits
from connector.db import tables
from connector.db.engine import transaction
from connector.errors import InvalidInputError
from connector.settings import Settings
from connector.sync.billing_run import run_billing
from connector.sync.importer import import_file, sample_file

D = Decimal


def _import(factory: sessionmaker[Session], path: Path, as_of: date):
    with transaction(factory) as session:
        return import_file(session, path, as_of=as_of, default_currency="USD")


def _count(factory: sessionmaker[Session], table: type[tables.Base]) -> int:
    with factory() as session:
        return session.scalar(select(func.count()).select_from(table)) or 0


def test_sample_file_imports_and_reimports_idempotently(factory: sessionmaker[Session]) -> None:
    first = _import(factory, sample_file(), date(2026, 1, 1))
    assert first.errors == []
    assert first.imported == {"customers": 7, "products": 6, "prices": 13, "contracts": 7}
    assert first.pending_events == 5

    second = _import(factory, sample_file(), date(2026, 5, 31))
    assert second.errors == []
    assert second.imported == {"customers": 7, "products": 6, "prices": 13, "events": 2}
    assert second.pending_events == 3
    assert (_count(factory, tables.Customer), _count(factory, tables.Subscription)) == (7, 7)
    assert _count(factory, tables.Amendment) == 2

    third = _import(factory, sample_file(), date(2026, 5, 31))
    assert "events" not in third.imported and "contracts" not in third.imported
    assert _count(factory, tables.Amendment) == 2


BAD_FILE = """\
customers:
  - {id: A, name: Alpha, country: US}
  - id: B
    name: Beta
    country: Narnia
products:
  - {code: SEATS, name: Seats}
prices:
  - {key: SEATS-USD, product: SEATS, currency: USD, unit_amount: 10.00}
  - key: BROKEN
    product: SEATS
    currency: USD
    model: tiered
    tiers:
      - {first_unit: 1, last_unit: 10, unit_amount: 1.00}
      - {first_unit: 20, unit_amount: 0.50}
contracts:
  - id: A-1
    customer: A
    start_date: 2026-01-01
    items:
      - {price: SEATS-USD, quantity: 3}
  - id: B-1
    customer: B
    start_date: 2026-01-01
    items:
      - {price: SEATS-USD, quantity: 3}
  - id: A-2
    customer: A
    start_date: 2026-01-01
    frequency: fortnightly
    items:
      - {price: SEATS-USD, quantity: -2, colour: red}
"""


def test_bad_records_are_reported_with_file_and_line_and_the_rest_imported(
    factory: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "contracts.yaml"
    path.write_text(BAD_FILE)

    result = _import(factory, path, date(2026, 1, 1))

    assert result.errors == [  # in the order of the file
        f"{path}:3: customers[1]: unknown country 'Narnia' (expected ISO 3166 code)",
        f"{path}:10: prices[1]: price of SEATS in USD: tier 2 (20+): gap in tiers: units 11-19 are not priced",
        f"{path}:23: contracts[1]: unknown customer 'B'",
        f"{path}:33: contracts[2].items[0].colour: Extra inputs are not permitted",
    ]
    assert result.imported == {"customers": 1, "products": 1, "prices": 1, "contracts": 1}
    assert run_billing(factory, settings, date(2026, 1, 1)).invoiced["USD"] == Decimal("30.00")


def test_malformed_yaml_names_the_line(factory: sessionmaker[Session], tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("customers:\n  - {id: A, name: [unclosed\n")
    with pytest.raises(InvalidInputError, match=rf"{path}:3: not valid YAML"):
        _import(factory, path, date(2026, 1, 1))


def test_a_bad_section_or_value_is_skipped_and_the_rest_imported(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    path = tmp_path / "in.yaml"
    path.write_text(
        "customers:\n"
        "  - {id: A, name: Alpha, country: US}\n"
        "products:\n"
        "  SEATS: {name: Seats}\n"
        "contracts:\n"
        "  - {id: A-1, customer: A, start_date: 2026-01-01, trial_days: 99999999, items: []}\n"
    )

    result = _import(factory, path, date(2026, 1, 1))

    assert result.errors == [
        f"{path}:3: products: must be a list of records",
        f"{path}:6: contracts[0]: trial days must be 0 to 3660, not 99999999",
    ]
    assert result.imported == {"customers": 1}


def test_a_number_that_is_not_finite_names_its_line(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    path = tmp_path / "in.yaml"
    path.write_text("prices:\n  - {key: P, product: X, currency: USD, unit_amount: .inf}\n")
    with pytest.raises(
        InvalidInputError, match=rf"{path}:2: not valid YAML: .inf is not a finite number"
    ):
        _import(factory, path, date(2026, 1, 1))


IMPLAUSIBLE_FILE = """\
customers:
  - {id: A, name: Alpha, country: US}
products:
  - {code: SEATS, name: Seats}
  - {code: SETUP, name: Setup}
prices:
  - {key: SEATS-USD, product: SEATS, currency: USD, unit_amount: 10.00}
  - {key: SETUP-USD, product: SETUP, currency: USD, type: one_time, model: flat, flat_amount: 2000000}
contracts:
  - id: TYPO
    customer: A
    start_date: 1900-01-01
    items:
      - {price: SEATS-USD, quantity: 3}
  - id: HUGE
    customer: A
    start_date: 2026-01-01
    items:
      - {price: SEATS-USD, quantity: 1e15}
      - {price: SETUP-USD, key: setup}
  - id: FINE
    customer: A
    start_date: 2025-06-01
    items:
      - {price: SEATS-USD, quantity: 3}
events:
  - id: BACK
    date: 2026-05-01
    type: amend
    contract: FINE
    effective_date: 2026-05-01
    items:
      - {price: SEATS-USD, quantity: 2e14}
"""


def test_implausible_contracts_and_amendments_are_refused_with_every_reason(
    factory: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "contracts.yaml"
    path.write_text(IMPLAUSIBLE_FILE)
    limits = Limits(365, {"default": Decimal(1_000_000)}, date(2000, 1, 1), "chart.yaml")

    with transaction(factory) as session:
        result = import_file(
            session, path, as_of=date(2026, 6, 1), default_currency="USD", limits=limits
        )

    assert result.errors == [
        f"{path}:10: contracts[0]: implausible, not imported: start date 1900-01-01 is before "
        "the books open on 2000-01-01 (open_date in chart.yaml); start date 1900-01-01 is "
        "46,172 days before 2026-06-01, more than billing.max_backdate_days (365); fix the file",
        f"{path}:15: contracts[1]: implausible, not imported: item SEATS bills "
        "10,000,000,000,000,000.00 USD a monthly period, more than billing.max_amount (default: "
        "1,000,000.00); item setup bills 2,000,000.00 USD once, more than billing.max_amount "
        "(default: 1,000,000.00); fix the file or raise the limit for this import",
        f"{path}:27: events[0]: implausible, not imported: item SEATS bills "
        "2,000,000,000,000,000.00 USD a monthly period, more than billing.max_amount (default: "
        "1,000,000.00); fix the file or raise the limit for this import",
    ]
    assert result.imported == {"customers": 1, "products": 2, "prices": 2, "contracts": 1}
    assert _count(factory, tables.Subscription) == 1
    assert _count(factory, tables.Amendment) == 0
    # Without limits (a program's own import), the file is taken as it is.
    with transaction(factory) as session:
        again = import_file(session, path, as_of=date(2026, 6, 1), default_currency="USD")
    assert again.errors == []
    assert _count(factory, tables.Subscription) == 3


def test_customer_regions_are_imported_and_an_unknown_one_is_named(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    path = tmp_path / "regions.yaml"
    path.write_text(
        "customers:\n"
        "  - {id: A, name: Alpha, country: US, region: California}\n"
        "  - {id: B, name: Beta, country: Canada, region: 'ON'}\n"
        "  - {id: C, name: Gamma, country: US, region: Calif.}\n"
        "  - {id: D, name: Delta, country: DE}\n"
    )
    result = _import(factory, path, date(2026, 1, 1))
    assert result.errors == [
        f"{path}:4: customers[2]: unknown region 'Calif.' of US (expected an ISO 3166-2 code "
        "such as US-XX, or its name)"
    ]
    with factory() as session:
        rows = session.execute(
            select(tables.Customer.name, tables.Customer.region).order_by(tables.Customer.id)
        ).all()
    assert [tuple(row) for row in rows] == [("Alpha", "US-CA"), ("Beta", "CA-ON"), ("Delta", None)]
    assert sample_file().read_text().count("region: CA") == 1


METERED_FILE = """\
customers:
  - {id: ACME, name: Acme, country: US}
products:
  - {code: PLAN, name: Plan}
  - {code: API, name: API}
prices:
  - {key: plan-monthly, product: PLAN, currency: USD, unit_amount: 100.00}
  - key: api-calls-usd
    product: API
    currency: USD
    type: metered
    metric: api_calls
    model: package
    package_size: 1000
    package_amount: 0.50
    free_units: 10000
    minimum: 5.00
  - {key: no-metric, product: API, currency: USD, type: metered, unit_amount: 0.10}
  - {key: stray, product: PLAN, currency: USD, unit_amount: 1.00, metric: api_calls}
contracts:
  - id: CTR-1
    customer: ACME
    start_date: 2026-01-01
    items:
      - {price: plan-monthly}
      - {price: api-calls-usd}
"""


def test_a_metered_price_and_a_contract_with_a_metered_item_import(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    path = tmp_path / "metered.yaml"
    path.write_text(METERED_FILE, encoding="utf-8")

    result = _import(factory, path, date(2026, 1, 1))

    assert result.imported == {"customers": 1, "products": 2, "prices": 2, "contracts": 1}
    assert [error.split(": ", 1)[1] for error in result.errors] == [
        "prices[2]: price no-metric: a metered price needs a metric",
        "prices[3]: price stray: metric: only a metered price takes these",
    ]
    with factory() as session:
        price = session.scalar(
            select(tables.Price).where(tables.Price.lookup_key == "api-calls-usd")
        )
        assert price is not None
        assert (
            price.kind,
            price.model,
            price.metric,
            price.package_size,
            price.package_amount,
            price.free_units,
            price.minimum,
        ) == ("metered", "package", "api_calls", 1000, D("0.50"), D("10000"), D("5.00"))
        kinds = session.scalars(
            select(tables.SubscriptionItem.kind).order_by(tables.SubscriptionItem.id)
        ).all()
        assert kinds == ["recurring", "metered"]
