"""The Salesforce mapping: loading and validating the file, and mapping REST records.

The records below are shaped as the REST API (and the sandbox) returns them: ``attributes``,
a parent's fields nested (``Product2``), the line items as a child relationship
(``{"totalSize", "done", "records"}``, or null when a deal has none), and numbers as JSON
numbers (or, once staged, as their exact text).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from connector.billing.periods import Frequency
from connector.billing.pricing import ChargeKind
from connector.errors import ConfigError
from connector.sync.mapping import (
    Address,
    CustomerData,
    DealData,
    ItemData,
    LoadedMapping,
    MappingError,
    language_code,
    load_mapping,
    map_customer,
    map_deal,
    value_at,
)

D = Decimal
DEFAULT_FILE = Path(__file__).resolve().parents[2] / "mappings" / "salesforce.yaml"
DEFAULT_TEXT = DEFAULT_FILE.read_text(encoding="utf-8")
API = "/services/data/v59.0/sobjects"
ACCOUNT_ID = "0015g0000000001AAA"
DEAL_ID = "0065g0000000001AAA"
OTHER_DEAL_ID = "0065g0000000002AAA"
FREQUENCIES = "Weekly, Biweekly, Monthly, Quarterly, Semi-Annual, Annual"


@pytest.fixture(scope="module")
def loaded() -> LoadedMapping:
    return load_mapping(DEFAULT_FILE)


# -- REST-shaped records -------------------------------------------------------------------------
def attributes(obj: str, record_id: str) -> dict[str, str]:
    return {"type": obj, "url": f"{API}/{obj}/{record_id}"}


def account(**fields: Any) -> dict[str, Any]:
    record = {
        "attributes": attributes("Account", ACCOUNT_ID),
        "Id": ACCOUNT_ID,
        "SystemModstamp": "2026-01-05T10:00:00.000+0000",
        "IsDeleted": False,
        "Name": "Acme Inc.",
        "BillingCountry": "United States",
        "CurrencyIsoCode": "USD",
        "Tax_Id__c": None,
    }
    record.update(fields)
    return record


def line(
    number: int,
    code: str | None = "PRO",
    *,
    quantity: Any = 10.0,
    price: Any = 45.0,
    discount: Any = None,
    service_date: str | None = None,
    billing_type: str | None = "Recurring",
    name: str | None = "Professional Edition",
    family: str | None = "Platform",
    product: bool = True,
) -> dict[str, Any]:
    line_id = f"00k5g00000000{number:02d}AAA"
    return {
        "attributes": attributes("OpportunityLineItem", line_id),
        "Id": line_id,
        "ProductCode": code,
        "Quantity": quantity,
        "UnitPrice": price,
        "Discount": discount,
        "ServiceDate": service_date,
        "Product2": (
            {
                "attributes": attributes("Product2", f"01t5g00000000{number:02d}AAA"),
                "Name": name,
                "Family": family,
                "Billing_Type__c": billing_type,
            }
            if product
            else None
        ),
    }


def line_id(number: int) -> str:
    return f"00k5g00000000{number:02d}AAA"


def deal(*lines: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A won deal with every mapped field set to the org's defaults (blank custom fields)."""
    record = {
        "attributes": attributes("Opportunity", DEAL_ID),
        "Id": DEAL_ID,
        "SystemModstamp": "2026-01-05T10:00:00.000+0000",
        "IsDeleted": False,
        "AccountId": ACCOUNT_ID,
        "Name": "Acme - Platform",
        "IsWon": True,
        "CurrencyIsoCode": "USD",
        "Service_Start_Date__c": None,
        "CloseDate": "2026-01-20",
        "Term_Months__c": None,
        "Billing_Frequency__c": None,
        "Auto_Renew__c": None,
        "Trial_Days__c": None,
        "Cancellation_Date__c": None,
        "Type": "New Customer",
        "Amends_Opportunity__c": None,
        "OpportunityLineItems": (
            {"totalSize": len(lines), "done": True, "records": list(lines)} if lines else None
        ),
    }
    record.update(fields)
    return record


def item(
    number: int,
    code: str = "PRO",
    *,
    key: str | None = None,
    name: str = "Professional Edition",
    family: str | None = "Platform",
    kind: ChargeKind = ChargeKind.RECURRING,
    quantity: str = "10.0",
    price: str = "45.0",
    discount: str = "0",
    service_date: date | None = None,
) -> ItemData:
    return ItemData(
        key=key or code,
        line_id=line_id(number),
        product_code=code,
        product_name=name,
        product_family=family,
        kind=kind,
        quantity=D(quantity),
        unit_price=D(price),
        discount_percent=D(discount),
        service_date=service_date,
    )


