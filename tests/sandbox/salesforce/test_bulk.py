"""The sandbox's Bulk API 2.0, through simple-salesforce (``sf.bulk2``) and plain requests.

Query jobs answer CSV pages (every value quoted, parent fields as ``Account.Name`` columns,
empty for null) paged by ``maxRecords`` and ``Sforce-Locator``; ingest jobs take CSV batches
while Open, run when set to UploadComplete and report per-row results.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceOperationError

from sandbox.salesforce.server import Sandbox
from sandbox.salesforce.testing import trusting_session

WAIT = 0.1
UNKNOWN_JOB = "7505g00000000zzAAA"


class Jobs:
    """Plain HTTP calls to ``/services/data/vNN.0/jobs/...`` on the sandbox."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.session = trusting_session(sandbox)
        self.instance_url = sandbox.instance_url
        self.headers = {"Authorization": f"Bearer {sandbox.session_id}"}

    def url(self, path: str, version: str = "59.0") -> str:
        return f"{self.instance_url}/services/data/v{version}/jobs/{path}"

    def get(self, path: str, version: str = "59.0", **params: Any) -> requests.Response:
        return self.session.get(self.url(path, version), headers=self.headers, params=params)

    def post(self, path: str, body: dict[str, Any]) -> requests.Response:
        return self.session.post(self.url(path), headers=self.headers, json=body)

    def patch(self, path: str, body: dict[str, Any]) -> requests.Response:
        return self.session.patch(self.url(path), headers=self.headers, json=body)

    def put_csv(self, path: str, text: str) -> requests.Response:
        headers = {**self.headers, "Content-Type": "text/csv"}
        return self.session.put(self.url(path), headers=headers, data=text.encode())

    def query_job(self, soql: str) -> str:
        created = self.post("query", {"operation": "query", "query": soql})
        assert created.status_code == 200
        return str(created.json()["id"])

    def open_ingest(self, operation: str, sobject: str, csv_text: str | None = None) -> str:
        created = self.post("ingest", {"operation": operation, "object": sobject})
        assert created.status_code == 200
        assert created.json()["state"] == "Open"
        job_id = str(created.json()["id"])
        if csv_text is not None:
            uploaded = self.put_csv(f"ingest/{job_id}/batches", csv_text)
            assert (uploaded.status_code, uploaded.text) == (201, "")
        return job_id


@pytest.fixture
def jobs(salesforce_sandbox: Sandbox) -> Iterator[Jobs]:
    client = Jobs(salesforce_sandbox)
    yield client
    client.session.close()


def not_found(job_id: str) -> list[dict[str, Any]]:
    return [{"message": f"Job not found: {job_id}", "errorCode": "NOT_FOUND", "fields": []}]


def invalid_job(message: str) -> list[dict[str, Any]]:
    return [{"message": message, "errorCode": "INVALIDJOB", "fields": []}]


def rows(page: str) -> list[list[str]]:
    """The data rows of a CSV page (its header left out)."""
    return list(csv.reader(io.StringIO(page)))[1:]


def csv_file(tmp_path: Path, text: str) -> str:
    """A CSV file for ``sf.bulk2.X.insert(csv_file=...)``: its columns keep their order (with
    ``records=`` simple-salesforce orders the columns as a set, which varies between runs)."""
    path = tmp_path / "upload.csv"
    path.write_text(text, encoding="utf-8")
    return str(path)


def count(sf: Salesforce, sobject: str) -> int:
    return int(sf.query(f"SELECT COUNT() FROM {sobject}")["totalSize"])


def load_result(job_id: str, processed: int, failed: int = 0) -> list[dict[str, Any]]:
    """What ``sf.bulk2.X.insert/update/upsert/delete`` answers for one job."""
    return [
        {
            "numberRecordsFailed": failed,
            "numberRecordsProcessed": processed,
            "numberRecordsTotal": processed,
            "job_id": job_id,
        }
    ]


