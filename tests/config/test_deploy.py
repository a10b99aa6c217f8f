"""The deployment files in config/deploy: the image is set up with the README's own commands
and runs as an unprivileged user; the compose file's settings load; the systemd unit is
accepted by systemd itself."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from connector.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "config" / "deploy"
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _stages() -> dict[str, list[tuple[str, str]]]:
    """The Dockerfile's instructions by stage, a continued line joined to the one before."""
    text = re.sub(r"\\\n\s*", " ", (DEPLOY / "Dockerfile").read_text(encoding="utf-8"))
    stages: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        instruction, _, argument = line.strip().partition(" ")
        if instruction == "FROM":
            current = stages.setdefault(argument.split(" AS ")[-1], [])
        current.append((instruction, argument.strip()))
    return stages


def _quickstart() -> tuple[str, str]:
    """The README's two Quickstart commands: the demo's, then the tests'."""
    quickstart = README.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", quickstart, flags=re.DOTALL)
    demo = " && ".join(line.strip() for line in blocks[0].splitlines() if line.strip())
    return demo, blocks[1].strip()


def test_the_image_is_set_up_with_the_quickstart_commands() -> None:
    demo, tests = _quickstart()
    stages = _stages()
    setup = [argument for instruction, argument in stages["base"] if instruction == "RUN"][-1]
    # the demo's command without the demo itself, then the test command without pytest
    assert demo == f"{setup} && connector demo"
    test_setup = [argument for instruction, argument in stages["test"] if instruction == "RUN"]
    assert test_setup == [". .venv/bin/activate && pip install -q -e '.[test]'"]
    assert tests == (
        "python3 -m venv .venv && . .venv/bin/activate && pip install -q -e '.[test]' && "
        "pytest -q -n 2"
    )
    assert ("CMD", '["sh", "-c", ". .venv/bin/activate && pytest -q -n 2"]') in stages["test"]


def test_the_service_image_runs_as_an_unprivileged_user_and_checks_its_health() -> None:
    stages = _stages()
    assert list(stages) == ["base", "test", "app"]  # the service is the default (last) target
    users = [argument for instruction, argument in stages["base"] if instruction == "USER"]
    assert users == ["connector"]
    assert not [argument for _instruction, argument in stages["app"] if _instruction == "USER"]
    assert ("CMD", '["connector", "run"]') in stages["app"]
    health = next(
        argument for instruction, argument in stages["app"] if instruction == "HEALTHCHECK"
    )
    assert "http://127.0.0.1:8080/healthz" in health
    environment = next(argument for instruction, argument in stages["app"] if instruction == "ENV")
    settings = dict(pair.split("=", 1) for pair in environment.split()[1:])
    loaded = load_settings(
        None,
        database_url=settings["CONNECTOR_DATABASE_URL"],
        api={"host": settings["CONNECTOR_API__HOST"], "port": settings["CONNECTOR_API__PORT"]},
    )
    assert loaded.database_url.get_secret_value() == "sqlite:////var/lib/connector/connector.db"
    assert (loaded.api.host, loaded.api.port) == ("0.0.0.0", 8080)


def test_the_compose_file_runs_the_connector_on_postgresql_bound_to_the_host_only() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    services = compose["services"]
    assert set(services) == {"db", "connector", "replica"}
    connector, replica = services["connector"], services["replica"]
    assert connector["command"] == ["connector", "run"]
    assert replica["command"] == ["connector", "serve"]
    assert connector["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert connector["ports"] == ["127.0.0.1:8080:8080"]
    assert replica["ports"] == ["127.0.0.1:8081:8080"]
    assert "http://127.0.0.1:8080/readyz" in connector["healthcheck"]["test"][-1]
    environment = {
        name: re.sub(r"\$\{CONNECTOR_DB_PASSWORD:\?[^}]*\}", "secret", value)
        for name, value in connector["environment"].items()
    }
    assert replica["environment"] == connector["environment"]
    loaded = load_settings(
        None,
        database_url=environment["CONNECTOR_DATABASE_URL"],
        api={
            "host": environment["CONNECTOR_API__HOST"],
            "port": environment["CONNECTOR_API__PORT"],
        },
    )
    assert loaded.database_url.get_secret_value() == (
        "postgresql://connector:secret@db:5432/connector"
    )
    assert services["db"]["environment"]["POSTGRES_PASSWORD"].startswith(
        "${CONNECTOR_DB_PASSWORD:?"
    )


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not here")
def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    unit = (DEPLOY / "connector.service").read_text(encoding="utf-8")
    assert "ExecStart=/opt/connector/.venv/bin/connector run\n" in unit
    assert "RestartPreventExitStatus=2\n" in unit
    connector = Path(sys.executable).with_name("connector")
    installed = tmp_path / "connector.service"
    installed.write_text(unit.replace("/opt/connector/.venv/bin/connector", str(connector)))
    verified = subprocess.run(
        ["systemd-analyze", "verify", str(installed)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (verified.returncode, verified.stderr) == (0, "")
