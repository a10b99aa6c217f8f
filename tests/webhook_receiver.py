"""A real HTTP receiver of webhooks for tests and benchmarks: a threading ``http.server`` on a
free port of 127.0.0.1 that verifies every request with the ``standardwebhooks`` library (the
receiver's side of the specification) and keeps what it received, in order.

``answers`` is a list of statuses answered in turn (then 200); ``answer`` a function of the
event for finer control. A request whose signature does not verify is answered 401 and counted
in ``refused``."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import trustme
from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass(frozen=True)
class Received:
    webhook_id: str
    timestamp: str
    signature: str
    body: bytes
    payload: dict[str, Any]
    status: int  # what the receiver answered

    @property
    def type(self) -> str:
        return str(self.payload["type"])


@dataclass
class Receiver:
    port: int = 0
    secret: str | None = None  # whsec_...: set once the endpoint is added
    answers: list[int] = field(default_factory=list)
    answer: Callable[[dict[str, Any]], int] | None = None
    received: list[Received] = field(default_factory=list)
    refused: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    tls: bool = False

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}/hooks"

    def delivered(self) -> list[Received]:
        """What it accepted (answered 2xx), in order."""
        with self.lock:
            return [item for item in self.received if 200 <= item.status < 300]

    def handle(self, headers: dict[str, str], body: bytes) -> int:
        assert self.secret is not None, "the receiver has no secret yet"
        try:
            payload = Webhook(self.secret).verify(body, headers)
        except WebhookVerificationError:
            with self.lock:
                self.refused += 1
            return 401
        with self.lock:
            if self.answer is not None:
                status = self.answer(payload)
            else:
                status = self.answers.pop(0) if self.answers else 200
            self.received.append(
                Received(
                    headers["webhook-id"],
                    headers["webhook-timestamp"],
                    headers["webhook-signature"],
                    body,
                    json.loads(body),
                    status,
                )
            )
        return status


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as receivers behind a proxy answer
        wbufsize = 65_536  # the answer leaves in one write (flushed after each request)
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            if len(body) < length:  # the sender died mid-request: no request came
                self.close_connection = True
                return
            headers = {name.lower(): value for name, value in self.headers.items()}
            status = receiver.handle(headers, body)
            answer = b'{"ok":true}' if status < 300 else b"refused"
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that closes its kept-alive connection is not an error."""
        return


@contextmanager
def receiving(receiver: Receiver | None = None, ca: trustme.CA | None = None) -> Iterator[Receiver]:
    """``receiver`` served on a free port while the block runs (on its port again when it was
    served before: the endpoint's URL); over HTTPS with a certificate of ``ca`` for 127.0.0.1
    when given."""
    receiver = receiver or Receiver()
    server = _Server(("127.0.0.1", receiver.port), _handler(receiver))
    if ca is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ca.issue_cert("127.0.0.1").configure_cert(context)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        receiver.tls = True
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
