"""Run the sandbox: TLS material kept with the data, a threaded HTTPS server, the info file.

The first start makes a local certificate authority (``ca.pem``) in the state directory beside
the data file (``<data>.d/``, or a temporary directory for an in-memory org); the data file,
the state directory and every file in it are their owner's alone (0600, 0700); every start issues
a server certificate for localhost, 127.0.0.1, ::1 and the host it binds. Clients trust
``ca.pem``; verification is never turned off. The JWT bearer grant checks assertions against
``jwt-public.pem`` (made with its private key ``jwt-private.pem`` unless one is configured).
"""

from __future__ import annotations

import functools
import json
import logging
import ssl
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import trustme
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from connector.private_files import create_empty, make_directories, write_private
from sandbox.salesforce.app import SandboxApp, Usage
from sandbox.salesforce.auth import Credentials, Sessions
from sandbox.salesforce.faults import FaultRule, Faults
from sandbox.salesforce.schema import Schema, default_schema
from sandbox.salesforce.seed import seed_org
from sandbox.salesforce.store import Org

log = logging.getLogger(__name__)

DEFAULT_VERSION = "59.0"
DEFAULT_DAILY_LIMIT = 15_000
DEFAULT_SESSION_TTL = 7200.0
INFO_KEYS = (
    "instance_url",
    "ca_file",
    "session_id",
    "api_version",
    "username",
    "password",
    "client_id",
    "client_secret",
)


@dataclass
class SandboxConfig:
    """How to run a sandbox org (every field has a working default)."""

    data: Path | None = None  # None: in memory
    host: str = "127.0.0.1"
    port: int = 0
    seed: str | None = None  # "demo" or "demo:N"
    api_version: str = DEFAULT_VERSION
    daily_api_limit: int = DEFAULT_DAILY_LIMIT
    session_ttl: float = DEFAULT_SESSION_TTL
    faults: list[FaultRule] = field(default_factory=list)
    fault_seed: int = 0
    credentials: Credentials = field(default_factory=Credentials)
    jwt_public_key_file: Path | None = None
    schema: Schema | None = None
    # False: an org without multi-currency, whose objects have no CurrencyIsoCode field and
    # whose records are all in the corporate currency.
    multi_currency: bool = True


def load_ca(state: Path) -> trustme.CA:
    ca_file, key_file = state / "ca.pem", state / "ca-key.pem"
    if ca_file.exists() and key_file.exists():
        return trustme.CA.from_pem(ca_file.read_bytes(), key_file.read_bytes())
    ca = trustme.CA(organization_name="Billing connector sandbox")
    write_private(key_file, ca.private_key_pem.bytes())
    write_private(ca_file, ca.cert_pem.bytes())
    return ca


@functools.cache
def _jwt_key_pair() -> tuple[bytes, bytes]:
    """One RSA key pair per process (making one takes a noticeable fraction of a second)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


def ensure_jwt_keys(state: Path) -> Path:
    """The public key the JWT bearer grant checks (a key pair is made on first start)."""
    public, private = state / "jwt-public.pem", state / "jwt-private.pem"
    if not (public.exists() and private.exists()):
        private_pem, public_pem = _jwt_key_pair()
        write_private(private, private_pem)
        write_private(public, public_pem)
    return public


class _HandshakeInWorkerContext(ssl.SSLContext):
    """Defers each connection's TLS handshake to its worker thread, so that a client that
    connects and sends nothing cannot hold up the thread that accepts connections."""

    def wrap_socket(self, sock: Any, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        kwargs["do_handshake_on_connect"] = False
        return super().wrap_socket(sock, *args, **kwargs)


class _Handler(WSGIRequestHandler):
    timeout = 300  # seconds an idle keep-alive connection is held open

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The ``Date`` header: the server's own clock (the org's) when it has one."""
        clock: Callable[[], datetime] | None = getattr(self.server, "clock", None)
        if timestamp is None and clock is not None:
            return format_datetime(clock().astimezone(UTC), usegmt=True)
        return super().date_time_string(timestamp)


def tls_context(state: Path, host: str) -> ssl.SSLContext:
    """A server context with a certificate from the CA in ``state`` for localhost and ``host``."""
    ca = load_ca(state)
    hosts = ["localhost", "127.0.0.1", "::1"]
    if host not in hosts and host not in ("0.0.0.0", "::"):  # noqa: S104
        hosts.append(host)
    certificate = ca.issue_cert(*hosts)
    context = _HandshakeInWorkerContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    certificate.configure_cert(context)
    return context


