from __future__ import annotations

import os
import tomllib
from decimal import Decimal
from pathlib import Path

import pytest

from connector.billing.money import Rounding
from connector.errors import ConfigError
from connector.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config" / "connector.example.toml"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("CONNECTOR_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no config/connector.toml here


def test_defaults() -> None:
    settings = load_settings()
    assert settings.database_url.get_secret_value() == "sqlite:///var/connector.db"
    assert settings.ledger.path == Path("var/ledger.beancount")
    assert settings.billing.default_currency == "USD"
    assert settings.tax.rounding is Rounding.HALF_UP
    assert settings.tax.rates == {}


def test_fixed_environment_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONNECTOR_DATABASE_URL", "postgresql://billing:pw@db/billing")
    monkeypatch.setenv("CONNECTOR_LEDGER__PATH", "/srv/books/ledger.beancount")
    monkeypatch.setenv("CONNECTOR_TAX__RATES", '{"DE": "19", "jp": 10}')
    monkeypatch.setenv("CONNECTOR_BILLING__PAYMENT_TERMS_DAYS", "14")
    settings = load_settings()
    assert settings.database_url.get_secret_value() == "postgresql://billing:pw@db/billing"
    assert settings.ledger.path == Path("/srv/books/ledger.beancount")
    assert settings.tax.rates == {"DE": Decimal(19), "JP": Decimal(10)}
    assert settings.billing.payment_terms_days == 14


def test_environment_overrides_the_toml_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "connector.toml"
    config.write_text(
        '[billing]\ninvoice_prefix = "F-"\nnumber_digits = 8\n[tax]\nrates = { GB = "20" }\n'
    )
    monkeypatch.setenv("CONNECTOR_BILLING__NUMBER_DIGITS", "5")
    settings = load_settings(config)
    assert (settings.billing.invoice_prefix, settings.billing.number_digits) == ("F-", 5)
    assert settings.tax.rates == {"GB": Decimal(20)}


def test_default_config_file_is_read_when_present(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "connector.toml").write_text('log_level = "DEBUG"\n')
    assert load_settings().log_level == "DEBUG"


def test_secrets_never_show() -> None:
    settings = load_settings(database_url="postgresql://billing:s3cret@db/billing")
    assert "s3cret" not in repr(settings)
    assert "s3cret" not in str(settings.model_dump())


def test_errors_name_the_key_its_variable_and_the_problem(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[tax]\nrates = { XX = "19" }\nrounding = "up"\n[billing]\nbatchsize = 10\n')
    with pytest.raises(ConfigError) as raised:
        load_settings(config)
    message = str(raised.value)
    assert f"invalid settings (from {config}" in message
    assert (
        "tax.rates (CONNECTOR_TAX__RATES): unknown country 'XX' (expected ISO 3166 code)" in message
    )
    assert (
        "tax.rounding (CONNECTOR_TAX__ROUNDING): Input should be 'half_up', 'half_even' or 'half_down'"
        in message
    )
    assert (
        "billing.batchsize (CONNECTOR_BILLING__BATCHSIZE): Extra inputs are not permitted"
        in message
    )


def test_missing_and_malformed_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[billing\n")
    with pytest.raises(ConfigError, match=f"cannot read configuration file {broken}"):
        load_settings(broken)


def _keys(data: dict, prefix: str = "") -> set[str]:
    keys = set()
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and key not in ("rates", "code_rates"):
            keys |= _keys(value, f"{path}.")
        else:
            keys.add(path)
    return keys


def test_example_file_documents_every_key_with_its_default() -> None:
    documented = tomllib.loads(EXAMPLE.read_text())
    defaults = Settings().model_dump(mode="json")
    defaults["database_url"] = Settings().database_url.get_secret_value()
    assert _keys(documented) == _keys(defaults)
    assert load_settings(EXAMPLE).model_dump() == Settings().model_dump()


def test_plausibility_limits_have_defaults_and_named_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    defaults = load_settings().billing
    assert defaults.max_backdate_days == 365
    assert defaults.max_amount["default"] == Decimal(1_000_000)
    assert defaults.max_amount["JPY"] == Decimal(150_000_000)
    monkeypatch.setenv("CONNECTOR_BILLING__MAX_BACKDATE_DAYS", "90")
    monkeypatch.setenv("CONNECTOR_BILLING__MAX_AMOUNT", '{"default": "5000", "eur": "2500.50"}')
    billing = load_settings().billing
    assert billing.max_backdate_days == 90
    assert billing.max_amount == {"default": Decimal(5000), "EUR": Decimal("2500.50")}


@pytest.mark.parametrize(
    ("ceilings", "message"),
    [
        ('{ USD = "5000" }', "give a `default` ceiling for the currencies not listed"),
        ('{ default = "5000", XYZ = "1" }', "XYZ: unknown currency 'XYZ' (not in ISO 4217)"),
        ('{ default = "0" }', "default: the ceiling must be a positive amount, not 0"),
    ],
)
def test_a_bad_ceiling_names_the_key(tmp_path: Path, ceilings: str, message: str) -> None:
    config = tmp_path / "limits.toml"
    config.write_text(f"[billing]\nmax_amount = {ceilings}\n")
    with pytest.raises(ConfigError) as raised:
        load_settings(config)
    assert f"billing.max_amount (CONNECTOR_BILLING__MAX_AMOUNT): {message}" in str(raised.value)


def test_tax_rates_per_region_and_the_sellers_country(tmp_path: Path) -> None:
    config = tmp_path / "connector.toml"
    config.write_text(
        '[tax]\nrates = { DE = "19", US-CA = "7.25", "US-NY" = "4" }\nhome_country = "France"\n'
    )
    settings = load_settings(config)
    assert settings.tax.rates == {"DE": Decimal(19), "US-CA": Decimal("7.25"), "US-NY": Decimal(4)}
    assert settings.tax.home_country == "FR"
    assert load_settings().tax.home_country == "US"


def test_unknown_region_and_home_country_are_named(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[tax]\nrates = { US-ZZ = "5" }\nhome_country = "Atlantis"\n')
    with pytest.raises(ConfigError) as raised:
        load_settings(config)
    message = str(raised.value)
    assert (
        "tax.rates (CONNECTOR_TAX__RATES): unknown region 'ZZ' of US (expected an ISO 3166-2 "
        "code such as US-XX, or its name)" in message
    )
    assert (
        "tax.home_country (CONNECTOR_TAX__HOME_COUNTRY): unknown country 'Atlantis' (expected "
        "ISO 3166 code)" in message
    )