# -- loading -------------------------------------------------------------------------------------
def test_default_mapping_loads_with_the_documented_defaults(loaded: LoadedMapping) -> None:
    mapping = loaded.mapping
    customer, contract, items = mapping.customer, mapping.contract, mapping.items
    assert (customer.object, customer.name, customer.country, customer.currency) == (
        "Account",
        "Name",
        "BillingCountry",
        "CurrencyIsoCode",
    )
    assert customer.tax_id == "Tax_Id__c"
    assert customer.region == "BillingState"
    assert customer.billing_email == "Billing_Email__c"
    assert (contract.object, contract.account, contract.name, contract.won) == (
        "Opportunity",
        "AccountId",
        "Name",
        "IsWon",
    )
    assert contract.service_start == ("Service_Start_Date__c", "CloseDate")
    assert (contract.term_months.field, contract.term_months.default) == ("Term_Months__c", 12)
    assert (contract.frequency.field, contract.frequency.default) == (
        "Billing_Frequency__c",
        "Monthly",
    )
    assert contract.frequency.values == {
        "Weekly": "weekly",
        "Biweekly": "biweekly",
        "Monthly": "monthly",
        "Quarterly": "quarterly",
        "Semi-Annual": "semi_annual",
        "Annual": "annual",
    }
    assert (contract.auto_renew.field, contract.auto_renew.default) == ("Auto_Renew__c", True)
    assert (contract.trial_days.field, contract.trial_days.default) == ("Trial_Days__c", 0)
    assert contract.cancellation_date == "Cancellation_Date__c"
    assert contract.amendment is not None
    assert contract.amendment.type_field == "Type"
    assert contract.amendment.types == (
        "Existing Customer - Upgrade",
        "Existing Customer - Downgrade",
    )
    assert contract.amendment.amends == "Amends_Opportunity__c"
    assert items.relationship == "OpportunityLineItems"
    assert (items.billing_type.field, items.billing_type.default) == (
        "Product2.Billing_Type__c",
        "Recurring",
    )
    assert items.billing_type.values == {"Recurring": "recurring", "One-Time": "one_time"}
    assert mapping.query_fields("customer") == [
        "Name",
        "BillingCountry",
        "CurrencyIsoCode",
        "Tax_Id__c",
        "BillingState",
        "OwnerId",  # the account owner: collections Tasks are theirs
        "BillingStreet",
        "BillingCity",
        "BillingPostalCode",
        "Billing_Email__c",
    ]
    assert (customer.street, customer.city, customer.state, customer.postal_code) == (
        "BillingStreet",
        "BillingCity",
        "BillingState",
        "BillingPostalCode",
    )
    assert customer.language == ""
    assert mapping.query_fields("contract") == [
        "AccountId",
        "Name",
        "IsWon",
        "CurrencyIsoCode",
        "Service_Start_Date__c",
        "CloseDate",
        "Term_Months__c",
        "Billing_Frequency__c",
        "Auto_Renew__c",
        "Trial_Days__c",
        "Cancellation_Date__c",
        "Type",
        "Amends_Opportunity__c",
    ]
    assert mapping.query_fields("items") == [
        "ProductCode",
        "Product2.Name",
        "Product2.Family",
        "Product2.Billing_Type__c",
        "Quantity",
        "UnitPrice",
        "Discount",
        "ServiceDate",
        "Product2.Billing_Metric__c",
    ]


def line_of(text: str, needle: str) -> int:
    """1-based number of the first line of ``text`` that contains ``needle``."""
    for number, content in enumerate(text.splitlines(), start=1):
        if needle in content:
            return number
    raise AssertionError(f"{needle!r} not in the file")


def variant(tmp_path: Path, old: str, new: str) -> tuple[Path, str]:
    """The default mapping with ``old`` replaced by ``new`` (exactly once)."""
    assert DEFAULT_TEXT.count(old) == 1, old
    text = DEFAULT_TEXT.replace(old, new)
    path = tmp_path / "salesforce.yaml"
    path.write_text(text, encoding="utf-8")
    return path, text


def load_error(path: Path) -> str:
    with pytest.raises(ConfigError) as raised:
        load_mapping(path)
    return str(raised.value)


def test_unknown_key_is_named_with_its_line(tmp_path: Path) -> None:
    path, text = variant(
        tmp_path, "  tax_id: Tax_Id__c", "  tax_id: Tax_Id__c\n  vat_number: VAT__c"
    )
    assert load_error(path) == (
        f"{path}:{line_of(text, 'vat_number')}: customer.vat_number: Extra inputs are not permitted"
    )