# -- query jobs ----------------------------------------------------------------------------
def test_query_job_is_upload_complete_then_job_complete(sf: Salesforce, jobs: Jobs) -> None:
    for name in ("Acme", "Globex", "Initech"):
        sf.Account.create({"Name": name})

    created = jobs.post("query", {"operation": "query", "query": "SELECT Id, Name FROM Account"})

    assert created.status_code == 200
    info = created.json()
    job_id = info["id"]
    assert job_id.startswith("750")
    common = {
        "id": job_id,
        "operation": "query",
        "object": "Account",
        "createdById": info["createdById"],
        "createdDate": info["createdDate"],
        "systemModstamp": info["systemModstamp"],
        "concurrencyMode": "Parallel",
        "contentType": "CSV",
        "apiVersion": 59.0,
        "jobType": "V2Query",
        "lineEnding": "LF",
        "columnDelimiter": "COMMA",
        "retries": 0,
        "totalProcessingTime": 0,
    }
    assert info == {**common, "state": "UploadComplete", "numberRecordsProcessed": 0}

    looked = jobs.get(f"query/{job_id}")

    assert looked.status_code == 200
    assert looked.json() == {**common, "state": "JobComplete", "numberRecordsProcessed": 3}


def test_results_csv_is_exact(sf: Salesforce) -> None:
    account_id = sf.Account.create({"Name": "Acme", "MRR__c": 100.5})["id"]
    archer = sf.Contact.create(
        {
            "FirstName": "Ann",
            "LastName": "Archer",
            "Email": "ann@example.com",
            "AccountId": account_id,
        }
    )["id"]
    baker = sf.Contact.create({"LastName": "Baker"})["id"]
    sf.Product2.create({"Name": "Platform", "IsActive": True, "Family": "Platform"})
    sf.Product2.create({"Name": "Add-on", "IsActive": False})

    contacts = list(
        sf.bulk2.Contact.query(
            "SELECT Id, Name, Email, Account.Name, Account.MRR__c, IsDeleted FROM Contact "
            "ORDER BY LastName",
            wait=WAIT,
        )
    )
    products = list(
        sf.bulk2.Product2.query(
            "SELECT Name, IsActive, Family FROM Product2 ORDER BY Name", wait=WAIT
        )
    )

    assert contacts == [
        '"Id","Name","Email","Account.Name","Account.MRR__c","IsDeleted"\n'
        f'"{archer}","Ann Archer","ann@example.com","Acme","100.5","false"\n'
        f'"{baker}","Baker","","","","false"\n'
    ]
    assert products == [
        '"Name","IsActive","Family"\n"Add-on","false",""\n"Platform","true","Platform"\n'
    ]


def test_results_page_by_max_records_and_locator(sf: Salesforce, jobs: Jobs) -> None:
    for name in ("Initech", "Acme", "Globex"):
        sf.Account.create({"Name": name})
    job_id = jobs.post(
        "query", {"operation": "query", "query": "SELECT Name FROM Account ORDER BY Name"}
    ).json()["id"]

    first = jobs.get(f"query/{job_id}/results", maxRecords=2)

    assert first.status_code == 200
    assert first.text == '"Name"\n"Acme"\n"Globex"\n'
    assert first.headers["Sforce-NumberOfRecords"] == "2"
    locator = first.headers["Sforce-Locator"]
    assert locator not in ("", "null")

    second = jobs.get(f"query/{job_id}/results", maxRecords=2, locator=locator)

    assert second.status_code == 200
    assert second.text == '"Name"\n"Initech"\n'
    assert second.headers["Sforce-NumberOfRecords"] == "1"
    assert second.headers["Sforce-Locator"] == "null"

    whole = jobs.get(f"query/{job_id}/results")
    assert whole.text == '"Name"\n"Acme"\n"Globex"\n"Initech"\n'
    assert (whole.headers["Sforce-NumberOfRecords"], whole.headers["Sforce-Locator"]) == (
        "3",
        "null",
    )


