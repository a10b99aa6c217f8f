"""How Xero computes the tax of a document line, and when it takes the tax it is given.

- Xero computes tax per line from the line's ``TaxType`` (its ``EffectiveRate``), rounds it to
  two decimal places (cents, whatever the currency: 43,329 JPY at 10 % is 4,332.90) and sums the
  lines for the document's tax ("Rounding in Xero",
  https://developer.xero.com/documentation/guides/how-to-guides/rounding-in-xero). Halves are
  rounded up (2.165 to 2.17, as Xero's community manager describes it).
- A line's ``TaxAmount`` "is auto calculated as a percentage of the line amount ... This value
  can be overriden if the calculated <TaxAmount> is not correct" (``LineItem.TaxAmount`` in the
  official OpenAPI description). Xero takes such a tax adjustment on tax-exclusive invoices and
  credit notes ("Adjust the tax amount on unpaid transactions",
  https://help.xero.com/int/Tax-Adjustments: set Amounts are to Tax Exclusive; it is reported
  in an Adjusted section of the sales tax audit report). This fake honours a given amount on
  Exclusive documents and refuses one that differs on Inclusive documents, with the message
  Xero answers where it takes no override (XeroAPI/xero-node#768: "Tax amount 52.23 is
  incorrect for INPUT2 tax type, should be 52.28"). NoTax documents carry no tax.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
HUNDRED = Decimal(100)


def computed_tax(line_amount: Decimal, rate: Decimal, line_amount_types: str) -> Decimal:
    """The tax Xero computes for one line: ``rate`` percent of an exclusive amount, the tax
    inside an inclusive one, none without tax; rounded half up to cents."""
    if line_amount_types == "NoTax" or not rate:
        return Decimal("0.00")
    if line_amount_types == "Inclusive":
        exact = line_amount * rate / (HUNDRED + rate)
    else:
        exact = line_amount * rate / HUNDRED
    return exact.quantize(CENT, ROUND_HALF_UP)


def line_tax(
    given: Decimal | None, computed: Decimal, tax_type: str, line_amount_types: str
) -> tuple[Decimal, str | None]:
    """The line's tax as Xero keeps it, or the message it refuses the line with."""
    if given is None or given == computed:
        return computed, None
    if line_amount_types == "NoTax":
        return computed, "TaxAmount must be 0 when LineAmountTypes is NoTax."
    if line_amount_types == "Inclusive":
        return (
            computed,
            f"Tax amount {given} is incorrect for {tax_type} tax type, should be {computed}",
        )
    return given, None  # a tax adjustment on a tax-exclusive line
