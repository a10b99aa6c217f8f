"""The command line imports only what the command it runs uses.

``connector --help`` loads no database, settings, scheduler, ledger, emulator or demo code, and a
real ``connector sync --once`` on the ledger never loads an emulator (``sandbox``), the demo, Fava
or the Xero target.
Checked on the modules Python reports importing (``-X importtime``), not on timings.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox.salesforce.server import Sandbox
from tests.conftest import ACCOUNTING_MAPPING, TEST_TAX_RATES

ROOT = Path(__file__).resolve().parents[1]
IMPORTED = re.compile(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)\s*$", re.MULTILINE)
HELP_NEVER = (
    "sqlalchemy",
    "pydantic",
    "pydantic_settings",
    "alembic",
    "sandbox",
    "connector.sync.demo",
    "jobs.service",
    "apscheduler",
    "beancount",
    "fava",
)
SYNC_NEVER = ("sandbox", "connector.sync.demo", "fava", "connector.accounting.xero")


def imported_by(args: list[str], env: dict[str, str], cwd: Path) -> tuple[set[str], str]:
    """The modules ``python -m connector ARGS`` imports, and what it printed."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "connector", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    modules = set(IMPORTED.findall(done.stderr))
    assert "connector.cli" in modules, done.stderr[-2000:]
    output = done.stdout + "".join(
        line + "\n" for line in done.stderr.splitlines() if not line.startswith("import time:")
    )
    assert done.returncode in {0, 1}, output
    return modules, output


def among(modules: set[str], packages: tuple[str, ...]) -> list[str]:
    return sorted(
        name for name in modules if any(name == p or name.startswith(p + ".") for p in packages)
    )


@pytest.fixture
def environment(tmp_path: Path) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("CONNECTOR_")}
    env["PYTHONPATH"] = str(ROOT)
    return env


def test_help_imports_no_service(environment: dict[str, str], tmp_path: Path) -> None:
    modules, output = imported_by(["--help"], environment, tmp_path)

    assert "Usage: python -m connector" in output
    assert among(modules, HELP_NEVER) == []


@pytest.mark.parametrize("args", [["sync", "--help"], ["version"]])
def test_a_command_imports_no_service_it_does_not_run(
    args: list[str], environment: dict[str, str], tmp_path: Path
) -> None:
    """Past the root's --help, typer checks option values (--config) with pydantic itself."""
    modules, output = imported_by(args, environment, tmp_path)

    assert "Usage: python -m connector sync" in output or output.strip() == "0.1.0"
    assert among(modules, tuple(p for p in HELP_NEVER if p != "pydantic")) == []


@pytest.mark.sandbox(seed="demo")
def test_a_ledger_cycle_imports_no_emulator_demo_fava_or_xero(
    database_url: str, salesforce_sandbox: Sandbox, environment: dict[str, str], tmp_path: Path
) -> None:
    env = {
        **environment,
        "CONNECTOR_DATABASE_URL": database_url,
        "CONNECTOR_LEDGER__PATH": str(tmp_path / "ledger.beancount"),
        "CONNECTOR_ACCOUNTING__MAPPING_FILE": str(ACCOUNTING_MAPPING),
        "CONNECTOR_SALESFORCE__MAPPING_FILE": str(ROOT / "mappings" / "salesforce.yaml"),
        "CONNECTOR_TAX__RATES": repr(TEST_TAX_RATES).replace("'", '"'),
        "CONNECTOR_SALESFORCE__INSTANCE_URL": salesforce_sandbox.instance_url,
        "CONNECTOR_SALESFORCE__SESSION_ID": salesforce_sandbox.session_id,
        "CONNECTOR_SALESFORCE__CA_FILE": str(salesforce_sandbox.ca_file),
        "CONNECTOR_SALESFORCE__BACKOFF_INITIAL_SECONDS": "0.001",
    }

    modules, output = imported_by(["sync", "--once", "--as-of", "2026-01-31"], env, tmp_path)

    for stage in ("pull", "bill", "revenue", "push", "payments", "writeback"):
        assert f"{stage}: " in output, output
    assert "error:" not in output, output
    assert (tmp_path / "ledger.beancount").is_file()
    assert {"connector.sync.cycle", "sqlalchemy", "beancount"} <= modules
    assert among(modules, SYNC_NEVER) == []
