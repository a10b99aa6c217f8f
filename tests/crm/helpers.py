"""Settings for the connector's Salesforce code pointed at a sandbox org, one per login kind."""

from __future__ import annotations

import socket
from typing import Any

import requests

from connector.settings import SalesforceSettings
from sandbox.salesforce.server import Sandbox
from sandbox.salesforce.testing import trusting_session

USERNAME = "admin@sandbox.example.com"
PASSWORD = "sandbox-password"
SECURITY_TOKEN = "SANDBOXTOKEN"
CLIENT_ID = "sandbox-connected-app"
CLIENT_SECRET = "sandbox-client-secret"
ENV_NAMES = {
    "instance_url": "CONNECTOR_SALESFORCE__INSTANCE_URL",
    "session_id": "CONNECTOR_SALESFORCE__SESSION_ID",
    "username": "CONNECTOR_SALESFORCE__USERNAME",
    "password": "CONNECTOR_SALESFORCE__PASSWORD",
    "client_id": "CONNECTOR_SALESFORCE__CLIENT_ID",
    "client_secret": "CONNECTOR_SALESFORCE__CLIENT_SECRET",
    "private_key_file": "CONNECTOR_SALESFORCE__PRIVATE_KEY_FILE",
}


def base_settings(sandbox: Sandbox | None = None, **overrides: Any) -> SalesforceSettings:
    """Settings aimed at ``sandbox`` (trusting its CA) with tiny backoff, plus ``overrides``."""
    values: dict[str, Any] = {
        "backoff_initial_seconds": 0.001,
        "backoff_max_seconds": 0.01,
        "timeout_seconds": 10.0,
    }
    if sandbox is not None:
        values |= {"login_url": sandbox.instance_url, "ca_file": str(sandbox.ca_file)}
    values |= overrides
    return SalesforceSettings(**values)


def session_settings(sandbox: Sandbox, **overrides: Any) -> SalesforceSettings:
    return base_settings(
        sandbox,
        **{
            "auth": "session",
            "instance_url": sandbox.instance_url,
            "session_id": sandbox.session_id,
            **overrides,
        },
    )


def jwt_settings(sandbox: Sandbox, **overrides: Any) -> SalesforceSettings:
    return base_settings(
        sandbox,
        **{
            "auth": "jwt",
            "username": USERNAME,
            "client_id": CLIENT_ID,
            "private_key_file": str(sandbox.jwt_private_key_file),
            **overrides,
        },
    )


def oauth_password_settings(sandbox: Sandbox, **overrides: Any) -> SalesforceSettings:
    return base_settings(
        sandbox,
        **{
            "auth": "password",
            "username": USERNAME,
            "password": PASSWORD,
            "security_token": SECURITY_TOKEN,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            **overrides,
        },
    )


def soap_password_settings(sandbox: Sandbox, **overrides: Any) -> SalesforceSettings:
    return base_settings(
        sandbox,
        **{
            "auth": "password",
            "username": USERNAME,
            "password": PASSWORD,
            "security_token": SECURITY_TOKEN,
            **overrides,
        },
    )


def client_credentials_settings(sandbox: Sandbox, **overrides: Any) -> SalesforceSettings:
    return base_settings(
        sandbox,
        **{
            "auth": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            **overrides,
        },
    )


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def expire_sessions(sandbox: Sandbox) -> int:
    """End every sandbox session through the admin API; the number it ended."""
    response: requests.Response = trusting_session(sandbox).post(
        f"{sandbox.instance_url}/sandbox/sessions/expire",
        headers={"Authorization": f"Bearer {sandbox.session_id}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return int(response.json()["expired"])
