"""Signing in to Xero: client credentials, the authorization code with rotated refresh
tokens stored at once, and a refused refresh token shown as "reconnect Xero"."""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
import truststore
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from connector.accounting.xero.target import xero_auth
from connector.cli import app
from connector.db import tables
from connector.db.engine import make_engine, session_factory, transaction
from connector.db.migrate import upgrade
from connector.encryption import PREFIX, TokenCipher
from connector.errors import AccountingAuthError, AccountingError, ConfigError
from connector.settings import Settings, load_settings
from connector.sync.status import connections
from connector.tls import TrustAdapter
from sandbox.xero.server import XeroSandbox
from tests.conftest import tree_modes, xero_overrides

REDIRECT = "http://localhost:8765/xero/callback"


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    return tmp_path / "keys" / "xero.key"


@pytest.fixture
def code_settings(database_url: str, xero_sandbox: XeroSandbox, key_file: Path) -> Settings:
    return load_settings(
        None,
        database_url=database_url,
        accounting={"target": "xero"},
        xero=xero_overrides(xero_sandbox, grant="authorization_code", redirect_uri=REDIRECT),
        secrets={"key_file": str(key_file)},
    )


def cipher(settings: Settings) -> TokenCipher:
    return TokenCipher.from_settings(settings.secrets, settings.database_url.get_secret_value())


def plain(settings: Settings, row: tables.AccountingConnection) -> tuple[str, str]:
    """The stored refresh and access tokens, decrypted."""
    assert row.refresh_token and row.access_token
    return cipher(settings).open(row.refresh_token), cipher(settings).open(row.access_token)


def store_plain_text(factory: sessionmaker[Session], refresh: str, access: str) -> None:
    """The tokens as an earlier version stored them."""
    with transaction(factory) as session:
        row = session.get_one(tables.AccountingConnection, "xero")
        row.refresh_token, row.access_token = refresh, access


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
    first_refresh, _ = plain(code_settings, first)

    expire_access_token(factory)
    fresh = xero_auth(code_settings, factory)  # another process: reads the database
    token = fresh.access_token()
    second = stored(factory)
    second_refresh, second_access = plain(code_settings, second)
    assert second_refresh != first_refresh
    assert second_access == token

    old = requests.post(  # the spent refresh token is dead
        xero_sandbox.token_url,
        data={"grant_type": "refresh_token", "refresh_token": first_refresh},
        auth=(xero_sandbox.config.client_id, xero_sandbox.config.client_secret),
        verify=str(xero_sandbox.ca_file),
        timeout=10,
    )
    assert (old.status_code, old.json()["error"]) == (400, "invalid_grant")
    for secret in (first_refresh, second_refresh, token):
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
    refresh_token, access_token = plain(
        load_settings(None, database_url=database_url), stored(factory)
    )
    assert refresh_token not in done.output
    assert access_token not in done.output


# -- tokens at rest ----------------------------------------------------------------------------
@pytest.mark.usefixtures("open_umask")
def test_tokens_are_stored_encrypted_with_a_key_file_made_owner_only(
    code_settings: Settings,
    factory: sessionmaker[Session],
    engine: Engine,
    xero_sandbox: XeroSandbox,
    key_file: Path,
) -> None:
    assert not key_file.exists()
    auth = xero_auth(code_settings, factory)
    auth.connect(xero_sandbox.issue_authorization_code(REDIRECT))
    access_token = auth.access_token()
    with engine.connect() as connection:
        refresh_stored, access_stored = connection.execute(
            text("SELECT refresh_token, access_token FROM accounting_connections")
        ).one()
    assert refresh_stored.startswith(PREFIX)
    assert access_stored.startswith(PREFIX)
    refresh_token = cipher(code_settings).open(refresh_stored)
    assert cipher(code_settings).open(access_stored) == access_token
    assert refresh_token not in refresh_stored
    assert access_token not in access_stored
    assert tree_modes(key_file.parent) == {"keys": 0o700, "keys/xero.key": 0o600}


