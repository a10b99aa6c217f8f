"""Dates as the Xero API writes and reads them.

Responses carry ``/Date(1773532800000+0000)/`` (milliseconds since the epoch, UTC) with a
``DateString`` of ``2026-03-15T00:00:00``; the envelope's ``DateTimeUTC`` has no offset.
Requests send ``YYYY-MM-DD``. ``If-Modified-Since`` is a ``date-time`` in Xero's official OpenAPI
description (``parameters.ifModifiedSince``), that is RFC 3339 with its UTC offset
(``2026-03-01T10:00:00Z``, ``2026-03-01T11:00:00+01:00``); a value without an offset names no
instant and is refused. The HTTP date of RFC 9110 (``Sun, 01 Mar 2026 10:00:00 GMT``), which
carries its zone, is read too.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from email.utils import parsedate_to_datetime

_MS_DATE = re.compile(r"^/Date\((-?\d+)(?:[+-]\d{4})?\)/$")
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?P<offset>[Zz]|[+-]\d{2}:\d{2})?$"
)


class NoOffsetError(ValueError):
    """A date-time without its UTC offset: it names no instant."""


def date_ms(day: date) -> int:
    """Milliseconds since the epoch at midnight UTC of ``day``."""
    return int(datetime.combine(day, time(), UTC).timestamp()) * 1000


def datetime_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def ms_date(day: date) -> str:
    """``/Date(ms+0000)/`` for a calendar date."""
    return f"/Date({date_ms(day)}+0000)/"


def ms_timestamp(ms: int) -> str:
    """``/Date(ms+0000)/`` for an instant (``UpdatedDateUTC``)."""
    return f"/Date({ms}+0000)/"


def envelope_timestamp(ms: int) -> str:
    """``/Date(ms)/``: the envelope's ``DateTimeUTC``."""
    return f"/Date({ms})/"


def date_string(day: date) -> str:
    return f"{day.isoformat()}T00:00:00"


def parse_ms(text: str) -> int:
    """The milliseconds in ``/Date(ms+0000)/``."""
    match = _MS_DATE.match(text)
    if match is None:
        raise ValueError(f"not a Xero date: {text!r}")
    return int(match.group(1))


def parse_if_modified_since(text: str) -> int:
    """Milliseconds since the epoch for an ``If-Modified-Since`` header value: an RFC 3339
    date-time with its offset, or an HTTP date. Raises :class:`NoOffsetError` for a date-time
    without an offset and ``ValueError`` for anything else unreadable."""
    text = text.strip()
    if text[:3].isalpha():
        moment = parsedate_to_datetime(text)  # raises ValueError when unreadable
        if moment.tzinfo is None:  # "-0000": the zone is unknown
            raise NoOffsetError(text)
        return datetime_ms(moment)
    found = _RFC3339.match(text)
    if found is None:
        raise ValueError(text)
    if found.group("offset") is None:
        raise NoOffsetError(text)
    return datetime_ms(datetime.fromisoformat(text.upper().replace("Z", "+00:00")))
