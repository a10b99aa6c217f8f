"""Salesforce record ids: 15 case-sensitive characters plus a 3-character checksum suffix.

An id starts with its object's key prefix (``001`` Account, ``006`` Opportunity, ...). The
suffix makes the 18-character form safe in case-insensitive systems: each of its characters
encodes which of five id characters are upper case.
"""

from __future__ import annotations

import functools
import string

ALPHABET = string.digits + string.ascii_uppercase + string.ascii_lowercase  # base 62
SUFFIX_ALPHABET = string.ascii_uppercase + "012345"
POD = "5g"


def checksum(id15: str) -> str:
    suffix = ""
    for start in range(0, 15, 5):
        bits = 0
        for offset, char in enumerate(id15[start : start + 5]):
            if "A" <= char <= "Z":
                bits |= 1 << offset
        suffix += SUFFIX_ALPHABET[bits]
    return suffix


def make_id(prefix: str, number: int) -> str:
    """The 18-character id of the ``number``-th record (from 1) of the object with ``prefix``."""
    digits = ""
    while number:
        number, rest = divmod(number, 62)
        digits = ALPHABET[rest] + digits
    body = f"{prefix}{POD}{digits.rjust(10, '0')}"
    return body + checksum(body)


def number_of(record_id: str) -> int:
    """The number ``make_id`` made ``record_id`` from."""
    number = 0
    for char in record_id[5:15]:
        number = number * 62 + ALPHABET.index(char)
    return number


@functools.lru_cache(maxsize=1 << 16)
def normalize_id(value: str) -> str | None:
    """The 18-character form of a 15- or 18-character id, or None when it is not a valid id."""
    if len(value) not in (15, 18) or not all(char in ALPHABET for char in value):
        return None
    body = value[:15]
    expected = checksum(body)
    if len(value) == 18 and value[15:].upper() != expected:
        return None
    return body + expected
