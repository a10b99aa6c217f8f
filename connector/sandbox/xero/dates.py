"""Dates as the Xero API writes and reads them.

Responses carry ``/Date(1773532800000+0000)/`` (milliseconds since the epoch, UTC) with a
``DateString`` of ``2026-03-15T00:00:00``; the envelope's ``DateTimeUTC`` has no offset.
Requests send ``YYYY-MM-DD``; ``If-Modified-Since`` is ISO 8601 (UTC when no zone is given) or
RFC 1123.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from email.utils import parsedate_to_datetime

_MS_DATE = re.compile(r"^/Date\((-?\d+)(?:[+-]\d{4})?\)/$")


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
    """Milliseconds since the epoch for an ``If-Modified-Since`` header value."""
    text = text.strip()
    if text[:3].isalpha():
        moment = parsedate_to_datetime(text)  # RFC 1123; raises ValueError when unreadable
    else:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return datetime_ms(moment)
