"""``connector run`` serves the API beside its scheduler, and ``connector serve`` serves it
alone: processes on the same database, each on a free port, each saying in ``/readyz`` and
``/metrics`` whether it is the active instance or stands by, and handing the role over when
the active one stops."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable

import pytest
import requests

from tests.jobs.conftest import Service, far_cron

SERVING = "serving the API and the console on "


def _url(service: Service) -> str:
    return service.wait_for_message(SERVING).message.removeprefix(SERVING)


def _role(url: str) -> str:
    answer = requests.get(f"{url}/readyz", timeout=30)
    assert answer.status_code == 200, answer.text
    role: str = answer.json()["role"]
    return role


@pytest.mark.sandbox(seed="demo")
def test_the_active_instance_says_so_and_a_standby_and_a_replica_serve_reads(
    services: Callable[..., Service],
    service_env: Callable[..., dict[str, str]],
) -> None:
    env = service_env(revenue=far_cron())
    first = services(env)
    first_url = _url(first)
    first.wait_for_message("active (")
    second = services(env)
    second_url = _url(second)
    second.wait_for_message("standing by")
    replica = services(env, "serve")
    replica_url = _url(replica)

    assert [_role(first_url), _role(second_url), _role(replica_url)] == [
        "active",
        "standby",
        "standby",
    ]
    assert len({first_url, second_url, replica_url}) == 3
    # A key made by the command line works on every instance, and never reaches a log.
    created = subprocess.run(
        [sys.executable, "-m", "connector", "apikey", "create", "--name", "ops"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    key = created.stdout.strip()
    for url in (first_url, second_url, replica_url):
        answer = requests.get(
            f"{url}/v1/customers", headers={"Authorization": f"Bearer {key}"}, timeout=30
        )
        assert answer.status_code == 200, answer.text
    refused = requests.get(
        f"{replica_url}/v1/customers", headers={"Authorization": "Bearer ck_wrong"}, timeout=30
    )
    assert refused.status_code == 401
    metrics = requests.get(f"{replica_url}/metrics", timeout=30).text
    assert "connector_instance_active 0.0\n" in metrics
    assert (
        "connector_instance_active 1.0\n" in requests.get(f"{first_url}/metrics", timeout=30).text
    )

    # The active instance stops: the standby takes the role over, the replica still serves.
    assert first.stop(signal.SIGTERM) == 0, first.output()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{first_url}/healthz", timeout=5)
    second.wait_for_message("active (")
    assert _role(second_url) == "active"
    assert _role(replica_url) == "standby"
    assert replica.stop(signal.SIGTERM) == 0, replica.output()
    assert replica.messages("stopped (SIGTERM)")
    assert second.stop(signal.SIGTERM) == 0, second.output()
    for service in (first, second, replica):
        logged = service.output()
        assert 'GET /v1/customers HTTP/1.1\\" 200' in logged  # the access log (JSON), no key
        assert key not in logged
        assert "ck_wrong" not in logged
