"""Settings: one pydantic-settings model.

Sources, highest priority first: environment variables (prefix ``CONNECTOR_``, nested keys
joined with ``__``, e.g. ``CONNECTOR_LEDGER__PATH``), then a TOML file, then the defaults. The
TOML file is the one given with ``--config`` or ``CONNECTOR_CONFIG_FILE``, else
``config/connector.toml`` when it exists. ``config/connector.example.toml`` documents every key.
Secrets are ``SecretStr``: they print as ``**********`` and are never logged.
"""

from __future__ import annotations

import json
import os
import re
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, get_origin

from apscheduler.triggers.cron import CronTrigger
from cryptography.fernet import Fernet
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from connector.billing.dunning import Action, Schedule, Step
from connector.billing.money import Rounding, currency
from connector.billing.tax import TaxTable, country_code
from connector.documents.registration import registration_number
from connector.errors import ConfigError, InvalidInputError

DEFAULT_CONFIG_FILE = Path("config/connector.toml")
DEFAULT_MAPPINGS = Path("mappings")
CONFIG_FILE_ENV = "CONNECTOR_CONFIG_FILE"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LedgerSettings(_Section):
    path: Path = Field(
        default=Path("var/ledger.beancount"),
        description="The Beancount ledger file that invoices, credits and revenue are posted to.",
    )


class AccountingSettings(_Section):
    target: Literal["ledger", "xero"] = Field(
        default="ledger",
        description="Where documents are posted: ledger (the Beancount ledger) or xero.",
    )
    mapping_file: str = Field(
        default="mappings/accounting.yaml",
        description="The chart of accounts (Beancount accounts; Xero account codes and tax types).",
    )


