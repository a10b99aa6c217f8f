"""``connector run`` as a process, against the sandbox's demo org, on SQLite and PostgreSQL:
the startup cycle and the scheduled jobs (one JSON line per run), SIGTERM and SIGINT (exit 0),
standbys that take over from a killed or stopped instance, an instance that loses its lock,
and configuration errors (exit 2)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from connector.db import tables
from connector.db.actor_lock import ADVISORY_KEY
from connector.db.engine import make_engine, session_factory
from tests.jobs.conftest import ROOT, STANDBY_SECONDS, WAIT, Line, Service, environment, far_cron

STAGES = [
    "pull",
    "payments",
    "bill",
    "revenue",
    "push",
    "dunning",
    "send",
    "webhooks",
    "writeback",
]
JOB_KEYS = {"time", "level", "logger", "job", "as_of", "ok", "seconds", "api_calls"}
JOB_KEYS |= {"counts", "error"}
TAKEOVER_CONTRACT_SECONDS = 60  # "a standby takes over within a minute"


def _position(lines: list[Line], message: str) -> int:
    [found] = [n for n, line in enumerate(lines) if line.message == message]
    return found


def _count(lines: list[Line], job: str) -> int:
    return sum(1 for line in lines if line.job == job)


def _check_job_line(line: Line, today: set[str]) -> None:
    data = line.data
    assert set(data) == JOB_KEYS, line.raw
    assert data["logger"] == "connector.jobs"
    assert data["level"] == ("info" if data["ok"] else "error")
    assert data["job"] in STAGES
    assert data["as_of"] in today
    assert isinstance(data["seconds"], float | int) and data["seconds"] >= 0
    assert isinstance(data["api_calls"], int) and data["api_calls"] >= 0
    # A run that ended in an error (an interrupted one too) has no result to count.
    assert isinstance(data["counts"], dict) if data["ok"] else data["counts"] is None, line.raw
    assert (data["error"] is None) == data["ok"], line.raw
    datetime.fromisoformat(data["time"])


def _check_startup_cycle(cycle: list[Line], today: set[str]) -> None:
    """The seven lines of the first cycle on a fresh database and a fresh demo org."""
    assert [line.job for line in cycle] == STAGES
    for line in cycle:
        _check_job_line(line, today)
        assert (line.data["ok"], line.data["error"]) == (True, None), line.raw
    counts = {line.job: line.data["counts"] for line in cycle}
    calls = {line.job: line.data["api_calls"] for line in cycle}
    assert counts["pull"]["fetched"] == {"Account": 50, "Opportunity": 200}
    assert (counts["pull"]["applied"], counts["pull"]["quarantined"]) == (160, 3)
    assert (counts["pull"]["held"], counts["pull"]["stopped"]) == (0, None)
    assert counts["bill"]["invoices"] > 0
    assert counts["bill"]["failed"] == {}
    assert counts["push"]["posted"] > counts["bill"]["invoices"]  # and revenue journals
    assert (counts["push"]["pending"], counts["push"]["parked"]) == (0, {})
    assert counts["payments"]["refused"] == {}
    assert counts["writeback"]["failed"] == {}
    billed = counts["bill"]["invoices"] + counts["bill"]["credit_notes"]
    assert counts["writeback"]["sent"]["Billing_Invoice__c"] == billed
    # One Composite call pulls; only the pull and the write-back speak to Salesforce.
    assert calls["pull"] == 1
    assert calls["writeback"] > 0
    assert [calls[name] for name in ("bill", "revenue", "push", "payments", "dunning")] == [0] * 5


def _job_runs(database_url: str) -> dict[str, int]:
    engine = make_engine(database_url)
    try:
        with session_factory(engine)() as session:
            rows = session.execute(
                select(tables.JobRun.job, func.count()).group_by(tables.JobRun.job)
            ).all()
    finally:
        engine.dispose()
    return {job: count for job, count in rows}


def _today() -> str:
    return datetime.now(UTC).date().isoformat()


@pytest.mark.sandbox(seed="demo")
def test_run_logs_each_job_run_and_stops_on_sigterm(
    services: Callable[..., Service],
    service_env: Callable[..., dict[str, str]],
    database_url: str,
) -> None:
    today = {_today()}
    interval = {"pull": "1s", "bill": "2s", "push": "2s", "payments": "2s", "writeback": "2s"}
    env = service_env(revenue=far_cron(), **interval)
    service = services(env)

    active = service.wait_for_message("active (")
    assert active.data["level"] == "info"
    assert active.data["logger"] == "connector.service"
    assert "pull 1s, payments 2s, bill 2s, revenue 0 " in active.message

    def scheduled(lines: list[Line]) -> list[Line]:
        return [line for line in lines if line.job is not None][len(STAGES) :]

    # The startup cycle (which renders the PDF of each of the org's 634 invoices), then every
    # interval job on its own schedule (pull at least twice).
    service.wait_for(
        "the scheduled runs",
        lambda lines: (
            _count(scheduled(lines), "pull") >= 2
            and all(_count(scheduled(lines), name) >= 1 for name in interval)
        ),
    )
    sent = time.monotonic()
    code = service.stop(signal.SIGTERM)
    stopped_in = time.monotonic() - sent
    today.add(_today())

    assert code == 0, service.output()
    assert stopped_in < 15, service.output()
    lines = service.snapshot()
    jobs = [line for line in lines if line.job is not None]
    _check_startup_cycle(jobs[: len(STAGES)], today)
    assert jobs[0].at > active.at
    assert all(line.at >= jobs[len(STAGES) - 1].at for line in jobs[len(STAGES) :])
    # The order of stderr is the order of logging: the runs logged before the signal handler's
    # line had ended before the signal; after it, only the job in hand may end.
    handled = _position(lines, "SIGTERM: finishing the batch in hand, then stopping")
    before_signal = [line for line in lines[:handled] if line.job is not None]
    after_signal = [line for line in lines[handled:] if line.job is not None]
    assert before_signal + after_signal == jobs
    assert len(after_signal) <= 1
    for line in before_signal:
        _check_job_line(line, today)
        assert (line.data["ok"], line.data["error"]) == (True, None), line.raw
    for line in after_signal:
        _check_job_line(line, today)
        assert line.data["error"] in {None, "stopped after the batch in hand (SIGTERM)"}
    for line in before_signal[len(STAGES) :]:
        if line.job == "pull":  # nothing changed in the org: nothing applied again
            assert line.data["counts"]["applied"] == 0
            assert line.data["counts"]["quarantined"] == 3
            assert line.data["api_calls"] == 1
    assert _count(jobs, "revenue") == 1  # its crontab line does not fall due
    messages = [line.message for line in lines if line.data.get("logger") == "connector.service"]
    assert messages[-2:] == [
        "SIGTERM: finishing the batch in hand, then stopping",
        "stopped (SIGTERM)",
    ]
    assert not [line.raw for line in lines if not line.data], "every stderr line is JSON"

    # Every run logged is recorded, and status shows the last run of each job.
    assert _job_runs(database_url) == {name: _count(jobs, name) for name in STAGES}
    status = subprocess.run(
        [sys.executable, "-m", "connector", "status", "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )
    # The demo org's three records waiting for a fix keep it from being all well.
    assert status.returncode == 1, status.stderr
    assert status.stderr == "attention: 3 records quarantined (waiting for a fix)\n"
    report = json.loads(status.stdout)
    assert list(report["jobs"]) == STAGES
    last = {line.job: line.data for line in jobs}
    for name in STAGES:
        shown = report["jobs"][name]
        assert (shown["ok"], shown["error"], shown["summary"]) == (
            last[name]["ok"],
            last[name]["error"],
            last[name]["counts"],
        ), name
    # Every job is ok but the one the signal may have caught in hand (pull and the others run
    # every second or two), which is recorded as interrupted.
    for name in STAGES:
        if last[name] not in [line.data for line in after_signal]:
            assert report["jobs"][name]["ok"] is True, name
    assert report["jobs"]["revenue"]["ok"] is True  # ran once, in the startup cycle
    assert report["outbox"] == {"ledger": {"waiting": 0, "parked": 0}}
    assert report["refused"] == []


def _active(service: Service) -> bool:
    return bool(service.messages("active ("))


def _check_cycle(service: Service, today: set[str]) -> None:
    """The service's first seven job lines: a full cycle, every run ok."""
    service.wait_for("a full cycle", lambda lines: sum(1 for x in lines if x.job) >= len(STAGES))
    cycle = service.jobs()[: len(STAGES)]
    assert [line.job for line in cycle] == STAGES
    for line in cycle:
        _check_job_line(line, today)
        assert (line.data["ok"], line.data["error"]) == (True, None), line.raw


