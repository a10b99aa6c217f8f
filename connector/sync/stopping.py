"""Stopping between batches.

Long work (a pull, a billing run, a push, a write-back, a revenue close) commits in batches and
calls a checkpoint between them. A checkpoint that raises :class:`StopRequestedError` ends the
work there, with every batch before it committed; the next run resumes from the durable state.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from connector.errors import StopRequestedError

Checkpoint = Callable[[], None]


def no_stop() -> None:
    """The checkpoint of work that nobody stops."""


class StopRequest:
    """Set once (by a signal handler, say); every checkpoint after that raises. A request made
    with a ``parent`` is set, with the parent's reason, when its parent is."""

    def __init__(self, parent: StopRequest | None = None) -> None:
        self._event = threading.Event()
        self._children: list[StopRequest] = []
        self.reason = ""
        if parent is not None:
            parent._children.append(self)
            if parent.is_set():
                self.set(parent.reason)

    def set(self, reason: str) -> None:
        if self._event.is_set():
            return
        self.reason = reason
        self._event.set()
        for child in self._children:
            child.set(reason)

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, seconds: float) -> bool:
        """Wait up to ``seconds``; True once the request is set."""
        return self._event.wait(seconds)

    def checkpoint(self) -> None:
        if self._event.is_set():
            raise StopRequestedError(f"stopped after the batch in hand ({self.reason})")
