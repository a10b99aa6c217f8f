"""Signing in to Xero: client credentials, the authorization code with rotated refresh
tokens stored at once, and a refused refresh token shown as "reconnect Xero"."""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from connector.accounting.xero.target import xero_auth
from connector.cli import app
from connector.db import tables
from connector.db.engine import transaction
from connector.errors import AccountingAuthError
from connector.sandbox.xero.server import XeroSandbox
from connector.settings import Settings, load_settings
from connector.sync.status import connections
from tests.conftest import xero_overrides

REDIRECT = "http://localhost:8765/xero/callback"


@pytest.fixture
def code_settings(database_url: str, xero_sandbox: XeroSandbox) -> Settings:
    return load_settings(
        None,
        database_url=database_url,
        accounting={"target": "xero"},
        xero=xero_overrides(xero_sandbox, grant="authorization_code", redirect_uri=REDIRECT),
    )


def stored(factory: sessionmaker[Session]) -> tables.AccountingConnection:
    with factory() as session:
        row = session.get(tables.AccountingConnection, "xero")
        assert row is not None
        session.expunge(row)
        return row


def expire_access_token(factory: sessionmaker[Session]) -> None:
    with transaction(factory) as session:
        row = session.get_one(tables.AccountingConnection, "xero")
        row.access_expires_at = datetime.now(UTC) - timedelta(minutes=1)


def test_client_credentials_need_nothing_stored(
    xero_settings: Settings, factory: sessionmaker[Session], xero_sandbox: XeroSandbox
) -> None:
    auth = xero_auth(xero_settings, factory)
    token = auth.access_token()
    assert auth.access_token() == token  # reused while fresh
    assert [t["tenantId"] for t in auth.tenants()] == [xero_sandbox.config.tenant_id]
    with factory() as session:
        assert session.get(tables.AccountingConnection, "xero") is None


def test_each_refresh_stores_the_rotated_refresh_token_at_once(
    code_settings: Settings,
    factory: sessionmaker[Session],
    xero_sandbox: XeroSandbox,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    auth = xero_auth(code_settings, factory)
    auth.connect(xero_sandbox.issue_authorization_code(REDIRECT))
    first = stored(factory)
    assert (first.state, first.error) == ("connected", None)
    assert first.refresh_token

    expire_access_token(factory)
    fresh = xero_auth(code_settings, factory)  # another process: reads the database
    token = fresh.access_token()
    second = stored(factory)
    assert second.refresh_token not in (None, first.refresh_token)
    assert second.access_token == token

    old = requests.post(  # the spent refresh token is dead
        xero_sandbox.token_url,
        data={"grant_type": "refresh_token", "refresh_token": first.refresh_token},
        auth=(xero_sandbox.config.client_id, xero_sandbox.config.client_secret),
        verify=str(xero_sandbox.ca_file),
        timeout=10,
    )
    assert (old.status_code, old.json()["error"]) == (400, "invalid_grant")
    for secret in (first.refresh_token, second.refresh_token, token):
        assert secret not in caplog.text


def test_a_refused_refresh_token_asks_for_a_reconnect(
    code_settings: Settings, factory: sessionmaker[Session], xero_sandbox: XeroSandbox
) -> None:
    auth = xero_auth(code_settings, factory)
    auth.connect(xero_sandbox.issue_authorization_code(REDIRECT))
    with transaction(factory) as session:
        row = session.get_one(tables.AccountingConnection, "xero")
        row.refresh_token = "revoked-in-xero"
    expire_access_token(factory)

    message = (
        "Xero refused the stored refresh token (invalid_grant): reconnect Xero with "
        "`connector xero connect`"
    )
    with pytest.raises(AccountingAuthError) as refused:
        xero_auth(code_settings, factory).access_token()
    assert str(refused.value) == message
    with factory() as session:
        state = connections(session)["xero"]
    assert (state["state"], state["error"]) == ("reconnect", message)
    with pytest.raises(AccountingAuthError, match="reconnect Xero"):  # no call spent again
        xero_auth(code_settings, factory).access_token()

    auth.connect(xero_sandbox.issue_authorization_code(REDIRECT))  # someone reconnects
    assert stored(factory).state == "connected"
    assert xero_auth(code_settings, factory).access_token()


def test_connect_prints_the_consent_url_then_stores_the_tokens_from_the_redirect(
    factory: sessionmaker[Session],
    xero_sandbox: XeroSandbox,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    for name in list(os.environ):
        if name.startswith("CONNECTOR_") and name != "CONNECTOR_TEST_POSTGRES_URL":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    env = {"CONNECTOR_DATABASE_URL": database_url, "CONNECTOR_XERO__GRANT": "authorization_code"}
    env |= {
        f"CONNECTOR_XERO__{key.upper()}": str(value)
        for key, value in xero_overrides(xero_sandbox, redirect_uri=REDIRECT).items()
    }
    runner = CliRunner()
    asked = runner.invoke(app, ["xero", "connect"], env=env)
    assert asked.exit_code == 0, asked.output
    consent = asked.output.split("\n", 1)[1].replace("\n", "").strip()
    assert consent.startswith(xero_sandbox.authorize_url + "?response_type=code&client_id=")
    assert "offline_access" in consent

    answer = requests.get(
        consent, verify=str(xero_sandbox.ca_file), allow_redirects=False, timeout=10
    )
    redirected = answer.headers["Location"]
    assert redirected.startswith(REDIRECT + "?code=")
    done = runner.invoke(app, ["xero", "connect", "--url", redirected], env=env)
    assert done.exit_code == 0, done.output
    assert "Xero connected" in done.output
    assert xero_sandbox.config.tenant_id in done.output
    assert stored(factory).state == "connected"
    assert stored(factory).refresh_token not in done.output
