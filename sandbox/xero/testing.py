"""Helpers for tests and scripts that talk to a running fake Xero over HTTPS.

>>> with XeroSandbox() as xero:
...     api = api_session(xero)
...     api.get(f"{xero.api_url}/Organisation").json()["Organisations"][0]["Name"]
'Demo Company'
"""

from __future__ import annotations

import requests

from sandbox.xero.server import XeroSandbox


def trusting_session(xero: XeroSandbox) -> requests.Session:
    """A session that trusts the fake's CA and nothing from the environment."""
    session = requests.Session()
    session.trust_env = False
    session.verify = str(xero.ca_file)
    return session


def client_credentials_token(xero: XeroSandbox, session: requests.Session | None = None) -> str:
    """An access token from the client_credentials grant (over HTTP, as a client gets one)."""
    session = session or trusting_session(xero)
    response = session.post(
        xero.token_url,
        data={"grant_type": "client_credentials"},
        auth=(xero.config.client_id, xero.config.client_secret),
        timeout=10,
    )
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token


def api_session(xero: XeroSandbox) -> requests.Session:
    """A session ready for the API: bearer token, tenant header, ``Accept: application/json``."""
    session = trusting_session(xero)
    session.headers.update(
        {
            "Authorization": f"Bearer {client_credentials_token(xero, session)}",
            "xero-tenant-id": xero.config.tenant_id,
            "Accept": "application/json",
        }
    )
    return session