def https_server(
    host: str,
    port: int,
    app: Any,
    state: Path,
    clock: Callable[[], datetime] | None = None,
) -> BaseWSGIServer:
    """A threaded HTTPS server for a WSGI app (not yet serving), trusted through ``state``'s CA;
    its answers' ``Date`` header tells ``clock``'s time (default: the system clock)."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = make_server(
        host,
        port,
        app,
        threaded=True,
        ssl_context=tls_context(state, host),
        request_handler=_Handler,
    )
    server.clock = clock  # type: ignore[attr-defined]
    return server


def https_url(host: str, port: int) -> str:
    """The URL clients use for a server bound to ``host`` (any-address binds: 127.0.0.1)."""
    if host in ("0.0.0.0", "::"):  # noqa: S104
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"https://{host}:{port}"


class Sandbox:
    """A running sandbox org. Use as a context manager or call :meth:`start` / :meth:`stop`."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self._temporary: tempfile.TemporaryDirectory[str] | None = None
        if self.config.data is None:
            self._temporary = tempfile.TemporaryDirectory(prefix="connector-sandbox-")
            self.state_dir = Path(self._temporary.name)
        else:
            self.state_dir = self.config.data.with_name(self.config.data.name + ".d")
        make_directories(self.state_dir)
        if self.config.data is not None:  # SQLite gives its -wal and -shm files this mode
            create_empty(self.config.data)
        self.ca_file = self.state_dir / "ca.pem"
        self.jwt_private_key_file = self.state_dir / "jwt-private.pem"
        public_key = self.config.jwt_public_key_file or ensure_jwt_keys(self.state_dir)
        credentials = self.config.credentials
        if credentials.jwt_public_key is None:
            credentials = Credentials(
                **{**credentials.__dict__, "jwt_public_key": public_key.read_bytes()}
            )
        self.credentials = credentials
        schema = self.config.schema or default_schema()
        if not self.config.multi_currency:
            schema = schema.single_currency()
        self.org = Org(schema, self.config.data)
        if self.config.seed:
            seed_org(self.org, self.config.seed)
        self.sessions = Sessions(credentials, self.config.session_ttl)
        self.usage = Usage(self.config.daily_api_limit, lambda: datetime.now(UTC))
        self.faults = Faults(self.config.faults, self.config.fault_seed)
        self.app = SandboxApp(self.org, self.sessions, self.usage, self.faults)
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.session_id = ""

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> Sandbox:
        self._server = https_server(
            self.config.host,
            self.config.port,
            self.app,
            self.state_dir,
            clock=self._org_time,
        )
        self.session_id = self.sessions.open(self.credentials.username)
        server = self._server
        self._thread = threading.Thread(
            target=lambda: server.serve_forever(poll_interval=0.05),
            name="salesforce-sandbox",
            daemon=True,
        )
        self._thread.start()
        return self

    def _org_time(self) -> datetime:
        """The org's clock, read at each call (tests replace ``org.clock``)."""
        return self.org.clock()

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted (``connector sandbox serve``)."""
        if self._server is None:
            raise RuntimeError("start the sandbox first")
        if self._thread is not None:
            self._thread.join()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        with self.org.lock:
            self.org.db.close()
        if self._temporary is not None:
            self._temporary.cleanup()
            self._temporary = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what clients need -----------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the sandbox is not running")
        return int(self._server.server_port)

    @property
    def instance_url(self) -> str:
        return https_url(self.config.host, self.port)

    def info(self) -> dict[str, Any]:
        credentials = self.credentials
        return {
            "instance_url": self.instance_url,
            "ca_file": str(self.ca_file.resolve()),
            "session_id": self.session_id,
            "api_version": self.config.api_version,
            "username": credentials.username,
            "password": credentials.password,
            "client_id": credentials.client_id,
            "client_secret": credentials.client_secret,
        }

    def write_info(self, path: Path, extra: Mapping[str, Any] | None = None) -> None:
        """Write the info file atomically, readable by its owner only (it holds a session);
        ``extra`` adds keys (``connector sandbox serve --xero`` adds the fake Xero's)."""
        info = {**self.info(), **(extra or {})}
        write_private(path, json.dumps(info, indent=2).encode() + b"\n")
