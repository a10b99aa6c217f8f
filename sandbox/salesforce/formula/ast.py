"""The parsed form of a formula: what the parser produces and the translator reads.

Names keep the spelling of the formula; the translator resolves them against the object,
case-insensitively, as Salesforce does.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class Literal:
    """A number, a text, TRUE or FALSE, or NULL (None)."""

    value: Decimal | str | bool | None


@dataclass(frozen=True, slots=True)
class Name:
    """A field of the record (``Due_Date__c``) or of a parent (``Account__r.Name``)."""

    path: tuple[str, ...]

    @property
    def text(self) -> str:
        return ".".join(self.path)


@dataclass(frozen=True, slots=True)
class Call:
    """A function call; ``name`` as written (functions are matched case-insensitively)."""

    name: str
    args: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Binary:
    """``left op right``; ``op`` is one of ``= != < <= > >= + - * /`` (``==`` becomes ``=``
    and ``<>`` becomes ``!=``)."""

    op: str
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Negate:
    operand: Node


Node = Literal | Name | Call | Binary | Negate
