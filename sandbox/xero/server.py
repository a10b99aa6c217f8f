"""Run the fake Xero: configuration, a threaded HTTPS server, what clients need to connect.

TLS comes from the same local CA as the Salesforce sandbox (``ca.pem`` in ``state_dir``;
give the Salesforce sandbox's state directory to share its CA, or none for a temporary one).
"""

from __future__ import annotations

import tempfile
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from werkzeug.serving import BaseWSGIServer

from connector.private_files import make_directories
from sandbox.salesforce.server import https_server, https_url
from sandbox.xero.app import (
    API_PREFIX,
    AUTHORIZE_PATH,
    TOKEN_PATH,
    RecordedRequest,
    XeroApp,
)
from sandbox.xero.auth import Tokens
from sandbox.xero.chart import (
    DEFAULT_ACCOUNT_NAMES,
    DEFAULT_ACCOUNTS,
    DEFAULT_CURRENCIES,
    DEFAULT_TAX_RATES,
    Chart,
    TaxRate,
)
from sandbox.xero.dates import datetime_ms, envelope_timestamp
from sandbox.xero.endpoints import XeroApi
from sandbox.xero.faults import XeroFaultRule, XeroFaults
from sandbox.xero.idempotency import IdempotencyKeys
from sandbox.xero.limits import RateLimiter
from sandbox.xero.locks import LockDates
from sandbox.xero.store import XeroStore

DEFAULT_TENANT_ID = "b3d5a8f2-1c4e-4f7a-9d2b-6e8c0a1f3b57"
VERSIONS = {"USD": ("US", "US"), "GBP": ("UK", "GB"), "AUD": ("AU", "AU"), "NZD": ("NZ", "NZ")}
INFO_KEYS = (
    "xero_url",
    "xero_token_url",
    "xero_api_url",
    "xero_ca_file",
    "xero_client_id",
    "xero_client_secret",
    "xero_tenant_id",
)


@dataclass
class XeroConfig:
    """How to run the fake Xero (every field has a working default)."""

    host: str = "127.0.0.1"
    port: int = 0
    tenant_id: str = DEFAULT_TENANT_ID
    tenant_name: str = "Demo Company"
    client_id: str = "fake-xero-client"
    client_secret: str = "fake-xero-secret"  # noqa: S105 - a fixed secret for a local fake
    base_currency: str = "USD"
    currencies: tuple[str, ...] = DEFAULT_CURRENCIES
    accounts: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_ACCOUNTS))
    account_names: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_ACCOUNT_NAMES))
    tax_rates: Mapping[str, TaxRate | Decimal | int | str] = field(
        default_factory=lambda: dict(DEFAULT_TAX_RATES)
    )
    minute_limit: int = 60
    minute_seconds: float = 60.0
    day_limit: int = 5000
    concurrent_limit: int = 5
    app_minute_limit: int = 10_000
    idempotency_ttl: float = 86_400.0
    access_token_ttl: float = 1800.0
    faults: list[XeroFaultRule | dict[str, Any]] = field(default_factory=list)
    fault_seed: int = 0
    state_dir: Path | None = None  # where ca.pem lives; None: a temporary directory
    period_lock_date: date | None = None  # PeriodLockDate: binds all users but advisers
    end_of_year_lock_date: date | None = None  # EndOfYearLockDate: binds everyone
    adviser: bool = False  # the connection acts for an adviser


def organisation(config: XeroConfig, created: datetime) -> dict[str, Any]:
    version, country = VERSIONS.get(config.base_currency, ("GLOBAL", ""))
    return {
        "OrganisationID": config.tenant_id,
        "APIKey": "",
        "Name": config.tenant_name,
        "LegalName": config.tenant_name,
        "PaysTax": True,
        "Version": version,
        "OrganisationType": "COMPANY",
        "BaseCurrency": config.base_currency,
        "CountryCode": country,
        "IsDemoCompany": False,
        "OrganisationStatus": "ACTIVE",
        "FinancialYearEndDay": 31,
        "FinancialYearEndMonth": 12,
        "SalesTaxBasis": "ACCRUALS",
        "DefaultSalesTax": "Tax Exclusive",
        "DefaultPurchasesTax": "Tax Exclusive",
        "CreatedDateUTC": envelope_timestamp(datetime_ms(created)),
        "Timezone": "UTC",
        "OrganisationEntityType": "COMPANY",
        "ShortCode": "!sndbx",
        "Edition": "BUSINESS",
        "Class": "PREMIUM",
        "Addresses": [],
        "Phones": [],
        "ExternalLinks": [],
        "PaymentTerms": {},
    }


