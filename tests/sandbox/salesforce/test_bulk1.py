"""The sandbox's Bulk API 1.0 query jobs (``/services/async/NN.0/job``), through plain HTTP and
simple-salesforce's ``sf.bulk``.

Records are written on a frozen org clock so that every stamp is known. A batch runs as it is
added: its answer says Queued, every later look says Completed (or Failed, or NotProcessed for
the original batch of a PK-chunked job).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from defusedxml import ElementTree
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from sandbox.salesforce.faults import FaultRule
from sandbox.salesforce.server import Sandbox
from sandbox.salesforce.testing import trusting_session

NS = "{http://www.force.com/2009/06/asyncapi/dataload}"
XML_NS = 'xmlns="http://www.force.com/2009/06/asyncapi/dataload"'
NOW = datetime(2025, 3, 4, 5, 6, 7, 890_000, tzinfo=UTC)
STAMP_JSON, STAMP_XML = "2025-03-04T05:06:07.890+0000", "2025-03-04T05:06:07.890Z"
NOW_MILLIS = 1741064767890
ZEROS = {
    "numberRetries": 0,
    "numberRecordsFailed": 0,
    "totalProcessingTime": 0,
    "apiActiveProcessingTime": 0,
    "apexProcessingTime": 0,
}
BATCH_ZEROS = {
    "numberRecordsFailed": 0,
    "totalProcessingTime": 0,
    "apiActiveProcessingTime": 0,
    "apexProcessingTime": 0,
}


class Async:
    """Plain HTTP calls to ``/services/async/61.0/`` with the session in X-SFDC-Session."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.session = trusting_session(sandbox)
        self.base = f"{sandbox.instance_url}/services/async"
        self.token = sandbox.session_id

    def call(
        self,
        method: str,
        path: str,
        *,
        content_type: str | None = "application/json",
        version: str = "61.0",
        session: str | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        sent = {"X-SFDC-Session": self.token if session is None else session, **(headers or {})}
        if content_type:
            sent["Content-Type"] = content_type
        return self.session.request(
            method, f"{self.base}/{version}/{path}", headers=sent, timeout=30, **kwargs
        )

    def job(self, sobject: str, content_type: str = "CSV", **options: Any) -> str:
        body = {"operation": "query", "object": sobject, "contentType": content_type, **options}
        created = self.call("POST", "job", json=body)
        assert created.status_code == 201, created.text
        return str(created.json()["id"])

    def batch(self, job_id: str, soql: str, content_type: str = "text/csv") -> str:
        added = self.call("POST", f"job/{job_id}/batch", content_type=content_type, data=soql)
        assert added.status_code == 201, added.text
        info = (
            xml(added.text) if added.headers["Content-Type"] == "application/xml" else added.json()
        )
        return str(info["id"])


def xml(text: str) -> dict[str, str]:
    """The child elements of an XML answer's root, by name."""
    root = ElementTree.fromstring(text)
    return {child.tag.removeprefix(NS): child.text or "" for child in root}


def xml_list(text: str, tag: str) -> list[dict[str, str]]:
    root = ElementTree.fromstring(text)
    return [
        {child.tag.removeprefix(NS): child.text or "" for child in item}
        for item in root.iter(NS + tag)
    ]


@pytest.fixture
def bulk1(salesforce_sandbox: Sandbox) -> Iterator[Async]:
    salesforce_sandbox.org.clock = lambda: NOW
    client = Async(salesforce_sandbox)
    yield client
    client.session.close()


def accounts(sf: Salesforce, *names: str) -> list[str]:
    return [str(sf.Account.create({"Name": name})["id"]) for name in names]


# -- jobs ----------------------------------------------------------------------------------
def test_a_json_job_answers_json_job_info(bulk1: Async) -> None:
    created = bulk1.call(
        "POST", "job", json={"operation": "queryAll", "object": "account", "contentType": "CSV"}
    )

    assert (created.status_code, created.headers["Content-Type"]) == (201, "application/json")
    job_id = created.json()["id"]
    assert job_id.startswith("750")
    assert created.json() == {
        "id": job_id,
        "operation": "queryAll",
        "object": "Account",
        "createdById": "0055g0000000001AAA",
        "createdDate": STAMP_JSON,
        "systemModstamp": STAMP_JSON,
        "state": "Open",
        "concurrencyMode": "Parallel",
        "contentType": "CSV",
        "numberBatchesQueued": 0,
        "numberBatchesInProgress": 0,
        "numberBatchesCompleted": 0,
        "numberBatchesFailed": 0,
        "numberBatchesTotal": 0,
        "numberRecordsProcessed": 0,
        "apiVersion": 61.0,
        **ZEROS,
    }


def test_an_xml_job_answers_xml_job_info(bulk1: Async) -> None:
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?><jobInfo {XML_NS}><operation>query</operation>'
        "<object>Opportunity</object><concurrencyMode>Serial</concurrencyMode>"
        "<contentType>XML</contentType></jobInfo>"
    )

    created = bulk1.call("POST", "job", content_type="application/xml; charset=UTF-8", data=body)

    assert (created.status_code, created.headers["Content-Type"]) == (201, "application/xml")
    assert created.text.startswith(f'<?xml version="1.0" encoding="UTF-8"?><jobInfo {XML_NS}>')
    info = xml(created.text)
    assert info == {
        "id": info["id"],
        "operation": "query",
        "object": "Opportunity",
        "createdById": "0055g0000000001AAA",
        "createdDate": STAMP_XML,
        "systemModstamp": STAMP_XML,
        "state": "Open",
        "concurrencyMode": "Serial",
        "contentType": "XML",
        "numberBatchesQueued": "0",
        "numberBatchesInProgress": "0",
        "numberBatchesCompleted": "0",
        "numberBatchesFailed": "0",
        "numberBatchesTotal": "0",
        "numberRecordsProcessed": "0",
        "apiVersion": "61.0",
        **{key: "0" for key in ZEROS},
    }
    # A later look without a body answers in the job's own format (XML).
    again = bulk1.call("GET", f"job/{info['id']}", content_type=None)
    assert xml(again.text) == info


