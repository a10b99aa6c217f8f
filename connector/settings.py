"""Settings: one pydantic-settings model.

Sources, highest priority first: environment variables (prefix ``CONNECTOR_``, nested keys
joined with ``__``, e.g. ``CONNECTOR_LEDGER__PATH``), then a TOML file, then the defaults. The
TOML file is the one given with ``--config`` or ``CONNECTOR_CONFIG_FILE``, else
``config/connector.toml`` when it exists. ``config/connector.example.toml`` documents every key.
Secrets are ``SecretStr``: they print as ``**********`` and are never logged.
"""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from connector.billing.money import Rounding, currency
from connector.billing.tax import TaxTable
from connector.errors import ConfigError, InvalidInputError

DEFAULT_CONFIG_FILE = Path("config/connector.toml")
CONFIG_FILE_ENV = "CONNECTOR_CONFIG_FILE"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LedgerSettings(_Section):
    path: Path = Field(
        default=Path("var/ledger.beancount"),
        description="The Beancount ledger file that invoices, credits and revenue are posted to.",
    )


class AccountingSettings(_Section):
    target: Literal["ledger"] = Field(
        default="ledger", description="Where documents are posted: the Beancount ledger."
    )
    mapping_file: str = Field(
        default="mappings/accounting.yaml", description="The chart of accounts."
    )


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

    @field_validator("default_currency")
    @classmethod
    def _known_currency(cls, value: str) -> str:
        try:
            return currency(value).code
        except InvalidInputError as error:
            raise ValueError(str(error)) from None


class TaxSettings(_Section):
    rounding: Rounding = Field(
        default=Rounding.HALF_UP,
        description="Rounding of tax, once per document and rate: half_up, half_even, half_down.",
    )
    rates: dict[str, Decimal] = Field(
        default_factory=dict,
        description="Standard rate in percent per customer country (ISO 3166 code).",
    )
    code_rates: dict[str, dict[str, Decimal]] = Field(
        default_factory=dict,
        description="Rates per product tax code, then per country, replacing the standard rate.",
    )

    def table(self) -> TaxTable:
        return TaxTable.build(self.rates, self.code_rates)

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

    @field_validator("login_url", "instance_url")
    @classmethod
    def _https(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if value and not value.startswith("https://"):
            raise ValueError(f"must be an https:// URL (Salesforce speaks TLS only), not {value}")
        return value


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
    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING or ERROR.")
    ledger: LedgerSettings = Field(default_factory=LedgerSettings)
    accounting: AccountingSettings = Field(default_factory=AccountingSettings)
    billing: BillingSettings = Field(default_factory=BillingSettings)
    tax: TaxSettings = Field(default_factory=TaxSettings)
    salesforce: SalesforceSettings = Field(default_factory=SalesforceSettings)

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
    except (OSError, ValueError) as error:  # unreadable or malformed TOML
        raise ConfigError(f"cannot read configuration file {toml}: {error}") from None


def _describe(error: ValidationError, toml: Path | None) -> str:
    origin = f" (from {toml} or CONNECTOR_* environment variables)" if toml else ""
    problems = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"])
        env = "CONNECTOR_" + "__".join(str(part) for part in item["loc"]).upper()
        message = item["msg"].removeprefix("Value error, ")
        problems.append(f"  {key} ({env}): {message}")
    return f"invalid settings{origin}:\n" + "\n".join(problems)
