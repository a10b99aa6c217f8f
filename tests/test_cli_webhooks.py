"""`connector webhook add|list|remove|deliveries`, and webhooks in `connector status`: what
they print and their exit codes, delivering to a real receiver."""

from __future__ import annotations

import base64
import json
import re

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from connector.cli import app
from connector.db import tables
from connector.db.engine import transaction
from connector.settings import load_settings
from connector.sync.webhooks import deliver
from tests import builders
from tests.webhook_receiver import receiving

runner = CliRunner()


@pytest.fixture
def env(cli_env: dict[str, str]) -> dict[str, str]:
    return cli_env


def test_add_prints_the_secret_once_and_stores_it_sealed(
    factory: sessionmaker[Session], env: dict[str, str]
) -> None:
    result = runner.invoke(
        app,
        ["webhook", "add", "https://hooks.example.com/in", "--events", "invoice.paid,invoice.paid"],
        env=env,
    )

    assert result.exit_code == 0, result.output
    secret = result.stdout.strip()
    assert re.fullmatch(r"whsec_[A-Za-z0-9+/]{43}=", secret)
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert result.stderr == (
        "webhook endpoint 1: https://hooks.example.com/in (invoice.paid). Its signing secret is "
        "shown this once; keep it secret:\n"
    )
    with factory() as session:
        row = session.scalars(select(tables.WebhookEndpoint)).one()
    assert row.events == ["invoice.paid"]
    assert row.secret.startswith("fernet:")
    assert secret.removeprefix("whsec_") not in row.secret
    listed = runner.invoke(app, ["webhook", "list", "--json"], env=env)
    assert listed.exit_code == 0, listed.output
    [shown] = json.loads(listed.stdout)
    assert {key: shown[key] for key in ("id", "url", "events", "enabled", "deliveries")} == {
        "id": 1,
        "url": "https://hooks.example.com/in",
        "events": ["invoice.paid"],
        "enabled": True,
        "deliveries": {},
    }
    assert secret not in listed.stdout
    table = runner.invoke(app, ["webhook", "list"], env=env)
    assert table.exit_code == 0, table.output
    assert "invoice.paid" in table.stdout
    assert secret not in table.stdout


@pytest.mark.parametrize(
    ("url", "events", "message"),
    [
        (
            "http://hooks.example.com/in",
            "*",
            "error: webhook URL: 'http://hooks.example.com/in': give an https:// URL (http:// "
            "only to localhost or 127.0.0.1)",
        ),
        (
            "ftp://127.0.0.1/in",
            "*",
            "error: webhook URL: 'ftp://127.0.0.1/in': give an https:// URL (http:// only to "
            "localhost or 127.0.0.1)",
        ),
        (
            "https://hooks.example.com/in",
            "invoice.paid,invoice.lost",
            "error: --events: unknown event type invoice.lost; known: customer.created, "
            "subscription.created, subscription.updated, subscription.cancelled, "
            "invoice.created, invoice.paid, invoice.voided, invoice.overdue, "
            "credit_note.created, payment.received, record.waiting, record.released",
        ),
        ("https://hooks.example.com/in", " , ", "error: --events: no event types given"),
    ],
)
def test_add_refuses_what_cannot_receive(
    env: dict[str, str], url: str, events: str, message: str
) -> None:
    result = runner.invoke(app, ["webhook", "add", url, "--events", events], env=env)
    assert result.exit_code == 1
    assert " ".join(result.stderr.split()) == message
    assert result.stdout == ""


