"""Singer's tap-salesforce, a client we did not write, reads a seeded sandbox.

The tap (``tap-salesforce==2.8.1`` from PyPI) is installed in its own virtual environment,
kept in pytest's cache directory (``.pytest_cache``, never committed) so that only the first
run needs the network. It runs as a subprocess with a config and a catalog, trusting the
sandbox's CA through ``REQUESTS_CA_BUNDLE`` (the tap's requests session, not the connector's).
It logs in only at login.salesforce.com, so ``tap_launcher.py`` sends that one request to the
sandbox's token URL; the rest is the tap's own code.

Each mode syncs five objects, with a query timeout on the way (REST: the tap narrows the date
window; Bulk: it falls back to a PK-chunked Bulk API 1.0 job), and must write every record of
the org, deleted ones included (queryAll), value for value as the org holds it.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from sandbox.salesforce.faults import FaultRule
from sandbox.salesforce.server import Sandbox
from sandbox.salesforce.testing import connect, running_sandbox, trusting_session

pytestmark = pytest.mark.external_client

TAP = "tap-salesforce==2.8.1"
STREAMS = ("Account", "Opportunity", "OpportunityLineItem", "PricebookEntry", "Product2")
LAUNCHER = Path(__file__).with_name("tap_launcher.py")
START_DATE = "2000-01-01T00:00:00Z"
RUN_TIMEOUT = 120
INSTALL_TIMEOUT = 600
NUMBERS = ("double", "currency", "percent")


@pytest.fixture(scope="module")
def tap_python(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tap's interpreter, in a virtual environment installed once (under a file lock: two
    test workers may ask at the same time)."""
    cache = getattr(request.config, "cache", None)
    name = TAP.replace("==", "-")
    home = Path(cache.mkdir(name)) if cache is not None else tmp_path_factory.mktemp(name)
    venv, python = home / "venv", home / "venv" / "bin" / "python"
    with (home / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (home / "installed").exists():
            _run([sys.executable, "-m", "venv", "--clear", str(venv)], INSTALL_TIMEOUT)
            _run([str(python), "-m", "pip", "install", "-q", TAP], INSTALL_TIMEOUT)
            (home / "installed").write_text(TAP + "\n")
    return python


def _run(command: list[str], timeout: float, **options: Any) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, check=False, **options
    )
    assert done.returncode == 0, f"{' '.join(command[:4])} failed:\n{done.stderr[-4000:]}"
    return done


@pytest.fixture(scope="module")
def org() -> Iterator[Sandbox]:
    """The demo org, plus what tests the tap's reading: text in several scripts, with quotes,
    commas and line breaks, empty values, and a deleted record."""
    with running_sandbox(seed="demo:3") as sandbox:
        sandbox.org.create(
            "Account",
            {
                "Name": 'Müller & Söhne, "株式会社 東京"',
                "Description": 'Line one, with "quotes"\nLine two; tabs\tand commas, too',
                "BillingCity": "Zürich",
                "MRR__c": "1234.5",
            },
        )
        gone = sandbox.org.create("Account", {"Name": "Deleted Co"})
        sandbox.org.delete("Account", gone)
        yield sandbox


def _config(org: Sandbox, api_type: str, path: Path) -> Path:
    credentials = org.credentials
    granted = trusting_session(org).post(
        f"{org.instance_url}/services/oauth2/token",
        data={
            "grant_type": "password",
            "client_id": credentials.client_id,
            "client_secret": credentials.client_secret,
            "username": credentials.username,
            "password": credentials.password,
        },
        timeout=30,
    )
    assert granted.status_code == 200, granted.text
    config = {
        "refresh_token": granted.json()["refresh_token"],
        "client_id": credentials.client_id,
        "client_secret": credentials.client_secret,
        "start_date": START_DATE,
        "api_type": api_type,
        "select_fields_by_default": "true",
    }
    path.write_text(json.dumps(config))
    return path