def test_a_csv_query_batch_is_queued_then_completed_with_one_result(
    sf: Salesforce, bulk1: Async
) -> None:
    acme, globex = accounts(sf, "Acme", 'Globex, "the" Company')
    sf.Account.update(globex, {"Description": "Line one\nLine two", "MRR__c": 12.5})
    job_id = bulk1.job("Account")

    added = bulk1.call(
        "POST",
        f"job/{job_id}/batch",
        content_type="text/csv",
        data="SELECT Id, Name, Description, MRR__c, IsDeleted, CreatedDate FROM Account",
    )

    # A CSV job's batches answer in XML, whatever the request's type.
    assert (added.status_code, added.headers["Content-Type"]) == (201, "application/xml")
    queued = xml(added.text)
    batch_id = queued["id"]
    common = {"id": batch_id, "jobId": job_id, "createdDate": STAMP_XML}
    common |= {"systemModstamp": STAMP_XML} | {key: "0" for key in BATCH_ZEROS}
    assert queued == {**common, "state": "Queued", "numberRecordsProcessed": "0"}
    looked = bulk1.call("GET", f"job/{job_id}/batch/{batch_id}")
    assert xml(looked.text) == {**common, "state": "Completed", "numberRecordsProcessed": "2"}
    listed = bulk1.call("GET", f"job/{job_id}/batch/{batch_id}/result")
    assert listed.headers["Content-Type"] == "application/xml"
    (result_id,) = [item.text for item in ElementTree.fromstring(listed.text)]
    assert listed.text == (
        f'<?xml version="1.0" encoding="UTF-8"?><result-list {XML_NS}>'
        f"<result>{result_id}</result></result-list>"
    )
    assert result_id is not None and result_id.startswith("752")
    result = bulk1.call("GET", f"job/{job_id}/batch/{batch_id}/result/{result_id}")
    assert result.headers["Content-Type"] == "text/csv; charset=UTF-8"
    assert result.text == (
        '"Id","Name","Description","MRR__c","IsDeleted","CreatedDate"\n'
        f'"{acme}","Acme","","","false","{STAMP_XML}"\n'
        f'"{globex}","Globex, ""the"" Company","Line one\nLine two","12.5","false",'
        f'"{STAMP_XML}"\n'
    )


