"""Fault injection for the fake Xero: fail API calls the way Xero fails, on purpose.

A rule fails the next ``count`` matching calls, or a ``rate`` (0..1) of them, optionally only
calls with this ``method`` and whose path under ``/api.xro/2.0/`` starts with ``path``
(``Invoices``, ``CreditNotes``; any case). Kinds: ``500`` and ``503``; ``429`` (a minute-limit
refusal with ``Retry-After: retry_after``, not counted as a call); ``slow`` (answers after
``delay`` seconds, holding its concurrency slot); ``drop`` (the connection closes without an
answer: ``when: before`` nothing is applied, ``after`` the write is applied first).

Rules come from :class:`~sandbox.xero.server.XeroConfig` (``connector sandbox serve
--xero-fault kind=503,count=3,method=PUT,path=Invoices``, repeatable) or, at run time, from
``/sandbox/faults`` on the fake Xero with an access token: ``POST`` a rule or a list of rules,
``GET`` lists them, ``DELETE`` clears them.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sandbox.salesforce.faults import parse_pairs

XeroFaultKind = Literal["500", "503", "429", "slow", "drop"]


class XeroFaultRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: XeroFaultKind
    count: int | None = Field(default=None, ge=1)
    rate: float | None = Field(default=None, gt=0, le=1)
    method: str | None = None
    path: str | None = None
    delay: float = Field(default=2.0, ge=0, le=600)
    retry_after: int = Field(default=1, ge=1)
    when: Literal["before", "after"] = "before"

    @model_validator(mode="after")
    def _count_or_rate(self) -> XeroFaultRule:
        if (self.count is None) == (self.rate is None):
            raise ValueError("give exactly one of count (the next N calls) or rate (a fraction)")
        if self.when == "after" and self.kind != "drop":
            raise ValueError("when: after applies to drop only (other faults answer instead)")
        return self

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method.upper() != method.upper():
            return False
        if self.path:
            wanted = [part for part in self.path.lower().split("/") if part]
            if path.lower().strip("/").split("/")[: len(wanted)] != wanted:
                return False
        return True


def parse_xero_rule(text: str) -> XeroFaultRule:
    """A rule from the command line: ``kind=429,count=1,retry_after=30,path=Invoices``."""
    return parse_pairs(text, XeroFaultRule, "--xero-fault")


class XeroFaults:
    """The rules in force; safe to change while the server runs."""

    def __init__(self, rules: Iterable[XeroFaultRule | dict[str, Any]] = (), seed: int = 0) -> None:
        self._rules: list[XeroFaultRule] = []
        self._random = random.Random(seed)  # noqa: S311 - fault sampling, not security
        self._lock = threading.Lock()
        for rule in rules:
            self.add(rule)

    def add(self, rule: XeroFaultRule | dict[str, Any]) -> None:
        """Add a rule (a copy: its count is used up here, never in the caller's object)."""
        parsed = XeroFaultRule.model_validate(rule) if isinstance(rule, dict) else rule
        with self._lock:
            self._rules.append(parsed.model_copy())

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def rules(self) -> list[dict[str, Any]]:
        with self._lock:
            return [rule.model_dump(exclude_none=True) for rule in self._rules]

    def pick(self, method: str, path: str) -> XeroFaultRule | None:
        """The rule that fires for this call, if any (a counted rule is used up as it fires)."""
        with self._lock:
            for rule in list(self._rules):
                if not rule.matches(method, path):
                    continue
                if rule.count is not None:
                    rule.count -= 1
                    if rule.count == 0:
                        self._rules.remove(rule)
                elif self._random.random() >= (rule.rate or 0):
                    continue
                return rule
        return None
