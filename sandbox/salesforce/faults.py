"""Fault injection: make the sandbox fail the way a real org fails, on purpose.

A rule fails the next ``count`` matching calls, or a ``rate`` (0..1) of them, with one kind of
fault, optionally only for calls whose API path starts with ``path`` (``query``,
``composite/sobjects``, ``sobjects/Opportunity``) or that touch ``sobject``. Rules are set at
start (``--fault``) and changed at run time through ``/sandbox/faults``.

Kinds: ``500`` and ``503`` (server errors), ``request_limit`` (403 REQUEST_LIMIT_EXCEEDED),
``expired_session`` (401 INVALID_SESSION_ID), ``lock_row`` (UNABLE_TO_LOCK_ROW: per record for
sObject Collections, else a 400), ``query_timeout`` (the next queries only: a REST query or
queryAll answers 400 QUERY_TIMEOUT, a Bulk API 1.0 query batch ends Failed with it),
``slow`` (answers after ``delay`` seconds), and ``drop`` (the connection closes without an
answer: ``when: before`` the call is applied, or ``after`` it, when the client cannot know
whether its write happened).

Bulk API 1.0 calls (``/services/async/NN.0/...``) are matched by the path ``async/`` followed
by their path under that prefix (``async/job``).
"""

from __future__ import annotations

import random
import threading
from dataclasses import asdict, dataclass
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from connector.errors import ConfigError

FaultKind = Literal[
    "500", "503", "request_limit", "expired_session", "lock_row", "query_timeout", "slow", "drop"
]


class FaultRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: FaultKind
    count: int | None = Field(default=None, ge=1)
    rate: float | None = Field(default=None, gt=0, le=1)
    path: str | None = None
    sobject: str | None = None
    delay: float = Field(default=2.0, ge=0, le=600)
    when: Literal["before", "after"] = "before"

    @model_validator(mode="after")
    def _count_or_rate(self) -> FaultRule:
        if (self.count is None) == (self.rate is None):
            raise ValueError("give exactly one of count (the next N calls) or rate (a fraction)")
        if self.when == "after" and self.kind != "drop":
            raise ValueError("when: after applies to drop only (other faults answer instead)")
        return self

    def matches(self, path: str, sobjects: set[str]) -> bool:
        if self.path:
            wanted = [part for part in self.path.lower().split("/") if part]
            if path.lower().split("/")[: len(wanted)] != wanted:
                return False
        return not self.sobject or self.sobject.lower() in sobjects


@dataclass
class Injected:
    """A fault chosen for one call."""

    kind: str
    delay: float
    when: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


RuleT = TypeVar("RuleT", bound=BaseModel)


def parse_pairs(text: str, model: type[RuleT], option: str = "--fault") -> RuleT:
    """A rule of ``model`` from the command line's ``key=value,key=value`` form."""
    values: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep:
            raise ConfigError(f"{option} {text}: expected key=value pairs, got {part!r}")
        values[key.strip()] = value.strip()
    try:
        return model.model_validate(values)
    except ValueError as error:
        raise ConfigError(f"{option} {text}: {error}") from None


def parse_rule(text: str) -> FaultRule:
    """A rule from the command line: ``kind=503,count=3,path=query``."""
    return parse_pairs(text, FaultRule)


class Faults:
    def __init__(self, rules: list[FaultRule] | None = None, seed: int = 0) -> None:
        # Copies: a rule's count is used up here, never in the caller's object.
        self._rules: list[FaultRule] = [rule.model_copy() for rule in rules or []]
        self._random = random.Random(seed)  # noqa: S311 - fault sampling, not security
        self._lock = threading.Lock()

    def add(self, rule: FaultRule) -> None:
        with self._lock:
            self._rules.append(rule.model_copy())

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def rules(self) -> list[dict[str, Any]]:
        with self._lock:
            return [rule.model_dump(exclude_none=True) for rule in self._rules]

    @property
    def active(self) -> bool:
        return bool(self._rules)

    def pick(self, path: str, sobjects: set[str], *, query: bool = False) -> Injected | None:
        """The fault for this call, if a rule fires (a counted rule is used up as it fires).
        A ``query_timeout`` rule fires on calls that run a query (``query``) only."""
        with self._lock:
            for rule in list(self._rules):
                if not rule.matches(path, sobjects) or (rule.kind == "query_timeout" and not query):
                    continue
                if rule.count is not None:
                    rule.count -= 1
                    if rule.count == 0:
                        self._rules.remove(rule)
                elif self._random.random() >= (rule.rate or 0):
                    continue
                return Injected(rule.kind, rule.delay, rule.when)
        return None
