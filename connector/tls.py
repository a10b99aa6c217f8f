"""TLS trust of the connector's HTTPS clients: the configured CA file, else the operating
system's trust store; never the environment.

requests lets ``REQUESTS_CA_BUNDLE`` and ``CURL_CA_BUNDLE`` replace what a session trusts, and a
request's ``verify`` turn verification off. Sessions made here mount :class:`TrustAdapter`,
which verifies every HTTPS connection with its own SSL context whatever the request or the
environment says: the certificates of the CA file when one is configured (``salesforce.ca_file``,
``xero.ca_file``), else the system's trust store through ``truststore`` (the platform's
verifier on macOS and Windows, OpenSSL's system certificates on Linux).
"""

from __future__ import annotations

import ssl
from typing import Any

import requests
import truststore
from requests.adapters import HTTPAdapter

from connector.errors import ConfigError


def trust_context(ca_file: str, setting: str) -> ssl.SSLContext:
    """The client context that trusts ``ca_file`` (a PEM bundle) or, when empty, the system's
    trust store; ``setting`` names the setting in errors."""
    context: ssl.SSLContext
    if not ca_file:
        context = truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    else:
        try:
            context = ssl.create_default_context(cafile=ca_file)
        except FileNotFoundError:
            raise ConfigError(f"{setting}: the CA file {ca_file} does not exist") from None
        except ssl.SSLError as error:
            raise ConfigError(
                f"{setting}: {ca_file} is not a PEM bundle of CA certificates ({error.reason})"
            ) from None
        except OSError as error:
            raise ConfigError(f"{setting}: cannot read {ca_file}: {error.strerror}") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class TrustAdapter(HTTPAdapter):
    """Every HTTPS request verified with ``context`` (and given ``timeout`` when it has none):
    the ``verify`` a request carries, and so the CA bundles of the environment, are ignored."""

    def __init__(self, context: ssl.SSLContext, timeout: float | None = None) -> None:
        self.context = context
        self.timeout = timeout
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["ssl_context"] = self.context
        super().init_poolmanager(*args, **kwargs)

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: Any, cert: Any = None
    ) -> tuple[Any, Any]:
        host, given = super().build_connection_pool_key_attributes(request, True, cert)
        pool: dict[str, Any] = dict(given)
        pool.pop("ca_certs", None)
        pool.pop("ca_cert_dir", None)
        pool["cert_reqs"] = "CERT_REQUIRED"
        pool["ssl_context"] = self.context
        return host, pool

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        super().cert_verify(conn, url, True, cert)
        conn.cert_reqs = "CERT_REQUIRED"
        conn.ca_certs = None  # else urllib3 would add that bundle to our context
        conn.ca_cert_dir = None

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs["verify"] = True
        if kwargs.get("timeout") is None and self.timeout is not None:
            kwargs["timeout"] = self.timeout
        return super().send(request, **kwargs)


def https_session(ca_file: str, setting: str, timeout: float | None = None) -> requests.Session:
    """A session whose HTTPS requests trust ``ca_file`` or the system's store, nothing else."""
    session = requests.Session()
    session.mount("https://", TrustAdapter(trust_context(ca_file, setting), timeout))
    return session
