"""`connector invoice pdf`: the kept PDF of a document's current version, written owner-only;
a clear error and exit 1 for a number that is no document."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from connector.cli import app
from connector.db import tables
from connector.documents.store import current_pdf
from tests.documents.conftest import bill_samples, sample_settings

runner = CliRunner()


@pytest.fixture
def env(cli_env: dict[str, str]) -> dict[str, str]:
    return {
        **cli_env,
        "CONNECTOR_SELLER__NAME": "Northwind Billing Co.",
    }


def test_invoice_pdf_writes_the_kept_file(
    factory: sessionmaker[Session],
    env: dict[str, str],
    database_url: str,
    tmp_path: Path,
    open_umask: None,
) -> None:
    numbers = bill_samples(factory, sample_settings(database_url, tmp_path))
    number = numbers["jp"]
    out = tmp_path / "out" / "invoice.pdf"
    out.parent.mkdir()
    result = runner.invoke(app, ["invoice", "pdf", number, "--out", str(out)], env=env)
    assert result.exit_code == 0, result.output
    with factory() as session:
        document_id = session.scalars(
            select(tables.Document.id).where(tables.Document.number == number)
        ).one()
        kept = current_pdf(session, document_id)
    assert kept is not None  # rendered now and kept, as the send stage would
    assert out.read_bytes() == kept.content
    assert out.stat().st_mode & 0o777 == 0o600
    assert result.output.strip() == (f"{out}: {number}.pdf, version 1, {len(kept.content):,} bytes")
    again = runner.invoke(app, ["invoice", "pdf", number], env=env)  # default: ./NUMBER.pdf
    assert again.exit_code == 0, again.output
    assert (tmp_path / f"{number}.pdf").read_bytes() == kept.content


def test_unknown_number(env: dict[str, str], factory: sessionmaker[Session]) -> None:
    result = runner.invoke(app, ["invoice", "pdf", "INV-999999"], env=env)
    assert result.exit_code == 1
    assert "error: unknown document 'INV-999999'" in result.output
    assert "Traceback" not in result.output
    assert not Path("INV-999999.pdf").exists()
