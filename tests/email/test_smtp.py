"""The SMTP connection: STARTTLS verified against the configured CA (never unverified), a login
with a password kept sealed in the configuration, and errors that say what went wrong without
ever showing the password."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from cryptography.fernet import Fernet
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connector.db import tables
from connector.encryption import TokenCipher
from connector.errors import EmailError
from connector.settings import Settings
from connector.sync import sending
from tests.email.smtp_server import Recorder, smtp_server
from tests.sync.test_sending import issue, mail_settings

PASSWORD = "s3cret pass"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_server(ca: trustme.CA) -> Iterator[tuple[Recorder, int]]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    with smtp_server(tls=context) as running:
        yield running


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


def tls_settings(database_url: str, port: int, ca_file: Path, **extra: Any) -> Settings:
    """STARTTLS trusting ``ca_file``, a login whose password is given sealed."""
    key = Fernet.generate_key().decode()
    email = {
        "starttls": True,
        "ca_file": str(ca_file),
        "username": "billing",
        "timeout_seconds": 10,
        "password": TokenCipher([key]).seal(PASSWORD),
        **extra,
    }
    return mail_settings(database_url, port, secrets={"key": key}, **email)


def attempts(factory: sessionmaker[Session]) -> list[tuple[str, int]]:
    with factory() as session:
        rows = session.execute(select(tables.EmailMessage.state, tables.EmailMessage.attempts))
        return [(state, count) for state, count in rows]


def test_starttls_with_the_configured_ca_and_a_sealed_password(
    factory: sessionmaker[Session],
    database_url: str,
    tls_server: tuple[Recorder, int],
    ca_file: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    recorder, port = tls_server
    issue(factory, {"A": ("US", "a@customer.example")})
    settings = tls_settings(database_url, port, ca_file)
    assert settings.email.password.get_secret_value().startswith("fernet:")

    with caplog.at_level(logging.DEBUG):
        assert sending.send_messages(factory, settings).sent == 1

    assert recorder.logins == [("billing", PASSWORD)]
    assert [r.rcpt_tos[0] for r in recorder.received] == ["a@customer.example"]
    assert PASSWORD not in caplog.text
    assert PASSWORD not in repr(settings)


def test_a_certificate_of_another_ca_is_refused_and_nothing_is_sent(
    factory: sessionmaker[Session],
    database_url: str,
    tls_server: tuple[Recorder, int],
    tmp_path: Path,
) -> None:
    recorder, port = tls_server
    other = tmp_path / "other.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    issue(factory, {"A": ("US", "a@customer.example")})

    with pytest.raises(
        EmailError, match=r"cannot reach the SMTP server 127\.0\.0\.1:\d+: .*certificate"
    ):
        sending.send_messages(factory, tls_settings(database_url, port, other))

    assert recorder.received == [] and recorder.logins == []
    assert attempts(factory) == [("pending", 0)]


def test_a_refused_login_names_the_user_never_the_password(
    factory: sessionmaker[Session],
    database_url: str,
    tls_server: tuple[Recorder, int],
    ca_file: Path,
) -> None:
    _, port = tls_server
    issue(factory, {"A": ("US", "a@customer.example")})
    settings = tls_settings(database_url, port, ca_file, username="someone")

    with pytest.raises(EmailError) as refused:
        sending.send_messages(factory, settings)

    assert str(refused.value).startswith("the SMTP server refused the login of someone: 535")
    assert PASSWORD not in str(refused.value)
    assert attempts(factory) == [("pending", 0)]


def test_a_server_without_starttls_is_refused_when_starttls_is_set(
    factory: sessionmaker[Session], database_url: str
) -> None:
    issue(factory, {"A": ("US", "a@customer.example")})
    with smtp_server() as (recorder, port):
        with pytest.raises(EmailError, match="does not offer STARTTLS"):
            sending.send_messages(factory, mail_settings(database_url, port, starttls=True))
        assert recorder.received == []