def test_the_key_file_goes_beside_a_sqlite_database_by_default(
    tmp_path: Path, xero_sandbox: XeroSandbox
) -> None:
    database = tmp_path / "data" / "connector.db"
    engine = make_engine(f"sqlite:///{database}")
    upgrade(engine)
    settings = load_settings(
        None,
        database_url=f"sqlite:///{database}",
        xero=xero_overrides(xero_sandbox, grant="authorization_code", redirect_uri=REDIRECT),
    )
    factory = session_factory(engine)
    xero_auth(settings, factory).connect(xero_sandbox.issue_authorization_code(REDIRECT))
    key = (tmp_path / "data" / "connector.db.key").read_text().strip()
    row = stored(factory)
    engine.dispose()
    assert row.refresh_token
    assert TokenCipher([key]).open(row.refresh_token)


@pytest.mark.parametrize("access", ["fresh", "expired"])
def test_plain_text_tokens_of_an_earlier_version_are_encrypted_when_first_used(
    code_settings: Settings,
    factory: sessionmaker[Session],
    xero_sandbox: XeroSandbox,
    key_file: Path,
    access: str,
) -> None:
    auth = xero_auth(code_settings, factory)
    auth.connect(xero_sandbox.issue_authorization_code(REDIRECT))
    refresh_token, access_token = plain(code_settings, stored(factory))
    store_plain_text(factory, refresh_token, access_token)
    key_file.unlink()  # an earlier version had none
    if access == "expired":
        expire_access_token(factory)

    token = xero_auth(code_settings, factory).access_token()
    row = stored(factory)
    assert row.refresh_token and row.refresh_token.startswith(PREFIX)
    assert row.access_token and row.access_token.startswith(PREFIX)
    new_refresh, new_access = plain(code_settings, row)
    assert new_access == token
    if access == "fresh":  # used as stored, encrypted as it was
        assert (new_refresh, token) == (refresh_token, access_token)
    else:  # the plain refresh token bought new tokens, stored encrypted
        assert new_refresh != refresh_token
        assert token != access_token
    assert row.state == "connected"


def test_a_refresh_token_is_not_spent_when_the_new_one_could_not_be_stored(
    code_settings: Settings,
    factory: sessionmaker[Session],
    xero_sandbox: XeroSandbox,
    tmp_path: Path,
) -> None:
    auth = xero_auth(code_settings, factory)
    auth.connect(xero_sandbox.issue_authorization_code(REDIRECT))
    refresh_token, access_token = plain(code_settings, stored(factory))
    store_plain_text(factory, refresh_token, access_token)
    expire_access_token(factory)
    unreadable = tmp_path / "a-folder.key"
    unreadable.mkdir()
    broken = code_settings.model_copy(
        update={"secrets": code_settings.secrets.model_copy(update={"key_file": str(unreadable)})}
    )
    with pytest.raises(ConfigError) as caught:
        xero_auth(broken, factory).access_token()
    assert str(caught.value) == f"secrets.key_file: cannot read {unreadable}: Is a directory"
    assert stored(factory).refresh_token == refresh_token  # not sent to Xero, still good
    assert xero_auth(code_settings, factory).access_token()
    assert stored(factory).state == "connected"


def test_a_lost_key_asks_for_a_reconnect_and_the_key_found_again_restores_the_connection(
    code_settings: Settings,
    factory: sessionmaker[Session],
    xero_sandbox: XeroSandbox,
    key_file: Path,
    tmp_path: Path,
) -> None:
    auth = xero_auth(code_settings, factory)
    auth.connect(xero_sandbox.issue_authorization_code(REDIRECT))
    kept = key_file.rename(tmp_path / "backup.key")

    message = (
        f"Xero's stored tokens cannot be decrypted: the key file {key_file} (secrets.key_file) "
        "is missing; reconnect Xero with `connector xero connect`"
    )
    with pytest.raises(AccountingAuthError) as lost:
        xero_auth(code_settings, factory).access_token()
    assert str(lost.value) == message
    with factory() as session:
        state = connections(session)["xero"]
    assert (state["state"], state["error"]) == ("reconnect", message)
    assert not key_file.exists()  # reading never makes a key in its place

    kept.rename(key_file)  # the right key is back
    assert xero_auth(code_settings, factory).access_token()
    with factory() as session:
        state = connections(session)["xero"]
    assert (state["state"], state["error"]) == ("connected", None)


