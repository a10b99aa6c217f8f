"""Start a sandbox org for tests and dry runs, and connect simple-salesforce to it.

>>> with salesforce_sandbox(seed="demo") as sf:
...     sf.query("SELECT COUNT() FROM Account")["totalSize"]

The client trusts the sandbox's CA through its own ``requests.Session`` (``trust_env`` off, so
``REQUESTS_CA_BUNDLE`` in the environment cannot override it); verification stays on.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests
from simple_salesforce import Salesforce

from sandbox.salesforce.server import Sandbox, SandboxConfig


def trusting_session(sandbox: Sandbox) -> requests.Session:
    """A requests session that trusts the sandbox's CA and nothing from the environment."""
    session = requests.Session()
    session.trust_env = False
    session.verify = str(sandbox.ca_file)
    return session


def connect(sandbox: Sandbox, version: str | None = None) -> Salesforce:
    """simple-salesforce on the sandbox's admin session."""
    return Salesforce(
        instance_url=sandbox.instance_url,
        session_id=sandbox.session_id,
        version=version or sandbox.config.api_version,
        session=trusting_session(sandbox),
    )


@contextmanager
def running_sandbox(**config: Any) -> Iterator[Sandbox]:
    """A sandbox on a free port (in memory unless ``data=`` names a file), stopped on exit."""
    with Sandbox(SandboxConfig(**config)) as sandbox:
        yield sandbox


@contextmanager
def salesforce_sandbox(**config: Any) -> Iterator[Salesforce]:
    """A ready ``simple_salesforce.Salesforce`` connected to a fresh sandbox org.

    The sandbox itself is at ``sf.sandbox`` (faults, quota, the org's data).
    """
    with running_sandbox(**config) as sandbox:
        client = connect(sandbox)
        client.sandbox = sandbox  # type: ignore[attr-defined]
        yield client
