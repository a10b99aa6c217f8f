from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from connector.cli import app
from connector.db import tables
from connector.db.engine import transaction
from connector.db.migrate import head_revision
from connector.sync import contracts
from tests import builders

runner = CliRunner()


@pytest.fixture
def env(cli_env: dict[str, str]) -> dict[str, str]:
    return {**cli_env, "CONNECTOR_TAX__RATES": '{"GB": "20"}'}


def invoke(env: dict[str, str], *args: str):
    return runner.invoke(app, list(args), env=env)


def test_bill_prints_a_json_summary(factory: sessionmaker[Session], env: dict[str, str]) -> None:
    builders.simple_subscription(factory, start=date(2026, 1, 1), currency="GBP", country="GB")

    result = invoke(env, "bill", "--as-of", "2026-02-01", "--json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "as_of": "2026-02-01",
        "subscriptions": 1,
        "invoices": 2,
        "credit_notes": 0,
        "invoiced": {"GBP": "240.00"},
        "credited": {},
        "failed": {},
    }


def test_invoice_show_and_payment_record(
    factory: sessionmaker[Session], env: dict[str, str]
) -> None:
    builders.simple_subscription(factory, start=date(2026, 1, 1), currency="GBP", country="GB")
    assert invoke(env, "bill", "--as-of", "2026-01-01").exit_code == 0

    shown = invoke(env, "invoice", "show", "INV-000001", "--json")
    document = json.loads(shown.stdout)
    assert (document["number"], document["total"], document["status"]) == (
        "INV-000001",
        "120.00",
        "open",
    )
    assert [(line["description"], line["amount"]) for line in document["lines"]] == [
        ("Seats × 10, 2026-01-01..2026-01-31", "100.00")
    ]
    assert [(t["rate"], t["taxable"], t["tax"]) for t in document["taxes"]] == [
        ("20", "100.00", "20.00")
    ]

    paid = invoke(env, "payment", "record", "INV-000001", "50.00", "--date", "2026-01-10")
    assert paid.exit_code == 0, paid.output
    assert paid.stdout.strip() == "INV-000001: paid 50.00 GBP, due 70.00 GBP, open"


def test_an_over_payment_is_kept_as_the_customers_credit(
    factory: sessionmaker[Session], env: dict[str, str]
) -> None:
    with transaction(factory) as session:
        acme = builders.customer(session, "ACME", country="US", name="Acme")
        seats = builders.price(session, "SEATS", unit_amount="10.00")
        builders.subscription(
            session, acme, [builders.spec(session, seats, 10)], start=date(2026, 1, 1)
        )
    assert invoke(env, "bill", "--as-of", "2026-01-01").exit_code == 0  # INV-000001: 100.00

    paid = invoke(env, "payment", "record", "INV-000001", "998664.00", "--date", "2026-01-10")

    assert paid.exit_code == 0, paid.output
    assert paid.stdout.splitlines() == [
        "INV-000001: paid 100.00 USD, due 0.00 USD, paid",
        "998,564.00 USD kept as credit for Acme",
    ]
    again = invoke(
        env, "payment", "record", "INV-000001", "50.00", "--date", "2026-01-11", "--json"
    )
    assert json.loads(again.stdout) == {
        "invoice": "INV-000001",
        "currency": "USD",
        "amount": "50.00",
        "paid": "100.00",
        "due": "0.00",
        "status": "paid",
        "customer": "Acme",
        "credit_kept": "50.00",
    }


def test_errors_are_clear_and_set_the_exit_code(env: dict[str, str]) -> None:
    missing = invoke(env, "payment", "record", "INV-404", "10.00")
    assert missing.exit_code == 1
    assert missing.stderr.strip() == "error: unknown invoice 'INV-404'"

    bad_config = invoke(
        {**env, "CONNECTOR_BILLING__BATCH_SIZE": "0"}, "bill", "--as-of", "2026-01-01"
    )
    assert bad_config.exit_code == 2
    assert (
        "billing.batch_size (CONNECTOR_BILLING__BATCH_SIZE): Input should be greater than or equal to 1"
        in (bad_config.stderr)
    )


def test_out_of_range_dates_are_refused_clearly(env: dict[str, str]) -> None:
    far = invoke(env, "bill", "--as-of", "9999-12-31")
    assert (far.exit_code, far.stderr.strip()) == (
        1,
        "error: as-of date 9999-12-31 is too far in the future",
    )
    reversed_window = invoke(env, "report", "mrr", "--as-of", "2026-01-15", "--since", "2026-03-01")
    assert (reversed_window.exit_code, reversed_window.stderr.strip()) == (
        1,
        "error: the movement window must start before 2026-01-15, not on 2026-03-01",
    )


