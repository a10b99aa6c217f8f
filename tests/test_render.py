"""How the command line prints: amounts the same way everywhere, tables that fit the terminal
without cutting a document number, a date or an amount."""

from __future__ import annotations

import io
import os
import re
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from rich.console import Console
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from connector.billing.money import Totals
from connector.cli import app
from connector.db.engine import transaction
from connector.render import demo_report, document_table, money
from connector.sync.demo import DemoMonth, DemoReport
from connector.sync.reports import list_documents
from tests import builders

runner = CliRunner()
LONG_NAME = "Internationale Handelsgesellschaft für Datenverarbeitung und Logistik mbH"


def render(renderable: object, width: int) -> list[str]:
    console = Console(width=width, file=io.StringIO(), color_system=None)
    console.print(renderable)
    output = console.file.getvalue()  # type: ignore[attr-defined]
    return [line.rstrip() for line in output.splitlines()]


@pytest.mark.parametrize(
    ("value", "currency", "shown"),
    [
        (Decimal(0), "USD", "0.00 USD"),
        (Decimal("1234567.8"), "EUR", "1,234,567.80 EUR"),
        (Decimal(43329), "JPY", "43,329 JPY"),
        (Decimal("1234.5"), "BHD", "1,234.500 BHD"),
        (Decimal("-70.00"), "GBP", "-70.00 GBP"),
    ],
)
def test_an_amount_is_grouped_with_its_currencys_digits_and_code(
    value: Decimal, currency: str, shown: str
) -> None:
    assert money(value, currency) == shown
    assert money(value, currency, code=False) == shown.rsplit(" ", 1)[0]


def test_an_amount_without_a_currency_is_grouped_as_stored() -> None:
    assert (money(Decimal("1234.5")), money(None)) == ("1,234.5", "—")


@pytest.fixture
def documents(factory: sessionmaker[Session]) -> sessionmaker[Session]:
    """Three invoices: a long customer name and a seven-figure total, a small one, a yen one."""
    with transaction(factory) as session:
        big = builders.customer(session, "BIG", country="DE", currency="EUR", name=LONG_NAME)
        licences = builders.price(session, "LICENCES", currency="EUR", unit_amount="1234.56")
        builders.subscription(
            session, big, [builders.spec(session, licences, 1000)], start=date(2026, 1, 1)
        )
        acme = builders.customer(session, "ACME", name="Acme")
        seats = builders.price(session, "SEATS", unit_amount="10.00")
        builders.subscription(
            session, acme, [builders.spec(session, seats, 3)], start=date(2026, 1, 1)
        )
        tokyo = builders.customer(session, "JP", country="JP", currency="JPY", name="Tokyo KK")
        yen = builders.price(session, "YEN", currency="JPY", unit_amount="43329")
        builders.subscription(
            session, tokyo, [builders.spec(session, yen, 1)], start=date(2026, 1, 1)
        )
    env = {"CONNECTOR_TAX__RATES": '{"DE": "19", "JP": "10"}'}
    assert invoke(factory, env, "bill", "--as-of", "2026-01-01").exit_code == 0
    return factory


def invoke(factory: sessionmaker[Session], env: dict[str, str], *args: str):
    url = factory.kw["bind"].url.render_as_string(hide_password=False)
    clean = {k: None for k in os.environ if k.startswith("CONNECTOR_")}
    return runner.invoke(app, list(args), env={**clean, "CONNECTOR_DATABASE_URL": url, **env})


EXPECTED = {  # number: (total, due), as printed
    "INV-000001": "1,469,126.40 EUR",
    "INV-000002": "30.00 USD",
    "INV-000003": "47,662 JPY",
}


def test_invoice_list_at_80_columns_cuts_no_number_date_or_amount(
    documents: sessionmaker[Session], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke(documents, {"COLUMNS": "80"}, "invoice", "list")

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert sorted(re.findall(r"INV-\S*", result.stdout)) == sorted(EXPECTED)
    for number, total in EXPECTED.items():
        (row,) = [line for line in lines if number in line]
        assert row.count(total) == 2, row  # the total, and as much due
        assert "2026-01-01" in row
    assert "…" not in result.stdout.replace("kind and period", "")


def test_invoice_list_shows_every_column_when_there_is_room(
    documents: sessionmaker[Session],
) -> None:
    with documents() as session:
        rows = list_documents(session)

    lines = render(document_table(rows, 200), 200)

    assert max(len(line) for line in lines) <= 200
    (row,) = [line for line in lines if "INV-000001" in line]
    assert row.split() == [
        "INV-000001",
        "invoice",
        *LONG_NAME.split(),
        "2026-01-01",
        "2026-01-01",
        "…",
        "2026-01-31",
        "1,469,126.40",
        "EUR",
        "1,469,126.40",
        "EUR",
        "open",
    ]


def test_invoice_list_in_blocks_when_even_the_short_table_does_not_fit(
    documents: sessionmaker[Session],
) -> None:
    with documents() as session:
        rows = list_documents(session)

    lines = render(document_table(rows, 40), 40)

    assert max(len(line) for line in lines) <= 40
    assert [line for line in lines if line.startswith("INV-")] == [
        "INV-000003  invoice  2026-01-01  open",
        "INV-000002  invoice  2026-01-01  open",
        "INV-000001  invoice  2026-01-01  open",
    ]
    assert lines[-6:] == [
        "INV-000001  invoice  2026-01-01  open",
        "  Internationale Handelsgesellschaft für",
        "  Datenverarbeitung und Logistik mbH",
        "  period 2026-01-01 … 2026-01-31",
        "  total 1,469,126.40 EUR",
        "  due 1,469,126.40 EUR",
    ]


def test_invoice_show_prints_every_amount_with_its_currencys_digits(
    documents: sessionmaker[Session],
) -> None:
    result = invoke(documents, {"COLUMNS": "80"}, "invoice", "show", "INV-000003")

    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert "amount (JPY)" in text
    assert "Tax JP 10% on 43,329 JPY │ 4,333 JPY" in text
    assert "Total │ 47,662 JPY Paid │ 0 JPY Credited │ 0 JPY Due │ 47,662 JPY" in text


def test_the_demo_summary_keeps_each_amount_with_its_currency_at_80_columns() -> None:
    owed = Totals({"EUR": Decimal("166634.03"), "GBP": Decimal("64146.30")})
    owed["JPY"] = Decimal(655958)
    report = DemoReport(
        Path("var/demo"),
        database=Path("var/demo/connector.db"),
        ledger=Path("var/demo/ledger.beancount"),
        salesforce=Path("var/demo/salesforce.db"),
        months=[
            DemoMonth(
                date(2026, 1, 1),
                date(2026, 1, 31),
                11,
                49,
                0,
                0,
                {"EUR": Decimal("50610.40"), "JPY": Decimal(169067)},
            )
        ],
        invoices=49,
        invoiced=Totals({"EUR": Decimal("1473771.10"), "JPY": Decimal(13815737)}),
        paid=Totals({"USD": Decimal("891085.08")}),
        outstanding=owed,
    )

    lines = render(demo_report(report, fava="fava", connector="connector"), 80)

    assert max(len(line) for line in lines) <= 80
    for shown in (
        "166,634.03 EUR",
        "64,146.30 GBP",
        "655,958 JPY",
        "1,473,771.10 EUR",
        "13,815,737 JPY",
        "891,085.08 USD",
    ):
        assert any(shown in line for line in lines), shown
    (january,) = [line for line in lines if line.startswith("│ 2026-01")]
    assert january.split("│")[-3:-1] == ["  50,610 ", " 169,067 "]
