"""``/v1/status``: what `connector status --json` reports, with the instance's role and what
waits for a person."""

from __future__ import annotations

from tests.api.conftest import Served
from tests.api.v1.conftest import Books


def test_status_as_the_command_reports_it(served: Served, books: Books) -> None:
    key = served.key()
    report = served.get("/v1/status", key).json()

    assert report.pop("api_usage")["connector_calls"] == 0
    assert report == {
        "role": "standby",
        "attention": [],
        "jobs": dict.fromkeys(
            [
                "pull",
                "payments",
                "bill",
                "revenue",
                "push",
                "dunning",
                "send",
                "webhooks",
                "writeback",
            ]
        ),
        "connections": {},
        "outbox": {"ledger": {"waiting": 8, "parked": 0}},
        "refused": [],
        "cursors": {},
        "records": {},
        "quarantined": [],
        "held": [],
        "books": {
            "closed_through": None,
            "first_open_day": None,
            "closed_by": None,
            "closed_at": None,
            "reopened": False,
            "in_flight": {},
        },
        "tax_ids": [],
        "email": {
            "enabled": False,
            "counts": {"pending": 7, "sent": 0, "parked": 0, "waiting": 0, "in_flight": 0},
            "messages": [],
        },
        "unrendered": [],
        "webhooks": None,
    }
    served.instance.activate(lambda stage, as_of: None)
    assert served.get("/v1/status", key).json()["role"] == "active"