def test_implausible_payments_on_a_real_invoice_are_refused_and_change_nothing(
    factory: sessionmaker[Session], env: dict[str, str]
) -> None:
    builders.simple_subscription(factory, start=date(2026, 1, 1), currency="GBP", country="GB")
    assert invoke(env, "bill", "--as-of", "2026-01-01").exit_code == 0
    before = json.loads(invoke(env, "invoice", "show", "INV-000001", "--json").stdout)
    assert (before["total"], before["status"]) == ("120.00", "open")

    refused = {
        amount: invoke(env, "payment", "record", "INV-000001", amount)
        for amount in ("1e30", "1000120.01", "1e15")
    }

    assert {amount: (r.exit_code, r.stderr.strip()) for amount, r in refused.items()} == {
        "1e30": (1, "error: amount 1E+30 is too large to bill in GBP"),
        "1000120.01": (
            1,
            "error: amount 1,000,120.01 GBP is more than Customer C1 owes (120.00 GBP) plus "
            "billing.max_amount (1,000,000.00 GBP): check the amount, or raise "
            "billing.max_amount to record it",
        ),
        "1e15": (
            1,
            "error: amount 1,000,000,000,000,000.00 GBP is more than Customer C1 owes "
            "(120.00 GBP) plus billing.max_amount (1,000,000.00 GBP): check the amount, or raise "
            "billing.max_amount to record it",
        ),
    }
    assert json.loads(invoke(env, "invoice", "show", "INV-000001", "--json").stdout) == before
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(tables.Payment)) == 0

    largest = invoke(env, "payment", "record", "INV-000001", "1000120.00", "--json")
    assert largest.exit_code == 0, largest.output
    assert json.loads(largest.stdout)["credit_kept"] == "1000000.00"


def test_report_mrr_json(factory: sessionmaker[Session], env: dict[str, str]) -> None:
    builders.simple_subscription(factory, start=date(2026, 1, 1), unit_amount="12.50")

    result = invoke(env, "report", "mrr", "--as-of", "2026-03-01", "--json")

    assert result.exit_code == 0, result.output
    (usd,) = json.loads(result.stdout)
    assert (usd["currency"], usd["mrr"], usd["arr"], usd["active_customers"]) == (
        "USD",
        "125.00",
        "1500.00",
        1,
    )
    assert usd["movements"]["net"] == "0.00"
    assert (usd["ltv"], usd["revenue_churn"]) == (None, "0.0000")


