"""Posting one signed event to one endpoint, over a session that verifies TLS always (the
configured CA file or the system's trust store, never the environment's bundles or proxies),
with a timeout, and without following redirects: the receiver's answer is what it says."""

from __future__ import annotations

import time
from dataclasses import dataclass

import requests

from connector import __version__
from connector.tls import https_session
from connector.webhooks.signing import headers

ERROR_TEXT = 300  # bytes of a refusal's body kept with its attempt
READ_AT_MOST = 65_536  # bytes of an answer read (so its connection serves the next request)


@dataclass(frozen=True)
class Answer:
    """What one attempt got: the HTTP status (None: no answer), how long it took, and the
    error when it was not a 2xx."""

    status: int | None
    latency_ms: int
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def gone(self) -> bool:
        return self.status == 410


def webhook_session(ca_file: str, timeout: float) -> requests.Session:
    """The session every delivery of a run goes through (connections kept alive)."""
    session = https_session(ca_file, "webhooks.ca_file", timeout)
    session.trust_env = False  # no proxy or CA bundle from the environment
    session.headers["User-Agent"] = f"crm-billing-connector/{__version__} (webhooks)"
    return session


def post(  # noqa: PLR0917 - one attempt: where, what, and how
    session: requests.Session,
    url: str,
    key: bytes,
    webhook_id: str,
    body: bytes,
    timeout: float,
) -> Answer:
    """Post ``body`` to ``url``, signed with ``key`` as ``webhook_id`` at this moment."""
    began = time.perf_counter()
    signed = headers(key, webhook_id, int(time.time()), body)
    try:
        response = session.post(
            url, data=body, headers=signed, timeout=timeout, allow_redirects=False, stream=True
        )
    except requests.RequestException as refused:
        return Answer(None, _since(began), _describe(refused))
    with response:
        status = response.status_code
        said = _read(response)
        problem = None
        if not 200 <= status < 300:
            text = " ".join(said[:ERROR_TEXT].decode("utf-8", "replace").split())
            problem = f"HTTP {status} {response.reason or ''}".strip()
            problem += f": {text}" if text else ""
    return Answer(status, _since(began), problem)


def _read(response: requests.Response) -> bytes:
    """The answer's body up to ``READ_AT_MOST``: read to its end, the connection is kept for
    the next request; a longer one is cut, and its connection closed."""
    said = b""
    for chunk in response.iter_content(8192):
        said += chunk
        if len(said) > READ_AT_MOST:
            break
    return said


def _since(began: float) -> int:
    return round((time.perf_counter() - began) * 1000)


def _describe(error: requests.RequestException) -> str:
    if isinstance(error, requests.Timeout):
        return "no answer in time (webhooks.timeout_seconds)"
    if isinstance(error, requests.exceptions.SSLError):
        return f"TLS refused: {error}"
    if isinstance(error, requests.ConnectionError):
        return f"cannot connect: {error}"
    return f"{type(error).__name__}: {error}"