def test_2500_rows_in_pages_of_1000(sf: Salesforce, jobs: Jobs) -> None:
    names = [f"Account {n:04d}" for n in range(2500)]
    loaded = sf.bulk2.Account.insert(records=[{"Name": name} for name in names], wait=WAIT)
    assert loaded == load_result(loaded[0]["job_id"], 2500)

    soql = "SELECT Name FROM Account ORDER BY Name"
    pages = list(sf.bulk2.Account.query(soql, max_records=1000, wait=WAIT))

    assert [len(rows(page)) for page in pages] == [1000, 1000, 500]
    assert all(page.startswith('"Name"\n') for page in pages)
    assert [row[0] for page in pages for row in rows(page)] == names

    job_id = jobs.query_job(soql)
    seen: list[tuple[str, int, str]] = []
    locator = ""
    while True:
        params: dict[str, Any] = {"maxRecords": 1000}
        if locator:
            params["locator"] = locator
        page = jobs.get(f"query/{job_id}/results", **params)
        assert page.status_code == 200
        locator = page.headers["Sforce-Locator"]
        seen.append((page.headers["Sforce-NumberOfRecords"], len(rows(page.text)), locator))
        if locator == "null":
            break
    assert [(number, size) for number, size, _ in seen] == [
        ("1000", 1000),
        ("1000", 1000),
        ("500", 500),
    ]
    assert [last for _, _, last in seen][-1] == "null"
    assert "null" not in [last for _, _, last in seen][:-1]


def test_query_all_includes_deleted_records(sf: Salesforce) -> None:
    kept = sf.Account.create({"Name": "Kept"})["id"]
    deleted = sf.Account.create({"Name": "Deleted"})["id"]
    sf.Account.delete(deleted)
    soql = "SELECT Id, Name, IsDeleted FROM Account ORDER BY Name"

    live = list(sf.bulk2.Account.query(soql, wait=WAIT))
    every = list(sf.bulk2.Account.query_all(soql, wait=WAIT))

    assert live == [f'"Id","Name","IsDeleted"\n"{kept}","Kept","false"\n']
    assert every == [
        f'"Id","Name","IsDeleted"\n"{deleted}","Deleted","true"\n"{kept}","Kept","false"\n'
    ]


@pytest.mark.parametrize(
    ("soql", "message"),
    [
        (
            "SELECT Id, (SELECT Id FROM Contacts) FROM Account",
            "child relationship subqueries are not supported by Bulk API 2.0",
        ),
        (
            "SELECT COUNT() FROM Account",
            "COUNT() and aggregate functions are not supported by Bulk API 2.0",
        ),
        ("SELECT Id FROM Account OFFSET 5", "OFFSET are not supported by Bulk API 2.0"),
    ],
)
def test_unsupported_queries_are_refused(
    sf: Salesforce, jobs: Jobs, soql: str, message: str
) -> None:
    refused = jobs.post("query", {"operation": "query", "query": soql})

    assert refused.status_code == 400
    assert refused.json() == invalid_job(message)
    assert jobs.get("query").json() == {"done": True, "records": [], "nextRecordsUrl": None}


def test_results_must_be_read_with_the_jobs_api_version(sf: Salesforce, jobs: Jobs) -> None:
    sf.Account.create({"Name": "Acme"})
    job_id = jobs.query_job("SELECT Name FROM Account")

    other = jobs.get(f"query/{job_id}/results", version="58.0")

    assert other.status_code == 409
    assert other.json() == invalid_job(
        "the job was created with API version 59.0; read its results with it"
    )
    same = jobs.get(f"query/{job_id}/results", version="59.0")
    assert (same.status_code, same.text) == (200, '"Name"\n"Acme"\n')


