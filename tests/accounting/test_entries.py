"""The Beancount text of each document, exactly, and proof that Beancount itself reads every
entry as one balanced transaction with its metadata and links."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal

import pytest
from beancount import loader
from beancount.core import account as beancount_account
from beancount.parser import parser
from hypothesis import given
from hypothesis import strategies as st

from connector.accounting import entries
from connector.accounting.base import Customer, Document, Line, Tax
from connector.accounting.chart import Chart, check_account
from tests.accounting.documents import (
    CHART,
    TANAKA,
    TANAKA_AR,
    credit_note,
    invoice,
    payment,
    revenue,
    transactions,
)

D = Decimal
DEFAULT = Chart()
ACME = Customer(7, "Acme Corporation", "GB", "GBP")
AR = "Assets:AccountsReceivable:Acme-Corporation-7"

INVOICE = invoice(
    11,
    "INV-000011",
    ACME,
    date(2026, 1, 15),
    lines=[
        Line("PRO", "Platform", True, D("100.00")),
        Line("ONBOARD", None, False, D("50.00")),
        Line("SEATS", "Platform", True, D("20.00")),
    ],
    taxes=[Tax(D("20"), D("30.00"), "GB"), Tax(D("5.5"), D("2.75"), "GB")],
    total="202.75",
    due=date(2026, 2, 14),
)
INVOICE_TEXT = """\
2026-01-15 * "Acme Corporation" "Invoice INV-000011" ^INV-000011
  document_type: "invoice"
  document_id: "11"
  due: 2026-02-14
  Assets:AccountsReceivable:Acme-Corporation-7              202.75 GBP
  Liabilities:DeferredRevenue                              -120.00 GBP
  Income:OneTime                                            -50.00 GBP
  Liabilities:SalesTax:GB:20                                -30.00 GBP
  Liabilities:SalesTax:GB:5-5                                -2.75 GBP
"""

# the same kind of invoice on a chart with revenue accounts per product and per family
CHART_INVOICE = invoice(
    21,
    "INV-000021",
    ACME,
    date(2026, 1, 15),
    lines=[
        Line("PRO", "Platform", True, D("100.00")),
        Line("SETUP", None, False, D("50.00")),
        Line("TRAINING", "Services", False, D("20.00")),
    ],
    taxes=[Tax(D("20"), D("34.00"))],
    total="204.00",
    due=date(2026, 2, 14),
)
CHART_INVOICE_TEXT = """\
2026-01-15 * "Acme Corporation" "Invoice INV-000021" ^INV-000021
  document_type: "invoice"
  document_id: "21"
  due: 2026-02-14
  Assets:AccountsReceivable:Acme-Corporation-7              204.00 GBP
  Liabilities:DeferredRevenue                              -100.00 GBP
  Income:Setup                                              -50.00 GBP
  Income:Services                                           -20.00 GBP
  Liabilities:SalesTax:GB:20                                -34.00 GBP
"""

# credits the platform (16.13 of it recognized already) and the onboarding fee
CREDIT_NOTE = credit_note(
    12,
    "CN-000012",
    "INV-000011",
    ACME,
    date(2026, 1, 20),
    lines=[
        Line("PRO", "Platform", True, D("100.00"), recognized=D("16.13")),
        Line("ONBOARD", None, False, D("50.00")),
    ],
    taxes=[Tax(D("20"), D("20.00")), Tax(D("5.5"), D("2.75"))],
    total="172.75",
)
CREDIT_NOTE_TEXT = """\
2026-01-20 * "Acme Corporation" "Credit note CN-000012 for INV-000011" ^CN-000012 ^INV-000011
  document_type: "credit_note"
  document_id: "12"
  Assets:AccountsReceivable:Acme-Corporation-7             -172.75 GBP
  Liabilities:DeferredRevenue                                83.87 GBP
  Income:Subscriptions                                       16.13 GBP
  Income:OneTime                                             50.00 GBP
  Liabilities:SalesTax:GB:20                                 20.00 GBP
  Liabilities:SalesTax:GB:5-5                                 2.75 GBP
