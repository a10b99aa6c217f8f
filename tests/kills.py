"""Kill a process (SIGKILL) at points of its progress observed from outside it.

A kill test proves something only when its kills land while the process does the work in
question: after it has written some of it and before it has written all of it. A wall-clock
time cannot promise that (a process spends its first second or two starting up), so a kill here
waits for a count the test reads itself (rows committed to the database, read over an engine of
the test's own; documents a fake service running in the test process holds) to reach a target
drawn at random strictly between the count before the process started and the total the work
ends at. Each kill reports the counts seen just before and just after it, so that a test can
show it landed mid-run.
"""

from __future__ import annotations

import logging
import random
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import create_engine, func, select, text

from connector.db.engine import make_engine, normalize_url
from connector.db.tables import Base

log = logging.getLogger(__name__)

POLL_SECONDS = 0.005
TIMEOUT_SECONDS = 60.0

Launch = Callable[[], "subprocess.Popen[bytes]"]


def _nothing() -> None:
    return None


@dataclass(frozen=True)
class Progress:
    """How far the work has got, ``count()`` of ``total``, read from outside the process.
    ``settle()`` waits, once the process is dead, for what it left in flight elsewhere (a
    write a fake service is still applying), so that the next count is final."""

    count: Callable[[], int]
    total: int
    settle: Callable[[], None] = field(default=_nothing)


@dataclass(frozen=True)
class Kill:
    start: int  # the count when the process was started
    target: int  # the count the kill waited for
    before: int  # the count seen just before the SIGKILL
    after: int  # the count once the process was dead
    total: int  # the count the work ends at

    @property
    def mid_run(self) -> bool:
        """The process had written some of its work, and not all of it, when it died."""
        return self.start < self.before <= self.after < self.total


@contextmanager
def rows_of(database_url: str, table: type[Base]) -> Iterator[Callable[[], int]]:
    """A count of the committed rows of ``table``, over an engine of the caller's own. On
    SQLite it reads without the connector's ``BEGIN IMMEDIATE``: such a reader queues for the
    write lock behind the writer it watches and sees nothing until the writer stops."""
    engine = create_engine(normalize_url(database_url))
    query = select(func.count()).select_from(table)

    def count() -> int:
        with engine.connect() as connection:
            return connection.scalar(query) or 0

    try:
        yield count
    finally:
        engine.dispose()


def empty(database_url: str) -> None:
    """Delete every row of the connector's tables; ids start again from 1."""
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            if engine.dialect.name == "postgresql":
                names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
                connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            else:
                for table in reversed(Base.metadata.sorted_tables):
                    connection.execute(table.delete())
    finally:
        engine.dispose()


def kill_when(
    process: subprocess.Popen[bytes], progress: Progress, start: int, target: int
) -> Kill | None:
    """SIGKILL ``process`` as soon as the count has reached ``target`` (read every 5 ms); the
    counts around the kill. None when the process ended on its own first: it was not killed.
    ``start``: the count before the process was started."""
    deadline = time.monotonic() + TIMEOUT_SECONDS
    while (before := progress.count()) < target:
        if process.poll() is not None:
            _ended(process, process.communicate()[1], target)
            return None
        if time.monotonic() > deadline:
            process.kill()
            process.communicate()
            raise AssertionError(
                f"the count stayed at {before} < {target} for {TIMEOUT_SECONDS:g} s"
            )
        time.sleep(POLL_SECONDS)
    process.send_signal(signal.SIGKILL)  # a no-op when it has already ended
    _, stderr = process.communicate()
    if process.returncode != -signal.SIGKILL:
        _ended(process, stderr, target)
        return None
    return Kill(start, target, before, progress.count(), progress.total)


def _ended(process: subprocess.Popen[bytes], stderr: bytes | None, target: int) -> None:
    """The process ended on its own: it must have succeeded."""
    if process.returncode != 0:
        raise AssertionError(
            f"the process failed (exit {process.returncode}) before the count reached {target}:\n"
            + (stderr or b"").decode(errors="replace")
        )


def kill_repeatedly(
    launch: Launch,
    progress: Progress,
    set_up: Callable[[], None],
    *,
    kills: int,
    attempts: int,
    rng: random.Random,
) -> list[Kill]:
    """Set the work up, then launch processes one after another, each killed at a count drawn
    with ``rng``, until ``kills`` of them died mid-run; each next process resumes what the last
    one left. The targets are spread over the run: the n-th kill's lies in the n-th of
    ``kills + 1`` equal parts of the work (the last part is left to the process that completes
    it). A process that ends before the poll sees its target, or is killed only after it has
    written everything, is not a kill that counts; as it has left nothing to interrupt, the
    work is set up again and the kills start again from none. Fails after ``attempts``
    processes. Returns the kills, in order."""
    landed: list[Kill] = []
    tried: list[str] = []
    set_up()
    initial = progress.count()
    for _ in range(attempts):
        start = progress.count()
        if progress.total - start < 2:  # no count strictly between start and total
            tried.append(f"ran to the end: set up again after {len(landed)} kills")
            log.info("%s", tried[-1])
            set_up()
            landed = []
            initial = start = progress.count()
        target = _target(rng, initial, start, progress.total, len(landed), kills)
        kill = kill_when(launch(), progress, start, target)
        progress.settle()
        tried.append(f"{kill}" if kill else f"ended before the count reached {target}")
        log.info("%s", tried[-1])
        if kill is not None and kill.mid_run:
            landed.append(kill)
            if len(landed) == kills:
                return landed
    raise AssertionError(
        f"{len(landed)} of {kills} kills landed mid-run in {attempts} processes:\n"
        + "\n".join(tried)
    )


def _target(  # noqa: PLR0917 - the run's counts
    rng: random.Random, initial: int, start: int, total: int, index: int, kills: int
) -> int:
    """A count strictly between ``start`` and ``total``: in the ``index``-th of ``kills + 1``
    equal parts of the run from ``initial`` to ``total``, or just past ``start`` when an
    earlier kill landed beyond that part."""
    width = (total - initial) / (kills + 1)
    low = min(max(start + 1, initial + int(index * width) + 1), total - 1)
    high = min(max(low, initial + int((index + 1) * width)), total - 1)
    return rng.randint(low, high)