def test_unknown_key_in_a_nested_rule_is_named_with_its_line(tmp_path: Path) -> None:
    path, text = variant(
        tmp_path,
        "  trial_days: {field: Trial_Days__c, default: 0}",
        "  trial_days: {field: Trial_Days__c, default: 0, maximum: 30}",
    )
    assert load_error(path) == (
        f"{path}:{line_of(text, 'trial_days:')}: contract.trial_days.maximum: "
        "Extra inputs are not permitted"
    )


def test_field_name_with_a_space_is_refused(tmp_path: Path) -> None:
    path, text = variant(tmp_path, "  name: Name\n  country:", "  name: Account Name\n  country:")
    assert load_error(path) == (
        f"{path}:{line_of(text, 'name: Account Name')}: customer.name: "
        "'Account Name' is not a field name (Field, Custom__c or Parent.Field)"
    )


def test_bad_parent_field_path_is_refused(tmp_path: Path) -> None:
    path, text = variant(
        tmp_path, "  product_name: Product2.Name", "  product_name: Product2..Name"
    )
    assert load_error(path) == (
        f"{path}:{line_of(text, 'product_name:')}: items.product_name: "
        "'Product2..Name' is not a field name (Field, Custom__c or Parent.Field)"
    )


def test_bad_field_in_a_defaulted_rule_is_refused(tmp_path: Path) -> None:
    path, text = variant(
        tmp_path,
        "  term_months: {field: Term_Months__c, default: 12}",
        "  term_months: {field: Term Months, default: 12}",
    )
    assert load_error(path) == (
        f"{path}:{line_of(text, 'term_months:')}: contract.term_months.field: "
        "'Term Months' is not a field name (Field, Custom__c or Parent.Field)"
    )


def test_bad_service_start_field_is_refused(tmp_path: Path) -> None:
    path, text = variant(
        tmp_path, "[Service_Start_Date__c, CloseDate]", "[Service_Start_Date__c, Close-Date]"
    )
    assert load_error(path) == (
        f"{path}:{line_of(text, 'service_start:')}: contract.service_start: "
        "'Close-Date' is not a field name (Field, Custom__c or Parent.Field)"
    )


def test_empty_service_start_is_refused(tmp_path: Path) -> None:
    path, text = variant(tmp_path, "[Service_Start_Date__c, CloseDate]", "[]")
    assert load_error(path) == (
        f"{path}:{line_of(text, 'service_start:')}: contract.service_start: "
        "Tuple should have at least 1 item after validation, not 0"
    )


def test_frequency_value_mapping_to_an_unknown_frequency_is_refused(tmp_path: Path) -> None:
    path, text = variant(tmp_path, "      Biweekly: biweekly", "      Biweekly: fortnightly")
    assert load_error(path) == (
        f"{path}:{line_of(text, '  frequency:')}: contract.frequency: "
        f"unsupported billing frequency 'fortnightly' (expected one of {FREQUENCIES})"
    )


def test_frequency_default_not_among_the_values_is_refused(tmp_path: Path) -> None:
    path, text = variant(tmp_path, "    default: Monthly", "    default: Yearly")
    assert load_error(path) == (
        f"{path}:{line_of(text, '  frequency:')}: contract.frequency: "
        "default 'Yearly' is not one of the mapped values"
    )


def test_billing_type_mapping_to_an_unknown_kind_is_refused(tmp_path: Path) -> None:
    path, text = variant(tmp_path, "      One-Time: one_time", "      One-Time: setup_fee")
    assert load_error(path) == (
        f"{path}:{line_of(text, '  billing_type:')}: items.billing_type: "
        "'One-Time' maps to 'setup_fee', which is not one of recurring, one_time"
    )


def test_billing_type_default_not_among_the_values_is_refused(tmp_path: Path) -> None:
    path, text = variant(tmp_path, "    default: Recurring", "    default: Subscription")
    assert load_error(path) == (
        f"{path}:{line_of(text, '  billing_type:')}: items.billing_type: "
        "default 'Subscription' is not one of the mapped values"
    )


def test_missing_section_is_named(tmp_path: Path) -> None:
    text = DEFAULT_TEXT.split("# OpportunityLineItem")[0]
    path = tmp_path / "salesforce.yaml"
    path.write_text(text, encoding="utf-8")
    # The section is absent, so the error points at the start of the document.
    assert load_error(path) == f"{path}:{line_of(text, 'customer:')}: items: Field required"


