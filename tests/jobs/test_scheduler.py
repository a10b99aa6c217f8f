"""The scheduler of ``connector run``: seven jobs on the triggers of ``[schedule]``, one at a time,
and the validation of the schedule settings."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

import jobs.scheduler as scheduler_module
from connector.db.engine import make_engine, session_factory
from connector.errors import ConfigError
from connector.settings import ScheduleSettings, load_settings, parse_interval
from connector.sync.cycle import JobRun, Runtime
from jobs.accounting import push, read_payments
from jobs.billing import bill, close_revenue
from jobs.dunning import dunning
from jobs.pull import pull
from jobs.scheduler import JOBS, build_scheduler, next_run, schedule_of, trigger
from jobs.send import send
from jobs.webhooks import webhooks
from jobs.writeback import write_back

JOB_IDS = [
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
SATURDAY = datetime(2026, 11, 21, 8, 25, 30, tzinfo=UTC)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("CONNECTOR_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no config/connector.toml here


def _runtime(**schedule: Any) -> Runtime:
    settings = load_settings(database_url="sqlite://", schedule=schedule)
    return Runtime(session_factory(make_engine("sqlite://")), settings)


@pytest.fixture
def started() -> Iterator[list[BackgroundScheduler]]:
    """Schedulers to shut down after the test, whatever happens."""
    schedulers: list[BackgroundScheduler] = []
    yield schedulers
    for scheduler in schedulers:
        if scheduler.running:
            scheduler.shutdown(wait=True)


def _next_ten_past_midnight(now: datetime) -> datetime:
    today = now.replace(hour=0, minute=10, second=0, microsecond=0)
    return today if today > now else today + timedelta(days=1)


def test_the_scheduler_has_the_nine_jobs_on_their_triggers(
    started: list[BackgroundScheduler],
) -> None:
    runtime = _runtime(
        pull="30s",
        bill="5m",
        push="1h",
        payments="1d",
        send="2h",
        writeback="15m",
        revenue="10 0 * * *",
        dunning="2h",
        webhooks="30s",
        misfire_grace_seconds=120,
    )
    errors: list[ConfigError] = []
    before = datetime.now(UTC)
    scheduler = build_scheduler(runtime, errors.append)
    assert not scheduler.running  # built, not started
    assert str(scheduler.timezone) == "UTC"
    scheduler.start(paused=True)  # job defaults apply when the scheduler takes the jobs
    started.append(scheduler)
    after = datetime.now(UTC)

    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert sorted(jobs) == sorted(JOB_IDS)
    assert len(scheduler.get_jobs()) == 9
    expected_work = {
        "pull": pull,
        "bill": bill,
        "revenue": close_revenue,
        "push": push,
        "payments": read_payments,
        "send": send,
        "writeback": write_back,
        "dunning": dunning,
        "webhooks": webhooks,
    }
    intervals = {
        "pull": timedelta(seconds=30),
        "bill": timedelta(minutes=5),
        "push": timedelta(hours=1),
        "payments": timedelta(days=1),
        "send": timedelta(hours=2),
        "writeback": timedelta(minutes=15),
        "dunning": timedelta(hours=2),
        "webhooks": timedelta(seconds=30),
    }
    for name, job in jobs.items():
        assert job.name == name
        assert job.coalesce is True
        assert job.max_instances == 1
        assert job.misfire_grace_time == 120
        assert job.func is scheduler_module._guarded
        assert job.args == (expected_work[name], runtime, errors.append)
        if name in intervals:
            assert isinstance(job.trigger, IntervalTrigger)
            assert job.trigger.interval == intervals[name]
            assert str(job.trigger.timezone) == "UTC"
            # The first run is one interval after the start (the service ran a full cycle).
            assert before + intervals[name] <= job.next_run_time
            assert job.next_run_time <= after + intervals[name] + timedelta(seconds=1)
    revenue = jobs["revenue"].trigger
    assert isinstance(revenue, CronTrigger)
    assert {f.name: str(f) for f in revenue.fields} == {
        "year": "*",
        "month": "*",
        "day": "*",
        "week": "*",
        "day_of_week": "*",
        "hour": "0",
        "minute": "10",
        "second": "0",
    }
    assert str(revenue.timezone) == "UTC"
    assert jobs["revenue"].next_run_time in {
        _next_ten_past_midnight(before),
        _next_ten_past_midnight(after),
    }
    assert errors == []


def test_the_default_schedule(started: list[BackgroundScheduler]) -> None:
    runtime = _runtime()
    assert schedule_of(runtime.settings.schedule) == {
        "pull": "5m",
        "bill": "15m",
        "revenue": "10 0 * * *",
        "push": "15m",
        "payments": "15m",
        "send": "15m",
        "writeback": "15m",
        "dunning": "1h",
        "webhooks": "1m",
    }
    assert list(JOBS) == JOB_IDS
    assert runtime.settings.schedule.misfire_grace_seconds == 300
    assert runtime.settings.schedule.standby_seconds == 15.0
    scheduler = build_scheduler(runtime, lambda _: None)
    scheduler.start(paused=True)
    started.append(scheduler)
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert jobs["pull"].trigger.interval == timedelta(minutes=5)
    assert jobs["bill"].trigger.interval == timedelta(minutes=15)
    assert isinstance(jobs["revenue"].trigger, CronTrigger)
    assert {job.misfire_grace_time for job in jobs.values()} == {300}


@pytest.mark.parametrize(
    ("spec", "interval"),
    [
        ("30s", timedelta(seconds=30)),
        ("5m", timedelta(minutes=5)),
        ("1h", timedelta(hours=1)),
        ("1d", timedelta(days=1)),
        (" 90s ", timedelta(seconds=90)),
    ],
)
def test_intervals(spec: str, interval: timedelta) -> None:
    made = trigger(spec)
    assert isinstance(made, IntervalTrigger)
    assert made.interval == interval
    assert str(made.timezone) == "UTC"


@pytest.mark.parametrize(
    ("spec", "last", "expected"),
    [
        # an interval ticks on from its last start: the next tick after now
        (
            "15m",
            datetime(2026, 11, 21, 8, 0, tzinfo=UTC),
            datetime(2026, 11, 21, 8, 30, tzinfo=UTC),
        ),
        (
            "15m",
            datetime(2026, 11, 21, 8, 14, tzinfo=UTC),
            datetime(2026, 11, 21, 8, 29, tzinfo=UTC),
        ),
        (
            "1h",
            datetime(2026, 11, 20, 23, 50, tzinfo=UTC),
            datetime(2026, 11, 21, 8, 50, tzinfo=UTC),
        ),
        # never run: one interval from now, as a scheduler starting now would
        ("5m", None, datetime(2026, 11, 21, 8, 25, 30, tzinfo=UTC)),
        # a crontab line: its next time, whenever the last run was
        ("10 0 * * *", None, datetime(2026, 11, 22, 0, 10, tzinfo=UTC)),
        (
            "10 0 * * *",
            datetime(2026, 11, 21, 0, 10, tzinfo=UTC),
            datetime(2026, 11, 22, 0, 10, tzinfo=UTC),
        ),
    ],
)
def test_next_run(spec: str, last: datetime | None, expected: datetime) -> None:
    now = datetime(2026, 11, 21, 8, 20, 30, tzinfo=UTC)
    assert next_run(spec, last, now) == expected


@pytest.mark.parametrize(
    ("spec", "after", "fires"),
    [
        ("10 0 * * *", SATURDAY, datetime(2026, 11, 22, 0, 10, tzinfo=UTC)),
        ("*/15 * * * *", SATURDAY, datetime(2026, 11, 21, 8, 30, tzinfo=UTC)),
        ("0 6 1 * *", SATURDAY, datetime(2026, 12, 1, 6, 0, tzinfo=UTC)),
        ("30 23 * 2 *", SATURDAY, datetime(2027, 2, 1, 23, 30, tzinfo=UTC)),
    ],
)
def test_crontab_lines_in_utc(spec: str, after: datetime, fires: datetime) -> None:
    made = trigger(spec)
    assert isinstance(made, CronTrigger)
    assert made.get_next_fire_time(None, after) == fires


@pytest.mark.parametrize(
    ("spec", "weekday"),
    [
        ("0 9 * * 1", date(2026, 11, 23)),  # 1 is Monday in crontab
        ("0 9 * * 5", date(2026, 11, 27)),  # Friday
        ("0 9 * * 0", date(2026, 11, 22)),  # Sunday
        ("0 9 * * 7", date(2026, 11, 22)),  # Sunday too
        ("0 9 * * mon", date(2026, 11, 23)),
        ("0 9 * * 1-5", date(2026, 11, 23)),  # Monday to Friday
    ],
)
def test_crontab_weekdays_count_from_sunday(spec: str, weekday: date) -> None:
    """A crontab line (as the settings promise) numbers weekdays 0-7 from Sunday; APScheduler
    3's ``CronTrigger.from_crontab`` numbers them from Monday (its issue 286)."""
    ScheduleSettings(revenue=spec)  # a valid crontab line is accepted
    fires = trigger(spec).get_next_fire_time(None, SATURDAY)
    assert fires == datetime.combine(weekday, datetime.min.time(), UTC).replace(hour=9)


