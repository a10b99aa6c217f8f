"""The Sandbox class (info file, state kept with the data, TLS) and ``connector sandbox serve``."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
)

from sandbox.salesforce.server import INFO_KEYS, Sandbox, SandboxConfig
from sandbox.salesforce.testing import connect, running_sandbox
from sandbox.xero.server import XeroConfig, XeroSandbox
from tests.conftest import owner_only, tree_modes

INVALID_SESSION = [
    {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID", "fields": []}
]
EMPTY = {"totalSize": 0, "done": True, "records": []}
START_TIMEOUT = 30.0


def session_trusting(ca_file: str | Path) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.verify = str(ca_file)
    return session


def client_from_info(info: dict[str, Any]) -> Salesforce:
    return Salesforce(
        instance_url=info["instance_url"],
        session_id=info["session_id"],
        version=info["api_version"],
        session=session_trusting(info["ca_file"]),
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- the Sandbox class ---------------------------------------------------------------------
def test_info(salesforce_sandbox: Sandbox) -> None:
    info = salesforce_sandbox.info()
    assert set(info) == set(INFO_KEYS)
    assert info == {
        "instance_url": f"https://127.0.0.1:{salesforce_sandbox.port}",
        "ca_file": str(salesforce_sandbox.ca_file.resolve()),
        "session_id": salesforce_sandbox.session_id,
        "api_version": "59.0",
        "username": "admin@sandbox.example.com",
        "password": "sandbox-password",
        "client_id": "sandbox-connected-app",
        "client_secret": "sandbox-client-secret",
    }
    assert Path(info["ca_file"]).name == "ca.pem"
    assert Path(info["ca_file"]).is_absolute()
    assert client_from_info(info).query("SELECT Id FROM Account") == EMPTY


def test_write_info(salesforce_sandbox: Sandbox, tmp_path: Path) -> None:
    path = tmp_path / "nested" / "sandbox.json"
    salesforce_sandbox.write_info(path)
    assert mode(path) == 0o600
    info = json.loads(path.read_text())
    assert info == salesforce_sandbox.info()
    assert set(info) == set(INFO_KEYS)
    assert sorted(item.name for item in path.parent.iterdir()) == ["sandbox.json"]
    assert client_from_info(info).query("SELECT Id FROM Account") == EMPTY


def test_write_info_replaces_a_readable_file(salesforce_sandbox: Sandbox, tmp_path: Path) -> None:
    path = tmp_path / "sandbox.json"
    path.write_text("old")
    path.chmod(0o644)
    salesforce_sandbox.write_info(path)
    assert mode(path) == 0o600
    assert json.loads(path.read_text())["session_id"] == salesforce_sandbox.session_id


def test_api_version_in_info() -> None:
    with running_sandbox(api_version="62.0") as sandbox:
        info = sandbox.info()
        assert info["api_version"] == "62.0"
        assert client_from_info(info).query("SELECT Id FROM Account") == EMPTY


def test_data_survives_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "org.db"
    state = tmp_path / "org.db.d"
    with running_sandbox(data=data) as first:
        assert first.ca_file == state / "ca.pem"
        sf = connect(first)
        first_id = sf.Account.create({"Name": "Persisted"})["id"]
        ca_bytes = first.ca_file.read_bytes()
        jwt_key = first.jwt_private_key_file.read_bytes()
        old_session = first.session_id
    assert sorted(item.name for item in state.iterdir()) == [
        "ca-key.pem",
        "ca.pem",
        "jwt-private.pem",
        "jwt-public.pem",
    ]
    assert mode(state / "ca-key.pem") == 0o600
    assert mode(state / "jwt-private.pem") == 0o600

    with running_sandbox(data=data) as second:
        assert second.ca_file == state / "ca.pem"
        assert second.ca_file.read_bytes() == ca_bytes
        assert second.jwt_private_key_file.read_bytes() == jwt_key
        sf = connect(second)
        records = sf.query("SELECT Id, Name FROM Account")["records"]
        assert [(record["Id"], record["Name"]) for record in records] == [(first_id, "Persisted")]
        second_id = sf.Account.create({"Name": "After restart"})["id"]
        assert second_id != first_id
        assert sf.query("SELECT COUNT() FROM Account")["totalSize"] == 2
        # sessions live in memory: the first run's session is refused after the restart
        assert second.session_id != old_session
        stale = Salesforce(
            instance_url=second.instance_url,
            session_id=old_session,
            version="59.0",
            session=session_trusting(second.ca_file),
        )
        with pytest.raises(SalesforceExpiredSession) as expired:
            stale.query("SELECT Id FROM Account")
        assert expired.value.content == INVALID_SESSION


def test_in_memory_org_starts_empty_each_time() -> None:
    for _ in range(2):
        with running_sandbox() as sandbox:
            sf = connect(sandbox)
            assert sf.query("SELECT Id FROM Account") == EMPTY
            sf.Account.create({"Name": "Gone after stop"})


def test_in_memory_state_is_removed_on_stop() -> None:
    sandbox = Sandbox(SandboxConfig()).start()
    state = sandbox.state_dir
    port = sandbox.port
    assert sandbox.ca_file.exists()
    sandbox.stop()
    assert not state.exists()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_certificate_verifies_against_the_sandbox_ca(
    salesforce_sandbox: Sandbox, host: str
) -> None:
    session = requests.Session()
    session.trust_env = False
    response = session.get(
        f"https://{host}:{salesforce_sandbox.port}/services/data/",
        verify=str(salesforce_sandbox.ca_file),
        timeout=10,
    )
    assert response.status_code == 200
    assert {
        "label": "Winter '24",
        "url": "/services/data/v59.0",
        "version": "59.0",
    } in response.json()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_certificate_fails_with_the_default_trust_store(
    salesforce_sandbox: Sandbox, host: str
) -> None:
    session = requests.Session()
    session.trust_env = False
    with pytest.raises(requests.exceptions.SSLError):
        session.get(
            f"https://{host}:{salesforce_sandbox.port}/services/data/", verify=True, timeout=10
        )


def test_plain_http_fails(salesforce_sandbox: Sandbox) -> None:
    session = requests.Session()
    session.trust_env = False
    with pytest.raises(requests.exceptions.ConnectionError):
        session.get(f"http://127.0.0.1:{salesforce_sandbox.port}/services/data/", timeout=10)
    # the server goes on serving TLS clients
    assert connect(salesforce_sandbox).query("SELECT Id FROM Account") == EMPTY


def test_idle_connection_does_not_stall_other_clients(salesforce_sandbox: Sandbox) -> None:
    """A client that connects and sends nothing (no TLS handshake) must not block the others."""
    with socket.create_connection(("127.0.0.1", salesforce_sandbox.port), timeout=10):
        session = session_trusting(salesforce_sandbox.ca_file)
        response = session.get(f"{salesforce_sandbox.instance_url}/services/data/", timeout=5)
        assert response.status_code == 200


# -- connector sandbox serve ---------------------------------------------------------------
def serve_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "connector", "sandbox", "serve", "--port", "0", *args]


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    """Start ``connector sandbox serve`` and wait for its info file; stops what it started."""
    started: list[subprocess.Popen[str]] = []

    def start(*args: str) -> tuple[subprocess.Popen[str], Path, dict[str, Any]]:
        info_file = tmp_path / f"info-{len(started)}.json"
        process = subprocess.Popen(
            serve_command("--data", ":memory:", "--info-file", str(info_file), *args),
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(process)
        deadline = time.monotonic() + START_TIMEOUT
        while not info_file.exists():
            if process.poll() is not None:
                _, stderr = process.communicate()
                pytest.fail(f"sandbox serve exited with {process.returncode}: {stderr}")
            if time.monotonic() > deadline:
                pytest.fail(f"no info file after {START_TIMEOUT} s")
            time.sleep(0.05)
        return process, info_file, json.loads(info_file.read_text())

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)


def test_serve_subprocess(serve: Any) -> None:
    process, info_file, info = serve()
    assert set(info) == set(INFO_KEYS)
    assert mode(info_file) == 0o600
    assert info["instance_url"].startswith("https://127.0.0.1:")
    sf = client_from_info(info)
    assert sf.Account.create({"Name": "From the CLI"})["success"] is True
    assert sf.query("SELECT Name FROM Account")["records"][0]["Name"] == "From the CLI"

    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert not info_file.exists()
    assert f"Salesforce sandbox serving at {info['instance_url']}\n" in stdout
    unwrapped = "".join(stdout.split())  # the console wraps lines wider than its width
    assert f"connectiondetails:{info_file}" in unwrapped
    assert not Path(info["ca_file"]).exists()  # the in-memory org's state went with it


def test_serve_with_a_fault(serve: Any) -> None:
    process, _, info = serve("--fault", "kind=503,count=1")
    sf = client_from_info(info)
    with pytest.raises(SalesforceGeneralError) as failed:
        sf.query("SELECT Id FROM Account")
    assert failed.value.status == 503
    assert failed.value.content[0]["errorCode"] == "SERVER_UNAVAILABLE"
    assert sf.query("SELECT Id FROM Account") == EMPTY
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=30)
    assert process.returncode == 0


def test_serve_a_single_currency_org(serve: Any) -> None:
    process, _, info = serve("--single-currency", "--seed", "demo")
    sf = client_from_info(info)
    described = {field["name"] for field in sf.Opportunity.describe()["fields"]}
    assert "CurrencyIsoCode" not in described
    assert sf.query("SELECT COUNT() FROM Opportunity")["totalSize"] == 200
    with pytest.raises(SalesforceMalformedRequest) as refused:
        sf.Account.create({"Name": "Euro GmbH", "CurrencyIsoCode": "EUR"})
    assert refused.value.content[0]["errorCode"] == "INVALID_FIELD"
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=30)
    assert process.returncode == 0


def test_serve_with_data_file(serve: Any, tmp_path: Path) -> None:
    data = tmp_path / "cli-org.db"
    process, info_file, info = serve("--data", str(data))
    assert info["ca_file"] == str((tmp_path / "cli-org.db.d" / "ca.pem").resolve())
    client_from_info(info).Account.create({"Name": "Kept"})
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=30)
    assert process.returncode == 0
    assert not info_file.exists()
    with running_sandbox(data=data) as sandbox:
        records = connect(sandbox).query("SELECT Name FROM Account")["records"]
        assert [record["Name"] for record in records] == ["Kept"]


def serve_refused(tmp_path: Path, info_file: Path, *options: str) -> Any:
    """Run ``connector sandbox serve`` with options it must refuse; returns the finished run."""
    return subprocess.run(
        serve_command("--data", ":memory:", "--info-file", str(info_file), *options),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("fault", "first_line"),
    [
        (
            "kind=503,count",
            "configuration error: --fault kind=503,count: expected key=value pairs, got 'count'",
        ),
        (
            "kind=nope,count=1",
            "configuration error: --fault kind=nope,count=1: 1 validation error for FaultRule",
        ),
        ("kind=503", "configuration error: --fault kind=503: 1 validation error for FaultRule"),
    ],
)
def test_serve_refuses_a_bad_fault(tmp_path: Path, fault: str, first_line: str) -> None:
    info_file = tmp_path / "info.json"
    result = serve_refused(tmp_path, info_file, "--fault", fault)
    assert result.returncode == 2
    assert result.stderr.splitlines()[0] == first_line
    assert "Traceback" not in result.stderr
    assert not info_file.exists()
    assert os.listdir(tmp_path) == []


def test_serve_with_demo_seed(serve: Any) -> None:
    process, _, info = serve("--seed", "demo")
    sf = client_from_info(info)
    counts = {
        name: sf.query(f"SELECT COUNT() FROM {name}")["totalSize"]
        for name in ("Account", "Opportunity", "Product2", "PricebookEntry")
    }
    assert counts == {"Account": 50, "Opportunity": 200, "Product2": 8, "PricebookEntry": 32}
    assert 50 <= sf.query("SELECT COUNT() FROM Contact")["totalSize"] <= 100
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=30)
    assert process.returncode == 0


def test_serve_refuses_an_unknown_seed(tmp_path: Path) -> None:
    info_file = tmp_path / "info.json"
    result = serve_refused(tmp_path, info_file, "--seed", "bogus")
    assert result.returncode == 2
    assert result.stderr.startswith("configuration error: unknown seed 'bogus'")
    assert not info_file.exists()


# -- files, owner-only -------------------------------------------------------------------------
@pytest.mark.usefixtures("open_umask")
def test_every_file_and_folder_the_sandboxes_create_is_owner_only(tmp_path: Path) -> None:
    data = tmp_path / "var" / "org" / "sandbox.db"
    with running_sandbox(data=data) as sandbox:
        sf = connect(sandbox)
        sf.Account.create({"Name": "Written"})  # the org's WAL files exist
        with XeroSandbox(XeroConfig(state_dir=sandbox.state_dir)):
            pass
        sandbox.write_info(tmp_path / "run" / "sandbox.json")
        modes = tree_modes(tmp_path / "var") | tree_modes(tmp_path / "run")
    assert set(modes) >= {
        "var",
        "var/org",
        "var/org/sandbox.db",
        "var/org/sandbox.db-wal",
        "var/org/sandbox.db.d",
        "var/org/sandbox.db.d/ca.pem",
        "var/org/sandbox.db.d/ca-key.pem",
        "var/org/sandbox.db.d/jwt-private.pem",
        "var/org/sandbox.db.d/jwt-public.pem",
        "run",
        "run/sandbox.json",
    }
    assert modes == owner_only(modes, tmp_path)


@pytest.mark.usefixtures("open_umask")
def test_the_fake_xero_state_folder_is_owner_only(tmp_path: Path) -> None:
    with XeroSandbox(XeroConfig(state_dir=tmp_path / "xero" / "state")) as xero:
        assert xero.ca_file.exists()
        modes = tree_modes(tmp_path / "xero")
    assert modes == {
        "xero": 0o700,
        "xero/state": 0o700,
        "xero/state/ca-key.pem": 0o600,
        "xero/state/ca.pem": 0o600,
    }
