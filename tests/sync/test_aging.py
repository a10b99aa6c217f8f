"""Aged receivables from the billing core: invoices issued by billing runs on several days,
partial payments, a credit note, an over-payment, two currencies, and the as-of date moving
across the buckets' boundaries. Invoices fall due 30 days after their date (the default
``billing.payment_terms_days``).

The books of the scenario (monthly subscriptions billed in advance):

- Acme Corporation (USD), 10 seats × 10.00 from 2026-01-01, cancelled from 2026-06-16.
  January's invoice (2026-01-01, due 01-31) is paid 40.00 on 02-10; February's and March's
  (2026-03-01, due 03-31), April's (04-01, due 05-01), May's (05-01, due 05-31) and June's
  (06-01, due 07-01) are unpaid; the cancellation credits 15 of June's 30 days (50.00) on
  2026-06-20, applied to June's invoice.
- Chicago Partners (USD), 5 × 10.00 from 2026-03-01: invoices of 50.00 issued 03-01, 04-01,
  05-01 and 06-01; 500.00 received on 2026-06-05 pays all four and leaves 300.00 of credit.
- Berlin GmbH (EUR, 19% VAT), 10 × 20.00 from 2026-03-01: invoices of 238.00 issued 03-01,
  04-01, 05-01 and 06-01; March's is paid on 04-15, and 100.00 of April's on 2026-07-05.
"""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from connector.cli import app
from connector.db import tables
from connector.db.engine import transaction
from connector.settings import Settings
from connector.sync import contracts, settlement
from connector.sync.aging import aged_receivables
from connector.sync.billing_run import run_billing
from tests import builders

D = Decimal
ZERO_ROW = dict.fromkeys(
    ("current", "days_1_30", "days_31_60", "days_61_90", "days_over_90", "total", "credit"),
    "0.00",
)
runner = CliRunner()


def named(session: Session, ref: str, name: str, currency: str, country: str) -> int:
    customer = builders.customer(session, ref, country=country, currency=currency)
    customer.name = name
    return customer.id


def invoice_of(session: Session, customer_id: int, issued: date) -> str:
    return (
        session.scalars(
            select(tables.Document.number)
            .where(
                tables.Document.customer_id == customer_id,
                tables.Document.kind == "invoice",
                tables.Document.issue_date == issued,
            )
            .order_by(tables.Document.id)
        ).first()
        or ""
    )


@pytest.fixture
def books(factory: sessionmaker[Session], settings: Settings) -> dict[str, int]:
    with transaction(factory) as session:
        ids = {
            "acme": named(session, "ACME", "Acme Corporation", "USD", "US"),
            "chicago": named(session, "CHI", "Chicago Partners", "USD", "US"),
            "berlin": named(session, "BER", "Berlin GmbH", "EUR", "DE"),
        }
        usd = builders.price(session, "SEATS", currency="USD", unit_amount="10.00")
        eur = builders.price(session, "SEATS", currency="EUR", unit_amount="20.00")
        customers = {row.id: row for row in session.scalars(select(tables.Customer))}
        acme = builders.subscription(
            session,
            customers[ids["acme"]],
            [builders.spec(session, usd, 10)],
            start=date(2026, 1, 1),
        ).id
        for key, price, seats in (("chicago", usd, 5), ("berlin", eur, 10)):
            builders.subscription(
                session,
                customers[ids[key]],
                [builders.spec(session, price, seats)],
                start=date(2026, 3, 1),
            )
    for day in (date(2026, 1, 1), date(2026, 3, 1), date(2026, 4, 1)):
        run_billing(factory, settings, day)
    with transaction(factory) as session:
        settlement.record_payment(
            session,
            amount="40.00",
            received_on=date(2026, 2, 10),
            invoice_number=invoice_of(session, ids["acme"], date(2026, 1, 1)),
        )
        settlement.record_payment(
            session,
            amount="238.00",
            received_on=date(2026, 4, 15),
            invoice_number=invoice_of(session, ids["berlin"], date(2026, 3, 1)),
        )
    for day in (date(2026, 5, 1), date(2026, 6, 1)):
        run_billing(factory, settings, day)
    with transaction(factory) as session:
        settlement.record_payment(
            session,
            amount="500.00",
            received_on=date(2026, 6, 5),
            invoice_number=invoice_of(session, ids["chicago"], date(2026, 3, 1)),
        )
        contracts.cancel_subscription(session, acme, cancel_date=date(2026, 6, 16))
    credit = run_billing(factory, settings, date(2026, 6, 20))
    assert (credit.invoices, credit.credit_notes, credit.credited) == (0, 1, {"USD": D("50.00")})
    with transaction(factory) as session:
        settlement.record_payment(
            session,
            amount="100.00",
            received_on=date(2026, 7, 5),
            invoice_number=invoice_of(session, ids["berlin"], date(2026, 4, 1)),
        )
    return ids


