"""Manual journals: balanced lines on known accounts, read back by narration."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sandbox.xero.server import XeroSandbox
from tests.sandbox.xero.conftest import Api, body, messages


def journal(
    narration: str = "Revenue recognition INV-1, March 2026", **fields: Any
) -> dict[str, Any]:
    return {
        "Narration": narration,
        "Date": "2026-03-31",
        "Status": "POSTED",
        "LineAmountTypes": "NoTax",
        "JournalLines": [
            {"AccountCode": "835", "LineAmount": Decimal("33.33"), "Description": "Deferred"},
            {"AccountCode": "200", "LineAmount": Decimal("-33.33"), "Description": "Recognised"},
        ],
        **fields,
    }


def test_create(api: Api, xero_sandbox: XeroSandbox) -> None:
    [created] = api.created("ManualJournals", "ManualJournals", journal())
    stored = xero_sandbox.store.manual_journals[created["ManualJournalID"]]
    assert stored["Narration"] == "Revenue recognition INV-1, March 2026"
    assert stored["Date"] == "/Date(1774915200000+0000)/"
    assert (stored["Status"], stored["LineAmountTypes"]) == ("POSTED", "NoTax")
    assert [(line["AccountCode"], line["LineAmount"]) for line in stored["JournalLines"]] == [
        ("835", Decimal("33.33")),
        ("200", Decimal("-33.33")),
    ]
    assert stored["JournalLines"][0]["AccountID"] == xero_sandbox.chart.accounts["835"].account_id


def test_rules(api: Api) -> None:
    unbalanced = journal(
        JournalLines=[
            {"AccountCode": "835", "LineAmount": Decimal("10.00"), "Description": "Debit"},
            {"AccountCode": "200", "LineAmount": Decimal("-9.99"), "Description": "Credit"},
        ]
    )
    single = journal(JournalLines=[{"AccountCode": "835", "LineAmount": 0, "Description": "Alone"}])
    unknown = journal(
        JournalLines=[
            {"AccountCode": "835", "LineAmount": 1, "Description": "Debit"},
            {"AccountCode": "999", "LineAmount": -1, "Description": "Credit"},
        ]
    )
    response = api.put(
        "ManualJournals?summarizeErrors=false",
        {"ManualJournals": [unbalanced, single, unknown]},
    )
    assert [messages(j) for j in body(response)["ManualJournals"]] == [
        ["The total debits must equal total credits"],
        ["A manual journal must have at least two journal lines."],
        ["Account code '999' is not a valid code for this document."],
    ]


def test_get_by_narration(api: Api) -> None:
    api.created("ManualJournals", "ManualJournals", journal("First"), journal('Say "hi"'))
    where = 'Narration=="Say \\"hi\\""'
    found = body(api.get("ManualJournals", params={"where": where}))["ManualJournals"]
    assert [j["Narration"] for j in found] == ['Say "hi"']