# -- ingest jobs ---------------------------------------------------------------------------
def test_insert_with_one_bad_row(sf: Salesforce, jobs: Jobs, tmp_path: Path) -> None:
    loaded = sf.bulk2.Account.insert(
        csv_file=csv_file(tmp_path, "Name,Industry\nAcme,Banking\n,Energy\n"), wait=WAIT
    )

    job_id = loaded[0]["job_id"]
    assert loaded == load_result(job_id, 2, failed=1)
    info = jobs.get(f"ingest/{job_id}").json()
    assert (
        info["state"],
        info["operation"],
        info["object"],
        info["numberRecordsProcessed"],
        info["numberRecordsFailed"],
    ) == ("JobComplete", "insert", "Account", 2, 1)
    acme = sf.query("SELECT Id FROM Account")["records"]
    assert len(acme) == 1
    acme_id = acme[0]["Id"]
    assert sf.bulk2.Account.get_successful_records(job_id) == (
        f'"sf__Id","sf__Created","Name","Industry"\n"{acme_id}","true","Acme","Banking"\n'
    )
    assert sf.bulk2.Account.get_failed_records(job_id) == (
        '"sf__Id","sf__Error","Name","Industry"\n'
        '"","REQUIRED_FIELD_MISSING:Required fields are missing: [Name]:Name --","","Energy"\n'
    )
    assert sf.bulk2.Account.get_unprocessed_records(job_id) == '"Name","Industry"\n'
    assert sf.Account.get(acme_id)["Industry"] == "Banking"


def test_update_na_nulls_a_field_and_empty_leaves_it(sf: Salesforce, tmp_path: Path) -> None:
    account_id = sf.Account.create({"Name": "Acme", "Industry": "Banking", "BillingCity": "Paris"})[
        "id"
    ]

    loaded = sf.bulk2.Account.update(
        csv_file=csv_file(tmp_path, f"Id,Industry,BillingCity\n{account_id},#N/A,\n"), wait=WAIT
    )

    job_id = loaded[0]["job_id"]
    assert loaded == load_result(job_id, 1)
    assert sf.bulk2.Account.get_successful_records(job_id) == (
        '"sf__Id","sf__Created","Id","Industry","BillingCity"\n'
        f'"{account_id}","false","{account_id}","#N/A",""\n'
    )
    assert sf.bulk2.Account.get_failed_records(job_id) == (
        '"sf__Id","sf__Error","Id","Industry","BillingCity"\n'
    )
    account = sf.Account.get(account_id)
    assert (account["Name"], account["Industry"], account["BillingCity"]) == (
        "Acme",
        None,
        "Paris",
    )


def test_upsert_by_external_id(sf: Salesforce, tmp_path: Path) -> None:
    existing = sf.Billing_Invoice__c.create(
        {"Document_Number__c": "INV-1", "Total__c": 10, "Status__c": "Open"}
    )["id"]

    loaded = sf.bulk2.Billing_Invoice__c.upsert(
        csv_file=csv_file(
            tmp_path, "Document_Number__c,Total__c,Status__c\nINV-1,15,\nINV-2,20,Open\n"
        ),
        external_id_field="Document_Number__c",
        wait=WAIT,
    )

    job_id = loaded[0]["job_id"]
    assert loaded == load_result(job_id, 2)
    found = sf.query("SELECT Id FROM Billing_Invoice__c WHERE Document_Number__c = 'INV-2'")
    assert found["totalSize"] == 1
    added = found["records"][0]["Id"]
    assert added != existing
    assert sf.bulk2.Billing_Invoice__c.get_successful_records(job_id) == (
        '"sf__Id","sf__Created","Document_Number__c","Total__c","Status__c"\n'
        f'"{existing}","false","INV-1","15",""\n'
        f'"{added}","true","INV-2","20","Open"\n'
    )
    updated = sf.Billing_Invoice__c.get(existing)
    assert (updated["Total__c"], updated["Status__c"]) == (15.0, "Open")
    assert sf.Billing_Invoice__c.get(added)["Total__c"] == 20.0
    assert count(sf, "Billing_Invoice__c") == 2


def test_delete(sf: Salesforce) -> None:
    removed = sf.Account.create({"Name": "Removed"})["id"]
    kept = sf.Account.create({"Name": "Kept"})["id"]

    loaded = sf.bulk2.Account.delete(records=[{"Id": removed}], wait=WAIT)

    job_id = loaded[0]["job_id"]
    assert loaded == load_result(job_id, 1)
    assert sf.bulk2.Account.get_successful_records(job_id) == (
        f'"sf__Id","sf__Created","Id"\n"{removed}","false","{removed}"\n'
    )
    assert [record["Id"] for record in sf.query("SELECT Id FROM Account")["records"]] == [kept]
    deleted = sf.query_all("SELECT Id, IsDeleted FROM Account WHERE IsDeleted = true", True)
    assert [record["Id"] for record in deleted["records"]] == [removed]