def test_missing_required_key_is_named_at_its_section(tmp_path: Path) -> None:
    path, text = variant(tmp_path, "  won: IsWon\n", "")
    assert load_error(path) == f"{path}:{line_of(text, 'contract:')}: contract.won: Field required"


def test_every_problem_is_reported_on_its_own_line(tmp_path: Path) -> None:
    text = DEFAULT_TEXT.replace("  name: Name\n  country:", "  name: Account Name\n  country:")
    text = text.replace("    default: Monthly", "    default: Yearly")
    path = tmp_path / "salesforce.yaml"
    path.write_text(text, encoding="utf-8")
    assert load_error(path).splitlines() == [
        f"{path}:{line_of(text, 'name: Account Name')}: customer.name: "
        "'Account Name' is not a field name (Field, Custom__c or Parent.Field)",
        f"{path}:{line_of(text, '  frequency:')}: contract.frequency: "
        "default 'Yearly' is not one of the mapped values",
    ]


def test_malformed_yaml_and_non_mapping_files_are_refused(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("customer:\n  name: [Name\n", encoding="utf-8")
    assert load_error(broken).startswith(f"{broken}:3: not valid YAML: ")
    listed = tmp_path / "list.yaml"
    listed.write_text("- customer\n", encoding="utf-8")
    assert load_error(listed) == f"{listed}:1: the file must hold a mapping of sections"
    missing = tmp_path / "missing.yaml"
    assert load_error(missing).startswith(f"cannot read {missing}: ")


def test_where_field_names_the_line_and_key_reading_a_field(loaded: LoadedMapping) -> None:
    def where(key: str, needle: str) -> str:
        return f"{DEFAULT_FILE}:{line_of(DEFAULT_TEXT, needle)}: {key}"

    assert loaded.where_field("Account", "BillingCountry") == where(
        "customer.country", "country: BillingCountry"
    )
    assert loaded.where_field("Account", "tax_id__c") == where("customer.tax_id", "tax_id:")
    assert loaded.where_field("Opportunity", "Term_Months__c") == where(
        "contract.term_months.field", "term_months:"
    )
    assert loaded.where_field("opportunity", "CLOSEDATE") == where(
        "contract.service_start.1", "service_start:"
    )
    assert loaded.where_field("Opportunity", "Billing_Frequency__c") == where(
        "contract.frequency.field", "field: Billing_Frequency__c"
    )
    assert loaded.where_field("Opportunity", "Amends_Opportunity__c") == where(
        "contract.amendment.amends", "amends: Amends_Opportunity__c"
    )
    won_line = line_of(DEFAULT_TEXT, "won: IsWon")
    assert (
        loaded.where_field("Opportunity", "Name") == f"{DEFAULT_FILE}:{won_line - 1}: contract.name"
    )
    # Line item fields come with the deal (a child subquery): found under the deal's object.
    assert loaded.where_field("Opportunity", "Discount") == where(
        "items.discount_percent", "discount_percent:"
    )
    assert loaded.where_field("OpportunityLineItem", "Billing_Type__c") == where(
        "items.billing_type.field", "field: Product2.Billing_Type__c"
    )
    assert loaded.where_field("Account", "Industry") is None
    assert loaded.where_field("Account", "Term_Months__c") is None


def test_an_org_remaps_picklist_values_by_editing_the_file(tmp_path: Path) -> None:
    path, _ = variant(
        tmp_path,
        "    default: Monthly\n    values:                           # Salesforce value: billing "
        "frequency\n",
        "    default: Every Month\n    values:\n      Every Month: monthly\n",
    )
    mapping = load_mapping(path).mapping
    assert map_deal(mapping, deal(line(1))).frequency is Frequency.MONTHLY
    assert map_deal(mapping, deal(line(1), Billing_Frequency__c="every month")).frequency is (
        Frequency.MONTHLY
    )
    assert map_deal(mapping, deal(line(1), Billing_Frequency__c="Annual")).frequency is (
        Frequency.ANNUAL
    )


# -- accounts ------------------------------------------------------------------------------------
def test_account_becomes_a_customer(loaded: LoadedMapping) -> None:
    rule = loaded.mapping.customer
    assert map_customer(rule, account(), "EUR") == CustomerData(
        ACCOUNT_ID, "Acme Inc.", "United States", "USD", None
    )
    assert map_customer(
        rule,
        account(Name="Berlin GmbH", BillingCountry="DE", CurrencyIsoCode="eur", Tax_Id__c="DE1"),
        "USD",
    ) == CustomerData(ACCOUNT_ID, "Berlin GmbH", "DE", "EUR", "DE1")


def test_account_billing_address_and_language(loaded: LoadedMapping) -> None:
    rule = loaded.mapping.customer
    mapped = map_customer(
        rule,
        account(
            BillingStreet=" 500 Fifth Avenue\nSuite 12 ",
            BillingCity="New York",
            BillingState="NY",
            BillingPostalCode="",
        ),
        "USD",
    )
    assert mapped.address == Address("500 Fifth Avenue\nSuite 12", "New York", "NY", None)
    assert mapped.language is None  # the shipped mapping reads no language field
    spoken = rule.model_copy(update={"language": "Language__c"})
    assert map_customer(spoken, account(Language__c="ja_JP"), "USD").language == "ja"
    assert map_customer(spoken, account(Language__c="English"), "USD").language is None


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("ja", "ja"),
        ("ja_JP", "ja"),
        ("en-GB", "en"),
        ("EN", "en"),
        ("Japanese", None),
        (None, None),
    ],
)
def test_language_codes(value: str | None, code: str | None) -> None:
    assert language_code(value) == code


