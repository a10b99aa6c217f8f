"""Messages: their Message-ID (derived, never random), their language, their templates
(shipped, or a user's own replacing them file by file)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from connector.documents.store import StoredPdf
from connector.email.compose import Letter, compose, language_of, message_id, render
from connector.errors import ConfigError
from connector.settings import EmailSettings

SETTINGS = EmailSettings.model_validate({"from": "Seller Inc. <billing@seller.example>"})


def letter(**changes: object) -> Letter:
    values: dict[str, object] = {
        "document_id": 7,
        "version": 1,
        "kind": "document",
        "template": "credit_note",
        "number": "CN-000004",
        "customer": "Acme",
        "country": "GB",
        "issue_date": date(2026, 4, 2),
        "due_date": date(2026, 4, 2),
        "period_start": date(2026, 3, 1),
        "period_end": date(2026, 3, 31),
        "total": Decimal("-120.5"),
        "balance": Decimal(0),
        "currency": "GBP",
        "invoice_number": "INV-000123",
    }
    values.update(changes)
    return Letter(**values)  # type: ignore[arg-type]


def test_the_message_id_is_derived_from_the_document_its_version_and_the_kind() -> None:
    assert message_id(letter(), SETTINGS) == "<CN-000004.v1.document.7@seller.example>"
    assert message_id(letter(version=2), SETTINGS) == "<CN-000004.v2.document.7@seller.example>"
    assert (
        message_id(letter(kind="reminder:final notice"), SETTINGS)
        == "<CN-000004.v1.reminder-final-notice.7@seller.example>"
    )


def test_language_from_the_customers_country() -> None:
    assert [language_of(c) for c in ("JP", "jp", "US", "GB", "DE")] == [
        "ja",
        "ja",
        "en",
        "en",
        "en",
    ]


def test_a_credit_note_names_the_invoice_it_corrects_with_money_in_its_minor_unit() -> None:
    subject, body = render(letter(), SETTINGS)
    assert subject == "Credit note CN-000004 from Seller Inc."
    assert "correcting invoice INV-000123." in body
    assert "Amount credited: -120.50 GBP" in body


def test_a_users_template_replaces_the_shipped_one(tmp_path: Path) -> None:
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "credit_note.txt").write_text(
        "Subject: Your credit ${number}\n\nHello ${customer}, ${total} ${currency}.\n",
        encoding="utf-8",
    )
    own = SETTINGS.model_copy(update={"templates_dir": str(tmp_path)})
    assert render(letter(), own) == ("Your credit CN-000004", "Hello Acme, -120.50 GBP.\n")
    # the other templates stay the shipped ones
    assert render(letter(template="invoice"), own)[0] == "Invoice CN-000004 from Seller Inc."


def test_a_template_naming_an_unknown_value_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "invoice.txt").write_text("Subject: ${nope}\n\nx\n", encoding="utf-8")
    own = SETTINGS.model_copy(update={"templates_dir": str(tmp_path)})
    with pytest.raises(ConfigError, match="e-mail template invoice: unknown field 'nope'"):
        render(letter(template="invoice"), own)


def test_the_pdf_is_attached_and_blind_copies_are_no_header() -> None:
    pdf = StoredPdf(7, 1, "CN-000004.pdf", "0" * 64, b"%PDF-1.4 test")
    settings = SETTINGS.model_copy(update={"bcc": "archive@seller.example"})
    message = compose(letter(), "ap@acme.example", pdf, settings, "<id@seller.example>")
    assert "Bcc" not in message
    (attachment,) = message.iter_attachments()
    assert attachment.get_filename() == "CN-000004.pdf"
    assert attachment.get_content() == b"%PDF-1.4 test"