def row(**amounts: str) -> dict[str, str]:
    return {**ZERO_ROW, **amounts}


def report(factory: sessionmaker[Session], as_of: date) -> list[dict[str, Any]]:
    """The report as `--json` shows it, without customer ids."""
    with factory() as session:
        sections = aged_receivables(session, as_of)
    return [
        {
            "currency": section.currency,
            "customers": {
                line.name: {k: format(v, "f") for k, v in line.amounts.to_dict().items()}
                for line in section.customers
            },
            "totals": {k: format(v, "f") for k, v in section.totals.to_dict().items()},
        }
        for section in sections
    ]


def test_each_invoice_owes_what_is_left_by_days_past_due(
    factory: sessionmaker[Session], books: dict[str, int]
) -> None:
    # 2026-06-29: January's 60.00 is 149 days past due, February's and March's 90 (61–90),
    # April's 59 (31–60), May's 29 (1–30), June's 50.00 left after the credit note is not due.
    assert report(factory, date(2026, 6, 29)) == [
        {
            "currency": "EUR",
            "customers": {
                "Berlin GmbH": row(
                    current="238.00", days_1_30="238.00", days_31_60="238.00", total="714.00"
                )
            },
            "totals": row(
                current="238.00", days_1_30="238.00", days_31_60="238.00", total="714.00"
            ),
        },
        {
            "currency": "USD",
            "customers": {
                "Acme Corporation": row(
                    current="50.00",
                    days_1_30="100.00",
                    days_31_60="100.00",
                    days_61_90="200.00",
                    days_over_90="60.00",
                    total="510.00",
                ),
                "Chicago Partners": row(credit="300.00"),
            },
            "totals": row(
                current="50.00",
                days_1_30="100.00",
                days_31_60="100.00",
                days_61_90="200.00",
                days_over_90="60.00",
                total="510.00",
                credit="300.00",
            ),
        },
    ]


def test_the_as_of_date_decides_what_was_owed_and_paid_then(
    factory: sessionmaker[Session], books: dict[str, int]
) -> None:
    # 2026-06-04: before Chicago's payment and the credit note; Berlin's March is paid.
    assert report(factory, date(2026, 6, 4)) == [
        {
            "currency": "EUR",
            "customers": {
                "Berlin GmbH": row(
                    current="238.00", days_1_30="238.00", days_31_60="238.00", total="714.00"
                )
            },
            "totals": row(
                current="238.00", days_1_30="238.00", days_31_60="238.00", total="714.00"
            ),
        },
        {
            "currency": "USD",
            "customers": {
                "Acme Corporation": row(
                    current="100.00",
                    days_1_30="100.00",
                    days_31_60="100.00",
                    days_61_90="200.00",
                    days_over_90="60.00",
                    total="560.00",
                ),
                "Chicago Partners": row(
                    current="50.00",
                    days_1_30="50.00",
                    days_31_60="50.00",
                    days_61_90="50.00",
                    total="200.00",
                ),
            },
            "totals": row(
                current="150.00",
                days_1_30="150.00",
                days_31_60="150.00",
                days_61_90="250.00",
                days_over_90="60.00",
                total="760.00",
            ),
        },
    ]
    # 2026-07-10: Berlin's 100.00 of 07-05 is applied to April (70 days past due).
    berlin = report(factory, date(2026, 7, 10))[0]["customers"]["Berlin GmbH"]
    assert berlin == row(
        days_1_30="238.00", days_31_60="238.00", days_61_90="138.00", total="614.00"
    )
    # Before the first invoice, nothing was owed.
    assert report(factory, date(2025, 12, 31)) == []


