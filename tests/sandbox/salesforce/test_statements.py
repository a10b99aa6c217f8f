"""The org's own SQL per write call: a fixed handful of statements, whatever the number of
records (up to 200 in a collections call, 2,000 rows of an ingest job per batch).

A call's records are checked one by one as Salesforce checks them (same per-record results,
errors, ids and stamps), but what they look up is read with one query per object and what they
write is stored with one ``executemany`` per object; their field history (a ``created`` row per
new record of an object that tracks fields, a row per tracked value changed) with one more.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from simple_salesforce import Salesforce

from sandbox.salesforce.ids import make_id
from sandbox.salesforce.server import Sandbox
from sandbox.salesforce.store import Org
from sandbox.salesforce.testing import trusting_session

UPSERT = "composite/sobjects/Billing_Invoice__c/Document_Number__c"
FIRST = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
SECOND = datetime(2024, 3, 2, 9, 0, tzinfo=UTC)
# A well-formed Opportunity id that no record has.
UNKNOWN_OPPORTUNITY = "006000000000000AAA"


@contextmanager
def statements(org: Org) -> Iterator[list[str]]:
    """Every statement the org sends to SQLite while the block runs."""
    sent: list[str] = []
    org.db.on_statement = sent.append
    try:
        yield sent
    finally:
        org.db.on_statement = None


def shape(sent: list[str]) -> list[str]:
    """Each statement as its verb and table: ``SELECT Account``, ``INSERT _counter``."""
    named = []
    for sql in sent:
        words = sql.replace("(", " ").split()
        verb = words[0].upper()
        after = {"SELECT": "FROM", "INSERT": "INTO", "UPDATE": "UPDATE"}.get(verb)
        if after is None:  # BEGIN, COMMIT, SAVEPOINT, ...
            named.append(verb)
            continue
        table = words[[word.upper() for word in words].index(after) + 1].strip('"')
        named.append(f"{verb} {table}")
    return named


def invoice(number: int, opportunity: str, account: str, **fields: Any) -> dict[str, Any]:
    return {
        "attributes": {"type": "Billing_Invoice__c"},
        "Document_Number__c": f"INV-{number:04d}",
        "Type__c": "Invoice",
        "Opportunity__c": opportunity,
        "Account__c": account,
        "Total__c": 100.0 + number,
        "Status__c": "Open",
        **fields,
    }


def upsert(sf: Salesforce, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    answer = sf.restful(UPSERT, method="PATCH", json={"allOrNone": False, "records": records})
    assert isinstance(answer, list)
    return answer


def ok(record_id: str, created: bool) -> dict[str, Any]:
    return {"id": record_id, "created": created, "success": True, "errors": []}


def failed(code: str, message: str, fields: list[str]) -> dict[str, Any]:
    return {
        "success": False,
        "errors": [{"statusCode": code, "message": message, "fields": fields}],
    }


def parents(org: Org) -> tuple[list[str], list[str]]:
    """Two accounts and two opportunities for the invoices to look up."""
    accounts = [org.create("Account", {"Name": f"Account {n}"}) for n in range(2)]
    opportunities = [
        org.create(
            "Opportunity",
            {
                "Name": f"Deal {n}",
                "StageName": "Prospecting",
                "CloseDate": "2024-06-30",
                "AccountId": accounts[n],
            },
        )
        for n in range(2)
    ]
    return accounts, opportunities


@pytest.mark.parametrize("size", [20, 200])
def test_an_upsert_call_is_a_fixed_handful_of_statements_with_the_same_results(
    sf: Salesforce, salesforce_sandbox: Sandbox, size: int
) -> None:
    org = salesforce_sandbox.org
    accounts, opportunities = parents(org)
    org.clock = lambda: FIRST
    half = size // 2
    existing = [
        invoice(n, opportunities[n % 2], accounts[n % 2]) for n in range(0, size, 2)
    ]  # every other number

    with statements(org) as sent:
        first = upsert(sf, existing)

    # The invoices are the org's first: ids a02...1 to a02...N, in the call's order.
    existing_ids = [make_id("a02", n) for n in range(1, half + 1)]
    assert first == [ok(record_id, True) for record_id in existing_ids]
    assert shape(sent) == [
        "BEGIN",
        "SELECT Billing_Invoice__c",  # the external ids
        "SELECT Opportunity",  # the lookups
        "SELECT Account",
        "SELECT _counter",
        "INSERT Billing_Invoice__c",
        "INSERT Billing_Invoice__History",  # a created row per invoice
        "INSERT _counter",
        "COMMIT",
    ]

    # Mixed: the even numbers exist (one sent in other case), the odd ones are new; one new
    # record names an unknown opportunity, one existing record a bad type, and one number
    # is sent twice.
    records = [
        invoice(n, opportunities[n % 2], accounts[n % 2], Total__c=500.0 + n) for n in range(size)
    ]
    records[0]["Document_Number__c"] = "inv-0000"
    records[1]["Opportunity__c"] = UNKNOWN_OPPORTUNITY
    records[2]["Type__c"] = "Receipt"
    records[size - 1]["Document_Number__c"] = records[size - 3]["Document_Number__c"]
    org.clock = lambda: SECOND

    with statements(org) as sent:
        second = upsert(sf, records)

    assert shape(sent) == [
        "BEGIN",
        "SELECT Billing_Invoice__c",
        "SELECT Opportunity",
        "SELECT Account",
        "SELECT _counter",
        "INSERT Billing_Invoice__c",
        "UPDATE Billing_Invoice__c",
        "INSERT Billing_Invoice__History",  # the new invoices' (no status changed)
        "INSERT _counter",
        "COMMIT",
    ]
    expected: list[dict[str, Any]] = []
    number = half  # the last id taken
    repeated = records[size - 1]["Document_Number__c"]
    for n, record in enumerate(records):
        if record["Document_Number__c"] == repeated:
            expected.append(
                failed(
                    "DUPLICATE_EXTERNAL_ID",
                    f"Duplicate external id specified: {repeated}",
                    ["Document_Number__c"],
                )
            )
        elif n == 2:
            expected.append(
                failed(
                    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                    "Type__c: bad value for restricted picklist field: Receipt",
                    ["Type__c"],
                )
            )
        elif n % 2 == 0:
            expected.append(ok(existing_ids[n // 2], False))
        else:
            number += 1  # a new record takes an id even when it then fails its checks
            if n == 1:
                expected.append(
                    failed(
                        "INVALID_CROSS_REFERENCE_KEY",
                        "Opportunity__c: invalid cross reference id",
                        ["Opportunity__c"],
                    )
                )
            else:
                expected.append(ok(make_id("a02", number), True))
    assert second == expected

    stored = {
        row["Document_Number__c"]: row
        for row in sf.query_all(
            "SELECT Id, Document_Number__c, Total__c, CreatedDate, SystemModstamp "
            "FROM Billing_Invoice__c"
        )["records"]
    }
    written = [result["id"] for result in second if result["success"]]
    assert sorted(row["Id"] for row in stored.values()) == sorted({*existing_ids, *written})
    for n, (record, result) in enumerate(zip(records, second, strict=True)):
        row = stored.get(f"INV-{n:04d}")
        if result["success"]:
            assert row is not None
            assert row["Total__c"] == record["Total__c"]
            assert row["SystemModstamp"] == "2024-03-02T09:00:00.000+0000"
            created = "2024-03-02" if result["created"] else "2024-03-01"
            assert row["CreatedDate"].startswith(created)
        elif n % 2 == 0:  # an existing record that failed is left as it was
            assert row is not None
            assert row["Total__c"] == 100.0 + n
            assert row["SystemModstamp"] == "2024-03-01T09:00:00.000+0000"
        else:
            assert row is None


def test_collection_create_and_update_are_a_fixed_handful_of_statements(
    sf: Salesforce, salesforce_sandbox: Sandbox
) -> None:
    org = salesforce_sandbox.org
    accounts, _ = parents(org)
    deals = [
        {
            "attributes": {"type": "Opportunity"},
            "Name": f"Deal {n}",
            "StageName": "Prospecting",
            "CloseDate": "2024-06-30",
            "AccountId": accounts[n % 2],
        }
        for n in range(200)
    ]

    with statements(org) as sent:
        created = sf.restful(
            "composite/sobjects", method="POST", json={"allOrNone": False, "records": deals}
        )

    assert isinstance(created, list)
    ids = [result["id"] for result in created]
    assert created == [
        {"id": make_id("006", n), "success": True, "errors": []} for n in range(3, 203)
    ]
    assert shape(sent) == [
        "BEGIN",
        "SELECT Account",
        "SELECT _counter",
        "INSERT Opportunity",
        "INSERT OpportunityFieldHistory",
        "INSERT _counter",
        "COMMIT",
    ]

    changes = [
        {"attributes": {"type": "Opportunity"}, "Id": record_id, "StageName": "Closed Won"}
        for record_id in ids
    ]
    with statements(org) as sent:
        updated = sf.restful(
            "composite/sobjects", method="PATCH", json={"allOrNone": False, "records": changes}
        )

    assert updated == [{"id": record_id, "success": True, "errors": []} for record_id in ids]
    assert shape(sent) == ["BEGIN", "SELECT Opportunity", "UPDATE Opportunity", "COMMIT"]
    won = sf.query("SELECT COUNT() FROM Opportunity WHERE IsWon = true AND Probability = 100")
    assert won["totalSize"] == 200


def test_an_ingest_upsert_is_a_fixed_handful_of_statements(
    sf: Salesforce, salesforce_sandbox: Sandbox
) -> None:
    org = salesforce_sandbox.org
    _, opportunities = parents(org)
    session = trusting_session(salesforce_sandbox)
    base = f"{salesforce_sandbox.instance_url}/services/data/v59.0/jobs/ingest"
    headers = {"Authorization": f"Bearer {salesforce_sandbox.session_id}"}

    def run(lines: list[str]) -> tuple[dict[str, Any], list[str]]:
        job = session.post(
            base,
            headers=headers,
            json={
                "operation": "upsert",
                "object": "Billing_Invoice__c",
                "externalIdFieldName": "Document_Number__c",
            },
        ).json()
        text = "Document_Number__c,Total__c,Opportunity__c\n" + "\n".join(lines) + "\n"
        put = session.put(
            f"{base}/{job['id']}/batches",
            headers={**headers, "Content-Type": "text/csv"},
            data=text.encode(),
        )
        assert put.status_code == 201
        with statements(org) as sent:
            closed = session.patch(
                f"{base}/{job['id']}", headers=headers, json={"state": "UploadComplete"}
            )
        assert closed.status_code == 200
        return closed.json(), sent

    info, sent = run([f"INV-{n:04d},{n},{opportunities[n % 2]}" for n in range(0, 1000, 2)])
    assert (info["numberRecordsProcessed"], info["numberRecordsFailed"]) == (500, 0)
    # BEGIN, 3 reads (external ids, opportunities, counters), 3 writes (invoices, their
    # created history rows, counters), COMMIT
    assert len(sent) == 8

    info, sent = run([f"INV-{n:04d},{n + 1},{opportunities[n % 2]}" for n in range(1000)])
    assert (info["numberRecordsProcessed"], info["numberRecordsFailed"]) == (1000, 0)
    assert shape(sent) == [
        "BEGIN",
        "SELECT Billing_Invoice__c",  # the external ids, 500 per query
        "SELECT Billing_Invoice__c",
        "SELECT Opportunity",
        "SELECT _counter",
        "INSERT Billing_Invoice__c",
        "UPDATE Billing_Invoice__c",
        "INSERT Billing_Invoice__History",
        "INSERT _counter",
        "COMMIT",
    ]
    assert sf.query("SELECT COUNT() FROM Billing_Invoice__c")["totalSize"] == 1000