class XeroSettings(_Section):
    grant: Literal["client_credentials", "authorization_code"] = Field(
        default="client_credentials",
        description="client_credentials (a Xero custom connection) or authorization_code (a web "
        "app, connected once with `connector xero connect`; refresh tokens rotate).",
    )
    client_id: str = Field(default="", description="The Xero app's client id.")
    client_secret: SecretStr = Field(default=SecretStr(""), description="The app's secret.")
    tenant_id: str = Field(
        default="",
        description="The organisation (xero-tenant-id); `connector xero connect` lists them.",
    )
    scopes: str = Field(
        default="accounting.transactions accounting.contacts accounting.settings.read",
        description="OAuth scopes asked for (offline_access is added for authorization_code).",
    )
    redirect_uri: str = Field(
        default="http://localhost:8765/xero/callback",
        description="authorization_code: the redirect URI registered for the app.",
    )
    api_url: str = Field(
        default="https://api.xero.com/api.xro/2.0", description="The Accounting API."
    )
    token_url: str = Field(
        default="https://identity.xero.com/connect/token", description="The token endpoint."
    )
    authorize_url: str = Field(
        default="https://login.xero.com/identity/connect/authorize",
        description="Where a user consents (authorization_code).",
    )
    connections_url: str = Field(
        default="https://api.xero.com/connections",
        description="Lists the organisations a token may use.",
    )
    ca_file: str = Field(
        default="", description="PEM bundle of CAs to trust (empty: the system's trust store)."
    )
    timeout_seconds: Annotated[float, Field(gt=0, le=600)] = Field(
        default=60.0, description="Seconds to wait for each answer."
    )
    max_attempts: Annotated[int, Field(ge=1, le=20)] = Field(
        default=5, description="Tries of a call that fails with a server or network error."
    )
    calls_per_minute: Annotated[int, Field(ge=1, le=60)] = Field(
        default=60, description="Calls a minute the connector makes at most (Xero allows 60)."
    )
    concurrent_calls: Annotated[int, Field(ge=1, le=5)] = Field(
        default=5, description="Calls in flight at once at most (Xero allows 5)."
    )
    max_wait_seconds: Annotated[float, Field(ge=0, le=3600)] = Field(
        default=120.0,
        description="Longest Retry-After a call waits out; a longer one ends the push until the "
        "next cycle.",
    )
    contact_number_prefix: str = Field(
        default="CUST-",
        max_length=20,
        description="ContactNumber of a customer's contact: this prefix and the billing core's "
        "customer id (do not change it once contacts exist).",
    )

    @field_validator("api_url", "token_url", "authorize_url", "connections_url")
    @classmethod
    def _https(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not value.startswith("https://"):
            raise ValueError(f"must be an https:// URL, not {value}")
        return value


INTERVAL = re.compile(r"^(\d+)\s*(s|m|h|d)$")
INTERVAL_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_interval(value: str) -> dict[str, int] | None:
    """``"5m"`` as ``{"minutes": 5}``; None for anything that is not an interval."""
    match = INTERVAL.fullmatch(value.strip())
    if match is None:
        return None
    return {INTERVAL_UNITS[match.group(2)]: int(match.group(1))}


WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def _weekday_number(token: str) -> int:
    token = token.strip().lower()
    if token[:3] in WEEKDAYS and not token.isdigit():
        return WEEKDAYS.index(token[:3])
    number = int(token)  # ValueError for anything else
    if not 0 <= number <= 7:
        raise ValueError(f"weekday {token} is not 0-7")
    return number % 7


def _crontab_weekdays(field: str) -> str:
    """A crontab weekday field (0 or 7 Sunday, 1 Monday; names; lists, ranges, steps) as
    APScheduler's names: its ``from_crontab`` would count 0 as Monday."""
    if field in {"*", "?"}:
        return "*"
    days: set[int] = set()
    for part in field.split(","):
        span, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError(f"step {step_text} must be at least 1")
        if span == "*":
            first, last = 0, 6
        elif "-" in span:
            start_text, end_text = span.split("-", 1)
            first, last = _weekday_number(start_text), _weekday_number(end_text)
            if end_text.strip() == "7":
                last = 7
        else:
            first = last = _weekday_number(span)
            if step_text:
                last = 6
        if last < first:
            raise ValueError(f"weekday range {span} runs backwards")
        days.update(day % 7 for day in range(first, last + 1, step))
    return ",".join(WEEKDAYS[day] for day in sorted(days))


def crontab_trigger(line: str) -> CronTrigger:
    """A trigger for a five-field crontab line in UTC, weekdays counted as cron does."""
    minute, hour, day, month, weekday = line.split()
    return CronTrigger(
        minute=minute,
        hour=hour,
        day=day,
        month=month,
        day_of_week=_crontab_weekdays(weekday),
        timezone="UTC",
    )


class ScheduleSettings(_Section):
    """When ``connector run`` runs each job: an interval (``30s``, ``5m``, ``1h``, ``1d``) or a
    crontab line of five fields in UTC (``10 0 * * *``)."""

    pull: str = Field(default="5m", description="Pull accounts and deals from Salesforce.")
    bill: str = Field(default="15m", description="Bill everything due.")
    push: str = Field(default="15m", description="Post documents to accounting.")
    payments: str = Field(default="15m", description="Read payments recorded in accounting.")
    send: str = Field(
        default="15m",
        description="Render new invoices and credit notes (and their new versions) as PDF, and "
        "e-mail new documents and reminders to customers.",
    )
    writeback: str = Field(default="15m", description="Write billing status to Salesforce.")
    dunning: str = Field(default="1h", description="Record the dunning steps invoices reach.")
    webhooks: str = Field(default="1m", description="Deliver webhook events to their endpoints.")
    revenue: str = Field(default="10 0 * * *", description="Close revenue (daily, 00:10 UTC).")
    misfire_grace_seconds: Annotated[int, Field(ge=1, le=86_400)] = Field(
        default=300, description="A run that could not start this late is skipped, not run late."
    )
    standby_seconds: Annotated[float, Field(gt=0, le=60)] = Field(
        default=15.0,
        description="How often a standby instance tries to take over (and the active one checks "
        "it still holds the lock).",
    )

    @field_validator(
        "pull", "bill", "push", "payments", "dunning", "send", "writeback", "revenue", "webhooks"
    )
    @classmethod
    def _interval_or_cron(cls, value: str) -> str:
        interval = parse_interval(value)
        if interval is not None:
            if not any(interval.values()):
                raise ValueError(f"{value!r}: an interval must be longer than zero")
            return value.strip()
        fields = value.split()
        if len(fields) != 5:  # minute hour day month weekday
            raise ValueError(
                f"{value!r} is neither an interval (30s, 5m, 1h, 1d) nor a crontab line of five "
                "fields (minute hour day month weekday)"
            )
        try:
            crontab_trigger(value)
        except ValueError as error:
            raise ValueError(f"{value!r} is not a valid crontab line: {error}") from None
        return " ".join(fields)


class DunningStepSettings(_Section):
    """One step of the collections schedule."""

    name: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_-]+$")
    offset_days: Annotated[int, Field(ge=-365, le=365)] = Field(
        description="Days from the due date (negative: before it)."
    )
    action: Action = Field(description="email (a reminder) or escalate (a Task, a status).")
    template: str = Field(default="", max_length=80, description="email: the template.")
    tone: str = Field(default="", max_length=40, description="email: friendly, firm, final.")
    account_status: str = Field(
        default="", description="escalate: Account Billing_Status__c (Past Due, Collections)."
    )

    def step(self) -> Step:
        return Step(
            self.name,
            self.offset_days,
            self.action,
            self.template or None,
            self.tone or None,
            self.account_status or None,
        )