@pytest.mark.parametrize(
    ("country", "state", "region"),
    [
        ("United States", "CA", "US-CA"),
        ("US", "California", "US-CA"),
        ("United States", "us-ny", "US-NY"),
        ("Canada", "Ontario", "CA-ON"),
        ("CA", "BC", "CA-BC"),
        ("Germany", "Bayern", "DE-BY"),
        ("United Kingdom", "Greater London", None),  # free text, not an ISO 3166-2 region
        ("United States", "Calif.", None),
        ("Atlantis", "North", None),  # the country is refused later, with its own reason
        ("United States", None, None),
    ],
)
def test_account_region_from_its_billing_state(
    loaded: LoadedMapping, country: str, state: str | None, region: str | None
) -> None:
    rule = loaded.mapping.customer
    assert map_customer(rule, account(BillingCountry=country, BillingState=state), "USD") == (
        CustomerData(ACCOUNT_ID, "Acme Inc.", country, "USD", None, region, Address(state=state))
    )


@pytest.mark.parametrize(
    ("given", "address"),
    [
        ("ap@acme.example", "ap@acme.example"),
        ("  ap@acme.example ", "ap@acme.example"),
        ("", None),
        (None, None),
        ("not an address", None),
    ],
)
def test_account_billing_address_from_its_billing_email(
    loaded: LoadedMapping, given: str | None, address: str | None
) -> None:
    rule = loaded.mapping.customer
    assert map_customer(rule, account(Billing_Email__c=given), "USD").billing_email == address


def test_account_without_currency_takes_the_default_currency(loaded: LoadedMapping) -> None:
    rule = loaded.mapping.customer
    assert map_customer(rule, account(CurrencyIsoCode=None), "GBP").currency == "GBP"
    assert map_customer(rule, account(CurrencyIsoCode=""), "JPY").currency == "JPY"
    without_field = account()
    del without_field["CurrencyIsoCode"]  # an org without multi-currency
    assert map_customer(rule, without_field, "USD").currency == "USD"


def test_an_empty_currency_setting_takes_the_default_currency(loaded: LoadedMapping) -> None:
    # An org without multi-currency: `currency:` left empty in both sections.
    customer = loaded.mapping.customer.model_copy(update={"currency": ""})
    contract = loaded.mapping.contract.model_copy(update={"currency": ""})
    mapping = loaded.mapping.model_copy(update={"customer": customer, "contract": contract})
    record = account()
    del record["CurrencyIsoCode"]
    assert map_customer(mapping.customer, record, "USD").currency == "USD"
    sold = deal(line(1))
    sold.pop("CurrencyIsoCode", None)
    assert map_deal(mapping, sold).currency is None  # the account's currency applies


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"BillingCountry": None}, "account has no BillingCountry (needed for tax)"),
        ({"BillingCountry": ""}, "account has no BillingCountry (needed for tax)"),
        ({"Name": None}, "account has no Name"),
        ({"Name": ""}, "account has no Name"),
        ({"CurrencyIsoCode": "XYZ"}, "account currency 'XYZ' is not supported"),
        ({"CurrencyIsoCode": "XAU"}, "account currency 'XAU' is not supported"),
    ],
)
def test_account_quarantine_reasons(
    loaded: LoadedMapping, fields: dict[str, Any], reason: str
) -> None:
    with pytest.raises(MappingError) as raised:
        map_customer(loaded.mapping.customer, account(**fields), "USD")
    assert str(raised.value) == reason