"""

PAYMENT = payment(13, ACME, date(2026, 2, 1), "202.75", "INV-000011", reference="wire 42")
PAYMENT_TEXT = """\
2026-02-01 * "Acme Corporation" "Payment for INV-000011 (wire 42)" ^INV-000011
  document_type: "payment"
  document_id: "13"
  Assets:Bank:GBP                                           202.75 GBP
  Assets:AccountsReceivable:Acme-Corporation-7             -202.75 GBP
"""

UNLINKED_PAYMENT = payment(16, ACME, date(2026, 2, 1), "5.00", None)
UNLINKED_PAYMENT_TEXT = """\
2026-02-01 * "Acme Corporation" "Payment"
  document_type: "payment"
  document_id: "16"
  Assets:Bank:GBP                                             5.00 GBP
  Assets:AccountsReceivable:Acme-Corporation-7               -5.00 GBP
"""

REFUND = payment(14, ACME, date(2026, 2, 2), "10.00", "INV-000011", refund=True)
REFUND_TEXT = """\
2026-02-02 * "Acme Corporation" "Refund for INV-000011" ^INV-000011
  document_type: "refund"
  document_id: "14"
  Assets:Bank:GBP                                           -10.00 GBP
  Assets:AccountsReceivable:Acme-Corporation-7               10.00 GBP
"""

REVENUE = revenue(
    15,
    ACME,
    "INV-000011",
    date(2026, 1, 15),
    date(2026, 1, 31),
    amounts=[("PRO", "Platform", "54.84"), ("SEATS", "Platform", "10.97")],
)
REVENUE_TEXT = """\
2026-01-31 * "Acme Corporation" "Revenue of INV-000011, 2026-01-15 to 2026-01-31" ^INV-000011
  document_type: "revenue"
  document_id: "15"
  Liabilities:DeferredRevenue               65.81 GBP
  Income:Subscriptions                     -65.81 GBP
"""

# a credit note's revenue: negative, linked to the credit note and its invoice
NEGATIVE_REVENUE = revenue(
    17,
    ACME,
    "CN-000012",
    date(2026, 1, 20),
    date(2026, 1, 31),
    amounts=[("PRO", "Platform", "-38.71")],
    invoice_number="INV-000011",
)
NEGATIVE_REVENUE_TEXT = """\
2026-01-31 * "Acme Corporation" "Revenue of CN-000012, 2026-01-20 to 2026-01-31" ^CN-000012 ^INV-000011
  document_type: "revenue"
  document_id: "17"
  Liabilities:DeferredRevenue              -38.71 GBP
  Income:Subscriptions                      38.71 GBP
"""

# positive and negative amounts on several revenue accounts of the chart
MIXED_REVENUE = revenue(
    18,
    ACME,
    "INV-000011",
    date(2026, 2, 1),
    date(2026, 2, 28),
    amounts=[
        ("PRO", "Platform", "100.00"),
        ("SUPPORT", "Services", "30.00"),
        ("SETUP", None, "-12.50"),
    ],
)
MIXED_REVENUE_TEXT = """\
2026-02-28 * "Acme Corporation" "Revenue of INV-000011, 2026-02-01 to 2026-02-28" ^INV-000011
  document_type: "revenue"
  document_id: "18"
  Liabilities:DeferredRevenue              117.50 GBP
  Income:Subscriptions                    -100.00 GBP
  Income:Services                          -30.00 GBP
  Income:Setup                              12.50 GBP
"""

ZERO_INVOICE = invoice(
    19,
    "INV-000019",
    ACME,
    date(2026, 1, 15),
    lines=[Line("PRO", "Platform", True, D("0.00"))],
    taxes=[Tax(D("20"), D("0.00"))],
    total="0.00",
    due=date(2026, 2, 14),
)
ZERO_INVOICE_TEXT = """\
2026-01-15 * "Acme Corporation" "Invoice INV-000019" ^INV-000019
  document_type: "invoice"
  document_id: "19"
  due: 2026-02-14
  Assets:AccountsReceivable:Acme-Corporation-7                0.00 GBP
