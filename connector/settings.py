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
from typing import Annotated, Any, ClassVar

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
    billing: BillingSettings = Field(default_factory=BillingSettings)
    tax: TaxSettings = Field(default_factory=TaxSettings)

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