# -- deals ---------------------------------------------------------------------------------------
def test_won_deal_with_blank_custom_fields_takes_every_default(loaded: LoadedMapping) -> None:
    assert map_deal(loaded.mapping, deal(line(1))) == DealData(
        external_id=DEAL_ID,
        account_id=ACCOUNT_ID,
        name="Acme - Platform",
        won=True,
        currency="USD",
        start=date(2026, 1, 20),  # no Service_Start_Date__c: CloseDate
        term_months=12,
        frequency=Frequency.MONTHLY,
        auto_renew=True,
        trial_days=0,
        cancel_date=None,
        amends=None,
        items=(item(1),),
    )


def test_deal_without_the_custom_fields_at_all_takes_every_default(
    loaded: LoadedMapping,
) -> None:
    record = deal(line(1))
    for name in (
        "Service_Start_Date__c",
        "Term_Months__c",
        "Billing_Frequency__c",
        "Auto_Renew__c",
        "Trial_Days__c",
        "Cancellation_Date__c",
        "Type",
        "Amends_Opportunity__c",
    ):
        del record[name]
    data = map_deal(loaded.mapping, record)
    assert (data.start, data.term_months, data.frequency) == (
        date(2026, 1, 20),
        12,
        Frequency.MONTHLY,
    )
    assert (data.auto_renew, data.trial_days, data.cancel_date, data.amends) == (
        True,
        0,
        None,
        None,
    )


def test_every_custom_field_of_a_won_deal_is_mapped(loaded: LoadedMapping) -> None:
    record = deal(
        line(1, quantity=5.0, price=100.0),
        Name="Berlin - Annual",
        CurrencyIsoCode="EUR",
        Service_Start_Date__c="2026-02-01",
        Term_Months__c=24.0,
        Billing_Frequency__c="Annual",
        Auto_Renew__c=False,
        Trial_Days__c=14.0,
        Cancellation_Date__c="2027-06-01",
    )
    assert map_deal(loaded.mapping, record) == DealData(
        external_id=DEAL_ID,
        account_id=ACCOUNT_ID,
        name="Berlin - Annual",
        won=True,
        currency="EUR",
        start=date(2026, 2, 1),
        term_months=24,
        frequency=Frequency.ANNUAL,
        auto_renew=False,
        trial_days=14,
        cancel_date=date(2027, 6, 1),
        amends=None,
        items=(item(1, quantity="5.0", price="100.0"),),
    )


@pytest.mark.parametrize(
    ("value", "frequency"),
    [
        ("Weekly", Frequency.WEEKLY),
        ("Biweekly", Frequency.BIWEEKLY),
        ("Monthly", Frequency.MONTHLY),
        ("Quarterly", Frequency.QUARTERLY),
        ("Semi-Annual", Frequency.SEMI_ANNUAL),
        ("Annual", Frequency.ANNUAL),
        ("semi-annual", Frequency.SEMI_ANNUAL),
        (None, Frequency.MONTHLY),
        ("", Frequency.MONTHLY),
    ],
)
def test_each_billing_frequency_value(
    loaded: LoadedMapping, value: str | None, frequency: Frequency
) -> None:
    assert map_deal(loaded.mapping, deal(line(1), Billing_Frequency__c=value)).frequency is (
        frequency
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, True), (True, True), (False, False), ("false", False), ("true", True)],
)
def test_auto_renew(loaded: LoadedMapping, value: Any, expected: bool) -> None:
    assert map_deal(loaded.mapping, deal(line(1), Auto_Renew__c=value)).auto_renew is expected


@pytest.mark.parametrize(
    ("fields", "start"),
    [
        ({"Service_Start_Date__c": "2026-03-01", "CloseDate": "2026-02-20"}, date(2026, 3, 1)),
        ({"Service_Start_Date__c": None, "CloseDate": "2026-02-20"}, date(2026, 2, 20)),
        ({"Service_Start_Date__c": "", "CloseDate": "2026-02-20"}, date(2026, 2, 20)),
    ],
)
def test_service_start_is_service_start_date_else_close_date(
    loaded: LoadedMapping, fields: dict[str, Any], start: date
) -> None:
    assert map_deal(loaded.mapping, deal(line(1), **fields)).start == start


def test_trial_term_and_cancellation(loaded: LoadedMapping) -> None:
    data = map_deal(
        loaded.mapping,
        deal(line(1), Trial_Days__c=30, Term_Months__c="36", Cancellation_Date__c="2026-07-15"),
    )
    assert (data.trial_days, data.term_months, data.cancel_date) == (30, 36, date(2026, 7, 15))