"""

YEN_INVOICE = invoice(
    20,
    "INV-000020",
    TANAKA,
    date(2026, 1, 1),
    lines=[Line("PRO", "Platform", True, D("12000")), Line("SETUP", None, False, D("3000"))],
    taxes=[Tax(D("10"), D("1500"), "JP")],
    total="16500",
    due=date(2026, 1, 31),
)
YEN_INVOICE_TEXT = """\
2026-01-01 * "株式会社 Tanaka" "Invoice INV-000020" ^INV-000020
  document_type: "invoice"
  document_id: "20"
  due: 2026-01-31
  Assets:AccountsReceivable:Tanaka-3               16500 JPY
  Liabilities:DeferredRevenue                     -12000 JPY
  Income:OneTime                                   -3000 JPY
  Liabilities:SalesTax:JP:10                       -1500 JPY
"""

DUPONT = Customer(31, "Dupont SAS", "FR", "EUR", tax_id="FR40303265045")
DUPONT_AR = "Assets:AccountsReceivable:Dupont-SAS-31"
FRENCH_INVOICE = invoice(
    32,
    "INV-000032",
    DUPONT,
    date(2026, 3, 1),
    lines=[Line("SETUP", None, False, D("100.00"), tax_rate=D("20"))],
    taxes=[Tax(D("20"), D("20.00"), "FR")],
    total="120.00",
)
FRENCH_INVOICE_TEXT = """\
2026-03-01 * "Dupont SAS" "Invoice INV-000032" ^INV-000032
  document_type: "invoice"
  document_id: "32"
  due: 2026-03-01
  Assets:AccountsReceivable:Dupont-SAS-31              120.00 EUR
  Income:OneTime                                      -100.00 EUR
  Liabilities:SalesTax:FR:20                           -20.00 EUR
"""

# French VAT on an invoice billed in US dollars: its own account, never mixed with the euros
DUPONT_USD = Customer(33, "Dupont US", "FR", "USD")
FRENCH_USD_INVOICE = invoice(
    34,
    "INV-000034",
    DUPONT_USD,
    date(2026, 3, 1),
    lines=[Line("SETUP", None, False, D("100.00"), tax_rate=D("20"))],
    taxes=[Tax(D("20"), D("20.00"), "FR")],
    total="120.00",
)
FRENCH_USD_INVOICE_TEXT = """\
2026-03-01 * "Dupont US" "Invoice INV-000034" ^INV-000034
  document_type: "invoice"
  document_id: "34"
  due: 2026-03-01
  Assets:AccountsReceivable:Dupont-US-33              120.00 USD
  Income:OneTime                                     -100.00 USD
  Liabilities:SalesTax:FR:20:USD                      -20.00 USD
"""

CALIFORNIA = Customer(35, "Golden Gate LLC", "US", "USD")
CALIFORNIA_INVOICE = invoice(
    36,
    "INV-000036",
    CALIFORNIA,
    date(2026, 3, 1),
    lines=[Line("SETUP", None, False, D("100.00"), tax_rate=D("7.25"))],
    taxes=[Tax(D("7.25"), D("7.25"), "US-CA")],
    total="107.25",
)
CALIFORNIA_INVOICE_TEXT = """\
2026-03-01 * "Golden Gate LLC" "Invoice INV-000036" ^INV-000036
  document_type: "invoice"
  document_id: "36"
  due: 2026-03-01
  Assets:AccountsReceivable:Golden-Gate-LLC-35              107.25 USD
  Income:OneTime                                           -100.00 USD
  Liabilities:SalesTax:US-CA:7-25                            -7.25 USD
"""

# reverse-charged: no VAT, so no tax payable; the customer accounts for it
REVERSE_CHARGED = invoice(
    37,
    "INV-000037",
    DUPONT,
    date(2026, 3, 1),
    lines=[Line("SETUP", None, False, D("100.00"))],
    taxes=[Tax(D("0"), D("0.00"), "FR", reverse_charge=True)],
    total="100.00",
)
REVERSE_CHARGED_TEXT = """\
2026-03-01 * "Dupont SAS" "Invoice INV-000037" ^INV-000037
  document_type: "invoice"
  document_id: "37"
  due: 2026-03-01
  Assets:AccountsReceivable:Dupont-SAS-31              100.00 EUR
  Income:OneTime                                      -100.00 EUR
