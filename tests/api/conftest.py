"""The API served for real: uvicorn on a free port of this machine, on the test's database.

Every answer a test receives through :class:`Served` is checked against the OpenAPI document
the server itself publishes (openapi-core), and that document is validated first
(openapi-spec-validator): whatever the tests see is what the document promises."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from openapi_core import Config, OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse
from openapi_spec_validator import validate as validate_spec
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from connector.api.instance import Instance
from connector.api.keys import create_key
from connector.api.server import ApiServer
from connector.db.engine import transaction
from connector.settings import Settings

# openapi-core reads application/json; problem details are JSON too (RFC 9457)
PROBLEMS_READ = Config(extra_media_type_deserializers={"application/problem+json": json.loads})
_SPECS: dict[
    str, tuple[OpenAPI, frozenset[str]]
] = {}  # the validated document, by its text: read once per session


@dataclass
class Served:
    """A running API: its URL, its instance, and a session for requests. Every answer is
    checked against the OpenAPI document (``checked=False`` for the document itself)."""

    url: str
    instance: Instance
    http: requests.Session
    _spec: tuple[OpenAPI, frozenset[str]] | None = field(default=None, repr=False)

    def key(self, scope: str = "read", name: str | None = None) -> str:
        """A new API key of ``scope``."""
        with transaction(self.instance.factory) as session:
            _info, key = create_key(session, name or f"{scope} key {uuid.uuid4().hex[:8]}", scope)
        return key

    @property
    def spec(self) -> OpenAPI:
        return self._document()[0]

    @property
    def documented(self) -> frozenset[str]:
        """The paths the OpenAPI document names (templates as written there)."""
        return self._document()[1]

    def _document(self) -> tuple[OpenAPI, frozenset[str]]:
        if self._spec is None:
            answer = self.http.get(self.url + "/openapi.json", timeout=30)
            assert answer.status_code == 200
            text = answer.text
            if text not in _SPECS:
                document = answer.json()
                validate_spec(document)
                _SPECS[text] = (
                    OpenAPI.from_dict(document, config=PROBLEMS_READ),
                    frozenset(document["paths"]),
                )
            self._spec = _SPECS[text]
        return self._spec

    def get(self, path: str, key: str | None = None, **options: Any) -> requests.Response:
        headers = {**_auth(key), **options.pop("headers", {})}
        answer = self.http.get(self.url + path, headers=headers, timeout=30, **options)
        return self.checked(answer)

    def post(self, path: str, key: str | None = None, **options: Any) -> requests.Response:
        headers = {**_auth(key), **options.pop("headers", {})}
        answer = self.http.post(self.url + path, headers=headers, timeout=120, **options)
        return self.checked(answer)

    def write(
        self, path: str, key: str, body: Any = None, idempotency_key: str | None = None
    ) -> requests.Response:
        """A POST of ``body`` as JSON with an Idempotency-Key (a new one unless given)."""
        headers = {"Idempotency-Key": idempotency_key or uuid.uuid4().hex}
        options: dict[str, Any] = {} if body is None else {"json": body}
        return self.post(path, key, headers=headers, **options)

    def checked(self, answer: requests.Response) -> requests.Response:
        """``answer``, once openapi-core found it to be what the document says (every ``/v1``
        path must be in it; pages outside the document, such as the console's, are not
        checked)."""
        path = urlsplit(answer.url).path
        if not path.startswith("/v1/") and path not in self.documented:
            return answer
        self.spec.validate_response(
            RequestsOpenAPIRequest(answer.request), RequestsOpenAPIResponse(answer)
        )
        return answer


def _auth(key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key else {}


@contextmanager
def serving(engine: Engine, factory: sessionmaker[Session], settings: Settings) -> Iterator[Served]:
    """The API of a new instance with ``settings``, served until the block ends."""
    instance = Instance(engine, factory, settings)
    server = ApiServer(instance, port=0)
    server.start()
    try:
        with requests.Session() as http:
            yield Served(server.url, instance, http)
    finally:
        server.stop()


@pytest.fixture
def served(engine: Engine, factory: sessionmaker[Session], settings: Settings) -> Iterator[Served]:
    with serving(engine, factory, settings) as running:
        yield running
