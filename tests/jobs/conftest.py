"""Services as processes: ``connector run`` (or ``serve``) started with the environment of a
test, its JSON log lines read as they come, killed at the end if still running."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sandbox.salesforce.server import Sandbox
from tests.conftest import TEST_TAX_RATES

ROOT = Path(__file__).resolve().parents[2]
STANDBY_SECONDS = 0.5
# Generous: each wait ends as soon as what it waits for is there. A first cycle renders the PDF
# of each of the demo org's 634 invoices: a minute or two on a busy machine.
WAIT = 240


@dataclass
class Line:
    at: float  # time.monotonic() when it arrived
    raw: str
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def job(self) -> str | None:
        return self.data.get("job") if self.data.get("logger") == "connector.jobs" else None

    @property
    def message(self) -> str:
        return str(self.data.get("message", ""))


class Service:
    """A ``connector run`` (or ``command``) process whose stderr (JSON log lines) is read by a
    thread."""

    def __init__(self, env: dict[str, str], command: str = "run") -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "connector", command],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[Line] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for raw in self.process.stderr:
            try:
                data = json.loads(raw)
            except ValueError:
                data = {}
            with self._changed:
                self.lines.append(Line(time.monotonic(), raw.rstrip("\n"), data))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def snapshot(self) -> list[Line]:
        with self._changed:
            return list(self.lines)

    def jobs(self) -> list[Line]:
        return [line for line in self.snapshot() if line.job is not None]

    def messages(self, start: str) -> list[Line]:
        return [line for line in self.snapshot() if line.message.startswith(start)]

    def wait_for(
        self, what: str, done: Callable[[list[Line]], bool], timeout: float = WAIT
    ) -> None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not done(self.lines):
                left = deadline - time.monotonic()
                if left <= 0 or (self.process.poll() is not None and not self._reader.is_alive()):
                    break
                self._changed.wait(min(left, 0.2))
            else:
                return
        pytest.fail(f"waited in vain for {what}; the service said:\n{self.output()}")

    def wait_for_message(self, start: str, timeout: float = WAIT) -> Line:
        self.wait_for(repr(start), lambda lines: any(says(line, start) for line in lines), timeout)
        return self.messages(start)[0]

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 30) -> int:
        self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running {timeout} s after {sig.name}:\n{self.output()}")
        self._reader.join(timeout=10)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self._reader.join(timeout=10)
        if self.process.stderr is not None:
            self.process.stderr.close()

    def output(self) -> str:
        return "\n".join(line.raw for line in self.snapshot())


def says(line: Line, start: str) -> bool:
    return line.message.startswith(start)


@pytest.fixture
def services() -> Iterator[Callable[..., Service]]:
    """Start services; every one still running at the end is killed."""
    started: list[Service] = []

    def start(env: dict[str, str], command: str = "run") -> Service:
        service = Service(env, command)
        started.append(service)
        return service

    yield start
    for service in started:
        service.kill()


def environment(tmp_path: Path, **settings: str) -> dict[str, str]:
    """The environment of a connector process: nothing of ours inherited, no TOML file but an
    empty one, the repository's mapping files."""
    config = tmp_path / "connector.toml"
    config.write_text("")
    env = {name: value for name, value in os.environ.items() if not name.startswith("CONNECTOR_")}
    env.update(
        {
            "CONNECTOR_CONFIG_FILE": str(config),
            "CONNECTOR_LOG_FORMAT": "json",
            "CONNECTOR_LOG_LEVEL": "INFO",
            "CONNECTOR_LEDGER__PATH": str(tmp_path / "ledger.beancount"),
            "CONNECTOR_ACCOUNTING__MAPPING_FILE": str(ROOT / "mappings" / "accounting.yaml"),
            "CONNECTOR_SALESFORCE__MAPPING_FILE": str(ROOT / "mappings" / "salesforce.yaml"),
            "CONNECTOR_TAX__RATES": json.dumps(TEST_TAX_RATES),
            "CONNECTOR_API__PORT": "0",  # each instance its own free port
        }
    )
    env.update({f"CONNECTOR_{name.upper()}": value for name, value in settings.items()})
    return env


def far_cron() -> str:
    """A daily crontab line twelve hours away: it does not fall due during a test."""
    return f"0 {(datetime.now(UTC).hour + 12) % 24} * * *"


@pytest.fixture
def service_env(
    database_url: str, salesforce_sandbox: Sandbox, tmp_path: Path
) -> Callable[..., dict[str, str]]:
    def make(**schedule: str) -> dict[str, str]:
        return environment(
            tmp_path,
            database_url=database_url,
            salesforce__instance_url=salesforce_sandbox.instance_url,
            salesforce__session_id=salesforce_sandbox.session_id,
            salesforce__ca_file=str(salesforce_sandbox.ca_file),
            schedule__standby_seconds=str(STANDBY_SECONDS),
            # The service bills as of today; the demo org's deals close in 2025-10 .. 2026-09.
            billing__max_backdate_days="36500",
            **{f"schedule__{name}": spec for name, spec in schedule.items()},
        )

    return make
