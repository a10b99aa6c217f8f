"""Tax rates per country and product tax code, tax per document per rate."""

from datetime import date
from decimal import Decimal

import pytest

from connector.billing.charges import BillingState, plan_billing
from connector.billing.invoicing import draft_invoices
from connector.billing.money import Rounding
from connector.billing.periods import Frequency
from connector.billing.pricing import Product
from connector.billing.tax import TaxLine, TaxTable, country_code, region_code, tax_by_rate
from connector.errors import InvalidInputError

from .helpers import JPY, USD, per_unit, spec, subscribe

D = Decimal

TABLE = TaxTable.build(
    {"JP": D("10"), "GB": D("20"), "Germany": D("19")},
    {"REDUCED": {"DE": D("7"), "GB": D("0")}},
)


def test_rates_by_customer_country() -> None:
    assert TABLE.rates == {"JP": D("10"), "GB": D("20"), "DE": D("19")}
    assert TABLE.rate_for("JP") == D("10")
    assert TABLE.rate_for("GB") == D("20")
    assert TABLE.rate_for("DE") == D("19")
    assert TABLE.rate_for("US") == D("0")  # not configured: not taxed


def test_product_tax_code_overrides_per_country() -> None:
    assert TABLE.rate_for("DE", "REDUCED") == D("7")
    assert TABLE.rate_for("GB", "REDUCED") == D("0")  # an exemption
    assert TABLE.rate_for("JP", "REDUCED") == D("10")  # no override for JP: standard rate
    assert TABLE.rate_for("DE", "UNKNOWN") == D("19")
    assert TABLE.rate_for("US", "REDUCED") == D("0")


def test_bad_tax_table_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="tax rate for JP: tax rate 101% is not between"):
        TaxTable.build({"JP": D("101")})
    with pytest.raises(InvalidInputError, match="tax rate REDUCED for DE"):
        TaxTable.build({}, {"REDUCED": {"DE": D("-1")}})
    with pytest.raises(InvalidInputError, match="unknown country 'Atlantis'"):
        TaxTable.build({"Atlantis": D("5")})


@pytest.mark.parametrize(("value", "code"), [("DE", "DE"), ("Germany", "DE"), ("jp", "JP")])
def test_country_code(value: str, code: str) -> None:
    assert country_code(value) == code


def test_empty_country_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="country is empty"):
        country_code("  ")


def test_tax_is_rounded_once_per_rate_not_per_line() -> None:
    lines = [(D("10.05"), D("10")), (D("10.05"), D("10"))]
    (tax,) = tax_by_rate(lines, USD, Rounding.HALF_UP)
    # Per rate: 20.10 × 10 % = 2.010 -> 2.01.
    # (Per line it would be 1.005 -> 1.01 twice = 2.02.)
    assert tax == TaxLine(D("10"), D("20.10"), D("2.01"))


def test_tax_by_rate_sorts_rates_and_lists_zero() -> None:
    lines = [(D("50.00"), D("20")), (D("30.00"), D("0")), (D("25.00"), D("20"))]
    assert tax_by_rate(lines, USD, Rounding.HALF_UP) == (
        TaxLine(D("0"), D("30.00"), D("0.00")),
        TaxLine(D("20"), D("75.00"), D("15.00")),
    )


@pytest.mark.parametrize(
    ("base", "mode", "expected"),
    [
        ("0.25", Rounding.HALF_UP, "0.03"),  # 0.025
        ("0.25", Rounding.HALF_EVEN, "0.02"),
        ("0.35", Rounding.HALF_EVEN, "0.04"),  # 0.035
        ("0.25", Rounding.HALF_DOWN, "0.02"),
        ("0.26", Rounding.HALF_DOWN, "0.03"),  # 0.026
    ],
)
def test_tax_rounding_mode_is_configurable(base: str, mode: Rounding, expected: str) -> None:
    (tax,) = tax_by_rate([(D(base), D("10"))], USD, mode)
    assert tax.tax == D(expected)


def test_jpy_tax_rounds_to_whole_yen() -> None:
    (tax,) = tax_by_rate([(D("1005"), D("10"))], JPY, Rounding.HALF_UP)
    assert tax.tax == D("101")  # 100.5 -> 101


