"""`connector send` and `connector email seal-password`: what they print and their exit
codes, against a real SMTP server."""

from __future__ import annotations

import json

import pytest
from cryptography.fernet import Fernet
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from connector.cli import app
from connector.encryption import TokenCipher
from tests.email.smtp_server import smtp_server
from tests.sync.test_sending import BCC, SENDER, issue

runner = CliRunner()


@pytest.fixture
def env(cli_env: dict[str, str]) -> dict[str, str]:
    return cli_env


def mail_env(env: dict[str, str], port: int) -> dict[str, str]:
    return {
        **env,
        "CONNECTOR_EMAIL__ENABLED": "true",
        "CONNECTOR_EMAIL__SMTP_HOST": "127.0.0.1",
        "CONNECTOR_EMAIL__SMTP_PORT": str(port),
        "CONNECTOR_EMAIL__STARTTLS": "false",
        "CONNECTOR_EMAIL__FROM": SENDER,
        "CONNECTOR_EMAIL__BCC": BCC,
    }


def test_send_while_disabled_sends_nothing_and_says_so(
    factory: sessionmaker[Session], env: dict[str, str]
) -> None:
    issue(factory, {"A": ("US", "a@customer.example")})
    result = runner.invoke(app, ["send"], env=env)
    assert result.exit_code == 0, result.output
    assert result.output == "e-mail is disabled (email.enabled): 1 messages not sent\n"


def test_send_exits_1_while_a_message_is_parked_and_status_names_it(
    factory: sessionmaker[Session], env: dict[str, str]
) -> None:
    issue(factory, {"A": ("US", "gone@customer.example"), "B": ("US", "b@customer.example")})
    with smtp_server() as (recorder, port):
        recorder.answers["gone@customer.example"] = "550 5.1.1 mailbox unavailable"
        result = runner.invoke(app, ["send", "--json"], env=mail_env(env, port))
        assert result.exit_code == 1
        assert json.loads(result.stdout)["parked"] == {
            "INV-000001 document": "550 5.1.1 mailbox unavailable"
        }
        assert "error: INV-000001 document: 550 5.1.1 mailbox unavailable" in result.stderr

        status = runner.invoke(app, ["status", "--json"], env=mail_env(env, port))
        assert status.exit_code == 1
        assert json.loads(status.stdout)["email"]["counts"] == {
            "pending": 0,
            "sent": 1,
            "parked": 1,
            "waiting": 0,
            "in_flight": 0,
        }
        assert "attention: e-mail: 1 messages refused by the mail server" in status.stderr

        recorder.answers.clear()
        again = runner.invoke(app, ["send", "--retry-parked"], env=mail_env(env, port))
        assert again.exit_code == 0, again.output
        assert again.stdout.splitlines() == [
            "1 parked messages back in line",
            "1 sent, 0 deferred, 0 parked, 0 waiting for a billing address, 0 without a PDF yet",
        ]
        assert [r.rcpt_tos[0] for r in recorder.received] == [
            "b@customer.example",
            "gone@customer.example",
        ]


def test_send_without_a_server_configured_is_a_configuration_error(
    factory: sessionmaker[Session], env: dict[str, str]
) -> None:
    result = runner.invoke(app, ["send"], env={**env, "CONNECTOR_EMAIL__ENABLED": "true"})
    assert result.exit_code == 2
    assert "email.smtp_host (CONNECTOR_EMAIL__SMTP_HOST) is not set" in result.stderr


def test_seal_password_prints_what_the_secrets_key_opens(env: dict[str, str]) -> None:
    key = Fernet.generate_key().decode()
    result = runner.invoke(
        app,
        ["email", "seal-password"],
        env={**env, "CONNECTOR_SECRETS__KEY": key},
        input="s3cret pass\n",
    )
    assert result.exit_code == 0, result.output
    sealed = result.stdout.strip()
    assert sealed.startswith("fernet:") and "s3cret" not in sealed
    assert TokenCipher([key]).open(sealed) == "s3cret pass"
