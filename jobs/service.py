"""``connector run``: the scheduler in the foreground, one active instance per database, with
the HTTP API and the console beside it (``connector serve``: those alone).

The service stands by until it holds the database's actor lock (see
:mod:`connector.db.actor_lock`), trying again every ``schedule.standby_seconds``. Once active
it runs one full cycle (everything that fell due while no one was active), then the scheduled
jobs, and checks as often that it still holds the lock. SIGTERM or SIGINT ends the job in
hand after its current batch, and the service exits 0. A lost lock stops the jobs the same
way and the service stands by again. A configuration error stops it with exit code 2.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from types import FrameType

from connector.api.instance import Instance
from connector.db.actor_lock import ActorLock, actor_lock
from connector.db.engine import make_engine, session_factory
from connector.db.migrate import ensure_schema
from connector.db.types import utc_now
from connector.errors import ConfigError
from connector.settings import Settings
from connector.sync.cycle import JobRun, Runtime, run_cycle
from connector.sync.stopping import StopRequest
from jobs.scheduler import build_scheduler, schedule_of

log = logging.getLogger("connector.service")

EXIT_OK, EXIT_CONFIG = 0, 2


def serve(settings: Settings, stop: StopRequest, *, scheduling: bool = True) -> int:
    """Stand by, act while holding the lock, and return the exit code once ``stop`` is set.
    The API and the console are served all the while when ``[api] enabled``; without
    ``scheduling`` (``connector serve``) only they are, and this instance always stands by."""
    engine = make_engine(
        settings.database_url.get_secret_value(),
        lock_timeout=settings.database_lock_timeout_seconds,
    )
    server = None
    try:
        ensure_schema(engine)
        factory = session_factory(engine)
        instance = Instance(engine, factory, settings)
        if settings.api.enabled or not scheduling:
            from connector.api.server import ApiServer  # noqa: PLC0415 - only when serving

            server = ApiServer(instance)
            server.start()
        if not scheduling:
            while not stop.wait(settings.schedule.standby_seconds):
                pass
            log.info("stopped (%s)", stop.reason)
            return EXIT_OK
        lock = actor_lock(engine)
        waiting = False
        while not stop.is_set():
            if not lock.try_acquire():
                if not waiting:
                    log.info("standing by: another instance holds the %s", lock.description)
                    waiting = True
                stop.wait(settings.schedule.standby_seconds)
                continue
            waiting = False
            try:
                code = _act(Runtime(factory, settings, StopRequest(parent=stop)), lock, instance)
            finally:
                instance.stand_by()
                lock.release()
            if code is not None:
                return code
        return EXIT_OK
    finally:
        if server is not None:
            server.stop()
        engine.dispose()


def _act(runtime: Runtime, lock: ActorLock, instance: Instance) -> int | None:
    """Run the jobs until a stop (the exit code) or a lost lock (None: stand by again)."""
    settings = runtime.settings
    log.info(
        "active (%s); schedule: %s",
        lock.description,
        ", ".join(f"{name} {spec}" for name, spec in schedule_of(settings.schedule).items()),
    )
    failures: list[ConfigError] = []

    def config_failed(error: ConfigError) -> None:
        log.error("configuration error, stopping: %s", error)
        failures.append(error)
        runtime.stop.set("configuration error")

    def run_stage(stage: str, as_of: date | None) -> JobRun:
        with runtime.run_lock:
            return runtime.run(stage, as_of)

    instance.activate(run_stage)
    try:
        with runtime.run_lock:
            run_cycle(runtime.factory, settings, utc_now().date(), runtime=runtime)
    except ConfigError as error:
        config_failed(error)
        return EXIT_CONFIG
    scheduler = build_scheduler(runtime, config_failed)
    scheduler.start()
    try:
        while not runtime.stop.wait(settings.schedule.standby_seconds):
            if not lock.still_held():
                log.error("lost the %s; standing by", lock.description)
                runtime.stop.set("lost the lock")
                return None
    finally:
        runtime.stop.set("shutting down")
        scheduler.shutdown(wait=True)  # the job in hand ends after its current batch
    if failures:
        return EXIT_CONFIG
    log.info("stopped (%s)", runtime.stop.reason)
    return EXIT_OK


@contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    """A stop request set by the first SIGTERM or SIGINT; a second one stops at once."""
    stop = StopRequest()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def handle(signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        log.info("%s: finishing the batch in hand, then stopping", name)
        stop.set(name)
        signal.signal(signum, signal.SIG_DFL)  # a second signal ends the process at once

    for sig in previous:
        signal.signal(sig, handle)
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