def test_a_query_with_no_records_has_a_result_saying_so(bulk1: Async) -> None:
    job_id = bulk1.job("Account")
    batch_id = bulk1.batch(job_id, "SELECT Id FROM Account")
    listed = bulk1.call("GET", f"job/{job_id}/batch/{batch_id}/result")
    (result_id,) = [item.text for item in ElementTree.fromstring(listed.text)]

    result = bulk1.call("GET", f"job/{job_id}/batch/{batch_id}/result/{result_id}")

    assert result.text == "Records not found for this query"


def test_parent_fields_are_dotted_columns(sf: Salesforce, bulk1: Async) -> None:
    (acme,) = accounts(sf, "Acme")
    with_account = sf.Opportunity.create(
        {"Name": "Deal", "AccountId": acme, "StageName": "Prospecting", "CloseDate": "2025-06-30"}
    )["id"]
    orphan = sf.Opportunity.create(
        {"Name": "Orphan", "StageName": "Prospecting", "CloseDate": "2025-07-01"}
    )["id"]
    job_id = bulk1.job("Opportunity")
    batch_id = bulk1.batch(job_id, "SELECT Id, Account.Name, CloseDate FROM Opportunity")

    result = bulk1.call("GET", f"job/{job_id}/batch/{batch_id}/result")
    (result_id,) = [item.text for item in ElementTree.fromstring(result.text)]
    text = bulk1.call("GET", f"job/{job_id}/batch/{batch_id}/result/{result_id}").text

    assert list(csv.reader(io.StringIO(text))) == [
        ["Id", "Account.Name", "CloseDate"],
        [with_account, "Acme", "2025-06-30"],
        [orphan, "", "2025-07-01"],
    ]


def test_simple_salesforce_bulk_query_reads_a_json_job(sf: Salesforce, bulk1: Async) -> None:
    acme, gone = accounts(sf, "Acme", "Gone")
    sf.Account.update(acme, {"MRR__c": 99.5})
    sf.Account.delete(gone)
    deal = sf.Opportunity.create(
        {"Name": "Deal", "AccountId": acme, "StageName": "Closed Won", "CloseDate": "2025-06-30"}
    )["id"]

    found = sf.bulk.Account.query("SELECT Id, Name, MRR__c, SystemModstamp FROM Account")
    everything = sf.bulk.Account.query_all("SELECT Id, IsDeleted FROM Account")
    deals = sf.bulk.Opportunity.query(
        "SELECT Id, IsWon, CloseDate, Account.Name, Account.CreatedDate FROM Opportunity"
    )

    url = "/services/data/v59.0/sobjects/"
    assert found == [
        {
            "attributes": {"type": "Account", "url": f"{url}Account/{acme}"},
            "Id": acme,
            "Name": "Acme",
            "MRR__c": 99.5,
            "SystemModstamp": NOW_MILLIS,
        }
    ]
    assert [(row["Id"], row["IsDeleted"]) for row in everything] == [(acme, False), (gone, True)]
    assert deals == [
        {
            "attributes": {"type": "Opportunity", "url": f"{url}Opportunity/{deal}"},
            "Id": deal,
            "IsWon": True,
            "CloseDate": 1751241600000,  # 2025-06-30, midnight UTC
            "Account": {
                "attributes": {"type": "Account", "url": f"{url}Account/{acme}"},
                "Name": "Acme",
                "CreatedDate": NOW_MILLIS,
            },
        }
    ]