def test_deliveries_status_and_remove(
    factory: sessionmaker[Session], env: dict[str, str], database_url: str
) -> None:
    with receiving() as receiver:
        added = runner.invoke(
            app, ["webhook", "add", receiver.url, "--events", "customer.created"], env=env
        )
        receiver.secret = added.stdout.strip()
        receiver.answers = [200, 410]
        with transaction(factory) as session:
            builders.customer(session, "C1")
            builders.customer(session, "C2")
        deliver(factory, load_settings(database_url=database_url))

    shown = runner.invoke(app, ["webhook", "deliveries", "--json"], env=env)
    assert shown.exit_code == 0, shown.output
    rows = json.loads(shown.stdout)
    assert [(r["id"], r["type"], r["state"], r["attempts"], r["last_status"]) for r in rows] == [
        (2, "customer.created", "disabled", 1, 410),
        (1, "customer.created", "delivered", 1, 200),
    ]
    assert rows[0]["last_error"] == "HTTP 410 Gone: refused"
    assert [r["webhook_id"] for r in reversed(rows)] == [i.webhook_id for i in receiver.received]
    assert (
        json.loads(
            runner.invoke(
                app, ["webhook", "deliveries", "--endpoint", "2", "--json"], env=env
            ).stdout
        )
        == []
    )
    table = runner.invoke(app, ["webhook", "deliveries"], env=env)
    assert table.exit_code == 0, table.output
    assert "disabled" in table.stdout

    status = runner.invoke(app, ["status", "--json"], env=env)
    assert status.exit_code == 1
    [endpoint] = json.loads(status.stdout)["webhooks"]["endpoints"]
    assert endpoint["deliveries"] == {
        "pending": 0,
        "delivered": 1,
        "failed": 0,
        "disabled": 1,
        "failing": 0,
    }
    assert f"attention: webhook endpoint 1 ({receiver.url}) is disabled: the receiver " in (
        " ".join(status.stderr.split())
    )

    text = runner.invoke(app, ["status"], env=env)
    assert text.exit_code == 1
    assert "Webhook endpoints" in text.stdout

    receiver.received.clear()
    with receiving(receiver):
        receiver.answers = [200]
        with transaction(factory) as session:  # handed out while it is disabled: not its
            builders.customer(session, "C3")
        deliver(factory, load_settings(database_url=database_url))
        assert receiver.received == []
        enabled = runner.invoke(app, ["webhook", "enable", "1"], env=env)
        assert enabled.exit_code == 0, enabled.output
        assert " ".join(enabled.stdout.split()) == (
            f"webhook endpoint 1 ({receiver.url}) is enabled; 1 delivery to send again"
        )
        deliver(factory, load_settings(database_url=database_url))
    [again] = receiver.received
    assert again.webhook_id == rows[0]["webhook_id"]
    assert again.payload["data"]["name"] == "Customer C2"
    listed = json.loads(runner.invoke(app, ["webhook", "deliveries", "--json"], env=env).stdout)
    assert [(r["id"], r["state"], r["attempts"], r["last_status"]) for r in listed] == [
        (2, "delivered", 2, 200),
        (1, "delivered", 1, 200),
    ]
    assert runner.invoke(app, ["status"], env=env).exit_code == 0
    twice = runner.invoke(app, ["webhook", "enable", "1"], env=env)
    assert " ".join(twice.stdout.split()) == (
        f"webhook endpoint 1 ({receiver.url}) is enabled; 0 deliveries to send again"
    )
    assert runner.invoke(app, ["webhook", "enable", "7"], env=env).stderr == (
        "error: no webhook endpoint 7\n"
    )

    removed = runner.invoke(app, ["webhook", "remove", "1"], env=env)
    assert removed.exit_code == 0, removed.output
    assert removed.stdout == f"removed webhook endpoint 1 ({receiver.url})\n"
    with factory() as session:
        assert session.scalars(select(tables.WebhookDelivery)).all() == []
        assert session.scalars(select(tables.WebhookAttempt)).all() == []
    missing = runner.invoke(app, ["webhook", "remove", "1"], env=env)
    assert missing.exit_code == 1
    assert missing.stderr == "error: no webhook endpoint 1\n"
    assert json.loads(runner.invoke(app, ["status", "--json"], env=env).stdout)["webhooks"] is None
