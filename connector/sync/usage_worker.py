"""Items made in a second process (the machine's other core) and handed over in order.

:func:`made_apart` forks a child that runs ``produce()`` and puts each item on a bounded
queue, pickled (so that the memory stays flat: the child waits while the queue is full); the
parent takes them in order. An error in the child is raised in the parent (its message kept);
a child that dies without a word (killed, out of memory) is reported as such. When the parent
stops taking items (an error of its own, Ctrl-C), the child is ended and waited for; a child
whose parent died ends itself. Ctrl-C is the parent's to handle: the child ignores it.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import pickle
import queue
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from connector.errors import ConnectorError

T = TypeVar("T")
DEPTH = 4  # items ready ahead of the parent, at most
POLL_SECONDS = 1.0
ITEM, DONE, ERROR = "item", "done", "error"


def can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


def cores() -> int:
    """The cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1  # pragma: no cover - not Linux


@contextmanager
def made_apart(produce: Callable[[], Iterator[T]], what: str) -> Iterator[Iterator[T]]:
    """The items of ``produce()``, made in a child process (forked: ``produce`` needs not be
    picklable, its items must be). ``what`` names the work in messages."""
    context = multiprocessing.get_context("fork")
    channel: Any = context.Queue(DEPTH)
    child = context.Process(target=_child, args=(produce, channel, os.getpid()), daemon=True)
    child.start()
    try:
        yield _received(channel, child, what)
    finally:
        if child.is_alive():
            child.terminate()
        child.join()
        channel.close()
        channel.join_thread()


def _received(channel: Any, child: Any, what: str) -> Iterator[Any]:
    while True:
        try:
            kind, payload = channel.get(timeout=POLL_SECONDS)
        except queue.Empty:
            if child.is_alive():
                continue
            try:  # what it put just before it ended
                kind, payload = channel.get(timeout=POLL_SECONDS)
            except queue.Empty:
                raise ConnectorError(
                    f"{what} stopped unexpectedly (exit code {child.exitcode})"
                ) from None
        if kind == ITEM:
            yield pickle.loads(payload)  # noqa: S301 - our own child's
        elif kind == DONE:
            return
        else:
            raise pickle.loads(payload)  # noqa: S301 - our own child's


def _child(produce: Callable[[], Iterator[Any]], channel: Any, parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    gc.freeze()  # what it was forked with is the parent's: never collected here, nor copied
    try:
        for item in produce():
            _put(channel, (ITEM, pickle.dumps(item, pickle.HIGHEST_PROTOCOL)), parent)
    except Exception as error:  # handed to the parent, which raises it
        _put(channel, (ERROR, _pickled(error)), parent)
    else:
        _put(channel, (DONE, None), parent)


def _put(channel: Any, message: tuple[str, bytes | None], parent: int) -> None:
    """Put ``message``, waiting while the queue is full; end when the parent is gone."""
    while True:
        try:
            channel.put(message, timeout=POLL_SECONDS)
            return
        except queue.Full:
            if os.getppid() != parent:
                os._exit(1)


def _pickled(error: Exception) -> bytes:
    """The error as it can be raised in the parent: itself, or its message."""
    try:
        data = pickle.dumps(error, pickle.HIGHEST_PROTOCOL)
        pickle.loads(data)  # noqa: S301 - just made
    except Exception:
        data = pickle.dumps(ConnectorError(f"{type(error).__name__}: {error}"))
    return data