def test_an_xml_job_answers_xml_results(sf: Salesforce, bulk1: Async) -> None:
    (acme,) = accounts(sf, "Acme & Sons")
    deal = sf.Opportunity.create(
        {"Name": "Deal", "AccountId": acme, "StageName": "Prospecting", "CloseDate": "2025-06-30"}
    )["id"]
    orphan = sf.Opportunity.create(
        {"Name": "Orphan", "StageName": "Prospecting", "CloseDate": "2025-07-01", "Amount": 5}
    )["id"]
    job_id = bulk1.job("Opportunity", content_type="XML")
    batch_id = bulk1.batch(
        job_id, "SELECT Id, Amount, Account.Name FROM Opportunity", "application/xml"
    )
    listed = bulk1.call("GET", f"job/{job_id}/batch/{batch_id}/result", content_type=None)
    (result_id,) = [item.text for item in ElementTree.fromstring(listed.text)]

    result = bulk1.call("GET", f"job/{job_id}/batch/{batch_id}/result/{result_id}")

    assert result.headers["Content-Type"] == "application/xml"
    assert result.text == (
        f'<?xml version="1.0" encoding="UTF-8"?><queryResult {XML_NS} '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        f'<records xsi:type="sObject"><type>Opportunity</type><Id>{deal}</Id>'
        '<Amount xsi:nil="true"/><Account xsi:type="sObject"><type>Account</type>'
        "<Name>Acme &amp; Sons</Name></Account></records>"
        f'<records xsi:type="sObject"><type>Opportunity</type><Id>{orphan}</Id>'
        '<Amount>5.0</Amount><Account xsi:nil="true"/></records></queryResult>'
    )


def test_close_and_abort(bulk1: Async) -> None:
    job_id = bulk1.job("Account")

    closed = bulk1.call("POST", f"job/{job_id}", json={"state": "Closed"})
    refused = bulk1.call("POST", f"job/{job_id}/batch", content_type="text/csv", data="x")
    aborted = bulk1.call("POST", f"job/{job_id}", json={"state": "Aborted"})
    again = bulk1.call("POST", f"job/{job_id}", json={"state": "Closed"})

    assert (closed.status_code, closed.json()["state"]) == (200, "Closed")
    assert (refused.status_code, xml(refused.text)) == (
        400,
        {
            "exceptionCode": "InvalidJobState",
            "exceptionMessage": f"Job {job_id} is not open: Closed",
        },
    )
    assert aborted.json()["state"] == "Aborted"
    assert (again.status_code, again.json()) == (
        400,
        {
            "exceptionCode": "InvalidJobState",
            "exceptionMessage": f"Job {job_id} cannot become Closed: it is Aborted",
        },
    )


# -- failed batches ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("soql", "message"),
    [
        (
            "SELECT Foo FROM Account",
            "INVALID_FIELD: No such column 'Foo' on entity 'Account'. If you are attempting to "
            "use a custom field, be sure to append the '__c' after the custom field name. Please "
            "reference your WSDL or the describe call for the appropriate names.",
        ),
        ("SELECT Id FROM", "MALFORMED_QUERY: unexpected token: <EOF> at Row:1:Column:15"),
        (
            "SELECT Id, (SELECT Id FROM Opportunities) FROM Account",
            "FUNCTIONALITY_NOT_ENABLED: Aggregate Relationships not supported in Batch Query",
        ),
        (
            "SELECT COUNT() FROM Account",
            "FUNCTIONALITY_NOT_ENABLED: Aggregate queries are not supported in Batch Query",
        ),
        (
            "SELECT Id FROM Account LIMIT 5 OFFSET 2",
            "FUNCTIONALITY_NOT_ENABLED: OFFSET is not supported in Batch Query",
        ),
        (
            "SELECT Id FROM Contact",
            "INVALID_TYPE: The query is on Contact; the job's object is Account",
        ),
        (
            "SELECT Id FROM Account WHERE Description = 'x'",
            "INVALID_FIELD: field 'Description' can not be filtered in query call",
        ),
    ],
)
def test_a_query_that_cannot_run_fails_its_batch(bulk1: Async, soql: str, message: str) -> None:
    job_id = bulk1.job("Account")
    batch_id = bulk1.batch(job_id, soql)

    looked = xml(bulk1.call("GET", f"job/{job_id}/batch/{batch_id}").text)
    listed = bulk1.call("GET", f"job/{job_id}/batch/{batch_id}/result")

    assert (looked["state"], looked["stateMessage"]) == (
        "Failed",
        f"InvalidBatch : Failed to process query: {message}",
    )
    assert (listed.status_code, xml(listed.text)) == (
        400,
        {"exceptionCode": "InvalidBatch", "exceptionMessage": "Batch not completed: Failed"},
    )