DEFAULT_DUNNING_STEPS = (
    DunningStepSettings(
        name="friendly",
        offset_days=-3,
        action=Action.EMAIL,
        template="reminder_friendly",
        tone="friendly",
    ),
    DunningStepSettings(
        name="reminder_1",
        offset_days=3,
        action=Action.EMAIL,
        template="reminder_first",
        tone="polite",
    ),
    DunningStepSettings(
        name="reminder_2",
        offset_days=10,
        action=Action.EMAIL,
        template="reminder_second",
        tone="firm",
    ),
    DunningStepSettings(
        name="past_due", offset_days=10, action=Action.ESCALATE, account_status="Past Due"
    ),
    DunningStepSettings(
        name="final_notice",
        offset_days=30,
        action=Action.EMAIL,
        template="reminder_final",
        tone="final",
    ),
    DunningStepSettings(
        name="collections", offset_days=30, action=Action.ESCALATE, account_status="Collections"
    ),
)


class DunningSettings(_Section):
    """Collections: reminders before and after the due date, then escalation to the account
    owner. Reminders are recorded in the database each day they fall due; e-mail sends them."""

    enabled: bool = Field(default=True, description="Follow the schedule for open invoices.")
    steps: tuple[DunningStepSettings, ...] = Field(
        default=DEFAULT_DUNNING_STEPS,
        description="The steps, each dated by its offset in days from the due date.",
    )
    task_priority: Literal["High", "Normal", "Low"] = Field(
        default="High", description="Priority of the Tasks escalations create."
    )
    task_due_days: Annotated[int, Field(ge=0, le=90)] = Field(
        default=3, description="An escalation's Task is due this many days after the step."
    )

    def schedule(self) -> Schedule:
        return Schedule.of(step.step() for step in self.steps)

    @field_validator("steps")
    @classmethod
    def _valid_schedule(
        cls, value: tuple[DunningStepSettings, ...]
    ) -> tuple[DunningStepSettings, ...]:
        try:
            Schedule.of(step.step() for step in value)
        except InvalidInputError as error:
            raise ValueError(str(error)) from None
        return value


# Roughly a million US dollars in each currency; `default` for the others.
DEFAULT_MAX_AMOUNT = {
    "default": Decimal(1_000_000),
    "JPY": Decimal(150_000_000),
    "KRW": Decimal(1_500_000_000),
    "INR": Decimal(100_000_000),
    "IDR": Decimal(15_000_000_000),
    "VND": Decimal(25_000_000_000),
}


class BillingSettings(_Section):
    default_currency: str = Field(
        default="USD", description="Currency of customers whose record names none."
    )
    invoice_prefix: str = Field(default="INV-", description="Prefix of invoice numbers.")
    credit_note_prefix: str = Field(default="CN-", description="Prefix of credit note numbers.")
    number_digits: Annotated[int, Field(ge=1, le=12)] = Field(
        default=6, description="Digits of the sequential part of document numbers."
    )
    payment_terms_days: Annotated[int, Field(ge=0, le=365)] = Field(
        default=30, description="Days from an invoice's date to its due date."
    )
    batch_size: Annotated[int, Field(ge=1, le=50_000)] = Field(
        default=1000, description="Subscriptions billed per database transaction."
    )
    max_backdate_days: Annotated[int, Field(ge=0, le=36_500)] = Field(
        default=365,
        description="A deal whose service start (or a one-time item's service date) lies more "
        "days than this before the business date is held for review, not billed.",
    )
    max_amount: dict[str, Decimal] = Field(
        default_factory=lambda: dict(DEFAULT_MAX_AMOUNT),
        description="Ceiling of one line item's amount for one billing period (a one-time "
        "item: its amount), per currency code, with `default` for every other currency; an "
        "item above it holds its deal for review; a payment recorded by hand of more than the "
        "customer owes plus this ceiling is refused.",
    )

    @field_validator("default_currency")
    @classmethod
    def _known_currency(cls, value: str) -> str:
        try:
            return currency(value).code
        except InvalidInputError as error:
            raise ValueError(str(error)) from None

    @field_validator("max_amount")
    @classmethod
    def _ceilings(cls, value: dict[str, Decimal]) -> dict[str, Decimal]:
        ceilings: dict[str, Decimal] = {}
        for key, amount in value.items():
            try:
                code = key if key == "default" else currency(key).code
            except InvalidInputError as error:
                raise ValueError(f"{key}: {error} (or `default`)") from None
            if not amount.is_finite() or amount <= 0:
                raise ValueError(f"{key}: the ceiling must be a positive amount, not {amount}")
            ceilings[code] = amount
        if "default" not in ceilings:
            raise ValueError("give a `default` ceiling for the currencies not listed")
        return ceilings