@pytest.mark.parametrize(
    ("days_past_due", "bucket"),
    [
        (-10, "current"),
        (0, "current"),
        (1, "days_1_30"),
        (30, "days_1_30"),
        (31, "days_31_60"),
        (60, "days_31_60"),
        (61, "days_61_90"),
        (90, "days_61_90"),
        (91, "days_over_90"),
    ],
)
def test_as_of_boundaries(
    factory: sessionmaker[Session], settings: Settings, days_past_due: int, bucket: str
) -> None:
    builders.simple_subscription(factory, start=date(2026, 1, 1))  # 100.00 a month
    run_billing(factory, settings, date(2026, 1, 1))  # INV-000001, due 2026-01-31
    as_of = date(2026, 1, 31) + timedelta(days=days_past_due)
    [usd] = report(factory, as_of)
    assert usd["totals"] == row(**{bucket: "100.00", "total": "100.00"})


def test_a_void_invoice_is_not_owed(factory: sessionmaker[Session], settings: Settings) -> None:
    builders.simple_subscription(factory, start=date(2026, 1, 1))
    run_billing(factory, settings, date(2026, 1, 1))
    with transaction(factory) as session:
        contracts.void_invoice(session, "INV-000001", "wrong quantity")
    assert report(factory, date(2026, 3, 1)) == []


# -- the command ---------------------------------------------------------------------------------
@pytest.fixture
def env(cli_env: dict[str, str]) -> dict[str, str]:
    return cli_env


def test_the_command_prints_json_per_currency_with_customer_ids(
    books: dict[str, int], env: dict[str, str]
) -> None:
    result = runner.invoke(app, ["report", "aging", "--as-of", "2026-06-29", "--json"], env=env)

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["as_of"] == "2026-06-29"
    assert [section["currency"] for section in data["currencies"]] == ["EUR", "USD"]
    usd = data["currencies"][1]
    assert [(c["customer_id"], c["customer"]) for c in usd["customers"]] == [
        (books["acme"], "Acme Corporation"),
        (books["chicago"], "Chicago Partners"),
    ]
    assert {k: v for k, v in usd["customers"][1].items() if k in ZERO_ROW} == row(credit="300.00")
    assert usd["totals"]["total"] == "510.00"


def test_the_table_fits_80_columns_without_cutting_a_name_or_an_amount(
    books: dict[str, int], env: dict[str, str]
) -> None:
    result = runner.invoke(app, ["report", "aging", "--as-of", "2026-06-29"], env=env)

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "…" not in result.stdout
    usd = next(line for line in lines if line.startswith("Acme Corporation"))
    assert usd.split() == [
        "Acme",
        "Corporation",
        "50.00",
        "100.00",
        "100.00",
        "200.00",
        "60.00",
        "510.00",
        "—",
    ]
    chicago = next(line for line in lines if line.startswith("Chicago Partners"))
    assert chicago.split()[2:] == ["—"] * 6 + ["300.00"]
    assert "EUR receivables as of 2026-06-29" in result.stdout
    assert any(
        re.fullmatch(r"Total\s+238\.00\s+238\.00\s+238\.00\s+—\s+—\s+714\.00\s+—", line)
        for line in lines
    )


def test_names_and_amounts_too_wide_for_a_row_are_shown_one_block_per_customer(
    factory: sessionmaker[Session], settings: Settings, env: dict[str, str]
) -> None:
    long_name = "Wayne Enterprises International Holdings of Gotham City Incorporated"
    with transaction(factory) as session:
        customer = builders.customer(session, "WAYNE")
        customer.name = long_name
        seats = builders.price(session, "SEATS", unit_amount="12345678.91")
        builders.subscription(
            session, customer, [builders.spec(session, seats, 7)], start=date(2026, 1, 1)
        )
    run_billing(factory, settings, date(2026, 1, 1))  # 86,419,752.37, due 2026-01-31

    result = runner.invoke(app, ["report", "aging", "--as-of", "2026-03-15"], env=env)

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert long_name in lines
    assert [line.split() for line in lines if "86,419,752.37" in line] == [
        ["31–60", "86,419,752.37"],
        ["Total", "86,419,752.37"],
        ["31–60", "86,419,752.37"],
        ["Total", "86,419,752.37"],
        # the invoice in the collections table (no dunning: the schedule never ran)
        ["INV-000001", "Wayne", "Enterprises", "2026-01-31", "43", "86,419,752.37", "USD", "—"],
    ]
