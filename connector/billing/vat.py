"""EU reverse charge: a business customer in another member state accounts for the VAT.

A customer is reverse-charged when it is in an EU member state, its VAT id is valid (checked
with python-stdnum: the format and check digits of its member state), the id's country prefix
is that same member state, and that state is not the seller's (``tax.home_country``). Its
documents carry no VAT, a tax line at rate 0 marked reverse charge, and :data:`NOTE`.

A customer in the EU whose VAT id fails one of those checks is taxed at the normal rate, and
the reason is reported (``connector status``) so that someone fixes the id.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from stdnum.eu import vat as eu_vat
from stdnum.util import clean

NOTE = (
    "Reverse charge: VAT to be accounted for by the recipient "
    "(Article 196, Council Directive 2006/112/EC)"
)
# ISO 3166-1 codes of the member states; a VAT id starts with the same code, but for Greece (EL).
EU_MEMBER_STATES = frozenset({
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU",
    "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
})  # fmt: skip
VAT_PREFIXES = {"EL": "GR"}


@dataclass(frozen=True, slots=True)
class TaxTreatment:
    """How a customer's documents are taxed: reverse-charged or not, and why a VAT id it gave
    was not accepted (``warning``; the customer is then taxed at the normal rate)."""

    reverse_charge: bool = False
    warning: str | None = None

    @property
    def note(self) -> str | None:
        """The legal note the customer's documents carry."""
        return NOTE if self.reverse_charge else None


@functools.lru_cache(maxsize=4096)
def treatment(country: str, tax_id: str | None, home_country: str) -> TaxTreatment:
    """The treatment of a customer in ``country`` (ISO code) with ``tax_id``, sold to by a
    seller in ``home_country``."""
    if country not in EU_MEMBER_STATES or country == home_country or not (tax_id or "").strip():
        return TaxTreatment()
    number = clean(tax_id or "", " -./,").upper().strip()
    prefix = number[:2]
    state = VAT_PREFIXES.get(prefix, prefix)
    shown = tax_id.strip() if tax_id else ""
    if state not in EU_MEMBER_STATES:
        return TaxTreatment(
            warning=f"VAT id {shown!r} does not start with an EU member state's code "
            f"(such as {country}): taxed at the normal rate"
        )
    if state != country:
        return TaxTreatment(
            warning=f"VAT id {shown!r} is of {state}, the customer is in {country}: "
            "taxed at the normal rate"
        )
    if not eu_vat.is_valid(number):
        return TaxTreatment(
            warning=f"VAT id {shown!r} is not a valid {state} VAT number: taxed at the normal rate"
        )
    return TaxTreatment(reverse_charge=True)