def test_invoice_with_two_rates_through_a_product_tax_code() -> None:
    standard = per_unit("33.35", code="PRO")
    support = per_unit("33.35", code="SUPPORT")
    ebook = per_unit("12.50", code="EBOOK", tax_code="REDUCED")
    subscription = subscribe(
        date(2025, 1, 1),
        Frequency.MONTHLY,
        [spec("a", standard), spec("b", support), spec("c", ebook)],
    )
    charges = plan_billing(subscription, date(2025, 1, 1), BillingState()).charges

    def rate(product: Product) -> Decimal:
        return TABLE.rate_for("DE", product.tax_code)

    (invoice,) = draft_invoices(
        charges,
        currency=USD,
        tax_rate=rate,
        issue_date=date(2025, 1, 1),
        due_date=date(2025, 1, 31),
        rounding=Rounding.HALF_UP,
    )
    assert [(x.amount, x.tax_rate) for x in invoice.lines] == [
        (D("33.35"), D("19")),
        (D("33.35"), D("19")),
        (D("12.50"), D("7")),
    ]
    # 7 %: 12.50 × 0.07 = 0.875 -> 0.88
    # 19 %: 66.70 × 0.19 = 12.673 -> 12.67 (per line: 33.35 × 0.19 = 6.3365 -> 6.34, twice
    # = 12.68, a cent more)
    assert invoice.taxes == (
        TaxLine(D("7"), D("12.50"), D("0.88")),
        TaxLine(D("19"), D("66.70"), D("12.67")),
    )
    assert invoice.subtotal == D("79.20")
    assert invoice.tax_total == D("13.55")
    assert invoice.total == D("92.75")


# -- jurisdictions: countries and regions --------------------------------------------------------
REGIONS = TaxTable.build(
    {"DE": D("19"), "US-CA": D("7.25"), "us-ny": D("4"), "CA-Ontario": D("13")},
    {"REDUCED": {"US-CA": D("0")}},
)


def test_rates_are_keyed_by_country_or_region() -> None:
    assert REGIONS.rates == {
        "DE": D("19"),
        "US-CA": D("7.25"),
        "US-NY": D("4"),
        "CA-ON": D("13"),
    }
    assert REGIONS.rate_for("US-CA") == D("7.25")
    assert REGIONS.rate_for("US-CA", "REDUCED") == D("0")
    assert REGIONS.rate_for("US-NY", "REDUCED") == D("4")
    assert REGIONS.rate_for("US") == D("0")


@pytest.mark.parametrize(
    ("country", "region", "jurisdiction"),
    [
        ("US", "US-CA", "US-CA"),  # a region with rates is its own jurisdiction
        ("US", "US-OR", "US"),  # one without: its country
        ("CA", "CA-ON", "CA-ON"),
        ("DE", None, "DE"),
        ("DE", "DE-BY", "DE"),
        ("JP", None, "JP"),  # no rate at all: still where the customer is
    ],
)
def test_jurisdiction_of_a_customer(country: str, region: str | None, jurisdiction: str) -> None:
    assert REGIONS.jurisdiction(country, region) == jurisdiction


def test_a_customer_without_region_where_regions_have_rates_cannot_be_taxed() -> None:
    with pytest.raises(InvalidInputError) as caught:
        REGIONS.jurisdiction("US", None)
    assert str(caught.value) == (
        "customer in US has no region (state or province), needed because tax rates are set "
        "for regions of US"
    )


@pytest.mark.parametrize(
    ("country", "value", "code"),
    [
        ("US", "CA", "US-CA"),
        ("US", "us-ca", "US-CA"),
        ("US", "California", "US-CA"),
        ("CA", "ON", "CA-ON"),
        ("CA", "british columbia", "CA-BC"),
        ("DE", "Baden-Württemberg", "DE-BW"),
    ],
)
def test_region_code(country: str, value: str, code: str) -> None:
    assert region_code(country, value) == code


def test_unknown_region_is_refused() -> None:
    with pytest.raises(InvalidInputError) as caught:
        region_code("US", "Calif.")
    assert str(caught.value) == (
        "unknown region 'Calif.' of US (expected an ISO 3166-2 code such as US-XX, or its name)"
    )
    with pytest.raises(InvalidInputError, match="unknown region 'CA-ON' of US"):
        region_code("US", "CA-ON")  # a region of another country
    with pytest.raises(InvalidInputError, match="unknown region 'XX' of US"):
        TaxTable.build({"US-XX": D("5")})


def test_tax_lines_name_their_jurisdiction() -> None:
    lines = [(D("100.00"), D("7.25")), (D("10.00"), D("0"))]
    assert tax_by_rate(lines, USD, Rounding.HALF_UP, jurisdiction="US-CA") == (
        TaxLine(D("0"), D("10.00"), D("0.00"), "US-CA"),
        TaxLine(D("7.25"), D("100.00"), D("7.25"), "US-CA"),
    )
