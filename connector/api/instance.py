"""What the HTTP API knows of the process serving it.

``connector run`` serves the API beside its scheduler: while it holds the database's actor lock
it is the *active* instance, and a stage asked for through the API runs under the scheduler's
own run lock (never beside a scheduled job). Otherwise it stands by, and so does
``connector serve``, which never schedules: a standby serves reads and health, and answers a
request that needs the active instance with 503.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from connector.errors import InstanceActiveError
from connector.settings import Settings

Role = Literal["active", "standby"]
StageRunner = Callable[[str, date | None], object]  # a stage and as-of → its JobRun


@dataclass
class Instance:
    """The database, the settings, and the scheduler's stage runner while this process is
    the active instance (None while it stands by)."""

    engine: Engine
    factory: sessionmaker[Session]
    settings: Settings
    _runner: StageRunner | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def role(self) -> Role:
        return "active" if self._runner is not None else "standby"

    def activate(self, runner: StageRunner) -> None:
        """This process now holds the actor lock; ``runner`` runs a stage under it."""
        with self._lock:
            self._runner = runner

    def stand_by(self) -> None:
        with self._lock:
            self._runner = None

    def run_stage(self, stage: str, as_of: date | None = None) -> object:
        """Run ``stage`` on the active instance (this one), or refuse."""
        with self._lock:
            runner = self._runner
        if runner is None:
            raise InstanceActiveError(
                "this instance is standing by: stages run on the active instance "
                "(`connector run` holding the database's actor lock); ask it, or try again "
                "once this one is active"
            )
        return runner(stage, as_of)
