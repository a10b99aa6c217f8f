"""The API served for real: uvicorn on a free port of this machine, on the test's database."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from connector.api.instance import Instance
from connector.api.keys import create_key
from connector.api.server import ApiServer
from connector.db.engine import transaction
from connector.settings import Settings


@dataclass
class Served:
    """A running API: its URL, its instance, and a session for requests."""

    url: str
    instance: Instance
    http: requests.Session

    def key(self, scope: str = "read", name: str | None = None) -> str:
        """A new API key of ``scope``."""
        with transaction(self.instance.factory) as session:
            count = len(session.info.setdefault("keys", []))
            _info, key = create_key(session, name or f"{scope} key {id(self)} {count}", scope)
        return key

    def get(self, path: str, key: str | None = None, **options: Any) -> requests.Response:
        return self.http.get(self.url + path, headers=_auth(key), timeout=30, **options)

    def post(self, path: str, key: str | None = None, **options: Any) -> requests.Response:
        headers = {**_auth(key), **options.pop("headers", {})}
        return self.http.post(self.url + path, headers=headers, timeout=60, **options)


def _auth(key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key else {}


@pytest.fixture
def served(engine: Engine, factory: sessionmaker[Session], settings: Settings) -> Iterator[Served]:
    instance = Instance(engine, factory, settings)
    server = ApiServer(instance, port=0)
    server.start()
    try:
        with requests.Session() as http:
            yield Served(server.url, instance, http)
    finally:
        server.stop()