def _tap(python: Path, org: Sandbox, config: Path, *args: str) -> str:
    """Run the tap; its standard output (Singer messages, or the catalog)."""
    environment = {
        **os.environ,
        "REQUESTS_CA_BUNDLE": str(org.ca_file),
        "CURL_CA_BUNDLE": str(org.ca_file),
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
    token_url = f"{org.instance_url}/services/oauth2/token"
    command = [str(python), str(LAUNCHER), token_url, "--config", str(config), *args]
    return _run(command, RUN_TIMEOUT, env=environment).stdout


def _select(catalog: dict[str, Any]) -> dict[str, Any]:
    """The catalog with STREAMS selected, incremental on SystemModstamp."""
    for stream in catalog["streams"]:
        if stream["stream"] in STREAMS:
            top = next(item for item in stream["metadata"] if item["breadcrumb"] == [])
            assert top["metadata"]["valid-replication-keys"] == ["SystemModstamp"]
            top["metadata"].update(
                {
                    "selected": True,
                    "replication-method": "INCREMENTAL",
                    "replication-key": "SystemModstamp",
                }
            )
    return catalog


def _sync(python: Path, org: Sandbox, api_type: str, work: Path) -> dict[str, dict[str, Any]]:
    """Discover, select and sync; the records the tap wrote, by stream and Id."""
    config = _config(org, api_type, work / "config.json")
    catalog = _select(json.loads(_tap(python, org, config, "--discover")))
    (work / "catalog.json").write_text(json.dumps(catalog))
    output = _tap(python, org, config, "--properties", str(work / "catalog.json"))
    records: dict[str, dict[str, Any]] = {name: {} for name in STREAMS}
    for line in output.splitlines():
        message = json.loads(line)
        if message["type"] == "RECORD":
            records[message["stream"]][message["record"]["Id"]] = message["record"]
    return records


def _singer_value(kind: str, value: Any) -> Any:
    """A REST value as the tap writes it: dates and datetimes as ``...T..:..:...ffffffZ``."""
    if value is None:
        return None
    if kind == "datetime":
        return datetime.fromisoformat(value.replace("+0000", "+00:00")).strftime(
            "%Y-%m-%dT%H:%M:%S.%fZ"
        )
    if kind == "date":
        return date.fromisoformat(value).strftime("%Y-%m-%dT00:00:00.000000Z")
    if kind in NUMBERS:
        return float(value)
    return value


def _expected(org: Sandbox) -> dict[str, dict[str, Any]]:
    """Every record of STREAMS, deleted ones too, read through the REST API."""
    sf = connect(org)
    expected: dict[str, dict[str, Any]] = {}
    for name in STREAMS:
        kinds = {field["name"]: field["type"] for field in getattr(sf, name).describe()["fields"]}
        rows = sf.query_all(f"SELECT {', '.join(kinds)} FROM {name}", include_deleted=True)
        expected[name] = {
            row["Id"]: {field: _singer_value(kind, row[field]) for field, kind in kinds.items()}
            for row in rows["records"]
        }
    return expected


def test_rest_mode_reads_every_record(tap_python: Path, org: Sandbox, tmp_path: Path) -> None:
    org.faults.clear()
    org.faults.add(FaultRule(kind="query_timeout", count=1, sobject="Opportunity"))
    records = _sync(tap_python, org, "REST", tmp_path)
    assert org.faults.rules() == []  # the tap met the timeout and narrowed its window
    expected = _expected(org)
    assert {name: len(rows) for name, rows in records.items()} == {
        name: len(rows) for name, rows in expected.items()
    }
    assert records == expected


def test_bulk_mode_reads_every_record(tap_python: Path, org: Sandbox, tmp_path: Path) -> None:
    org.faults.clear()
    org.faults.add(FaultRule(kind="query_timeout", count=1, sobject="Account"))
    first_job = len(org.app.bulk1.jobs)
    records = _sync(tap_python, org, "BULK", tmp_path)
    jobs = list(org.app.bulk1.jobs.values())[first_job:]
    # Account timed out, then came through a PK-chunked job (its first batch NotProcessed);
    # every other object in one closed job of one batch.
    seen = sorted(
        (
            job.object,
            job.operation,
            job.state,
            job.chunking is not None,
            [b.state for b in job.batches],
        )
        for job in jobs
    )
    assert seen == sorted(
        [
            ("Account", "queryAll", "Closed", False, ["Failed"]),
            ("Account", "queryAll", "Closed", True, ["NotProcessed", "Completed"]),
            *[(name, "queryAll", "Closed", False, ["Completed"]) for name in STREAMS[1:]],
        ]
    )
    assert records == _expected(org)