def connection(config: XeroConfig, created: datetime) -> dict[str, Any]:
    stamp = created.replace(tzinfo=None).isoformat(timespec="microseconds") + "0"
    return {
        "id": str(uuid.uuid5(uuid.UUID(config.tenant_id), f"connection:{config.client_id}")),
        "authEventId": str(uuid.uuid5(uuid.UUID(config.tenant_id), "auth-event")),
        "tenantId": config.tenant_id,
        "tenantType": "ORGANISATION",
        "tenantName": config.tenant_name,
        "createdDateUtc": stamp,
        "updatedDateUtc": stamp,
    }


class XeroSandbox:
    """A running fake Xero organisation. Use as a context manager or call start / stop."""

    def __init__(self, config: XeroConfig | None = None) -> None:
        self.config = config = config or XeroConfig()
        self._temporary: tempfile.TemporaryDirectory[str] | None = None
        if config.state_dir is None:
            self._temporary = tempfile.TemporaryDirectory(prefix="connector-xero-")
            self.state_dir = Path(self._temporary.name)
        else:
            self.state_dir = config.state_dir
            make_directories(self.state_dir)
        self.ca_file = self.state_dir / "ca.pem"
        created = datetime.now(UTC)
        self.chart = Chart(
            tenant_id=config.tenant_id,
            accounts=config.accounts,
            account_names=config.account_names,
            tax_rates=config.tax_rates,
            currencies=config.currencies,
            base_currency=config.base_currency,
        )
        self.store = XeroStore(self.chart)
        self.store.locks = LockDates(
            config.period_lock_date, config.end_of_year_lock_date, config.adviser
        )
        self.tokens = Tokens(config.client_id, config.client_secret, config.access_token_ttl)
        self.limits = RateLimiter(
            minute_limit=config.minute_limit,
            minute_seconds=config.minute_seconds,
            day_limit=config.day_limit,
            concurrent_limit=config.concurrent_limit,
            app_minute_limit=config.app_minute_limit,
            tenant_id=config.tenant_id,
        )
        self.faults = XeroFaults(config.faults, config.fault_seed)
        self.idempotency = IdempotencyKeys(config.idempotency_ttl)
        self.app = XeroApp(
            tenant_id=config.tenant_id,
            connections=[connection(config, created)],
            tokens=self.tokens,
            limits=self.limits,
            faults=self.faults,
            keys=self.idempotency,
            api=XeroApi(self.store, self.chart, organisation(config, created)),
        )
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> XeroSandbox:
        self._server = https_server(self.config.host, self.config.port, self.app, self.state_dir)
        server = self._server
        self._thread = threading.Thread(
            target=lambda: server.serve_forever(poll_interval=0.05),
            name="xero-sandbox",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self._temporary is not None:
            self._temporary.cleanup()
            self._temporary = None

    def __enter__(self) -> XeroSandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what clients need -----------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the Xero sandbox is not running")
        return int(self._server.server_port)

    @property
    def url(self) -> str:
        return https_url(self.config.host, self.port)

    @property
    def api_url(self) -> str:
        return self.url + API_PREFIX

    @property
    def token_url(self) -> str:
        return self.url + TOKEN_PATH

    @property
    def authorize_url(self) -> str:
        return self.url + AUTHORIZE_PATH

    @property
    def connections_url(self) -> str:
        return self.url + "/connections"

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request answered so far, oldest first (tests may clear it)."""
        return self.app.requests

    def issue_authorization_code(self, redirect_uri: str | None = None) -> str:
        """A code the authorization_code grant accepts once."""
        return self.tokens.issue_authorization_code(redirect_uri)

    def info(self) -> dict[str, Any]:
        config = self.config
        return {
            "xero_url": self.url,
            "xero_token_url": self.token_url,
            "xero_api_url": self.api_url,
            "xero_ca_file": str(self.ca_file.resolve()),
            "xero_client_id": config.client_id,
            "xero_client_secret": config.client_secret,
            "xero_tenant_id": config.tenant_id,
        }