# -- PK chunking ---------------------------------------------------------------------------
def test_pk_chunking_splits_a_batch_by_record_ids(sf: Salesforce, bulk1: Async) -> None:
    ids = accounts(sf, "A1", "B2", "A3", "B4", "A5")
    sf.Account.delete(ids[1])  # still counted for the chunks' boundaries
    created = bulk1.call(
        "POST",
        "job",
        headers={"Sforce-Enable-PKChunking": "TRUE; chunkSize=2"},
        json={"operation": "query", "object": "Account", "contentType": "JSON"},
    )
    job_id = created.json()["id"]

    original = bulk1.batch(job_id, "SELECT Id, Name FROM Account WHERE Name LIKE 'A%'")
    listed = bulk1.call("GET", f"job/{job_id}/batch").json()["batchInfo"]

    assert [(info["state"], info["numberRecordsProcessed"]) for info in listed] == [
        ("NotProcessed", 0),
        ("Completed", 1),  # A1 (B2 is deleted)
        ("Completed", 1),  # A3 (B4 does not match)
        ("Completed", 1),  # A5
    ]
    assert listed[0]["id"] == original
    names = []
    for info in listed[1:]:
        (result_id,) = bulk1.call("GET", f"job/{job_id}/batch/{info['id']}/result").json()
        rows = bulk1.call("GET", f"job/{job_id}/batch/{info['id']}/result/{result_id}").json()
        names.append([row["Name"] for row in rows])
    assert names == [["A1"], ["A3"], ["A5"]]
    job = bulk1.call("GET", f"job/{job_id}").json()
    assert (job["numberBatchesTotal"], job["numberBatchesCompleted"]) == (4, 3)
    assert job["numberRecordsProcessed"] == 3


def test_pk_chunking_from_a_start_row(sf: Salesforce, bulk1: Async) -> None:
    ids = accounts(sf, "A1", "A2", "A3")
    created = bulk1.call(
        "POST",
        "job",
        headers={"Sforce-Enable-PKChunking": f"startRow={ids[1]}"},
        json={"operation": "query", "object": "Account", "contentType": "JSON"},
    )
    job_id = created.json()["id"]
    bulk1.batch(job_id, "SELECT Id FROM Account")

    listed = bulk1.call("GET", f"job/{job_id}/batch").json()["batchInfo"]

    assert [(info["state"], info["numberRecordsProcessed"]) for info in listed] == [
        ("NotProcessed", 0),
        ("Completed", 2),
    ]


@pytest.mark.parametrize(
    ("sobject", "soql", "message"),
    [
        (
            "Product2",
            "SELECT Id FROM Product2",
            "FUNCTIONALITY_NOT_ENABLED: PK chunking is not supported for Product2",
        ),
        (
            "Account",
            "SELECT Id FROM Account ORDER BY Name",
            "FUNCTIONALITY_NOT_ENABLED: PK chunking works only with queries that have no clause "
            "but WHERE",
        ),
    ],
)
def test_pk_chunking_refused_fails_the_batch(
    bulk1: Async, sobject: str, soql: str, message: str
) -> None:
    created = bulk1.call(
        "POST",
        "job",
        headers={"Sforce-Enable-PKChunking": "true"},
        json={"operation": "query", "object": sobject, "contentType": "CSV"},
    )
    job_id = created.json()["id"]
    batch_id = bulk1.batch(job_id, soql)

    listed = xml_list(bulk1.call("GET", f"job/{job_id}/batch").text, "batchInfo")

    assert [(info["id"], info["state"], info["stateMessage"]) for info in listed] == [
        (batch_id, "Failed", f"InvalidBatch : Failed to process query: {message}")
    ]


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("chunkSize=250001", "chunkSize must be between 1 and 250000: 250001"),
        ("chunkSize=0", "chunkSize must be between 1 and 250000: 0"),
        ("startRow=nope", "startRow is not a record id: nope"),
        ("maybe", "Invalid Sforce-Enable-PKChunking value: maybe"),
    ],
)
def test_invalid_pk_chunking_headers(bulk1: Async, header: str, message: str) -> None:
    created = bulk1.call(
        "POST",
        "job",
        headers={"Sforce-Enable-PKChunking": header},
        json={"operation": "query", "object": "Account", "contentType": "CSV"},
    )

    assert (created.status_code, created.json()) == (
        400,
        {"exceptionCode": "InvalidJob", "exceptionMessage": message},
    )


