"""Serving the API with uvicorn, in a thread of its own, beside the scheduler (``connector
run``) or alone (``connector serve``).

The socket is bound here, before uvicorn starts, so that an address in use or not ours is a
clear configuration error rather than a server that silently never starts. A stop lets the
requests in hand finish (up to ``GRACE_SECONDS``)."""

from __future__ import annotations

import logging
import socket
import threading

import uvicorn

from connector.api.app import create_app
from connector.api.instance import Instance
from connector.errors import ConfigError

log = logging.getLogger("connector.api")

GRACE_SECONDS = 10
STARTUP_SECONDS = 30.0


class ApiServer:
    """The API of ``instance`` on ``[api] host`` and ``port``; :meth:`start`, then :meth:`stop`."""

    def __init__(self, instance: Instance, *, port: int | None = None) -> None:
        api = instance.settings.api
        self.host = api.host
        self.port = api.port if port is None else port
        config = uvicorn.Config(
            create_app(instance),
            log_config=None,  # our logging's handlers and format
            lifespan="off",
            server_header=False,
            proxy_headers=False,
            timeout_graceful_shutdown=GRACE_SECONDS,
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> None:
        """Listen, and serve in a thread; a configuration error when the address is refused."""
        self._socket = _listen(self.host, self.port)
        self.port = self._socket.getsockname()[1]  # the port chosen, when 0 asked for any
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name="api", daemon=True
        )
        self._thread.start()
        deadline = threading.Event()
        for _ in range(int(STARTUP_SECONDS / 0.05)):
            if self._server.started or not self._thread.is_alive():
                break
            deadline.wait(0.05)
        if not self._server.started:
            self.stop()
            raise ConfigError(f"the API could not start on {self.url}; see the log above")
        log.info("serving the API and the console on %s", self.url)

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(GRACE_SECONDS + 5)
        if self._socket is not None:
            self._socket.close()


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as error:
        sock.close()
        raise ConfigError(
            f"cannot listen on {host}:{port} ([api] host and port): {error.strerror or error}"
        ) from None
    sock.set_inheritable(True)
    return sock