"""

BANKS = Chart(bank_by_currency={"EUR": "Assets:Bank:Sparkasse"})
EURO_PAYMENT = payment(38, DUPONT, date(2026, 3, 20), "120.00", "INV-000032")
EURO_PAYMENT_TEXT = """\
2026-03-20 * "Dupont SAS" "Payment for INV-000032" ^INV-000032
  document_type: "payment"
  document_id: "38"
  Assets:Bank:Sparkasse                                120.00 EUR
  Assets:AccountsReceivable:Dupont-SAS-31             -120.00 EUR
"""

# (name, document, chart, receivable, text)
CASES: list[tuple[str, Document, Chart, str, str]] = [
    ("invoice in France", FRENCH_INVOICE, DEFAULT, DUPONT_AR, FRENCH_INVOICE_TEXT),
    (
        "French tax billed in dollars",
        FRENCH_USD_INVOICE,
        DEFAULT,
        "Assets:AccountsReceivable:Dupont-US-33",
        FRENCH_USD_INVOICE_TEXT,
    ),
    (
        "invoice in California",
        CALIFORNIA_INVOICE,
        DEFAULT,
        "Assets:AccountsReceivable:Golden-Gate-LLC-35",
        CALIFORNIA_INVOICE_TEXT,
    ),
    ("reverse-charged invoice", REVERSE_CHARGED, DEFAULT, DUPONT_AR, REVERSE_CHARGED_TEXT),
    ("payment to a configured bank", EURO_PAYMENT, BANKS, DUPONT_AR, EURO_PAYMENT_TEXT),
    ("invoice", INVOICE, DEFAULT, AR, INVOICE_TEXT),
    ("invoice on a custom chart", CHART_INVOICE, CHART, AR, CHART_INVOICE_TEXT),
    ("credit note", CREDIT_NOTE, DEFAULT, AR, CREDIT_NOTE_TEXT),
    ("payment", PAYMENT, DEFAULT, AR, PAYMENT_TEXT),
    ("payment for no invoice", UNLINKED_PAYMENT, DEFAULT, AR, UNLINKED_PAYMENT_TEXT),
    ("refund", REFUND, DEFAULT, AR, REFUND_TEXT),
    ("revenue", REVENUE, DEFAULT, "", REVENUE_TEXT),
    ("negative revenue", NEGATIVE_REVENUE, DEFAULT, "", NEGATIVE_REVENUE_TEXT),
    ("mixed revenue", MIXED_REVENUE, CHART, "", MIXED_REVENUE_TEXT),
    ("zero invoice", ZERO_INVOICE, DEFAULT, AR, ZERO_INVOICE_TEXT),
    ("yen invoice", YEN_INVOICE, DEFAULT, TANAKA_AR, YEN_INVOICE_TEXT),
]
IDS = [case[0] for case in CASES]


@pytest.mark.parametrize(("name", "doc", "chart", "receivable", "text"), CASES, ids=IDS)
def test_entry_text(name: str, doc: Document, chart: Chart, receivable: str, text: str) -> None:
    assert entries.entry(doc, chart, receivable) == text


def _with_opens(text: str, customer: Customer | None = None) -> str:
    """``text`` preceded by an ``open`` of every account it posts to."""
    parsed, errors, _ = parser.parse_string(text)
    assert errors == []
    accounts = dict.fromkeys(
        posting.account for entry in transactions(parsed) for posting in entry.postings
    )
    opens = [
        entries.open_directive(
            date(2000, 1, 1),
            account,
            customer if account.startswith("Assets:AccountsReceivable:") else None,
        )
        for account in accounts
    ]
    return "\n".join([*opens, text])


@pytest.mark.parametrize(("name", "doc", "chart", "receivable", "text"), CASES, ids=IDS)
def test_beancount_loads_each_entry_balanced(
    name: str, doc: Document, chart: Chart, receivable: str, text: str
) -> None:
    loaded, errors, _ = loader.load_string(_with_opens(text, doc.customer))
    assert errors == []
    [transaction] = transactions(loaded)
    assert transaction.meta["document_type"] == doc.document_type
    assert transaction.meta["document_id"] == str(doc.document_id)
    assert transaction.payee == doc.customer.name
    sums: dict[str, Decimal] = defaultdict(Decimal)
    for posting in transaction.postings:
        assert posting.units.currency == doc.currency
        sums[posting.units.currency] += posting.units.number
    assert sums == {doc.currency: 0}


def test_links_tie_documents_to_their_invoice() -> None:
    def links(doc: Document, receivable: str = AR) -> frozenset[str]:
        loaded, errors, _ = loader.load_string(_with_opens(entries.entry(doc, DEFAULT, receivable)))
        assert errors == []
        return transactions(loaded)[0].links

    assert links(INVOICE) == {"INV-000011"}
    assert links(CREDIT_NOTE) == {"CN-000012", "INV-000011"}
    assert links(PAYMENT) == {"INV-000011"}
    assert links(REFUND) == {"INV-000011"}
    assert links(REVENUE, "") == {"INV-000011"}
    assert links(NEGATIVE_REVENUE, "") == {"CN-000012", "INV-000011"}
    assert links(UNLINKED_PAYMENT) == frozenset()


def test_yen_amounts_are_whole() -> None:
    loaded, errors, _ = loader.load_string(_with_opens(YEN_INVOICE_TEXT))
    assert errors == []
    numbers = [posting.units.number for posting in transactions(loaded)[0].postings]
    assert numbers == [D("16500"), D("-12000"), D("-3000"), D("-1500")]
    assert all(number.as_tuple().exponent == 0 for number in numbers)


def test_payee_with_quotes_and_backslashes_round_trips() -> None:
    customer = Customer(8, 'The "Best" \\ Co', "US", "USD")
    doc = payment(30, customer, date(2026, 3, 1), "1.00", "INV/2026 #7")
    receivable = "Assets:AccountsReceivable:" + entries.customer_component(customer)
    text = entries.entry(doc, DEFAULT, receivable)
    assert text.splitlines()[0] == (
        '2026-03-01 * "The \\"Best\\" \\\\ Co" "Payment for INV/2026 #7" ^INV/2026--7'
    )
    loaded, errors, _ = loader.load_string(_with_opens(text, customer))
    assert errors == []
    [transaction] = transactions(loaded)
    assert transaction.payee == 'The "Best" \\ Co'
    assert transaction.links == {"INV/2026--7"}
    opened = [entry for entry in loaded if entry.meta.get("customer_id") == "8"]
    assert [entry.meta["name"] for entry in opened] == ['The "Best" \\ Co']


# -- names -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "customer_id", "component"),
    [
        ("Acme Corporation", 7, "Acme-Corporation-7"),
        ("Société Générale", 5, "Societe-Generale-5"),
        ("Bäckerei Müller GmbH", 2, "Backerei-Muller-GmbH-2"),
        ("élan vital", 12, "Elan-vital-12"),
        ("Øresund ApS", 4, "Resund-ApS-4"),  # Ø has no ASCII decomposition
        ("O'Brien & Sons, Ltd.", 9, "O-Brien-Sons-Ltd-9"),
        ("AT&T", 10, "AT-T-10"),
        ("  spaced   out  ", 11, "Spaced-out-11"),
        ("-dash-first-", 13, "Dash-first-13"),
        ("3M", 14, "3M-14"),
        ("7-Eleven", 15, "7-Eleven-15"),
        ("123", 16, "123-16"),
        ("", 17, "Customer-17"),
        ("!!!", 18, "Customer-18"),
        ("株式会社", 19, "Customer-19"),
        ("株式会社 Tanaka", 3, "Tanaka-3"),
        ("a" * 80, 20, "A" + "a" * 59 + "-20"),
    ],
)
def test_customer_component(name: str, customer_id: int, component: str) -> None:
    customer = Customer(customer_id, name, "US", "USD")
    assert entries.customer_component(customer) == component
    account = f"Assets:AccountsReceivable:{component}"
    assert check_account(account) == account
    assert beancount_account.is_valid(account)


def test_long_names_are_cut_without_a_trailing_dash() -> None:
    customer = Customer(21, "ab " * 30, "US", "USD")
    assert entries.customer_component(customer) == "Ab-" + "ab-" * 18 + "ab-21"


@given(name=st.text(max_size=80), customer_id=st.integers(min_value=1, max_value=10**12))
def test_customer_component_is_always_a_valid_unique_component(name: str, customer_id: int) -> None:
    component = entries.customer_component(Customer(customer_id, name, "US", "USD"))
    account = f"Assets:AccountsReceivable:{component}"
    assert beancount_account.is_valid(account)
    assert check_account(account) == account
    assert component.endswith(f"-{customer_id}")


@pytest.mark.parametrize(
    ("rate", "jurisdiction", "currency", "account"),
    [
        ("20", "FR", "EUR", "Liabilities:SalesTax:FR:20"),
        ("20", "GB", "GBP", "Liabilities:SalesTax:GB:20"),
        ("19.00", "DE", "EUR", "Liabilities:SalesTax:DE:19"),
        ("5.5", "FR", "EUR", "Liabilities:SalesTax:FR:5-5"),
        ("5.50", "FR", "EUR", "Liabilities:SalesTax:FR:5-5"),
        ("7.25", "US-CA", "USD", "Liabilities:SalesTax:US-CA:7-25"),
        ("8.875", "US-NY", "USD", "Liabilities:SalesTax:US-NY:8-875"),
        ("13", "CA-ON", "CAD", "Liabilities:SalesTax:CA-ON:13"),
        ("10", "JP", "JPY", "Liabilities:SalesTax:JP:10"),
        ("100", "DE", "EUR", "Liabilities:SalesTax:DE:100"),
        ("0", "FR", "EUR", "Liabilities:SalesTax:FR:0"),
        ("0.0", "FR", "EUR", "Liabilities:SalesTax:FR:0"),
        # billed in another currency than the jurisdiction's: an account of its own
        ("20", "FR", "USD", "Liabilities:SalesTax:FR:20:USD"),
        ("20", "GB", "EUR", "Liabilities:SalesTax:GB:20:EUR"),
        ("13", "CA-ON", "USD", "Liabilities:SalesTax:CA-ON:13:USD"),
        ("20", "BG", "EUR", "Liabilities:SalesTax:BG:20"),  # Bulgaria pays in euros since 2026
        ("20", "BG", "BGN", "Liabilities:SalesTax:BG:20:BGN"),
    ],
)
def test_tax_account_per_jurisdiction_rate_and_currency(
    rate: str, jurisdiction: str, currency: str, account: str
) -> None:
    assert entries.tax_account(DEFAULT, Tax(D(rate), D(0), jurisdiction), currency) == account
    assert beancount_account.is_valid(account)


def test_tax_without_jurisdiction_is_owed_in_the_customers_country() -> None:
    assert entries.tax_account(DEFAULT, Tax(D("20"), D(0)), "EUR", "FR") == (
        "Liabilities:SalesTax:FR:20"
    )


def test_bank_account_per_currency() -> None:
    assert DEFAULT.bank_account("USD") == "Assets:Bank:USD"
    assert DEFAULT.bank_account("JPY") == "Assets:Bank:JPY"
    chart = Chart(bank_by_currency={"EUR": "Assets:Bank:Sparkasse"})
    assert chart.bank_account("EUR") == "Assets:Bank:Sparkasse"
    assert chart.bank_account("GBP") == "Assets:Bank:GBP"


@pytest.mark.parametrize(
    ("number", "text"),
    [
        ("INV-000001", "^INV-000001"),
        ("CN-2026/04.1_b", "^CN-2026/04.1_b"),
        ("INV 12", "^INV-12"),
        ("Facture n°7", "^Facture-n-7"),
    ],
)
def test_link(number: str, text: str) -> None:
    assert entries.link(number) == text


def test_open_directive() -> None:
    assert (
        entries.open_directive(date(2000, 1, 1), "Assets:Bank") == "2000-01-01 open Assets:Bank\n"
    )
    assert entries.open_directive(date(2000, 1, 1), "Assets:Bank:EUR", currency="EUR") == (
        "2000-01-01 open Assets:Bank:EUR EUR\n"
    )
    assert entries.open_directive(date(2000, 1, 1), AR, ACME) == (
        "2000-01-01 open Assets:AccountsReceivable:Acme-Corporation-7\n"
        '  customer_id: "7"\n'
        '  name: "Acme Corporation"\n'
    )