# -- refusals ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"operation": "insert", "object": "Account"},
            "The sandbox runs query jobs only on Bulk API 1.0 (insert: use Bulk API 2.0 ingest "
            "jobs)",
        ),
        ({"operation": "QUERY", "object": "Account"}, "Invalid job operation: QUERY"),
        ({"operation": "query", "object": "Invoice"}, "Unable to find object: Invoice"),
        (
            {"operation": "query", "object": "Account", "contentType": "ZIP_CSV"},
            "Invalid content type for a query job: ZIP_CSV",
        ),
        (
            {"operation": "query", "object": "Account", "concurrencyMode": "Fast"},
            "Invalid concurrency mode: Fast",
        ),
    ],
)
def test_jobs_the_sandbox_refuses(bulk1: Async, body: dict[str, str], message: str) -> None:
    refused = bulk1.call("POST", "job", json=body)

    assert (refused.status_code, refused.json()) == (
        400,
        {"exceptionCode": "InvalidJob", "exceptionMessage": message},
    )


def test_an_unknown_session_is_invalid_session_id(bulk1: Async) -> None:
    as_xml = bulk1.call("GET", "job/7505g0000000001AAA", content_type=None, session="nope")
    as_json = bulk1.call("GET", "job/7505g0000000001AAA", session="")

    assert (as_xml.status_code, as_xml.headers["Content-Type"], as_xml.text) == (
        400,
        "application/xml",
        f'<?xml version="1.0" encoding="UTF-8"?><error {XML_NS}>'
        "<exceptionCode>InvalidSessionId</exceptionCode>"
        "<exceptionMessage>Invalid session id</exceptionMessage></error>",
    )
    assert (as_json.status_code, as_json.json()) == (
        400,
        {"exceptionCode": "InvalidSessionId", "exceptionMessage": "Invalid session id"},
    )


def test_unknown_jobs_batches_and_urls(bulk1: Async) -> None:
    job_id = bulk1.job("Account")

    unknown_job = bulk1.call("GET", "job/7505g00000000zzAAA")
    unknown_batch = bulk1.call("GET", f"job/{job_id}/batch/7515g00000000zzAAA")
    other_version = bulk1.call("GET", f"job/{job_id}/batch", version="60.0")
    unknown_url = bulk1.call("GET", "jobs")
    old_version = bulk1.call("GET", "job", version="20.0")

    assert (unknown_job.status_code, unknown_job.json()) == (
        400,
        {"exceptionCode": "InvalidJob", "exceptionMessage": "Invalid job id: 7505g00000000zzAAA"},
    )
    assert (unknown_batch.status_code, xml(unknown_batch.text)) == (
        400,
        {
            "exceptionCode": "InvalidBatch",
            "exceptionMessage": "Invalid batch id: 7515g00000000zzAAA",
        },
    )
    assert xml(other_version.text) == {
        "exceptionCode": "InvalidJob",
        "exceptionMessage": f"Job {job_id} was created with API version 61.0; use that version "
        "for its batches",
    }
    assert (unknown_url.status_code, unknown_url.json()["exceptionCode"]) == (404, "InvalidUrl")
    assert (old_version.status_code, old_version.json()) == (
        404,
        {"exceptionCode": "InvalidUrl", "exceptionMessage": "Unsupported API version: 20.0"},
    )


