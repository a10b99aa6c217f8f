"""The APScheduler that runs the jobs on the intervals or crontab lines of ``[schedule]``.

Jobs run one at a time (one worker thread), so they never compete for the database; a job
still running when it falls due again is not started twice (``max_instances`` 1), runs missed
while the service was busy or down are coalesced into one, and a run that cannot start within
``misfire_grace_seconds`` of its time is skipped until its next time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger

from connector.errors import ConfigError
from connector.settings import ScheduleSettings, crontab_trigger, parse_interval
from connector.sync.cycle import JobRun, Runtime
from jobs.accounting import push, read_payments
from jobs.billing import bill, close_revenue
from jobs.dunning import dunning
from jobs.pull import pull
from jobs.send import send
from jobs.webhooks import webhooks
from jobs.writeback import write_back

log = logging.getLogger(__name__)

Job = Callable[[Runtime, date | None], JobRun]
JOBS: dict[str, Job] = {  # in the order of a cycle
    "pull": pull,
    "payments": read_payments,
    "bill": bill,
    "revenue": close_revenue,
    "push": push,
    "dunning": dunning,
    "send": send,
    "webhooks": webhooks,
    "writeback": write_back,
}


def trigger(spec: str) -> BaseTrigger:
    """An interval (``5m``) or a crontab line (``10 0 * * *``), in UTC."""
    interval = parse_interval(spec)
    if interval is not None:
        return IntervalTrigger(timezone=UTC, **interval)
    return crontab_trigger(spec)


def next_run(spec: str, last_start: datetime | None, now: datetime) -> datetime | None:
    """When a job on ``spec`` runs next after ``now``: a crontab line's next time; an interval's
    next tick counted from its last start (``now`` plus the interval when it never ran, as a
    scheduler starting now would)."""
    interval = parse_interval(spec)
    if interval is None:
        return crontab_trigger(spec).get_next_fire_time(None, now)
    start = last_start if last_start is not None else now + timedelta(**interval)
    return IntervalTrigger(timezone=UTC, start_date=start, **interval).get_next_fire_time(None, now)


def schedule_of(schedule: ScheduleSettings) -> dict[str, str]:
    return {name: getattr(schedule, name) for name in JOBS}


def build_scheduler(
    runtime: Runtime, on_config_error: Callable[[ConfigError], None]
) -> BackgroundScheduler:
    """A scheduler (not started) with every job of ``runtime.settings.schedule``."""
    schedule = runtime.settings.schedule
    scheduler = BackgroundScheduler(
        executors={"default": ThreadPoolExecutor(max_workers=1)},
        job_defaults={
            "coalesce": True,
            "max_instances": 1,
            "misfire_grace_time": schedule.misfire_grace_seconds,
        },
        timezone=UTC,
    )
    for name, spec in schedule_of(schedule).items():
        scheduler.add_job(
            _guarded,
            trigger(spec),
            args=(JOBS[name], runtime, on_config_error),
            id=name,
            name=name,
        )
    return scheduler


def _guarded(job: Job, runtime: Runtime, on_config_error: Callable[[ConfigError], None]) -> None:
    """Run ``job``; the run is recorded and logged by the runtime. A configuration error
    cannot heal by itself, so it stops the service."""
    if runtime.stop.is_set():
        return
    try:
        with runtime.run_lock:  # a stage asked for through the API waits for it, and it for one
            job(runtime, None)
    except ConfigError as error:
        on_config_error(error)