@pytest.mark.sandbox(seed="demo")
def test_one_instance_acts_and_a_standby_takes_over_when_it_dies_or_stops(
    services: Callable[..., Service],
    service_env: Callable[..., dict[str, str]],
) -> None:
    today = {_today()}
    env = service_env(
        pull="1s", bill="1h", push="1h", payments="1h", writeback="1h", revenue=far_cron()
    )
    first = services(env)
    first.wait_for_message("active (")
    standbys = [services(env) for _ in range(3)]
    for standby in standbys:
        standby.wait_for_message("standing by: another instance holds the ")
    # The first one goes on working (two more scheduled pulls) while the others stand by.
    seen = len(first.jobs())
    first.wait_for(
        "two scheduled pulls",
        lambda lines: sum(1 for line in lines if line.job) >= max(seen, len(STAGES)) + 2,
    )
    for standby in standbys:
        assert standby.process.poll() is None
        assert standby.jobs() == []
        assert not _active(standby)
        assert len(standby.messages("standing by")) == 1  # said once, not at every try

    # A standby stops at once on SIGTERM, without ever acting.
    quitter = standbys.pop()
    sent = time.monotonic()
    assert quitter.stop(signal.SIGTERM) == 0, quitter.output()
    assert time.monotonic() - sent < STANDBY_SECONDS + 10
    assert quitter.jobs() == []
    assert not _active(quitter)

    # Killed: one standby, and only one, takes over within a minute.
    first.process.send_signal(signal.SIGKILL)
    assert first.process.wait(timeout=30) == -signal.SIGKILL
    killed = time.monotonic()
    deadline = killed + TAKEOVER_CONTRACT_SECONDS + 10
    while not any(_active(standby) for standby in standbys) and time.monotonic() < deadline:
        time.sleep(0.05)
    taking_over = [standby for standby in standbys if _active(standby)]
    assert len(taking_over) == 1, "\n\n".join(standby.output() for standby in standbys)
    second = taking_over[0]
    [third] = [standby for standby in standbys if standby is not second]
    second.wait_for("the first job run", lambda lines: any(line.job for line in lines))
    took_over = second.messages("active (")[0].at - killed
    ran = second.jobs()[0].at - killed
    print(f"after SIGKILL: active {took_over:.2f} s, a job done {ran:.2f} s later")
    assert took_over < STANDBY_SECONDS + 10  # it tries again every standby_seconds
    assert ran < TAKEOVER_CONTRACT_SECONDS
    _check_cycle(second, today)
    assert not _active(third)
    assert third.jobs() == []
    assert len(third.messages("standing by")) == 1

    # Stopped: the lock goes with the process, and the last standby takes over.
    exited = time.monotonic()  # the lock may go before the process: measured from SIGTERM
    assert second.stop(signal.SIGTERM) == 0, second.output()
    assert second.messages("stopped (SIGTERM)")
    third.wait_for_message("active (", timeout=TAKEOVER_CONTRACT_SECONDS + 10)
    third.wait_for("the first job run", lambda lines: any(line.job for line in lines))
    took_over = third.messages("active (")[0].at - exited
    ran = third.jobs()[0].at - exited
    print(f"after SIGTERM: active {took_over:.2f} s, a job done {ran:.2f} s later")
    assert took_over < STANDBY_SECONDS + 10
    assert ran < TAKEOVER_CONTRACT_SECONDS
    today.add(_today())
    _check_cycle(third, today)
    assert third.stop(signal.SIGTERM) == 0, third.output()
    assert third.messages("stopped (SIGTERM)")