def test_line_item_numbers_as_decimal_strings_and_numbers(loaded: LoadedMapping) -> None:
    data = map_deal(
        loaded.mapping,
        deal(
            line(1, "PRO", quantity="12.50", price="45.99", discount="15"),
            line(2, "SUP", quantity=3, price=0.1, discount=12.5, name="Support", family=None),
            line(3, "API", quantity=1.0, price=0, discount=0, name="API", family="Add-on"),
        ),
    )
    assert data.items == (
        item(1, "PRO", quantity="12.50", price="45.99", discount="15"),
        item(2, "SUP", name="Support", family=None, quantity="3", price="0.1", discount="12.5"),
        item(3, "API", name="API", family="Add-on", quantity="1.0", price="0", discount="0"),
    )


def test_billing_type_and_service_date(loaded: LoadedMapping) -> None:
    data = map_deal(
        loaded.mapping,
        deal(
            line(1, "PRO", billing_type="Recurring"),
            line(
                2,
                "ONBOARD",
                quantity=1.0,
                price=2500.0,
                billing_type="One-Time",
                service_date="2026-02-10",
                name="Onboarding",
                family="Services",
            ),
            line(3, "TRAIN", quantity=1.0, price=1200.0, billing_type="one-time", name="Training"),
            line(4, "API", billing_type=None, name="API"),
        ),
    )
    assert data.items == (
        item(1, "PRO"),
        item(
            2,
            "ONBOARD",
            name="Onboarding",
            family="Services",
            kind=ChargeKind.ONE_TIME,
            quantity="1.0",
            price="2500.0",
            service_date=date(2026, 2, 10),
        ),
        item(
            3,
            "TRAIN",
            name="Training",
            kind=ChargeKind.ONE_TIME,
            quantity="1.0",
            price="1200.0",
        ),
        item(4, "API", name="API"),  # no Billing_Type__c: Recurring
    )


def test_line_item_without_product_name_is_named_after_its_code(loaded: LoadedMapping) -> None:
    data = map_deal(loaded.mapping, deal(line(1, "PRO", product=False)))
    assert data.items == (item(1, "PRO", name="PRO", family=None),)


def test_duplicate_products_get_numbered_keys(loaded: LoadedMapping) -> None:
    data = map_deal(
        loaded.mapping,
        deal(
            line(1, "PRO", quantity=10.0),
            line(2, "SUP", quantity=10.0, name="Support", family="Support"),
            line(3, "PRO", quantity=5.0, price=40.0),
            line(4, "PRO", quantity=1.0, price=0.0),
        ),
    )
    assert [(i.key, i.line_id, i.quantity, i.unit_price) for i in data.items] == [
        ("PRO", line_id(1), D("10.0"), D("45.0")),
        ("SUP", line_id(2), D("10.0"), D("45.0")),
        ("PRO#2", line_id(3), D("5.0"), D("40.0")),
        ("PRO#3", line_id(4), D("1.0"), D("0.0")),
    ]


@pytest.mark.parametrize(
    "kind",
    ["Existing Customer - Upgrade", "Existing Customer - Downgrade", "existing customer - upgrade"],
)
def test_amendment_types_name_the_deal_they_amend(loaded: LoadedMapping, kind: str) -> None:
    data = map_deal(
        loaded.mapping,
        deal(line(1, quantity=15.0), Type=kind, Amends_Opportunity__c=OTHER_DEAL_ID),
    )
    assert data.amends == OTHER_DEAL_ID
    assert data.items == (item(1, quantity="15.0"),)


def test_other_types_do_not_amend_even_with_the_field_set(loaded: LoadedMapping) -> None:
    for kind in ("New Customer", "Existing Customer - Renewal", None):
        data = map_deal(
            loaded.mapping, deal(line(1), Type=kind, Amends_Opportunity__c=OTHER_DEAL_ID)
        )
        assert data.amends is None


def test_lost_or_open_deal_is_mapped_without_checking_its_items(loaded: LoadedMapping) -> None:
    record = deal(
        line(1, None, quantity=-1.0),
        IsWon=False,
        Type="Existing Customer - Upgrade",
        Billing_Frequency__c="Monthly",
    )
    data = map_deal(loaded.mapping, record)
    assert (data.won, data.items, data.amends) == (False, (), None)
    assert map_deal(loaded.mapping, deal(IsWon=False)).won is False