# -- quota, limits and faults --------------------------------------------------------------
def test_calls_are_counted_and_batches_spend_the_bulk_batch_limit(
    sf: Salesforce, salesforce_sandbox: Sandbox, bulk1: Async
) -> None:
    accounts(sf, "A1", "A2", "A3")
    before = salesforce_sandbox.usage.used
    chunked = bulk1.call(
        "POST",
        "job",
        headers={"Sforce-Enable-PKChunking": "chunkSize=2"},
        json={"operation": "query", "object": "Account", "contentType": "CSV"},
    )
    added = bulk1.call(
        "POST",
        f"job/{chunked.json()['id']}/batch",
        content_type="text/csv",
        data="SELECT Id FROM Account",
    )

    assert chunked.headers["Sforce-Limit-Info"] == f"api-usage={before + 1}/15000"
    assert added.headers["Sforce-Limit-Info"] == f"api-usage={before + 2}/15000"
    limits = sf.limits()["DailyBulkApiBatches"]
    assert limits == {"Max": 15000, "Remaining": 15000 - 3}  # the original and two chunks


def test_a_query_timeout_fails_the_next_query_batch(
    sf: Salesforce, salesforce_sandbox: Sandbox, bulk1: Async
) -> None:
    accounts(sf, "Acme")
    salesforce_sandbox.faults.add(FaultRule(kind="query_timeout", count=1, sobject="Account"))
    job_id = bulk1.job("Account")  # not a query: the rule waits for one

    timed_out = bulk1.batch(job_id, "SELECT Id FROM Account")
    next_one = bulk1.batch(job_id, "SELECT Id FROM Account")

    listed = xml_list(bulk1.call("GET", f"job/{job_id}/batch").text, "batchInfo")
    assert [(info["id"], info["state"], info.get("stateMessage")) for info in listed] == [
        (
            timed_out,
            "Failed",
            "InvalidBatch : Failed to process query: QUERY_TIMEOUT: Your query request was "
            "running for too long.",
        ),
        (next_one, "Completed", None),
    ]


def test_a_query_timeout_on_a_rest_query(sf: Salesforce, salesforce_sandbox: Sandbox) -> None:
    salesforce_sandbox.faults.add(FaultRule(kind="query_timeout", count=1))
    sf.Account.create({"Name": "Acme"})  # not a query: the rule waits for one

    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query("SELECT Id FROM Account")

    assert caught.value.content == [
        {
            "message": "Your query request was running for too long.",
            "errorCode": "QUERY_TIMEOUT",
            "fields": [],
        }
    ]
    assert sf.query("SELECT Id FROM Account")["totalSize"] == 1


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        ("503", 503, "ServerUnavailable"),
        ("500", 500, "Unknown"),
        ("expired_session", 400, "InvalidSessionId"),
        ("request_limit", 403, "ExceededQuota"),
    ],
)
def test_faults_answer_in_bulk_api_shapes(
    salesforce_sandbox: Sandbox, bulk1: Async, kind: str, status: int, code: str
) -> None:
    salesforce_sandbox.faults.add(FaultRule(kind=kind, count=1, path="async/job"))

    refused = bulk1.call("POST", "job", json={"operation": "query", "object": "Account"})

    assert (refused.status_code, refused.json()["exceptionCode"]) == (status, code)
    assert bulk1.call("POST", "job", json={"operation": "query", "object": "Account"}).ok


def test_a_spent_quota_is_exceeded_quota(salesforce_sandbox: Sandbox, bulk1: Async) -> None:
    salesforce_sandbox.usage.set(limit=5, used=5)

    refused = bulk1.call("POST", "job", json={"operation": "query", "object": "Account"})

    assert (refused.status_code, refused.json()) == (
        403,
        {"exceptionCode": "ExceededQuota", "exceptionMessage": "TotalRequests Limit exceeded."},
    )
    assert refused.headers["Sforce-Limit-Info"] == "api-usage=5/5"
