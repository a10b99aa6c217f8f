"""Benchmark: delivering webhook events to a local receiver, against plain signed POSTs.

    python tests/benchmarks/bench_webhooks.py --events 2000 [--customers 200] [--batch-size 100]
        [--postgres-url postgresql://user:password@host/postgres]

N events (``customer.created`` bodies of the usual size, spread over K customers: the ordering
keys) are written to the webhook outbox of a fresh database (SQLite in a temporary folder by
default; with ``--postgres-url``, a database made on that server and dropped after) for one
endpoint, and the ``webhooks`` stage delivers them all to a receiver in this
process (a threaded ``http.server`` on 127.0.0.1 that verifies every request with the
``standardwebhooks`` library, as a receiver would). Then the same N bodies are posted to the
same receiver directly with one ``requests`` session (keep-alive, no proxy lookups from the
environment, as the stage's), each signed the same way: the cost of the HTTP and of the
receiver alone. Reported: events per second of each, their ratio (the stage's
throughput as a share of the plain POSTs'), and the SQL statements the stage spent per event
(machine-independent).

Exits 1 after printing its figures when an event was not delivered, a request did not verify,
or the stage delivered an event twice.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from connector.db import tables, webhook_events  # noqa: E402
from connector.db.engine import make_engine, session_factory, transaction  # noqa: E402
from connector.db.migrate import upgrade  # noqa: E402
from connector.encryption import TokenCipher  # noqa: E402
from connector.settings import load_settings  # noqa: E402
from connector.sync.webhooks import deliver  # noqa: E402
from connector.webhooks.endpoints import add_endpoint  # noqa: E402
from connector.webhooks.events import body as body_of  # noqa: E402
from connector.webhooks.payloads import customer_event  # noqa: E402
from connector.webhooks.signing import headers, secret_key  # noqa: E402
from tests.conftest import create_postgres_database, drop_postgres_database  # noqa: E402
from tests.statements import counting  # noqa: E402
from tests.webhook_receiver import receiving  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument(
        "--postgres-url",
        default="",
        help="a PostgreSQL server to make a fresh database on (default: SQLite)",
    )
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="bench-webhooks-"))
    url = (
        create_postgres_database(args.postgres_url)
        if args.postgres_url
        else f"sqlite:///{folder / 'connector.db'}"
    )
    engine = make_engine(url)
    upgrade(engine)
    factory = session_factory(engine)
    settings = load_settings(
        database_url=url,
        secrets={"key_file": str(folder / "secrets.key")},
        webhooks={"batch_size": args.batch_size},
    )
    cipher = TokenCipher.from_settings(settings.secrets, url)
    ok = True
    with receiving() as receiver:
        with transaction(factory) as session:
            _, receiver.secret = add_endpoint(session, cipher, receiver.url, "*")
        with transaction(factory) as session:
            webhook_events.emit(
                session,
                [
                    replace(
                        customer_event(
                            number, f"001{number:015d}", f"Customer {number}", "GB", "GBP"
                        ),
                        ordering_key=f"customer:{number % args.customers}",
                    )
                    for number in range(1, args.events + 1)
                ],
            )
        began = time.perf_counter()
        with counting(engine) as statements:
            result = deliver(factory, settings)
        stage_seconds = time.perf_counter() - began
        delivered = len(receiver.delivered())

        with factory() as session:
            bodies = [
                (webhook_id, body_of(payload))
                for webhook_id, payload in session.execute(
                    select(tables.WebhookEvent.webhook_id, tables.WebhookEvent.payload).order_by(
                        tables.WebhookEvent.id
                    )
                )
            ]
            states = dict(
                session.execute(
                    select(tables.WebhookDelivery.state, func.count()).group_by(
                        tables.WebhookDelivery.state
                    )
                ).all()
            )
        key = secret_key(receiver.secret)
        began = time.perf_counter()
        with requests.Session() as http:
            http.trust_env = False  # as the stage's session: no proxy lookups per request
            for webhook_id, body in bodies:
                stamp = int(datetime.now(UTC).timestamp())
                answer = http.post(
                    receiver.url,
                    data=body,
                    headers=headers(key, webhook_id, stamp, body),
                    timeout=10,
                )
                ok = ok and answer.status_code == 200
        plain_seconds = time.perf_counter() - began
        refused = receiver.refused
    stage_rate = args.events / stage_seconds
    plain_rate = args.events / plain_seconds
    figures = {
        "events": args.events,
        "customers": args.customers,
        "batch_size": args.batch_size,
        "database": engine.dialect.name,
        "stage_events_per_s": round(stage_rate, 1),
        "plain_posts_per_s": round(plain_rate, 1),
        "ratio_stage_to_plain": round(stage_rate / plain_rate, 3),
        "statements_per_event": round(len(statements) / args.events, 3),
        "stage": result.to_dict(),
    }
    print(json.dumps(figures, indent=2))
    engine.dispose()
    if args.postgres_url:
        drop_postgres_database(args.postgres_url, url)
    checks = {
        "every event delivered once": delivered == args.events
        and result.delivered == args.events
        and states == {"delivered": args.events},
        "every request verified": refused == 0,
        "plain posts answered 200": ok,
    }
    for name, passed in checks.items():
        if not passed:
            print(f"check failed: {name}", file=sys.stderr)
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