# -- quarantine reasons --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("record", "reason"),
    [
        pytest.param(deal(), "won deal has no line items", id="items-null"),
        pytest.param(
            deal(OpportunityLineItems={"totalSize": 0, "done": True, "records": []}),
            "won deal has no line items",
            id="items-empty",
        ),
        pytest.param(
            deal(line(1, None)),
            f"line item {line_id(1)} has no product (ProductCode is empty)",
            id="no-product-code",
        ),
        pytest.param(
            deal(line(1, "")),
            f"line item {line_id(1)} has no product (ProductCode is empty)",
            id="empty-product-code",
        ),
        pytest.param(
            deal(line(1), line(2, quantity=-2.0)),
            f"line item {line_id(2)} quantity -2.0 must be positive",
            id="negative-quantity",
        ),
        pytest.param(
            deal(line(1, quantity="0")),
            f"line item {line_id(1)} quantity 0 must be positive",
            id="zero-quantity",
        ),
        pytest.param(
            deal(line(1, quantity=None)),
            f"line item {line_id(1)} quantity None must be positive",
            id="no-quantity",
        ),
        pytest.param(
            deal(line(1, quantity="ten")),
            f"line item {line_id(1)} quantity 'ten' is not a number",
            id="quantity-not-a-number",
        ),
        pytest.param(
            deal(line(1, price=-5.0)),
            f"line item {line_id(1)} unit price -5.0 must be zero or more",
            id="negative-price",
        ),
        pytest.param(
            deal(line(1, price="-0.01")),
            f"line item {line_id(1)} unit price -0.01 must be zero or more",
            id="negative-price-text",
        ),
        pytest.param(
            deal(line(1, discount=150.0)),
            f"line item {line_id(1)} discount 150.0% must be between 0 and 100",
            id="discount-above-100",
        ),
        pytest.param(
            deal(line(1, discount="-5")),
            f"line item {line_id(1)} discount -5% must be between 0 and 100",
            id="discount-below-0",
        ),
        pytest.param(
            deal(line(1, billing_type="Usage")),
            f"line item {line_id(1)} Product2.Billing_Type__c 'Usage' is not one of Recurring, "
            "One-Time",
            id="unknown-billing-type",
        ),
        pytest.param(
            deal(line(1), CurrencyIsoCode="ABC"),
            "deal currency 'ABC' is not supported",
            id="unsupported-currency",
        ),
        pytest.param(
            deal(line(1), Billing_Frequency__c="Fortnightly"),
            f"deal Billing_Frequency__c 'Fortnightly' is not one of {FREQUENCIES}",
            id="unsupported-frequency",
        ),
        pytest.param(
            deal(line(1), Type="Existing Customer - Upgrade"),
            "deal of type 'Existing Customer - Upgrade' names no deal it amends "
            "(Amends_Opportunity__c)",
            id="upgrade-names-no-deal",
        ),
        pytest.param(
            deal(line(1), Type="Existing Customer - Downgrade", Amends_Opportunity__c=""),
            "deal of type 'Existing Customer - Downgrade' names no deal it amends "
            "(Amends_Opportunity__c)",
            id="downgrade-names-no-deal",
        ),
        pytest.param(
            deal(line(1), Service_Start_Date__c=None, CloseDate=None),
            "deal has no service start (Service_Start_Date__c, CloseDate)",
            id="no-service-start",
        ),
        pytest.param(
            deal(line(1), Service_Start_Date__c="next monday"),
            "Service_Start_Date__c 'next monday' is not a date",
            id="service-start-not-a-date",
        ),
        pytest.param(
            deal(line(1), Term_Months__c=12.5),
            "term months 12.5 is not a whole number",
            id="term-not-whole",
        ),
        pytest.param(
            deal(line(1), Trial_Days__c="two weeks"),
            "trial days 'two weeks' is not a number",
            id="trial-not-a-number",
        ),
        pytest.param(
            deal(line(1), Cancellation_Date__c="soon"),
            "cancellation date 'soon' is not a date",
            id="cancellation-not-a-date",
        ),
    ],
)
def test_deal_quarantine_reasons(
    loaded: LoadedMapping, record: dict[str, Any], reason: str
) -> None:
    with pytest.raises(MappingError) as raised:
        map_deal(loaded.mapping, record)
    assert str(raised.value) == reason


def test_value_at_follows_parents_case_insensitively() -> None:
    record = line(1, "PRO", billing_type="One-Time")
    assert value_at(record, "Product2.Billing_Type__c") == "One-Time"
    assert value_at(record, "product2.billing_type__c") == "One-Time"
    assert value_at(record, "productcode") == "PRO"
    assert value_at(line(1, product=False), "Product2.Name") is None
    assert value_at(record, "Product2.Missing__c") is None
    assert value_at({"Name": ""}, "Name") is None