def test_parse_interval() -> None:
    assert parse_interval("30s") == {"seconds": 30}
    assert parse_interval("5 m") == {"minutes": 5}
    assert parse_interval("10 0 * * *") is None
    assert parse_interval("5x") is None
    assert parse_interval("1.5h") is None


def test_schedule_values_are_normalized() -> None:
    schedule = ScheduleSettings(pull=" 5m ", revenue="10  0 *  * *")
    assert (schedule.pull, schedule.revenue) == ("5m", "10 0 * * *")


NEITHER = (
    "is neither an interval (30s, 5m, 1h, 1d) nor a crontab line of five fields "
    "(minute hour day month weekday)"
)


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        (
            "CONNECTOR_SCHEDULE__PULL",
            "every five",
            f"schedule.pull ({{env}}): 'every five' {NEITHER}",
        ),
        ("CONNECTOR_SCHEDULE__WRITEBACK", "5x", f"schedule.writeback ({{env}}): '5x' {NEITHER}"),
        (
            "CONNECTOR_SCHEDULE__REVENUE",
            "10 0 * *",
            f"schedule.revenue ({{env}}): '10 0 * *' {NEITHER}",
        ),
        (
            "CONNECTOR_SCHEDULE__BILL",
            "61 * * * *",
            "schedule.bill ({env}): '61 * * * *' is not a valid crontab line: ",
        ),
        (
            "CONNECTOR_SCHEDULE__PUSH",
            "0 25 * * *",
            "schedule.push ({env}): '0 25 * * *' is not a valid crontab line: ",
        ),
        (
            "CONNECTOR_SCHEDULE__PAYMENTS",
            "0s",
            "schedule.payments ({env}): '0s': an interval must be longer than zero",
        ),
        (
            "CONNECTOR_SCHEDULE__PULL",
            "0m",
            "schedule.pull ({env}): '0m': an interval must be longer than zero",
        ),
        (
            "CONNECTOR_SCHEDULE__MISFIRE_GRACE_SECONDS",
            "0",
            "schedule.misfire_grace_seconds ({env}): Input should be greater than or equal to 1",
        ),
        (
            "CONNECTOR_SCHEDULE__STANDBY_SECONDS",
            "0",
            "schedule.standby_seconds ({env}): Input should be greater than 0",
        ),
        (
            "CONNECTOR_SCHEDULE__STANDBY_SECONDS",
            "61",
            "schedule.standby_seconds ({env}): Input should be less than or equal to 60",
        ),
    ],
)
def test_invalid_schedules_name_the_key_and_the_value(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, problem: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as raised:
        load_settings()
    message = str(raised.value)
    assert message.startswith("invalid settings:\n")
    assert f"  {problem.format(env=variable)}" in message
    assert message.count("\n") == 1  # one problem, one line


def test_an_invalid_schedule_in_the_file_names_the_file(tmp_path: Path) -> None:
    config = tmp_path / "connector.toml"
    config.write_text('[schedule]\npull = "every five"\nbill = "5m"\n')
    with pytest.raises(ConfigError) as raised:
        load_settings(config)
    assert str(raised.value) == (
        f"invalid settings (from {config} or CONNECTOR_* environment variables):\n"
        f"  schedule.pull (CONNECTOR_SCHEDULE__PULL): 'every five' {NEITHER}"
    )


def test_jobs_run_one_at_a_time_and_a_configuration_error_is_handed_over(
    monkeypatch: pytest.MonkeyPatch, started: list[BackgroundScheduler]
) -> None:
    runtime = _runtime(**dict.fromkeys(JOB_IDS, "1s"))
    guard = threading.Lock()
    runs: list[tuple[str, int]] = []
    running = [0, 0]  # now, at most
    failure = ConfigError("mapping file mappings/missing.yaml does not exist")

    def fake(name: str) -> Any:
        def work(given: Runtime, as_of: date | None) -> JobRun:
            assert given is runtime
            assert as_of is None  # the job picks today
            with guard:
                running[0] += 1
                running[1] = max(running)
                runs.append((name, threading.get_ident()))
            time.sleep(0.05)
            with guard:
                running[0] -= 1
            if name == "revenue":
                raise failure
            return JobRun(name, SATURDAY.date())

        return work

    for name in JOB_IDS:
        monkeypatch.setitem(JOBS, name, fake(name))
    errors: list[ConfigError] = []
    scheduler = build_scheduler(runtime, errors.append)
    scheduler.start()
    started.append(scheduler)

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with guard:
            done = {name for name, _ in runs} == set(JOB_IDS) and len(runs) >= 12
        if done:
            break
        time.sleep(0.05)
    runtime.stop.set("test")  # a set stop request: due jobs do not start any more
    time.sleep(0.2)  # let the job in hand end
    with guard:
        after_stop = len(runs)
    time.sleep(1.5)
    scheduler.shutdown(wait=True)

    assert {name for name, _ in runs} == set(JOB_IDS)
    assert len(runs) >= 12
    assert running[1] == 1  # never two jobs at once
    assert len({thread for _, thread in runs}) == 1  # one worker thread
    assert len(runs) == after_stop
    revenue_runs = sum(1 for name, _ in runs if name == "revenue")
    assert errors == [failure] * revenue_runs
