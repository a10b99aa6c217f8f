"""A real SMTP server for the tests (aiosmtpd, on a free port of 127.0.0.1), recording every
message it accepts with its envelope. It can refuse or defer chosen addresses at RCPT, and run
a hook at a step of the conversation (EHLO, MAIL, RCPT, DATA before and after the message is
kept, just after the 250) so that a test can kill the client there."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

# (step, number of the message in the conversation) -> whether it killed the client
Hook = Callable[[str, int], bool]
# The server's own log (each connection made and lost) is noise here, and may come from its
# thread after a test's log capture has closed.
logging.getLogger("mail.log").setLevel(logging.WARNING)


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = BytesParser(policy=policy.default).parsebytes(self.data)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class Recorder:
    """The server's handler: what it accepted, what it answers to whom."""

    received: list[Received] = field(default_factory=list)
    answers: dict[str, str] = field(default_factory=dict)  # address -> RCPT answer
    hook: Hook | None = None
    logins: list[tuple[str, str]] = field(default_factory=list)
    mails: int = 0  # MAIL commands seen
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _step(self, step: str) -> bool:
        return self.hook is not None and self.hook(step, self.mails)

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        self.mails += 1
        self._step("mail")
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        self._step("rcpt")
        if address in self.answers:
            return self.answers[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        self._step("ehlo")
        session.host_name = hostname
        return responses

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Steps: ``data`` (the message came, not kept yet), ``stored`` (kept, not answered
        yet: for the client, an acceptance whose answer was lost), ``accepted`` (just after
        the 250)."""
        if self._step("data"):  # the client is gone: nothing kept
            return "421 4.3.0 closing"
        with self.lock:
            self.received.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.content))
            )
        self._step("stored")
        loop = asyncio.get_running_loop()
        loop.call_soon(self._step, "accepted")  # once the 250 is written
        return "250 2.0.0 Ok: queued"

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        if not isinstance(data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = (data.login.decode(), data.password.decode())
        self.logins.append(login)
        ok = login == ("billing", "s3cret pass")
        return AuthResult(success=ok, handled=ok)  # a failure: the server answers 535


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def smtp_server(
    recorder: Recorder | None = None, tls: ssl.SSLContext | None = None
) -> Iterator[tuple[Recorder, int]]:
    """A running server and its port; with ``tls``, STARTTLS is required and logins taken."""
    recorder = recorder or Recorder()
    extra: dict[str, Any] = {}
    if tls is not None:
        extra = {
            "tls_context": tls,
            "require_starttls": True,
            "authenticator": recorder.authenticate,
            "auth_exclude_mechanism": ["LOGIN"],  # PLAIN only: one answer per login
        }
    controller = Controller(recorder, hostname="127.0.0.1", port=free_port(), **extra)
    controller.start()
    try:
        yield recorder, controller.port
    finally:
        controller.stop()
