"""Shared fixtures: real databases for the tests that need one.

Every database test runs on SQLite (a fresh file per test, copied from a schema migrated once)
and, when ``CONNECTOR_TEST_POSTGRES_URL`` (or ``--postgres-url``) names a PostgreSQL server
the tests may create databases on, on PostgreSQL too (one database per test session, emptied
between tests).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from connector.db.engine import make_engine, normalize_url, session_factory
from connector.db.migrate import upgrade
from connector.db.tables import Base
from connector.settings import Settings, load_settings

POSTGRES_ENV = "CONNECTOR_TEST_POSTGRES_URL"
TEST_TAX_RATES = {"JP": "10", "GB": "20", "DE": "19"}
ACCOUNTING_MAPPING = Path(__file__).resolve().parents[1] / "mappings" / "accounting.yaml"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--postgres-url",
        default=os.environ.get(POSTGRES_ENV),
        help=f"PostgreSQL server to run database tests on too (env {POSTGRES_ENV})",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        backends = ["sqlite"]
        if metafunc.config.getoption("--postgres-url"):
            backends.append("postgresql")
        metafunc.parametrize("backend", backends, scope="session")


@pytest.fixture(scope="session", autouse=True)
def config_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The user's config folder (where a key file goes by default when the database is not a
    SQLite file) is a temporary one: tests never write to the home directory."""
    folder = tmp_path_factory.mktemp("config-home")
    before = os.environ.get("XDG_CONFIG_HOME")
    os.environ["XDG_CONFIG_HOME"] = str(folder)
    yield folder
    if before is None:
        os.environ.pop("XDG_CONFIG_HOME", None)
    else:
        os.environ["XDG_CONFIG_HOME"] = before


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The test runs with umask 000: files and folders get exactly the mode the code asks for."""
    before = os.umask(0)
    try:
        yield
    finally:
        os.umask(before)


def tree_modes(root: Path) -> dict[str, int]:
    """The permission bits of ``root`` and of everything below it, by path relative to root's
    parent (``root`` itself included)."""
    paths = [root, *root.rglob("*")]
    return {str(path.relative_to(root.parent)): path.stat().st_mode & 0o7777 for path in paths}


def owner_only(modes: dict[str, int], base: Path) -> dict[str, int]:
    """``modes`` (of paths relative to ``base``) as they would be if every folder were 0700
    and every file 0600."""
    return {name: 0o700 if (base / name).is_dir() else 0o600 for name in modes}


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "connector.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


def create_postgres_database(admin_url: str) -> str:
    """Create an empty database on the server and return its URL."""
    url = normalize_url(admin_url)
    name = f"connector_test_{uuid.uuid4().hex[:12]}"
    admin = make_engine(url.render_as_string(hide_password=False), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(admin_url: str, database_url: str) -> None:
    name = make_url(database_url).database
    admin = make_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def postgres_database(request: pytest.FixtureRequest) -> Iterator[str]:
    admin_url = request.config.getoption("--postgres-url")
    if not admin_url:
        pytest.skip(f"no PostgreSQL server given ({POSTGRES_ENV})")
    url = create_postgres_database(admin_url)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    drop_postgres_database(admin_url, url)


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if backend == "sqlite":
        path = tmp_path / "connector.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("postgres_database")
    engine = make_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def cli_env(database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """The environment of a command run in a test: none of the CONNECTOR_ settings of the
    shell running the tests, the test's database, and the test's folder as the working one."""
    for name in list(os.environ):
        if name.startswith("CONNECTOR_") and name != "CONNECTOR_TEST_POSTGRES_URL":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return {"CONNECTOR_DATABASE_URL": database_url}


@pytest.fixture
def factory(engine: Engine) -> sessionmaker[Session]:
    return session_factory(engine)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return load_settings(
        database_url=database_url,
        ledger={"path": tmp_path / "ledger.beancount"},
        tax={"rates": TEST_TAX_RATES},
    )


@pytest.fixture
def ledger_settings(database_url: str, tmp_path: Path) -> Settings:
    """Settings with a ledger in ``tmp_path`` and the repository's chart of accounts."""
    return load_settings(
        None,
        database_url=database_url,
        ledger={"path": tmp_path / "ledger.beancount"},
        accounting={"mapping_file": str(ACCOUNTING_MAPPING)},
        tax={"rates": TEST_TAX_RATES},
    )


XERO_TAX_TYPES: dict[str, Any] = {  # the fake organisation's: sandbox.xero.chart
    "0": "NONE",
    "7.25": "TAX001",
    "GB": {"20": "TAX002"},
    "DE": {"19": "TAX003"},
    "JP": {"10": "TAX006"},
}


def xero_overrides(xero: Any, **extra: Any) -> dict[str, Any]:
    """Settings that point the Xero target at a fake Xero organisation."""
    return {
        "client_id": xero.config.client_id,
        "client_secret": xero.config.client_secret,
        "tenant_id": xero.config.tenant_id,
        "api_url": xero.api_url,
        "token_url": xero.token_url,
        "authorize_url": xero.authorize_url,
        "connections_url": xero.url + "/connections",
        "ca_file": str(xero.ca_file),
        **extra,
    }


def xero_mapping(folder: Path) -> Path:
    """The repository's accounting mapping with a Xero TaxType for each test tax rate."""
    document = yaml.safe_load(ACCOUNTING_MAPPING.read_text())
    document["xero"]["tax_types"] = XERO_TAX_TYPES
    path = folder / "accounting.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.fixture
def xero_settings(database_url: str, tmp_path: Path, xero_sandbox: Any) -> Settings:
    """Settings with accounting.target = xero on the fake Xero organisation."""
    return load_settings(
        None,
        database_url=database_url,
        ledger={"path": tmp_path / "ledger.beancount"},
        accounting={"target": "xero", "mapping_file": str(xero_mapping(tmp_path))},
        tax={"rates": TEST_TAX_RATES},
        xero=xero_overrides(xero_sandbox),
    )