def test_unknown_column_fails_the_job(sf: Salesforce, jobs: Jobs) -> None:
    job_id = jobs.open_ingest("insert", "Account", "Name,Foo__c\nAcme,1\n")

    closed = jobs.patch(f"ingest/{job_id}", {"state": "UploadComplete"})
    assert closed.status_code == 200

    info = jobs.get(f"ingest/{job_id}").json()
    assert (
        info["state"],
        info["errorMessage"],
        info["numberRecordsProcessed"],
        info["numberRecordsFailed"],
    ) == ("Failed", "InvalidBatch : Field name not found : Foo__c", 0, 0)
    assert count(sf, "Account") == 0

    with pytest.raises(SalesforceOperationError) as failed:
        sf.bulk2.Account.insert(records=[{"Name": "Acme", "Foo__c": "1"}], wait=WAIT)
    assert str(failed.value) == (
        "Job failure. Response content: InvalidBatch : Field name not found : Foo__c"
    )
    assert count(sf, "Account") == 0


def test_abort_an_open_job(sf: Salesforce, jobs: Jobs) -> None:
    job_id = jobs.open_ingest("insert", "Account", "Name,Industry\nAcme,Banking\nGlobex,Energy\n")

    aborted = jobs.patch(f"ingest/{job_id}", {"state": "Aborted"})

    assert aborted.status_code == 200
    assert aborted.json()["state"] == "Aborted"
    info = jobs.get(f"ingest/{job_id}").json()
    assert (info["state"], info["numberRecordsProcessed"], info["numberRecordsFailed"]) == (
        "Aborted",
        0,
        0,
    )
    assert sf.bulk2.Account.get_unprocessed_records(job_id) == (
        '"Name","Industry"\n"Acme","Banking"\n"Globex","Energy"\n'
    )
    assert count(sf, "Account") == 0


def test_upload_to_a_closed_job_is_a_conflict(sf: Salesforce, jobs: Jobs) -> None:
    done = jobs.open_ingest("insert", "Account", "Name\nAcme\n")
    assert jobs.patch(f"ingest/{done}", {"state": "UploadComplete"}).status_code == 200
    aborted = jobs.open_ingest("insert", "Account", "Name\nGlobex\n")
    assert jobs.patch(f"ingest/{aborted}", {"state": "Aborted"}).status_code == 200

    late = jobs.put_csv(f"ingest/{done}/batches", "Name\nLate\n")
    later = jobs.put_csv(f"ingest/{aborted}/batches", "Name\nLater\n")

    assert late.status_code == 409
    assert late.json() == invalid_job(f"Job {done} is not open for uploads: JobComplete")
    assert later.status_code == 409
    assert later.json() == invalid_job(f"Job {aborted} is not open for uploads: Aborted")
    assert [record["Name"] for record in sf.query("SELECT Name FROM Account")["records"]] == [
        "Acme"
    ]


@pytest.mark.parametrize(
    "path",
    [
        f"query/{UNKNOWN_JOB}",
        f"query/{UNKNOWN_JOB}/results",
        f"ingest/{UNKNOWN_JOB}",
        f"ingest/{UNKNOWN_JOB}/successfulResults",
        f"ingest/{UNKNOWN_JOB}/failedResults",
        f"ingest/{UNKNOWN_JOB}/unprocessedrecords",
    ],
)
def test_unknown_job_is_not_found(jobs: Jobs, path: str) -> None:
    answer = jobs.get(path)

    assert answer.status_code == 404
    assert answer.json() == not_found(UNKNOWN_JOB)


def test_a_query_job_is_not_an_ingest_job(sf: Salesforce, jobs: Jobs) -> None:
    job_id = jobs.query_job("SELECT Id FROM Account")

    answer = jobs.get(f"ingest/{job_id}")

    assert answer.status_code == 404
    assert answer.json() == not_found(job_id)