class TaxSettings(_Section):
    rounding: Rounding = Field(
        default=Rounding.HALF_UP,
        description="Rounding of tax, once per document and rate: half_up, half_even, half_down.",
    )
    rates: dict[str, Decimal] = Field(
        default_factory=dict,
        description="Standard rate in percent per jurisdiction: a customer country (ISO 3166 "
        "code, DE) or a region (ISO 3166-2 code, US-CA), whose rate replaces its country's.",
    )
    code_rates: dict[str, dict[str, Decimal]] = Field(
        default_factory=dict,
        description="Rates per product tax code, then per jurisdiction, replacing the standard "
        "rate.",
    )

    home_country: str = Field(
        default="US",
        description="The seller's country (ISO 3166 code): EU business customers with a valid "
        "VAT id of another member state are reverse-charged.",
    )

    def table(self) -> TaxTable:
        return TaxTable.build(self.rates, self.code_rates)

    @field_validator("home_country")
    @classmethod
    def _known_country(cls, value: str) -> str:
        try:
            return country_code(value)
        except InvalidInputError as error:
            raise ValueError(str(error)) from None

    @field_validator("rates")
    @classmethod
    def _valid_rates(cls, value: dict[str, Decimal]) -> dict[str, Decimal]:
        try:
            return dict(TaxTable.build(value).rates)
        except InvalidInputError as error:
            raise ValueError(str(error)) from None

    @field_validator("code_rates")
    @classmethod
    def _valid_code_rates(cls, value: dict[str, dict[str, Decimal]]) -> dict[str, Any]:
        try:
            return {k: dict(v) for k, v in TaxTable.build({}, value).code_rates.items()}
        except InvalidInputError as error:
            raise ValueError(str(error)) from None


class SellerSettings(_Section):
    """Who issues the documents: shown at the top of every invoice and credit note."""

    name: str = Field(default="", description="The seller's legal name.")
    address: str = Field(
        default="", description="The seller's address, lines separated by new lines."
    )
    tax_id: str = Field(
        default="", description="The seller's VAT or tax id (shown on every document)."
    )
    registration_number: str = Field(
        default="",
        description="Japan's qualified invoice issuer registration number (T and 13 digits, "
        "checked): shown on documents to Japanese customers, which are qualified invoices.",
    )
    bank_details: str = Field(
        default="",
        description="Payment instructions: bank, account, IBAN/SWIFT; lines separated by new "
        "lines.",
    )
    logo: str = Field(
        default="", description="A PNG or JPEG file shown at the top left of documents."
    )

    @field_validator("registration_number")
    @classmethod
    def _registration_number(cls, value: str) -> str:
        try:
            return registration_number(value) if value.strip() else ""
        except InvalidInputError as error:
            raise ValueError(str(error)) from None

    @field_validator("logo")
    @classmethod
    def _logo_file(cls, value: str) -> str:
        if value and not Path(value).expanduser().is_file():
            raise ValueError(f"the logo file {value} does not exist")
        return value


