"""Text comparison as Salesforce does it: case-insensitive for every script, not only A-Z.

SQLite's NOCASE and LIKE fold ASCII letters only, so the org registers :func:`compare` as the
``SF_NOCASE`` collation of its text columns and :func:`like` as ``sf_like(value, pattern)``.
"""

from __future__ import annotations

import functools
import re


def compare(left: str, right: str) -> int:
    """Collation: order by the case-folded text, then by the text itself (a stable order)."""
    folded_left, folded_right = left.casefold(), right.casefold()
    if folded_left != folded_right:
        return -1 if folded_left < folded_right else 1
    return 0


@functools.lru_cache(maxsize=256)
def _pattern(pattern: str) -> re.Pattern[str]:
    """A SOQL LIKE pattern as a regular expression: ``%`` any text, ``_`` one character,
    ``\\%`` ``\\_`` ``\\\\`` the characters themselves."""
    parts = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern):
            parts.append(re.escape(pattern[index + 1]))
            index += 2
            continue
        parts.append(".*" if char == "%" else "." if char == "_" else re.escape(char))
        index += 1
    return re.compile("".join(parts), re.DOTALL)


def like(value: str | None, pattern: str | None) -> int | None:
    if value is None or pattern is None:
        return None
    return int(_pattern(pattern.casefold()).fullmatch(value.casefold()) is not None)