def test_a_replaced_key_asks_for_a_reconnect_which_encrypts_with_the_new_key(
    code_settings: Settings,
    factory: sessionmaker[Session],
    xero_sandbox: XeroSandbox,
    key_file: Path,
) -> None:
    auth = xero_auth(code_settings, factory)
    auth.connect(xero_sandbox.issue_authorization_code(REDIRECT))
    new_key = Fernet.generate_key().decode()
    key_file.write_text(new_key + "\n")

    message = (
        f"Xero's stored tokens cannot be decrypted: no key in the key file {key_file} "
        "(secrets.key_file) decrypts them (was the key lost or replaced?); reconnect Xero with "
        "`connector xero connect`"
    )
    for _ in range(2):  # a reconnect status, every time, no crash
        with pytest.raises(AccountingAuthError) as lost:
            xero_auth(code_settings, factory).access_token()
        assert str(lost.value) == message
    with factory() as session:
        assert connections(session)["xero"]["state"] == "reconnect"

    xero_auth(code_settings, factory).connect(xero_sandbox.issue_authorization_code(REDIRECT))
    row = stored(factory)
    assert row.state == "connected"
    assert row.refresh_token
    assert TokenCipher([new_key]).open(row.refresh_token)
    assert xero_auth(code_settings, factory).access_token()


def test_a_rotated_key_reads_the_old_keys_tokens_and_encrypts_them_anew(
    code_settings: Settings, factory: sessionmaker[Session], xero_sandbox: XeroSandbox
) -> None:
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()

    def with_keys(key: str, old_keys: str = "") -> Settings:
        secrets = code_settings.secrets.model_copy(
            update={"key": SecretStr(key), "old_keys": SecretStr(old_keys)}
        )
        return code_settings.model_copy(update={"secrets": secrets})

    xero_auth(with_keys(old_key), factory).connect(xero_sandbox.issue_authorization_code(REDIRECT))
    before = stored(factory)
    assert before.access_token
    token = TokenCipher([old_key]).open(before.access_token)

    assert xero_auth(with_keys(new_key, old_key), factory).access_token() == token
    after = stored(factory)
    assert after.refresh_token and after.access_token
    only_new = TokenCipher([new_key])
    assert only_new.open(after.access_token) == token
    assert before.refresh_token
    assert only_new.open(after.refresh_token) == TokenCipher([old_key]).open(before.refresh_token)
    assert xero_auth(with_keys(new_key), factory).access_token() == token


# -- TLS trust ---------------------------------------------------------------------------------
@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"])
def test_xero_is_trusted_through_the_ca_file_or_the_system_store_never_the_environment(
    xero_settings: Settings,
    factory: sessionmaker[Session],
    xero_sandbox: XeroSandbox,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
) -> None:
    monkeypatch.setenv(variable, str(xero_sandbox.ca_file))
    system = xero_settings.model_copy(
        update={"xero": xero_settings.xero.model_copy(update={"ca_file": ""})}
    )
    auth = xero_auth(system, factory)
    adapter = auth.http.get_adapter(xero_sandbox.token_url)
    assert isinstance(adapter, TrustAdapter)
    assert type(adapter.context) is truststore.SSLContext
    with pytest.raises(AccountingError) as caught:
        auth.access_token()
    assert str(caught.value).startswith("Xero's token endpoint could not be reached: ")
    assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value)

    assert xero_auth(xero_settings, factory).access_token()  # xero.ca_file: the sandbox's CA
