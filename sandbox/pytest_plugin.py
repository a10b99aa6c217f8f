"""pytest fixtures for the Salesforce sandbox (loaded through the ``pytest11`` entry point).

- ``salesforce_sandbox``: a fresh in-memory sandbox org on a free port (a :class:`Sandbox`);
  mark a test ``@pytest.mark.sandbox(seed="demo", daily_api_limit=100)`` to configure it.
- ``sf``: a ready ``simple_salesforce.Salesforce`` on that org.
- ``xero_sandbox``: a fresh fake Xero organisation on a free port (a
  :class:`~sandbox.xero.server.XeroSandbox`); mark a test
  ``@pytest.mark.xero(minute_limit=5)`` to configure it (any ``XeroConfig`` field).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from simple_salesforce import Salesforce

from sandbox.salesforce.server import Sandbox
from sandbox.salesforce.testing import connect, running_sandbox
from sandbox.xero.server import XeroConfig, XeroSandbox


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "sandbox(**config): settings for the salesforce_sandbox fixture"
    )
    config.addinivalue_line("markers", "xero(**config): settings for the xero_sandbox fixture")


@pytest.fixture
def salesforce_sandbox(request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    marker = request.node.get_closest_marker("sandbox")
    options = dict(marker.kwargs) if marker else {}
    with running_sandbox(**options) as sandbox:
        yield sandbox


@pytest.fixture
def sf(salesforce_sandbox: Sandbox) -> Salesforce:
    return connect(salesforce_sandbox)


@pytest.fixture
def xero_sandbox(request: pytest.FixtureRequest) -> Iterator[XeroSandbox]:
    marker = request.node.get_closest_marker("xero")
    options = dict(marker.kwargs) if marker else {}
    with XeroSandbox(XeroConfig(**options)) as xero:
        yield xero