def _lock_holder_pid(database_url: str) -> int | None:
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            pid: int | None = connection.scalar(
                text(
                    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
                    " AND database = (SELECT oid FROM pg_database"
                    " WHERE datname = current_database())"
                    " AND classid::bigint = :high AND objid::bigint = :low"
                ),
                {"high": (ADVISORY_KEY >> 32) & 0xFFFFFFFF, "low": ADVISORY_KEY & 0xFFFFFFFF},
            )
    finally:
        engine.dispose()
    return pid


def _take_the_lock_away(database_url: str) -> None:
    """What a failover, a DBA or a clean-up script may do to the active instance's lock."""
    if database_url.startswith("sqlite"):
        database = Path(database_url.removeprefix("sqlite:///"))
        database.with_name(database.name + ".lock").unlink()
        return
    pid = _lock_holder_pid(database_url)
    assert pid is not None
    engine = make_engine(database_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            assert connection.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        engine.dispose()


@pytest.mark.sandbox(seed="demo")
def test_an_instance_that_loses_the_lock_stands_by_and_acts_again(
    services: Callable[..., Service],
    service_env: Callable[..., dict[str, str]],
    database_url: str,
) -> None:
    today = {_today()}
    env = service_env(
        pull="1s", bill="1h", push="1h", payments="1h", writeback="1h", revenue=far_cron()
    )
    service = services(env)
    active = service.wait_for_message("active (")
    _check_cycle(service, today)
    description = active.message.removeprefix("active (").split("); schedule: ")[0]

    _take_the_lock_away(database_url)
    lost = service.wait_for_message("lost the ", timeout=STANDBY_SECONDS + 10)
    assert lost.message == f"lost the {description}; standing by"
    assert lost.data["level"] == "error"
    # Nobody else holds it: the instance takes it again and runs a full cycle.
    service.wait_for("acting again", lambda lines: len(service.messages("active (")) >= 2)
    again = service.messages("active (")[1]
    assert again.at > lost.at
    service.wait_for(
        "a second full cycle",
        lambda lines: [x.job for x in lines if x.job and x.at > again.at][: len(STAGES)] == STAGES,
    )
    assert service.process.poll() is None
    assert service.stop(signal.SIGTERM) == 0, service.output()
    assert service.messages("stopped (SIGTERM)")
    after_loss = [line for line in service.jobs() if line.at > lost.at]
    today.add(_today())
    for line in after_loss[: len(STAGES)]:
        _check_job_line(line, today)
        assert line.data["ok"] is True, line.raw


@pytest.mark.sandbox(seed="demo")
def test_sigint_during_the_startup_cycle_ends_it_after_the_batch_in_hand(
    services: Callable[..., Service],
    service_env: Callable[..., dict[str, str]],
) -> None:
    service = services(service_env(pull="1s"))
    service.wait_for_message("active (")
    sent = time.monotonic()
    assert service.stop(signal.SIGINT) == 0, service.output()
    assert time.monotonic() - sent < 15
    lines = service.snapshot()
    handled = _position(lines, "SIGINT: finishing the batch in hand, then stopping")
    after = [line for line in lines[handled:] if line.job is not None]
    assert len(after) <= 1, service.output()  # the stage in hand; no later stage starts
    for line in after:
        assert line.data["error"] in {None, "stopped after the batch in hand (SIGINT)"}
    jobs = [line.job for line in service.jobs()]
    assert jobs == STAGES[: len(jobs)]
    assert len(jobs) < len(STAGES)  # the cycle ended early
    messages = [line.message for line in service.snapshot() if line.message]
    assert "SIGINT: finishing the batch in hand, then stopping" in messages
    assert messages[-1] == "stopped (SIGINT)"


BAD_SETTINGS = {
    # The settings (CONNECTOR_...), the job that meets the error (None: every mapping and
    # target is checked before the first cycle, so none), what its error says.
    "salesforce mapping file missing": (
        {"SALESFORCE__MAPPING_FILE": "{missing}"},
        None,
        "cannot read {missing}: No such file or directory",
    ),
    "private key file missing": (
        {
            "SALESFORCE__AUTH": "jwt",
            "SALESFORCE__USERNAME": "integration@example.com",
            "SALESFORCE__CLIENT_ID": "connected-app",
            "SALESFORCE__PRIVATE_KEY_FILE": "{missing}",
        },
        None,
        "salesforce.private_key_file: cannot read {missing}: No such file or directory",
    ),
    "accounting mapping file missing": (  # the accounting target is checked before a cycle
        {"ACCOUNTING__MAPPING_FILE": "{missing}"},
        None,
        "cannot read {missing}: No such file or directory",
    ),
}


@pytest.mark.sandbox(seed="demo")
@pytest.mark.parametrize("case", list(BAD_SETTINGS))
def test_a_bad_setting_stops_the_service_with_exit_code_2(
    services: Callable[..., Service],
    service_env: Callable[..., dict[str, str]],
    tmp_path: Path,
    database_url: str,
    case: str,
) -> None:
    """A configuration error cannot heal by itself: the job that meets it fails, naming the
    file, and the service stops with exit code 2 instead of failing at every run."""
    settings, failing, problem = BAD_SETTINGS[case]
    missing = tmp_path / "no-such-file.yaml"
    env = service_env(pull="1s")
    env.update({f"CONNECTOR_{k}": v.format(missing=missing) for k, v in settings.items()})
    service = services(env)

    if failing is None:
        service.wait_for(
            "the error", lambda lines: any(x.data.get("level") == "error" for x in lines)
        )
    else:
        service.wait_for(f"the {failing} run", lambda lines: any(x.job == failing for x in lines))
    try:
        code = service.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running 10 s after the configuration error:\n{service.output()}")
    service.kill()  # reads the rest of stderr

    assert code == 2, service.output()
    lines = service.snapshot()
    jobs = [line for line in lines if line.job is not None]
    ran = STAGES[: STAGES.index(failing) + 1] if failing else []
    assert [line.job for line in jobs] == ran
    problem = problem.format(missing=missing)
    if ran:
        assert all(line.data["ok"] for line in jobs[:-1])
        assert jobs[-1].data["ok"] is False
        assert jobs[-1].data["error"].startswith("configuration error: ")
        assert problem in jobs[-1].data["error"]
    errors = [line for line in lines if line.data.get("level") == "error" and line.message]
    assert len(errors) == 1, service.output()
    assert errors[0].message.startswith("configuration error, stopping: ")
    assert problem in errors[0].message
    assert _job_runs(database_url) == dict.fromkeys(ran, 1)


def test_an_invalid_schedule_stops_run_with_exit_code_2(tmp_path: Path) -> None:
    env = environment(
        tmp_path, database_url=f"sqlite:///{tmp_path / 'c.db'}", schedule__pull="every five"
    )
    done = subprocess.run(
        [sys.executable, "-m", "connector", "run"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("configuration error: invalid settings")
    assert "schedule.pull (CONNECTOR_SCHEDULE__PULL): 'every five' is neither" in done.stderr
    assert not (tmp_path / "c.db").exists()  # refused before touching the database
