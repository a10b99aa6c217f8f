"""`connector apikey create|list|revoke`: a key printed once and kept only as its hash, lists
that never show it, and a revoked key refused by the API at once."""

from __future__ import annotations

import hashlib
import json
import re

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from connector.cli import app
from connector.db import tables
from connector.db.engine import transaction

runner = CliRunner()
KEY = re.compile(r"ck_[A-Za-z0-9_-]{43}")


def test_create_prints_the_key_once_and_keeps_only_its_hash(
    cli_env: dict[str, str], factory: sessionmaker[Session]
) -> None:
    result = runner.invoke(app, ["apikey", "create", "--name", "billing app"], env=cli_env)
    assert result.exit_code == 0, result.output
    key = result.stdout.strip()
    assert KEY.fullmatch(key)
    assert result.stderr == "API key 'billing app' (read). It is shown this once; keep it secret:\n"
    with transaction(factory) as session:
        row = session.scalars(select(tables.ApiKey)).one()
        assert (row.name, row.scope, row.prefix) == ("billing app", "read", key[:10])
        assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()

    listed = runner.invoke(app, ["apikey", "list", "--json"], env=cli_env)
    assert listed.exit_code == 0, listed.output
    [entry] = json.loads(listed.stdout)
    assert {k: entry[k] for k in ("name", "scope", "prefix", "last_used_at", "revoked_at")} == {
        "name": "billing app",
        "scope": "read",
        "prefix": key[:10],
        "last_used_at": None,
        "revoked_at": None,
    }
    table = runner.invoke(app, ["apikey", "list"], env=cli_env)
    assert f"{key[:10]}…" in table.stdout
    assert key not in listed.stdout + table.stdout


def test_create_refuses_a_second_key_of_a_name_and_an_unknown_scope(
    cli_env: dict[str, str],
) -> None:
    assert runner.invoke(app, ["apikey", "create", "--name", "ops"], env=cli_env).exit_code == 0
    again = runner.invoke(app, ["apikey", "create", "--name", "ops"], env=cli_env)
    assert (again.exit_code, again.stdout) == (1, "")
    assert again.stderr == "error: ops: a key of this name exists (revoked keys keep theirs)\n"
    scope = runner.invoke(app, ["apikey", "create", "--name", "x", "--scope", "admin"], env=cli_env)
    assert (scope.exit_code, scope.stdout) == (1, "")
    assert scope.stderr == "error: x: scope must be read or write, not 'admin'\n"


def test_revoke_ends_a_key_and_names_an_unknown_one(
    cli_env: dict[str, str], factory: sessionmaker[Session]
) -> None:
    runner.invoke(app, ["apikey", "create", "--name", "ci", "--scope", "write"], env=cli_env)
    revoked = runner.invoke(app, ["apikey", "revoke", "ci"], env=cli_env)
    assert revoked.exit_code == 0, revoked.output
    with transaction(factory) as session:
        row = session.scalars(select(tables.ApiKey)).one()
        assert revoked.stdout == f"revoked 'ci' ({row.prefix}…)\n"
        assert row.revoked_at is not None
    missing = runner.invoke(app, ["apikey", "revoke", "nobody"], env=cli_env)
    assert missing.exit_code == 1
    assert missing.stderr == "error: no API key is named 'nobody' (see `connector apikey list`)\n"
    listed = json.loads(runner.invoke(app, ["apikey", "list", "--json"], env=cli_env).stdout)
    assert listed[0]["revoked_at"] is not None
