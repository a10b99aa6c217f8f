"""``connector sandbox serve --xero``: both fakes in one process, one CA, one info file."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
from typer.testing import CliRunner

from connector.cli import app
from sandbox.salesforce.server import INFO_KEYS
from sandbox.xero.server import INFO_KEYS as XERO_INFO_KEYS

START_TIMEOUT = 30.0


def test_serve_with_xero(tmp_path: Path) -> None:
    info_file = tmp_path / "info.json"
    command = [sys.executable, "-m", "connector", "sandbox", "serve", "--port", "0"]
    process = subprocess.Popen(
        [*command, "--data", ":memory:", "--info-file", str(info_file), "--xero"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not info_file.exists():
            if process.poll() is not None:
                _, stderr = process.communicate()
                raise AssertionError(f"sandbox serve exited with {process.returncode}: {stderr}")
            assert time.monotonic() < deadline, f"no info file after {START_TIMEOUT} s"
            time.sleep(0.05)
        info = json.loads(info_file.read_text())
        assert set(info) == set(INFO_KEYS) | set(XERO_INFO_KEYS)
        assert info["xero_ca_file"] == info["ca_file"]
        assert info["xero_url"] != info["instance_url"]
        assert info["xero_api_url"] == info["xero_url"] + "/api.xro/2.0"
        assert info["xero_token_url"] == info["xero_url"] + "/connect/token"
        session = requests.Session()
        session.trust_env = False
        session.verify = info["xero_ca_file"]
        granted = session.post(
            info["xero_token_url"],
            data={"grant_type": "client_credentials"},
            auth=(info["xero_client_id"], info["xero_client_secret"]),
            timeout=10,
        )
        assert granted.status_code == 200
        organisation = session.get(
            f"{info['xero_api_url']}/Organisation",
            headers={
                "Authorization": f"Bearer {granted.json()['access_token']}",
                "xero-tenant-id": info["xero_tenant_id"],
                "Accept": "application/json",
            },
            timeout=10,
        )
        assert organisation.json()["Organisations"][0]["OrganisationID"] == info["xero_tenant_id"]
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=30)
        assert process.returncode == 0, stderr
        assert f"Xero sandbox serving at {info['xero_url']}\n" in stdout
        assert not info_file.exists()
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)


@contextmanager
def serving(tmp_path: Path, *options: str) -> Iterator[dict[str, Any]]:
    """``connector sandbox serve --xero`` with ``options``; the info file's contents."""
    info_file = tmp_path / "info.json"
    command = [sys.executable, "-m", "connector", "sandbox", "serve", "--port", "0"]
    process = subprocess.Popen(
        [*command, "--data", ":memory:", "--info-file", str(info_file), "--xero", *options],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not info_file.exists():
            if process.poll() is not None:
                _, stderr = process.communicate()
                raise AssertionError(f"sandbox serve exited with {process.returncode}: {stderr}")
            assert time.monotonic() < deadline, f"no info file after {START_TIMEOUT} s"
            time.sleep(0.05)
        yield json.loads(info_file.read_text())
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
        assert process.returncode == 0, stderr
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)


def test_serve_with_xero_faults_at_start_and_at_run_time(tmp_path: Path) -> None:
    options = ["--xero-fault", "kind=503,count=1,path=Organisation"]
    options += ["--xero-fault", "kind=429,count=1,retry_after=7,method=PUT"]
    with serving(tmp_path, *options) as info:
        session = requests.Session()
        session.trust_env = False
        session.verify = info["xero_ca_file"]
        token = session.post(
            info["xero_token_url"],
            data={"grant_type": "client_credentials"},
            auth=(info["xero_client_id"], info["xero_client_secret"]),
            timeout=10,
        ).json()["access_token"]
        session.headers.update(
            {
                "Authorization": f"Bearer {token}",
                "xero-tenant-id": info["xero_tenant_id"],
                "Accept": "application/json",
            }
        )
        organisation = f"{info['xero_api_url']}/Organisation"
        contacts = f"{info['xero_api_url']}/Contacts"
        faults = f"{info['xero_url']}/sandbox/faults"

        assert session.get(organisation, timeout=10).status_code == 503
        assert session.get(organisation, timeout=10).status_code == 200
        limited = session.put(contacts, json={"Contacts": [{"Name": "Acme"}]}, timeout=10)
        assert (limited.status_code, limited.headers["Retry-After"]) == (429, "7")
        assert session.get(faults, timeout=10).json() == {"faults": []}

        added = session.post(faults, json={"kind": "500", "count": 1}, timeout=10)
        assert added.status_code == 201
        assert session.get(organisation, timeout=10).status_code == 500
        assert session.get(organisation, timeout=10).status_code == 200


def test_xero_faults_need_the_fake_xero() -> None:
    done = CliRunner().invoke(
        app,
        [
            "sandbox",
            "serve",
            "--data",
            ":memory:",
            "--port",
            "0",
            "--xero-fault",
            "kind=503,count=1",
        ],
    )

    assert done.exit_code == 2
    assert done.output == (
        "configuration error: --xero-fault needs --xero (the fake Xero it injects faults into)\n"
    )


def test_an_invalid_xero_fault_is_a_configuration_error() -> None:
    done = CliRunner().invoke(
        app,
        [
            "sandbox",
            "serve",
            "--data",
            ":memory:",
            "--port",
            "0",
            "--xero",
            "--xero-fault",
            "kind=503",
        ],
    )

    assert done.exit_code == 2
    assert done.output.startswith(
        "configuration error: --xero-fault kind=503: 1 validation error for XeroFaultRule\n"
    )
