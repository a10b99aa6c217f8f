"""The message for one row of the mail outbox: headers, a text body rendered from its template
in the customer's language, and the document's PDF attached.

Templates are text files ``<language>/<template>.txt`` (shipped in ``templates/``, replaced
file by file by those of ``email.templates_dir``): a first line ``Subject: …``, a blank line,
then the body; ``${name}`` stands for a value of the document (see :func:`render`).

The Message-ID is derived from the document, its version and the kind of message, never drawn
at random: a message sent again after an attempt whose outcome is unknown carries the same id,
so the receiving side can tell the two copies are one message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses, parseaddr
from importlib import resources
from pathlib import Path
from string import Template

from connector.billing.money import currency, round_money
from connector.db.types import utc_now
from connector.documents.store import StoredPdf
from connector.documents.templates import choose_language
from connector.errors import ConfigError
from connector.settings import EmailSettings

LANGUAGES = ("en", "ja")
_UNSAFE = re.compile(r"[^A-Za-z0-9.-]+")


@dataclass(frozen=True)
class Letter:
    """What a message says about its document."""

    document_id: int
    version: int
    kind: str  # document, reminder:<step>
    template: str
    number: str
    customer: str
    country: str
    issue_date: date
    due_date: date
    period_start: date
    period_end: date
    total: Decimal
    balance: Decimal
    currency: str
    invoice_number: str | None
    language: str | None = None  # the customer's (None: from its country)
    seller: str = ""  # seller.name (empty: the display name of email.from)


def language_of(country: str, language: str | None = None) -> str:
    """The language of a customer's messages, by the documents' rule: its own when messages
    can be written in it, else Japanese in Japan, else English."""
    return choose_language(language, country.upper(), "en", set(LANGUAGES))


def sender_address(settings: EmailSettings) -> tuple[str, str]:
    """(display name, address) of ``email.from``; a configuration error when it is none."""
    name, address = parseaddr(settings.from_)
    if "@" not in address:
        raise ConfigError(f"email.from (CONNECTOR_EMAIL__FROM): {settings.from_!r} is no address")
    return name, address


def message_id(letter: Letter, settings: EmailSettings) -> str:
    """``<number.vVERSION.kind.id@domain>``: the same for a document's version and kind."""
    domain = sender_address(settings)[1].rsplit("@", 1)[1]
    kind = _UNSAFE.sub("-", letter.kind)
    number = _UNSAFE.sub("-", letter.number)
    return f"<{number}.v{letter.version}.{kind}.{letter.document_id}@{domain}>"


def bcc_addresses(settings: EmailSettings) -> list[str]:
    return [address for _, address in getaddresses([settings.bcc]) if "@" in address]


def _template(settings: EmailSettings, language: str, name: str) -> Template:
    if not re.fullmatch(r"[A-Za-z0-9_-]+", name):
        raise ConfigError(f"email template {name!r}: letters, digits, _ and - only")
    relative = f"{language}/{name}.txt"
    if settings.templates_dir:
        own = Path(settings.templates_dir).expanduser() / relative
        if own.is_file():
            return Template(own.read_text(encoding="utf-8"))
    shipped = resources.files("connector.email").joinpath("templates", language, f"{name}.txt")
    if not shipped.is_file():
        if language != "en":
            return _template(settings, "en", name)
        raise ConfigError(f"no e-mail template {relative} (shipped or in email.templates_dir)")
    return Template(shipped.read_text(encoding="utf-8"))


def _money(amount: Decimal, code: str) -> str:
    return f"{round_money(amount, currency(code)):,}"


def render(letter: Letter, settings: EmailSettings) -> tuple[str, str]:
    """(subject, body) of the letter, in its customer's language."""
    sender = letter.seller or sender_address(settings)[0] or sender_address(settings)[1]
    values = {
        "customer": letter.customer,
        "number": letter.number,
        "issue_date": letter.issue_date.isoformat(),
        "due_date": letter.due_date.isoformat(),
        "period_start": letter.period_start.isoformat(),
        "period_end": letter.period_end.isoformat(),
        "total": _money(letter.total, letter.currency),
        "balance": _money(letter.balance, letter.currency),
        "currency": letter.currency,
        "invoice_number": letter.invoice_number or "",
        "sender": sender,
    }
    text = _template(settings, language_of(letter.country, letter.language), letter.template)
    try:
        filled = text.substitute(values)
    except (KeyError, ValueError) as error:
        raise ConfigError(f"e-mail template {letter.template}: unknown field {error}") from None
    head, _, body = filled.partition("\n\n")
    if not head.startswith("Subject:"):
        raise ConfigError(f"e-mail template {letter.template}: its first line is no Subject:")
    return head.removeprefix("Subject:").strip(), body.strip() + "\n"


def compose(
    letter: Letter, to: str, pdf: StoredPdf, settings: EmailSettings, message: str
) -> EmailMessage:
    """The message to ``to``, with ``pdf`` attached, carrying the Message-ID ``message``
    (blind copies are recipients of the envelope only, never a header)."""
    subject, body = render(letter, settings)
    name, address = sender_address(settings)
    email = EmailMessage()
    email["From"] = Address(name, addr_spec=address) if name else address
    email["To"] = to
    if settings.reply_to:
        email["Reply-To"] = settings.reply_to
    email["Subject"] = subject
    email["Date"] = format_datetime(utc_now())
    email["Message-ID"] = message
    email.set_content(body, cte="7bit" if body.isascii() else "base64")
    email.add_attachment(pdf.content, maintype="application", subtype="pdf", filename=pdf.filename)
    return email
