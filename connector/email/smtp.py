"""Sending one message at a time over one SMTP connection (stdlib ``smtplib``).

The connection is upgraded with STARTTLS when ``email.starttls`` is set, its certificate
verified with the trust of :func:`connector.tls.trust_context` (``email.ca_file``, else the
system's trust store; never the environment, never unverified), then logged in when
``email.username`` is set. Each message is given to the server step by step (MAIL, RCPT for
the customer's address, RCPT for each blind copy, DATA) so that each answer is known:

- the server accepts the message (250 after DATA): ``sent``;
- it refuses it for good (5xx at MAIL, at the customer's RCPT, or after DATA): ``refused``,
  with its answer;
- it defers it (4xx): ``deferred``, to be tried again later.

A blind copy the server refuses does not stop the message (it is logged). A broken connection
raises :class:`~connector.errors.EmailError`: the message in hand has an unknown outcome.
"""

from __future__ import annotations

import logging
import smtplib
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from types import TracebackType

from connector.email.compose import sender_address
from connector.encryption import TokenCipher
from connector.errors import ConfigError, EmailError
from connector.settings import EmailSettings, Settings, ca_file_path
from connector.tls import trust_context

log = logging.getLogger(__name__)

SENT, REFUSED, DEFERRED = "sent", "refused", "deferred"


@dataclass(frozen=True)
class Answer:
    outcome: str  # sent, refused, deferred
    answer: str  # the server's reply, "250 2.0.0 Ok: queued as …"


def _reply(code: int, text: bytes | str) -> str:
    words = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return f"{code} {' '.join(words.split())}".strip()


def password(settings: Settings) -> str:
    """``email.password``, opened with the secrets key when it is given sealed."""
    given = settings.email.password.get_secret_value()
    if not given.startswith("fernet:"):
        return given
    cipher = TokenCipher.from_settings(settings.secrets, settings.database_url.get_secret_value())
    return cipher.open(given)


def check(settings: EmailSettings) -> None:
    """Configuration errors of a mailer that is to send."""
    if not settings.smtp_host:
        raise ConfigError("email.smtp_host (CONNECTOR_EMAIL__SMTP_HOST) is not set")
    sender_address(settings)
    ca_file_path(settings.ca_file, "email.ca_file")


class Mailer:
    """One SMTP connection, opened on entry, closed on exit."""

    def __init__(self, settings: Settings) -> None:
        check(settings.email)
        self.settings = settings.email
        self._password = password(settings)
        self._smtp: smtplib.SMTP | None = None

    def __enter__(self) -> Mailer:
        email = self.settings
        try:
            smtp = smtplib.SMTP(email.smtp_host, email.smtp_port, timeout=email.timeout_seconds)
            self._smtp = smtp
            smtp.ehlo()
            if email.starttls:
                smtp.starttls(context=trust_context(email.ca_file, "email.ca_file"))
                smtp.ehlo()
            if email.username:
                smtp.login(email.username, self._password)
        except smtplib.SMTPAuthenticationError as error:
            self._close()
            raise EmailError(
                f"the SMTP server refused the login of {email.username}: "
                f"{_reply(error.smtp_code, error.smtp_error)}"
            ) from None
        except smtplib.SMTPNotSupportedError:
            self._close()
            raise EmailError(
                f"{email.smtp_host}:{email.smtp_port} does not offer STARTTLS "
                "(email.starttls is set)"
            ) from None
        except (smtplib.SMTPException, OSError) as error:
            self._close()
            raise EmailError(
                f"cannot reach the SMTP server {email.smtp_host}:{email.smtp_port}: {error}"
            ) from None
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._close()

    def _close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (smtplib.SMTPException, OSError):
                self._smtp.close()
            self._smtp = None

    def send(self, message: EmailMessage, to: str, bcc: list[str]) -> Answer:
        """Give ``message`` to the server for ``to`` (and ``bcc``, in the envelope only)."""
        smtp = self._smtp
        assert smtp is not None, "send inside `with Mailer(...)`"
        try:
            code, text = smtp.mail(sender_address(self.settings)[1])
            if code != 250:
                return self._stop(code, text)
            code, text = smtp.rcpt(to)
            if code not in (250, 251):
                return self._stop(code, text)
            for copy in bcc:
                code, text = smtp.rcpt(copy)
                if code not in (250, 251):
                    log.warning("blind copy to %s refused: %s", copy, _reply(code, text))
            code, text = smtp.data(message.as_bytes(policy=policy.SMTP))
        except smtplib.SMTPDataError as error:  # DATA itself refused
            return self._stop(error.smtp_code, error.smtp_error)
        except (smtplib.SMTPException, OSError) as error:
            raise EmailError(f"the SMTP connection broke: {error}") from None
        if code == 250:
            return Answer(SENT, _reply(code, text))
        return self._stop(code, text)

    def _stop(self, code: int, text: bytes | str) -> Answer:
        """End the transaction the server answered with ``code``: refused or deferred."""
        assert self._smtp is not None
        try:
            self._smtp.rset()
        except (smtplib.SMTPException, OSError) as error:
            raise EmailError(f"the SMTP connection broke: {error}") from None
        return Answer(REFUSED if 500 <= code < 600 else DEFERRED, _reply(code, text))