class DocumentSettings(_Section):
    """How invoices and credit notes are rendered as PDF."""

    render: bool = Field(
        default=True,
        description="Render each new document version as PDF in the send stage. false: the "
        "cycle renders none (they wait, queued; nothing is e-mailed or attached to Salesforce "
        "without its PDF); `connector invoice pdf` still renders one on demand.",
    )
    templates: str = Field(
        default="",
        description="A folder of templates that replace the shipped ones: <language>.yaml "
        "(labels and texts, merged over the shipped file of that language).",
    )
    default_language: str = Field(
        default="en",
        pattern=r"^[a-z]{2}$",
        description="Language of documents for customers whose language is not known or has no "
        "templates (customers in Japan: ja).",
    )
    batch_size: Annotated[int, Field(ge=1, le=5000)] = Field(
        default=100, description="Documents rendered per database transaction."
    )
    font_cache: str = Field(
        default="",
        description="Folder where the Japanese font, made once from the installed Noto Sans JP, "
        "is kept (empty: crm-billing-connector/fonts in the user's cache folder).",
    )


AuthKind = Literal["auto", "jwt", "password", "client_credentials", "session"]


class SalesforceSettings(_Section):
    login_url: str = Field(
        default="https://login.salesforce.com",
        description="Where logins go: login.salesforce.com, test.salesforce.com for sandboxes, "
        "a My Domain URL, or the local sandbox.",
    )
    auth: AuthKind = Field(
        default="auto",
        description="jwt, password, client_credentials or session; auto picks from what is set "
        "(session id, then private key, then password, then client secret).",
    )
    instance_url: str = Field(default="", description="The org's URL, with session_id.")
    session_id: SecretStr = Field(default=SecretStr(""), description="A live session id.")
    username: str = Field(default="", description="The integration user (jwt, password).")
    password: SecretStr = Field(default=SecretStr(""), description="Password (password login).")
    security_token: SecretStr = Field(
        default=SecretStr(""), description="Security token appended to the password."
    )
    client_id: str = Field(default="", description="Connected app consumer key.")
    client_secret: SecretStr = Field(
        default=SecretStr(""), description="Connected app consumer secret."
    )
    private_key_file: str = Field(
        default="", description="PEM private key that signs JWT bearer assertions."
    )
    jwt_audience: str = Field(
        default="",
        description="aud of JWT assertions; empty: test.salesforce.com for sandbox login URLs, "
        "login.salesforce.com for other salesforce.com URLs, else the login URL.",
    )
    ca_file: str = Field(
        default="", description="PEM bundle of CAs to trust (empty: the system's trust store)."
    )
    api_version: str = Field(default="59.0", pattern=r"^\d{2,3}\.0$", description="REST API.")
    timeout_seconds: Annotated[float, Field(gt=0, le=600)] = Field(
        default=60.0, description="Seconds to wait for each answer."
    )
    max_attempts: Annotated[int, Field(ge=1, le=20)] = Field(
        default=6, description="Tries of a call that fails with a retryable error."
    )
    backoff_initial_seconds: Annotated[float, Field(ge=0, le=60)] = Field(
        default=1.0, description="First wait between tries; doubles each time, with jitter."
    )
    backoff_max_seconds: Annotated[float, Field(ge=0, le=3600)] = Field(
        default=60.0, description="Longest wait between tries."
    )
    max_relogins: Annotated[int, Field(ge=0, le=10)] = Field(
        default=2, description="Fresh logins per call after an expired session."
    )
    quota_share: Annotated[Decimal, Field(gt=0, le=1)] = Field(
        default=Decimal("0.5"),
        description="Largest share of the org's daily API requests the connector may spend.",
    )
    lookback_minutes: Annotated[int, Field(ge=0, le=1440)] = Field(
        default=10, description="Each pull re-reads changes this far behind its cursor."
    )
    page_size: Annotated[int, Field(ge=200, le=2000)] = Field(
        default=2000, description="Records per query page (Sforce-Query-Options batchSize)."
    )
    bulk_threshold: Annotated[int, Field(ge=0)] = Field(
        default=10_000,
        description="A pull of more changed rows than this reads them with Bulk API 2.0.",
    )
    bulk_poll_seconds: Annotated[float, Field(gt=0, le=60)] = Field(
        default=2.0, description="Wait between checks of a Bulk API 2.0 job."
    )
    bulk_page_size: Annotated[int, Field(ge=1000, le=1_000_000)] = Field(
        default=50_000, description="Rows per Bulk API 2.0 results page (maxRecords)."
    )
    mapping_file: str = Field(
        default="mappings/salesforce.yaml", description="How Salesforce records map to billing."
    )
    attach_documents: bool = Field(
        default=True,
        description="The write-back attaches each document's PDF to its Billing_Invoice__c "
        "record as a Salesforce File (a new version of the file when the document changes).",
    )

    @field_validator("login_url", "instance_url")
    @classmethod
    def _https(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if value and not value.startswith("https://"):
            raise ValueError(f"must be an https:// URL (Salesforce speaks TLS only), not {value}")
        return value


class EmailSettings(_Section):
    """Sending documents to customers by SMTP (see connector/email)."""

    enabled: bool = Field(
        default=False,
        description="Send e-mail; false (the default until configured): messages are queued "
        "and shown as not sent, nothing is sent.",
    )
    smtp_host: str = Field(default="", description="The SMTP server (the submission host).")
    smtp_port: Annotated[int, Field(ge=1, le=65535)] = Field(
        default=587, description="Its port (587: submission with STARTTLS)."
    )
    starttls: bool = Field(
        default=True,
        description="Upgrade the connection with STARTTLS before logging in; the server's "
        "certificate is always verified (the system's trust store, or email.ca_file).",
    )
    ca_file: str = Field(
        default="", description="PEM bundle of CAs to trust (empty: the system's trust store)."
    )
    username: str = Field(default="", description="Login (empty: no login).")
    password: SecretStr = Field(
        default=SecretStr(""),
        description="Password of the login; may be given sealed (fernet:..., from "
        "`connector email seal-password`) with the secrets key.",
    )
    from_: str = Field(
        default="",
        alias="from",
        description='The sender, an address or "Name <address>".',
    )
    reply_to: str = Field(default="", description="Where replies go (empty: the sender).")
    bcc: str = Field(
        default="",
        description="Addresses (comma-separated) that receive a blind copy of every message: "
        "in the envelope only, never in the headers.",
    )
    templates_dir: str = Field(
        default="",
        description="A folder of templates (<language>/<template>.txt) that replace the "
        "shipped ones of the same name.",
    )
    timeout_seconds: Annotated[float, Field(gt=0, le=600)] = Field(
        default=60.0, description="Seconds to wait for each answer of the server."
    )
    batch_size: Annotated[int, Field(ge=1, le=10_000)] = Field(
        default=100, description="Messages read per batch (one connection a batch)."
    )
    max_attempts: Annotated[int, Field(ge=1, le=100)] = Field(
        default=10,
        description="Tries of a message the server defers (4xx) before it is parked.",
    )
    retry_initial_seconds: Annotated[float, Field(ge=0, le=86_400)] = Field(
        default=300.0, description="Wait before the second try; doubles each try."
    )
    retry_max_seconds: Annotated[float, Field(ge=0, le=604_800)] = Field(
        default=21_600.0, description="Longest wait between tries."
    )

    model_config = ConfigDict(
        extra="forbid", frozen=True, validate_by_name=True, serialize_by_alias=True
    )


class WebhooksSettings(_Section):
    """Delivering webhook events to the endpoints of `connector webhook add`."""

    timeout_seconds: Annotated[float, Field(gt=0, le=300)] = Field(
        default=10.0, description="Seconds to wait for a receiver to connect and to answer."
    )
    max_age_hours: Annotated[float, Field(gt=0, le=720)] = Field(
        default=72.0,
        description="An event a receiver still refuses this long after it happened is failed.",
    )
    retry_initial_seconds: Annotated[float, Field(ge=0, le=86_400)] = Field(
        default=5.0, description="Wait before the second try; doubles each try (with jitter)."
    )
    retry_max_seconds: Annotated[float, Field(ge=0, le=604_800)] = Field(
        default=21_600.0, description="Longest wait between tries."
    )
    batch_size: Annotated[int, Field(ge=1, le=10_000)] = Field(
        default=100, description="Deliveries read and recorded per batch."
    )
    ca_file: str = Field(
        default="", description="PEM bundle of CAs to trust (empty: the system's trust store)."
    )


def fernet_keys(value: str) -> list[str]:
    """Fernet keys written one after another (commas, spaces or lines between them)."""
    return [key for key in re.split(r"[\s,]+", value.strip()) if key]


def _check_fernet_keys(value: SecretStr) -> SecretStr:
    for number, key in enumerate(fernet_keys(value.get_secret_value()), start=1):
        try:
            Fernet(key)
        except (ValueError, TypeError):
            raise ValueError(
                f"key {number} is not a Fernet key (32 bytes in URL-safe base64, 44 characters)"
            ) from None
    return value


class ApiSettings(_Section):
    """``[api]``: the HTTP API, the webhooks' signing and the console, served by ``connector
    run`` beside the scheduler and by ``connector serve`` alone."""

    enabled: bool = Field(
        default=True, description="connector run serves the API and the console too."
    )
    host: str = Field(
        default="127.0.0.1",
        min_length=1,
        description="Address to listen on (127.0.0.1: this machine only; 0.0.0.0: every "
        "interface, behind a TLS proxy).",
    )
    port: Annotated[int, Field(ge=0, le=65535)] = Field(
        default=8080, description="TCP port (0: any free one, logged at the start)."
    )
    page_size: Annotated[int, Field(ge=1, le=1000)] = Field(
        default=100, description="Items per page when a request gives no limit."
    )
    session_hours: Annotated[float, Field(gt=0, le=720)] = Field(
        default=12.0, description="How long a console sign-in lasts."
    )
    secure_cookies: bool = Field(
        default=False,
        description="Mark the console's cookie Secure (on when served through HTTPS).",
    )
    idempotency_days: Annotated[int, Field(ge=1, le=365)] = Field(
        default=7, description="How long the first answer to an idempotent write is kept."
    )


class UsageSettings(_Section):
    """``[usage]``: metered usage events, their metrics and the limits of what is accepted."""

    mapping_file: str = Field(
        default="mappings/usage.yaml",
        description="The billable metrics and their metered prices.",
    )
    max_future_seconds: Annotated[int, Field(ge=0, le=86_400)] = Field(
        default=300,
        description="An event dated later than now by more than this (clock skew) is refused.",
    )
    max_age_days: Annotated[int, Field(ge=1, le=3660)] = Field(
        default=400, description="An event dated earlier than this many days ago is refused."
    )
    batch_size: Annotated[int, Field(ge=1, le=50_000)] = Field(
        default=20_000, description="Events stored per transaction by `connector usage import`."
    )
    grace_hours: Annotated[int, Field(ge=0, le=720)] = Field(
        default=0,
        description="Hours after a billing period's end during which its late events still "
        "reach its invoice: a subscription with metered items is billed that much later.",
    )


class SecretsSettings(_Section):
    """The key that encrypts OAuth tokens stored in the database (Fernet)."""

    key: SecretStr = Field(
        default=SecretStr(""),
        description="Fernet key that encrypts stored tokens (empty: the key file's).",
    )
    old_keys: SecretStr = Field(
        default=SecretStr(""),
        description="Earlier keys, comma-separated: tokens sealed with them are still read, "
        "and sealed again with the current key when next used.",
    )
    key_file: str = Field(
        default="",
        description="File holding the key when `key` is empty, made owner-only on first use; "
        "empty: <database>.key beside a SQLite database, else secrets.key in the user's "
        "config folder.",
    )

    @field_validator("key")
    @classmethod
    def _one_key(cls, value: SecretStr) -> SecretStr:
        if len(fernet_keys(value.get_secret_value())) > 1:
            raise ValueError("give one key; earlier keys go in secrets.old_keys")
        return _check_fernet_keys(value)

    @field_validator("old_keys")
    @classmethod
    def _valid_keys(cls, value: SecretStr) -> SecretStr:
        return _check_fernet_keys(value)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CONNECTOR_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )
    toml_file: ClassVar[Path | None] = None

    database_url: SecretStr = Field(
        default=SecretStr("sqlite:///var/connector.db"),
        description="SQLAlchemy URL of the database: sqlite:///path or postgresql://user@host/db.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="DEBUG, INFO, WARNING or ERROR."
    )
    log_format: Literal["text", "json"] = Field(
        default="text", description="text lines, or one JSON object per line."
    )
    ledger: LedgerSettings = Field(default_factory=LedgerSettings)
    accounting: AccountingSettings = Field(default_factory=AccountingSettings)
    xero: XeroSettings = Field(default_factory=XeroSettings)
    billing: BillingSettings = Field(default_factory=BillingSettings)
    tax: TaxSettings = Field(default_factory=TaxSettings)
    salesforce: SalesforceSettings = Field(default_factory=SalesforceSettings)
    seller: SellerSettings = Field(default_factory=SellerSettings)
    documents: DocumentSettings = Field(default_factory=DocumentSettings)
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings)
    dunning: DunningSettings = Field(default_factory=DunningSettings)
    database_lock_timeout_seconds: Annotated[float, Field(ge=0, le=3600)] = Field(
        default=30.0,
        description="How long a command waits, with backoff, for a SQLite database another "
        "connection or process holds locked, before it gives up.",
    )
    secrets: SecretsSettings = Field(default_factory=SecretsSettings)
    email: EmailSettings = Field(default_factory=EmailSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    webhooks: WebhooksSettings = Field(default_factory=WebhooksSettings)
    usage: UsageSettings = Field(default_factory=UsageSettings)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if cls.toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=cls.toml_file))
        return tuple(sources)


