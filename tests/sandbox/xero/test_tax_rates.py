"""GET /TaxRates: the fake organisation's tax rates, in the shape of Xero's official OpenAPI
description (components ``TaxRates``, ``TaxRate`` and ``TaxComponent``)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tests.sandbox.xero.conftest import Api, body
from tests.sandbox.xero.test_schemas_match_official import official, resolve

D = Decimal


def test_the_organisations_tax_rates(api: Api) -> None:
    rates = body(api.get("TaxRates"))["TaxRates"]
    assert [
        (r["TaxType"], r["Name"], r["EffectiveRate"], r["CanApplyToRevenue"]) for r in rates
    ] == [
        ("NONE", "Tax Exempt", D("0.0000"), True),
        ("INPUT", "Tax on Purchases", D("0.0000"), False),
        ("OUTPUT", "Tax on Sales", D("0.0000"), True),
        ("GSTONIMPORTS", "Sales Tax on Imports", D("0.0000"), False),
        ("TAX001", "California Sales Tax", D("7.2500"), True),
        ("TAX002", "UK VAT 20%", D("20.0000"), True),
        ("TAX003", "Germany VAT 19%", D("19.0000"), True),
        ("TAX004", "Germany VAT 7%", D("7.0000"), True),
        ("TAX005", "France VAT 20%", D("20.0000"), True),
        ("TAX006", "Japan Consumption Tax 10%", D("10.0000"), True),
        ("TAX007", "Japan Consumption Tax 8% (reduced)", D("8.0000"), True),
        ("TAX008", "EU Reverse Charge", D("0.0000"), True),
    ]
    japan = next(r for r in rates if r["TaxType"] == "TAX006")
    assert japan == {
        "Name": "Japan Consumption Tax 10%",
        "TaxType": "TAX006",
        "TaxComponents": [
            {
                "Name": "National",
                "Rate": D("7.8000"),
                "IsCompound": False,
                "IsNonRecoverable": False,
            },
            {"Name": "Local", "Rate": D("2.2000"), "IsCompound": False, "IsNonRecoverable": False},
        ],
        "Status": "ACTIVE",
        "ReportTaxType": "OUTPUT",
        "CanApplyToAssets": True,
        "CanApplyToEquity": True,
        "CanApplyToExpenses": False,
        "CanApplyToLiabilities": True,
        "CanApplyToRevenue": True,
        "DisplayTaxRate": D("10.0000"),
        "EffectiveRate": D("10.0000"),
    }


@pytest.mark.xero(tax_rates={"NONE": 0, "TAX001": "8.875"})
def test_a_configured_organisation_lists_its_own(api: Api) -> None:
    rates = body(api.get("TaxRates"))["TaxRates"]
    assert [(r["TaxType"], r["EffectiveRate"]) for r in rates] == [
        ("NONE", D("0.0000")),
        ("TAX001", D("8.8750")),
    ]


TYPES = {"string": str, "boolean": bool, "number": Decimal, "array": list}


def _problems(value: dict[str, Any], schema: dict[str, Any], where: str) -> list[str]:
    document = official()
    schema = resolve(schema, document)
    problems = []
    for key, item in value.items():
        spec = schema.get("properties", {}).get(key)
        if spec is None:
            problems.append(f"{where}.{key}: not in the official description")
            continue
        spec = resolve(spec, document)
        expected = TYPES[spec.get("type", "string")]
        if not isinstance(item, expected) or (expected is Decimal and isinstance(item, bool)):
            problems.append(f"{where}.{key}: {item!r} is not {spec.get('type')}")
        if "enum" in spec and item not in spec["enum"]:
            problems.append(f"{where}.{key}: {item!r} is not one of its values")
        if expected is list:
            for index, element in enumerate(item):
                problems += _problems(element, spec["items"], f"{where}.{key}[{index}]")
    return problems


def test_every_tax_rate_matches_the_official_description(api: Api) -> None:
    answer = body(api.get("TaxRates"))
    problems = _problems(
        {"TaxRates": answer["TaxRates"]}, {"$ref": "#/components/schemas/TaxRates"}, "(body)"
    )
    assert problems == []
