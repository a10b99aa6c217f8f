"""EU reverse charge: who is reverse-charged, and why a VAT id is not accepted."""

from __future__ import annotations

import pytest

from connector.billing.vat import NOTE, TaxTreatment, treatment

REVERSE = TaxTreatment(reverse_charge=True)
NORMAL = TaxTreatment()


@pytest.mark.parametrize(
    ("country", "tax_id", "home", "expected"),
    [
        ("FR", "FR40303265045", "US", REVERSE),  # a valid French VAT id, seller outside
        ("FR", "fr 40 303 265 045", "DE", REVERSE),  # separators and case do not matter
        ("DE", "DE136695976", "FR", REVERSE),
        ("GR", "EL094259216", "DE", REVERSE),  # Greece's VAT ids start with EL
        ("FR", "FR40303265045", "FR", NORMAL),  # the seller's own member state: domestic
        ("FR", None, "US", NORMAL),  # no VAT id: a consumer, taxed
        ("FR", "  ", "US", NORMAL),
        ("GB", "GB980780684", "US", NORMAL),  # not in the EU: no EU reverse charge
        ("US", "FR40303265045", "DE", NORMAL),
    ],
)
def test_treatment(country: str, tax_id: str | None, home: str, expected: TaxTreatment) -> None:
    assert treatment(country, tax_id, home) == expected


@pytest.mark.parametrize(
    ("country", "tax_id", "warning"),
    [
        (
            "FR",
            "FR40303265046",
            "VAT id 'FR40303265046' is not a valid FR VAT number: taxed at the normal rate",
        ),
        (
            "DE",
            "FR40303265045",
            "VAT id 'FR40303265045' is of FR, the customer is in DE: taxed at the normal rate",
        ),
        (
            "DE",
            "GB980780684",
            "VAT id 'GB980780684' does not start with an EU member state's code (such as DE): "
            "taxed at the normal rate",
        ),
        (
            "NL",
            "123456789B01",
            "VAT id '123456789B01' does not start with an EU member state's code (such as NL): "
            "taxed at the normal rate",
        ),
    ],
)
def test_a_vat_id_not_accepted_is_taxed_normally_with_why(
    country: str, tax_id: str, warning: str
) -> None:
    assert treatment(country, tax_id, "US") == TaxTreatment(warning=warning)


def test_the_note_of_a_reverse_charged_document() -> None:
    assert (
        REVERSE.note
        == NOTE
        == (
            "Reverse charge: VAT to be accounted for by the recipient "
            "(Article 196, Council Directive 2006/112/EC)"
        )
    )
    assert NORMAL.note is None
