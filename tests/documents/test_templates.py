"""Templates: the words of each language, overridable key by key from a folder; the language
of a customer's documents."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connector.db import tables
from connector.documents.pdf import render_documents
from connector.documents.templates import choose_language, labels, languages
from connector.errors import ConfigError
from tests.documents.conftest import sample_settings
from tests.documents.test_layout import pdf_text


def test_languages_and_their_choice(tmp_path: Path) -> None:
    assert languages("") == {"en", "ja"}
    (tmp_path / "fr.yaml").write_text("title_invoice: Facture\nlocale: fr\n", encoding="utf-8")
    assert languages(str(tmp_path)) == {"en", "ja", "fr"}
    available = {"en", "ja", "fr"}
    assert choose_language(None, "JP", "en", available) == "ja"
    assert choose_language("en", "JP", "en", available) == "en"
    assert choose_language("fr", "US", "en", available) == "fr"
    assert choose_language("de", "DE", "en", available) == "en"  # no German templates
    assert choose_language(None, "US", "ja", {"en"}) == "en"


def test_a_users_file_replaces_the_keys_it_names(tmp_path: Path) -> None:
    (tmp_path / "en.yaml").write_text("title_invoice: Tax invoice\n", encoding="utf-8")
    words = labels("en", str(tmp_path))
    assert words["title_invoice"] == "Tax invoice"
    assert words["title_credit_note"] == "Credit note"  # shipped
    french = tmp_path / "fr.yaml"
    french.write_text("title_invoice: Facture\nlocale: fr\n", encoding="utf-8")
    assert labels("fr", str(tmp_path))["subtotal"] == "Subtotal"  # from English


def test_an_unknown_key_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "ja.yaml").write_text("titel: 請求書\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"ja.yaml: unknown keys titel"):
        labels("ja", str(tmp_path))


def test_an_overridden_template_shows_in_the_pdf(
    factory: sessionmaker[Session], database_url: str, tmp_path: Path, samples: dict[str, str]
) -> None:
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "en.yaml").write_text(
        'title_invoice: Tax invoice\nbalance_due: "Amount due"\n', encoding="utf-8"
    )
    settings = sample_settings(database_url, tmp_path, documents={"templates": str(folder)})
    with factory() as session:
        document_id = session.scalars(
            select(tables.Document.id).where(tables.Document.number == samples["uk"])
        ).one()
        [pdf] = render_documents(session, [document_id], settings)
    lines = pdf_text(pdf.content).splitlines()
    assert lines[0] == "Tax invoice"
    assert "Amount due £1,100.70" in lines
