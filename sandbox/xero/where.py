"""The ``where`` filter of GET requests, in the small subset this fake accepts.

``Field=="value"`` terms joined by ``AND`` or ``OR`` (AND binds tighter, no parentheses);
inside a value, ``\\"`` is a quote and ``\\\\`` a backslash. Values are compared exactly. Any
other syntax (functions, ``!=``, ``Contact.ContactID``, ``&&``) is refused, which is stricter
than Xero.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

FIELDS = frozenset(
    {
        "ContactNumber",
        "Name",
        "Reference",
        "InvoiceNumber",
        "CreditNoteNumber",
        "Narration",
        "Status",
        "Type",
        "PaymentType",
    }
)
_TERM = re.compile(r'\s*([A-Za-z][A-Za-z0-9.]*)\s*==\s*"((?:[^"\\]|\\.)*)"\s*')
_JOIN = re.compile(r"(AND|OR)(?=\s|$)\s*")
_ESCAPE = re.compile(r"\\(.)")


class WhereError(ValueError):
    """A ``where`` filter this fake does not understand."""


@dataclass(frozen=True)
class Where:
    """A filter in disjunctive form: any group matches when all its terms do."""

    groups: tuple[tuple[tuple[str, str], ...], ...]

    def matches(self, document: Mapping[str, Any]) -> bool:
        return any(
            all(document.get(field) == value for field, value in group) for group in self.groups
        )


def _unescape(raw: str, text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group(1) not in ('"', "\\"):
            raise WhereError(f"unsupported escape \\{match.group(1)} in where: {text}")
        return match.group(1)

    return _ESCAPE.sub(replace, raw)


def parse_where(text: str, allowed: Collection[str] = FIELDS) -> Where:
    """Parse a filter whose fields must all be in ``allowed``."""
    groups: list[list[tuple[str, str]]] = [[]]
    position = 0
    while True:
        term = _TERM.match(text, position)
        if term is None:
            rest = text[position:].strip() or "(end of filter)"
            raise WhereError(f'expected Field=="value" at {rest!r} in where: {text}')
        field, raw = term.groups()
        if field not in allowed:
            raise WhereError(
                f"where cannot filter on {field} here (fields: {', '.join(sorted(allowed))})"
            )
        groups[-1].append((field, _unescape(raw, text)))
        position = term.end()
        if position == len(text):
            return Where(tuple(tuple(group) for group in groups))
        join = _JOIN.match(text, position)
        if join is None:
            raise WhereError(f"expected AND or OR at {text[position:]!r} in where: {text}")
        if join.group(1) == "OR":
            groups.append([])
        position = join.end()
