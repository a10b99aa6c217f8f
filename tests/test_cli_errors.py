"""What a person sees when something around the connector is wrong: one line naming what and
where, exit 2 for configuration and 1 for a refusal at run time, never a traceback.

Every case is real: SQLite files locked by another process, read-only, not a database or on a
file size limit; a TCP port that refuses connections; environment variables; missing files.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from connector import __version__
from connector.cli import app

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """No CONNECTOR_ settings from the environment running the tests; work in tmp_path."""
    for name in list(os.environ):
        if name.startswith("CONNECTOR_") and name != "CONNECTOR_TEST_POSTGRES_URL":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return {}


@pytest.fixture
def sqlite_copy(sqlite_template: Path, tmp_path: Path) -> Path:
    """A migrated, empty SQLite database of its own."""
    path = tmp_path / "db" / "connector.db"
    path.parent.mkdir()
    shutil.copy(sqlite_template, path)
    return path


def invoke(env: dict[str, str], *args: str):
    return runner.invoke(app, list(args), env=env)


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


def customers_file(path: Path, count: int) -> Path:
    path.write_text(
        "customers:\n"
        + "".join(
            f"  - {{id: C{n}, name: Customer number {n} of a long list, country: US}}\n"
            for n in range(count)
        ),
        encoding="utf-8",
    )
    return path


@contextmanager
def held_lock(database: Path, journal_mode: str = "WAL") -> Iterator[subprocess.Popen[str]]:
    """Another process holding a write lock (BEGIN IMMEDIATE) on ``database`` until the block
    ends."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys\n"
            "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
            "db.execute(f'PRAGMA journal_mode={sys.argv[2]}')\n"
            "db.execute('BEGIN IMMEDIATE')\n"
            "print('held', flush=True)\n"
            "sys.stdin.readline()\n"
            "db.execute('COMMIT')\n",
            str(database),
            journal_mode,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdin is not None
    try:
        assert holder.stdout.readline().strip() == "held"
        yield holder
    finally:
        if holder.poll() is None:
            holder.stdin.write("\n")
            holder.stdin.flush()
        holder.wait()


def release(holder: subprocess.Popen[str]) -> None:
    assert holder.stdin is not None
    holder.stdin.write("\n")
    holder.stdin.flush()
    holder.wait()


