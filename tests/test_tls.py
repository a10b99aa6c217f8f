"""TLS trust of the connector's sessions: the CA file, else the system's trust store
(truststore); never a CA bundle named by the environment, and never no verification."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import requests
import trustme
import truststore

from connector.errors import ConfigError
from connector.tls import TrustAdapter, https_session, trust_context
from sandbox.salesforce.server import Sandbox

BUNDLE_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


@pytest.fixture
def url(salesforce_sandbox: Sandbox) -> str:
    return f"{salesforce_sandbox.instance_url}/services/data"


@pytest.fixture
def sandbox_ca_in_the_environment(
    salesforce_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in BUNDLE_VARIABLES:
        monkeypatch.setenv(name, str(salesforce_sandbox.ca_file))


def pools(session: requests.Session, url: str) -> list[tuple[object, object]]:
    """(ssl_context, ca_certs) of every connection pool the session's adapter opened."""
    adapter = session.get_adapter(url)
    assert isinstance(adapter, TrustAdapter)
    keys = adapter.poolmanager.pools.keys()  # the container cannot be iterated itself
    return [(key.key_ssl_context, key.key_ca_certs) for key in keys]


def test_without_a_ca_file_the_context_is_the_system_trust_store() -> None:
    context = trust_context("", "xero.ca_file")
    assert type(context) is truststore.SSLContext
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname is True
    assert context.minimum_version is ssl.TLSVersion.TLSv1_2


@pytest.mark.usefixtures("sandbox_ca_in_the_environment")
def test_a_ca_bundle_in_the_environment_is_not_trusted(url: str) -> None:
    assert requests.Session().get(url, timeout=10).ok  # what requests alone would do
    session = https_session("", "salesforce.ca_file")
    with pytest.raises(requests.exceptions.SSLError, match="CERTIFICATE_VERIFY_FAILED"):
        session.get(url, timeout=10)
    adapter = session.get_adapter(url)
    assert isinstance(adapter, TrustAdapter)
    assert pools(session, url) == [(adapter.context, None)]  # truststore's, nothing added


@pytest.mark.usefixtures("sandbox_ca_in_the_environment")
def test_the_ca_file_is_trusted_and_nothing_else(
    url: str, salesforce_sandbox: Sandbox, tmp_path: Path
) -> None:
    trusting = https_session(str(salesforce_sandbox.ca_file), "salesforce.ca_file")
    assert trusting.get(url, timeout=10).ok
    other = tmp_path / "other.pem"
    other.write_bytes(trustme.CA().cert_pem.bytes())
    session = https_session(str(other), "salesforce.ca_file")
    with pytest.raises(requests.exceptions.SSLError, match="CERTIFICATE_VERIFY_FAILED"):
        session.get(url, timeout=10)


def test_a_request_cannot_turn_verification_off_or_bring_its_own_bundle(
    url: str, salesforce_sandbox: Sandbox
) -> None:
    session = https_session("", "salesforce.ca_file")
    for verify in (False, str(salesforce_sandbox.ca_file)):
        with pytest.raises(requests.exceptions.SSLError, match="CERTIFICATE_VERIFY_FAILED"):
            session.get(url, timeout=10, verify=verify)


def test_the_adapter_gives_requests_its_timeout(url: str, salesforce_sandbox: Sandbox) -> None:
    session = https_session(str(salesforce_sandbox.ca_file), "salesforce.ca_file", 7.5)
    response = session.get(url)
    assert response.ok
    adapter = session.get_adapter(url)
    assert isinstance(adapter, TrustAdapter)
    assert adapter.timeout == 7.5


def test_a_missing_or_broken_ca_file_is_a_configuration_error(tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    with pytest.raises(ConfigError) as caught:
        trust_context(str(missing), "salesforce.ca_file")
    assert str(caught.value) == f"salesforce.ca_file: the CA file {missing} does not exist"
    broken = tmp_path / "broken.pem"
    broken.write_text("not a certificate\n")
    with pytest.raises(ConfigError) as caught:
        trust_context(str(broken), "xero.ca_file")
    assert str(caught.value).startswith(
        f"xero.ca_file: {broken} is not a PEM bundle of CA certificates ("
    )