def mapping_path(configured: str) -> Path:
    """The mapping file ``configured`` names: as given when it exists (relative to the working
    directory), else the default of that name shipped with the connector (``mappings/…``), so
    commands work from any directory; else as given, for the error to name it."""
    path = Path(configured).expanduser()
    if path.is_absolute() or path.exists() or path.parent != Path(DEFAULT_MAPPINGS.name):
        return path
    shipped = Path(str(resources.files(DEFAULT_MAPPINGS.name).joinpath(path.name)))
    return shipped if shipped.is_file() else path


def config_file(explicit: Path | None = None) -> Path | None:
    """The TOML file to read: the explicit one, ``CONNECTOR_CONFIG_FILE``, or the default
    ``config/connector.toml`` when present."""
    if explicit is not None:
        return explicit
    from_env = os.environ.get(CONFIG_FILE_ENV)
    if from_env:
        return Path(from_env)
    return DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.is_file() else None


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Settings from the environment and the TOML file, with a clear :class:`ConfigError`
    naming the file and the key when something is wrong."""
    toml = config_file(path)
    if toml is not None and not toml.is_file():
        raise ConfigError(f"configuration file {toml} does not exist")
    source = type("FileSettings", (Settings,), {"toml_file": toml})
    try:
        return source(**overrides)
    except ValidationError as error:
        raise ConfigError(_describe(error, toml)) from None
    except SettingsError as error:  # an environment variable's JSON does not parse
        raise ConfigError(_environment_problem(error)) from None
    except (OSError, ValueError) as error:  # unreadable or malformed TOML
        where = f"configuration file {toml}" if toml else "CONNECTOR_* environment variables"
        raise ConfigError(f"cannot read {where}: {error}") from None


def _environment_problem(error: SettingsError) -> str:
    """Which ``CONNECTOR_*`` variable holds a value that is not the JSON its setting needs."""
    found = re.search(r'field "([^"]+)"', str(error))
    section = found.group(1) if found else ""
    for name, value in sorted(os.environ.items()):
        path = name.upper().removeprefix("CONNECTOR_").lower().split("__")
        if not name.upper().startswith("CONNECTOR_") or path[0] != section:
            continue
        if not _takes_json(path):
            continue
        try:
            json.loads(value)
        except ValueError as problem:
            return f"{'.'.join(path)} ({name}): not valid JSON: {problem}"
    return f"a CONNECTOR_{section.upper()}… environment variable is not valid: {error.__cause__}"


def _takes_json(path: list[str]) -> bool:
    """True when the setting at ``path`` is a section, a mapping or a list: its environment
    variable holds JSON."""
    model: type[BaseModel] | None = Settings
    annotation: Any = None
    for part in path:
        field = model.model_fields.get(part) if model is not None else None
        if field is None:
            return False
        annotation = field.annotation
        model = (
            annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel)
            else None
        )
    return model is not None or get_origin(annotation) in (dict, list, set, tuple)


def ca_file_path(value: str, key: str) -> str:
    """``value``, the CA bundle the setting ``key`` names, once it is known to be a file: a
    configuration error naming the key and its environment variable otherwise."""
    if value and not Path(value).is_file():
        env = "CONNECTOR_" + key.replace(".", "__").upper()
        raise ConfigError(f"{key} ({env}): the CA file {value} does not exist")
    return value


def _describe(error: ValidationError, toml: Path | None) -> str:
    origin = f" (from {toml} or CONNECTOR_* environment variables)" if toml else ""
    problems = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"])
        env = "CONNECTOR_" + "__".join(str(part) for part in item["loc"]).upper()
        message = item["msg"].removeprefix("Value error, ")
        problems.append(f"  {key} ({env}): {message}")
    return f"invalid settings{origin}:\n" + "\n".join(problems)