def connector_process(env: dict[str, str], cwd: Path, *args: str) -> subprocess.Popen[str]:
    """The connector as a person runs it: its own process, stdout and stderr piped."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")}
    return subprocess.Popen(
        [sys.executable, "-m", "connector", *args],
        env={**environment, **env},
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


# -- configuration: exit 2 ---------------------------------------------------------------------


def test_an_unreachable_database_server_is_a_configuration_error(clean: dict[str, str]) -> None:
    with socket.socket() as reserved:  # bound, never listening: connections are refused
        reserved.bind(("127.0.0.1", 0))
        port = reserved.getsockname()[1]
        url = f"postgresql://billing:s3cret@127.0.0.1:{port}/billing"
        result = invoke({"CONNECTOR_DATABASE_URL": url}, "invoice", "list")

    assert result.exit_code == 2
    line = one_line(result.stderr)
    assert line.startswith(
        f"configuration error: cannot connect to the database "
        f"postgresql+psycopg://billing:***@127.0.0.1:{port}/billing: connection failed: "
    )
    assert "Connection refused" in line
    assert "s3cret" not in result.output


def test_a_database_the_server_lacks_is_a_configuration_error(
    clean: dict[str, str], request: pytest.FixtureRequest
) -> None:
    server = request.config.getoption("--postgres-url")
    if not server:
        pytest.skip("needs a PostgreSQL server (CONNECTOR_TEST_POSTGRES_URL)")
    name = f"connector_missing_{uuid.uuid4().hex[:8]}"
    url = make_url(server).set(database=name).render_as_string(hide_password=False)

    result = invoke({"CONNECTOR_DATABASE_URL": url}, "status")

    assert result.exit_code == 2
    line = one_line(result.stderr)
    assert line.startswith("configuration error: cannot connect to the database postgresql")
    assert line.endswith(f'database "{name}" does not exist')


def test_a_missing_sqlite_database_is_not_created_by_a_command_that_reads(
    clean: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "elsewhere" / "connector.db"

    for command in (["invoice", "list"], ["status"], ["report", "aging"], ["db", "current"]):
        result = invoke({"CONNECTOR_DATABASE_URL": f"sqlite:///{path}"}, *command)
        assert result.exit_code == 2, command
        assert one_line(result.stderr) == (
            f"configuration error: the database sqlite:///{path} does not exist: set "
            "database_url (CONNECTOR_DATABASE_URL) to the connector's database, or create it "
            "with `connector db upgrade`"
        )
    assert not path.exists()
    assert not path.parent.exists()


def test_a_sqlite_database_whose_directory_cannot_be_made_is_a_configuration_error(
    clean: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "books").write_text("a file, not a directory\n")
    url = f"sqlite:///{tmp_path / 'books' / 'connector.db'}"

    result = invoke({"CONNECTOR_DATABASE_URL": url}, "bill", "--as-of", "2026-01-31")

    assert result.exit_code == 2
    assert one_line(result.stderr).startswith(
        f"configuration error: cannot create {tmp_path / 'books'}, the directory of the "
        f"database {url}: "
    )


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "CONNECTOR_TAX__RATES",
            '{"GB": 20',
            "configuration error: tax.rates (CONNECTOR_TAX__RATES): not valid JSON: Expecting "
            "',' delimiter: line 1 column 10 (char 9)",
        ),
        (
            "CONNECTOR_BILLING__MAX_AMOUNT",
            "{default: 5}",
            "configuration error: billing.max_amount (CONNECTOR_BILLING__MAX_AMOUNT): not valid "
            "JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
        ),
    ],
)
def test_malformed_json_in_an_environment_variable_is_named(
    clean: dict[str, str], name: str, value: str, message: str
) -> None:
    result = invoke(
        {name: value, "CONNECTOR_TAX__HOME_COUNTRY": "FR"}, "invoice", "list"
    )  # a plain string beside it is no JSON and no culprit

    assert result.exit_code == 2
    assert one_line(result.stderr) == message


def test_a_salesforce_ca_file_that_does_not_exist_is_a_configuration_error(
    clean: dict[str, str], sqlite_copy: Path, tmp_path: Path
) -> None:
    missing = tmp_path / "certs" / "ca.pem"
    env = {
        "CONNECTOR_DATABASE_URL": f"sqlite:///{sqlite_copy}",
        "CONNECTOR_SALESFORCE__INSTANCE_URL": "https://org.example.com",
        "CONNECTOR_SALESFORCE__SESSION_ID": "00D-session",
        "CONNECTOR_SALESFORCE__CA_FILE": str(missing),
    }

    result = invoke(env, "pull", "--as-of", "2026-01-31")

    assert result.exit_code == 2
    assert one_line(result.stderr) == (
        "configuration error: salesforce.ca_file (CONNECTOR_SALESFORCE__CA_FILE): the CA file "
        f"{missing} does not exist"
    )


def test_a_xero_ca_file_that_does_not_exist_is_a_configuration_error(
    clean: dict[str, str], sqlite_copy: Path, tmp_path: Path
) -> None:
    missing = tmp_path / "xero-ca.pem"
    env = {
        "CONNECTOR_DATABASE_URL": f"sqlite:///{sqlite_copy}",
        "CONNECTOR_XERO__CLIENT_ID": "app",
        "CONNECTOR_XERO__CLIENT_SECRET": "secret",
        "CONNECTOR_XERO__CA_FILE": str(missing),
    }

    result = invoke(env, "xero", "tenants")

    assert result.exit_code == 2
    assert one_line(result.stderr) == (
        "configuration error: xero.ca_file (CONNECTOR_XERO__CA_FILE): the CA file "
        f"{missing} does not exist"
    )


def test_xero_tenants_with_no_app_configured_asks_for_it_without_calling_xero(
    clean: dict[str, str], sqlite_copy: Path
) -> None:
    # Xero's real endpoints: were it called, the answer would be a network error, not this.
    env = {"CONNECTOR_DATABASE_URL": f"sqlite:///{sqlite_copy}"}

    result = invoke(env, "xero", "tenants")

    assert result.exit_code == 2
    assert one_line(result.stderr) == (
        "configuration error: Xero is not configured: set xero.client_id "
        "(CONNECTOR_XERO__CLIENT_ID) and xero.client_secret (CONNECTOR_XERO__CLIENT_SECRET)"
    )


# -- refusals at run time: exit 1 --------------------------------------------------------------


def test_a_database_locked_past_the_timeout_is_refused_with_the_wait(
    clean: dict[str, str], sqlite_copy: Path
) -> None:
    env = {
        "CONNECTOR_DATABASE_URL": f"sqlite:///{sqlite_copy}",
        "CONNECTOR_DATABASE_LOCK_TIMEOUT_SECONDS": "0.2",
    }
    with held_lock(sqlite_copy):
        result = invoke(env, "invoice", "list")

    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: the database sqlite:///{sqlite_copy} is locked by another connection or "
        "process: gave up after waiting 0.2 s (database_lock_timeout_seconds); try again once "
        "it is done"
    )
    assert "Traceback" not in result.stderr


def test_a_locked_database_is_waited_for_until_it_is_free(
    clean: dict[str, str], sqlite_copy: Path, tmp_path: Path
) -> None:
    """A database in rollback-journal mode that another process writes to: SQLite refuses the
    switch to WAL at once instead of waiting; the connector waits with backoff, says so, and
    goes on once the other process is done."""
    env = {
        "CONNECTOR_DATABASE_URL": f"sqlite:///{sqlite_copy}",
        "CONNECTOR_DATABASE_LOCK_TIMEOUT_SECONDS": "600",
    }
    with held_lock(sqlite_copy, journal_mode="DELETE") as holder:
        command = connector_process(env, tmp_path, "invoice", "list", "--json")
        assert command.stderr is not None
        waiting = command.stderr.readline()  # EOF ("") if the command ended instead
        assert waiting.rstrip().endswith(
            f"WARNING connector.db.engine: the database sqlite:///{sqlite_copy} is locked by "
            "another connection; waiting up to 600 s"
        ), waiting
        release(holder)
        out, err = command.communicate()

    assert (command.returncode, out.strip(), err) == (0, "[]", "")


def test_a_read_only_database_is_refused(
    clean: dict[str, str], sqlite_copy: Path, tmp_path: Path
) -> None:
    with read_only(sqlite_copy):
        result = invoke(
            {"CONNECTOR_DATABASE_URL": f"sqlite:///{sqlite_copy}"},
            "import",
            str(customers_file(tmp_path / "customers.yaml", 1)),
            "--as-of",
            "2026-01-31",
        )

    assert result.exit_code == 1
    assert one_line(result.stderr) == (
        f"error: the database sqlite:///{sqlite_copy} is read-only (attempt to write a readonly "
        "database): the user running the connector needs write access to the file and to its "
        "directory"
    )


@contextmanager
def read_only(path: Path) -> Iterator[None]:
    """``path`` read-only for this process: its mode, and for root (whom modes do not stop)
    the immutable attribute."""
    path.chmod(0o444)
    immutable = os.geteuid() == 0 and shutil.which("chattr") is not None
    if immutable and subprocess.run(["chattr", "+i", str(path)], check=False).returncode:
        immutable = False
    try:
        try:
            with path.open("r+b"):
                pytest.skip("cannot make a file read-only here (root without chattr)")
        except PermissionError:
            pass
        yield
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(path)], check=True)
        path.chmod(0o644)


def test_a_file_that_is_not_a_database_is_refused(clean: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "connector.db"
    path.write_text("customer,amount\nAcme,100.00\n", encoding="utf-8")

    result = invoke({"CONNECTOR_DATABASE_URL": f"sqlite:///{path}"}, "invoice", "list")

    assert result.exit_code == 1
    assert one_line(result.stderr) == (
        f"error: sqlite:///{path} is not a usable SQLite database (file is not a database): "
        "check database_url (CONNECTOR_DATABASE_URL), or restore the file from a backup"
    )
    assert path.read_text(encoding="utf-8") == "customer,amount\nAcme,100.00\n"


def test_a_database_on_a_full_disk_is_refused_and_keeps_nothing(
    clean: dict[str, str], sqlite_copy: Path, tmp_path: Path
) -> None:
    """The disk is full for the connector's process: a file size limit (RLIMIT_FSIZE, as
    ``ulimit -f`` sets) of 8 KiB, with SIGXFSZ ignored, so that a write past it fails as on a
    full disk (EFBIG) instead of killing the process. The database file is larger already, and
    is only read; its write-ahead log, which a transaction writes to, is empty and cannot grow.
    Another connection keeps the log and its index open, as a running service would."""
    limit = 8 * 1024
    keeper = sqlite3.connect(sqlite_copy)
    assert keeper.execute("SELECT count(*) FROM customers").fetchone() == (0,)

    def full_disk() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    environment = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")}
    try:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "connector",
                "import",
                str(customers_file(tmp_path / "customers.yaml", 5)),
                "--as-of",
                "2026-01-31",
            ],
            env={**environment, "CONNECTOR_DATABASE_URL": f"sqlite:///{sqlite_copy}"},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            preexec_fn=full_disk,  # the child's limits alone, set before it runs Python
            check=False,
        )
        assert result.returncode == 1, result.stderr
        assert one_line(result.stderr) == (
            f"error: the database sqlite:///{sqlite_copy} could not be written or read (disk "
            "I/O error): the disk may be full, or a file size limit reached; nothing of this "
            "transaction was kept"
        )
        assert keeper.execute("SELECT count(*) FROM customers").fetchone() == (0,)
    finally:
        keeper.close()


def test_a_file_the_file_system_refuses_is_named(
    clean: dict[str, str], sqlite_copy: Path, tmp_path: Path
) -> None:
    (tmp_path / "books").write_text("a file, not a directory\n")
    env = {
        "CONNECTOR_DATABASE_URL": f"sqlite:///{sqlite_copy}",
        "CONNECTOR_LEDGER__PATH": str(tmp_path / "books" / "ledger.beancount"),
    }

    result = invoke(env, "ledger", "check")

    assert result.exit_code == 1
    assert one_line(result.stderr) == f"error: {tmp_path / 'books'}: Not a directory"


# -- arguments ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["bill", "--as-of", "2026-02-30"],
            "Invalid value for '--as-of': 2026-02-30 does not exist: February 2026 has 28 days",
        ),
        (
            ["bill", "--as-of", "2028-02-30"],
            "Invalid value for '--as-of': 2028-02-30 does not exist: February 2028 has 29 days",
        ),
        (
            ["report", "mrr", "--since", "2026-04-31"],
            "Invalid value for '--since': 2026-04-31 does not exist: April 2026 has 30 days",
        ),
        (
            ["payment", "record", "INV-000001", "10", "--date", "2026-13-01"],
            "Invalid value for '--date': 2026-13-01 does not exist: there is no month 13 of "
            "year 2026",
        ),
        (
            ["bill", "--as-of", "31/01/2026"],
            "Invalid value for '--as-of': '31/01/2026' is not a date: write it YYYY-MM-DD",
        ),
    ],
)
def test_a_day_the_calendar_lacks_is_refused_as_such(
    clean: dict[str, str], args: list[str], message: str
) -> None:
    result = invoke({}, *args)

    assert result.exit_code == 2
    assert result.stderr.strip().splitlines()[-1] == f"Error: {message}"


@pytest.mark.parametrize(
    ("option", "valid"),
    [("--status", "'open', 'paid', 'void', 'issued'"), ("--kind", "'invoice', 'credit_note'")],
)
def test_invoice_list_refuses_an_unknown_choice_and_lists_the_valid_ones(
    clean: dict[str, str], sqlite_copy: Path, option: str, valid: str
) -> None:
    result = invoke(
        {"CONNECTOR_DATABASE_URL": f"sqlite:///{sqlite_copy}"}, "invoice", "list", option, "bogus"
    )

    assert result.exit_code == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"Error: Invalid value for '{option}': ")
    assert last.endswith(f"'bogus' is not one of {valid}.")


def test_config_is_read_before_or_after_the_command(
    clean: dict[str, str], sqlite_copy: Path, tmp_path: Path
) -> None:
    config = tmp_path / "settings.toml"
    config.write_text(f'database_url = "sqlite:///{sqlite_copy}"\n', encoding="utf-8")

    for args in (
        ["--config", str(config), "db", "current"],
        ["db", "current", "--config", str(config)],
        ["db", "current", f"--config={config}"],
    ):
        result = invoke({}, *args)
        assert result.exit_code == 0, (args, result.output)
        assert result.stdout.startswith(f"sqlite:///{sqlite_copy}: revision "), args

    missing = invoke({}, "invoice", "list", "--config", str(tmp_path / "nope.toml"))
    assert missing.exit_code == 2
    assert one_line(missing.stderr) == (
        f"configuration error: configuration file {tmp_path / 'nope.toml'} does not exist"
    )


def test_version_is_an_option_and_a_command(clean: dict[str, str]) -> None:
    assert invoke({}, "--version").stdout.strip() == __version__
    assert invoke({}, "version").stdout.strip() == __version__