def test_import_reports_bad_records_and_exits_1(env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "in.yaml"
    path.write_text(
        "customers:\n  - {id: A, name: Alpha, country: US}\n  - {id: B, name: Beta, country: US, currency: XYZ}\n"
    )

    result = invoke(env, "import", str(path), "--as-of", "2026-01-01")

    assert result.exit_code == 1
    assert result.stdout.strip() == "customers: 1 imported"
    assert (
        result.stderr.strip()
        == f"error: {path}:3: customers[1]: unknown currency 'XYZ' (not in ISO 4217)"
    )


def test_db_upgrade_and_current(env: dict[str, str]) -> None:
    upgraded = invoke(env, "db", "upgrade")
    assert upgraded.exit_code == 0, upgraded.output
    head = head_revision()
    assert head == "0023"
    assert f"already at revision {head}" in upgraded.stdout
    current = invoke(env, "db", "current")
    assert f"revision {head} (latest {head})" in current.stdout


def test_demo_runs_on_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["demo", "--months", "1"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "│ 2026-01 │  11 │" in result.stdout  # January: 11 deals won
    assert "var/demo/ledger.beancount" in result.stdout
    assert "fava var/demo/ledger.beancount" in result.stdout
    for name in ("connector.db", "ledger.beancount", "salesforce.db"):
        assert (tmp_path / "var" / "demo" / name).is_file()
    # Every document's PDF, written where the report says, owner-only (the command it prints
    # to render one again: test_cli_demo.py).
    pdfs = sorted((tmp_path / "var" / "demo" / "documents").iterdir())
    invoices = int(result.stdout.split("│ 2026-01 │  11 │")[1].split("│")[0])
    assert [path.name for path in pdfs] == [f"INV-{n:06d}.pdf" for n in range(1, invoices + 1)]
    assert all(path.read_bytes().startswith(b"%PDF-") for path in pdfs)
    assert {path.stat().st_mode & 0o777 for path in pdfs} == {0o600}
    assert f"{invoices} PDFs in var/demo/documents/" in result.stdout


def test_import_refuses_an_implausible_contract_by_the_configured_limits(
    env: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "in.yaml"
    path.write_text(
        "customers:\n  - {id: A, name: Alpha, country: US}\n"
        "products:\n  - {code: SEATS, name: Seats}\n"
        "prices:\n  - {key: SEATS-USD, product: SEATS, currency: USD, unit_amount: 10.00}\n"
        "contracts:\n"
        "  - {id: OLD, customer: A, start_date: 2025-10-01, items: [{price: SEATS-USD}]}\n"
    )
    env = {**env, "CONNECTOR_BILLING__MAX_BACKDATE_DAYS": "90"}

    result = invoke(env, "import", str(path), "--as-of", "2026-01-01")

    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"error: {path}:8: contracts[0]: implausible, not imported: start date 2025-10-01 is 92 "
        "days before 2026-01-01, more than billing.max_backdate_days (90); fix the file or raise "
        "the limit for this import"
    )
    allowed = invoke(
        {**env, "CONNECTOR_BILLING__MAX_BACKDATE_DAYS": "92"},
        "import",
        str(path),
        "--as-of",
        "2026-01-01",
    )
    assert allowed.exit_code == 0, allowed.output
    assert "contracts: 1 imported" in allowed.stdout


def test_invoice_show_and_status_for_eu_vat_ids(
    factory: sessionmaker[Session], env: dict[str, str]
) -> None:
    """A reverse-charged invoice shows its note; a VAT id not accepted shows in status."""
    env = {**env, "CONNECTOR_TAX__RATES": '{"FR": "20"}', "CONNECTOR_TAX__HOME_COUNTRY": "DE"}
    with transaction(factory) as session:
        for ref, tax_id in (("FR1", "FR40303265045"), ("FR2", "FR40303265046")):
            row = contracts.upsert_customer(
                session,
                name=f"Client {ref}",
                country="FR",
                currency="EUR",
                tax_id=tax_id,
                system="test",
                external_id=ref,
            )
            price = builders.price(session, f"SEATS-{ref}", currency="EUR", unit_amount="100.00")
            builders.subscription(
                session, row, [builders.spec(session, price, 1)], start=date(2026, 1, 1)
            )
    assert invoke(env, "bill", "--as-of", "2026-01-01").exit_code == 0

    shown = invoke(env, "invoice", "show", "INV-000001")
    assert shown.exit_code == 0, shown.output
    text = " ".join(shown.stdout.split())
    assert "Reverse charge FR 0% on 100.00 EUR │ 0.00 EUR" in text
    assert "Total │ 100.00 EUR" in text
    assert text.endswith(
        "Reverse charge: VAT to be accounted for by the recipient (Article 196, Council "
        "Directive 2006/112/EC)"
    )
    document = json.loads(invoke(env, "invoice", "show", "INV-000001", "--json").stdout)
    assert document["tax_note"] == (
        "Reverse charge: VAT to be accounted for by the recipient (Article 196, Council "
        "Directive 2006/112/EC)"
    )
    assert [
        (t["jurisdiction"], t["rate"], t["tax"], t["reverse_charge"]) for t in document["taxes"]
    ] == [("FR", "0", "0.00", True)]
    taxed = json.loads(invoke(env, "invoice", "show", "INV-000002", "--json").stdout)
    assert (taxed["tax_note"], taxed["total"]) == (None, "120.00")
    assert "Tax FR 20% on 100.00 EUR │ 20.00 EUR" in " ".join(
        invoke(env, "invoice", "show", "INV-000002").stdout.split()
    )

    report = json.loads(invoke(env, "status", "--json").stdout)
    assert report["tax_ids"] == [
        {
            "customer_id": 2,
            "customer": "Client FR2",
            "country": "FR",
            "tax_id": "FR40303265046",
            "warning": "VAT id 'FR40303265046' is not a valid FR VAT number: taxed at the "
            "normal rate",
        }
    ]
    table = " ".join(invoke(env, "status").stdout.split())
    assert "VAT ids not accepted for the reverse charge (taxed normally)" in table
    assert "Client FR2" in table
