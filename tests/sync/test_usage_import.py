"""connector usage import's engine: CSV and JSON Lines streamed in batches, bad lines named."""

from __future__ import annotations

import gc
import multiprocessing
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from connector.db import tables
from connector.db.engine import reading, transaction
from connector.errors import InvalidInputError
from connector.sync import contracts
from connector.sync.usage_import import import_events
from connector.sync.usage_mapping import load_usage_mapping

SHIPPED = Path(__file__).resolve().parents[2] / "mappings" / "usage.yaml"
METRICS = load_usage_mapping(SHIPPED).metrics
NOW = datetime(2026, 3, 20, tzinfo=UTC)


@pytest.fixture
def customer_id(factory: sessionmaker[Session]) -> int:
    with transaction(factory) as session:
        return contracts.upsert_customer(
            session,
            name="Acme",
            country="US",
            currency="USD",
            system="salesforce",
            external_id="001000000000001AAA",
        ).id


def stored(factory: sessionmaker[Session]) -> int:
    with reading(factory) as session:
        return session.scalar(select(func.count()).select_from(tables.UsageEvent)) or 0


PARALLEL = pytest.mark.parametrize("parallel", [False, True], ids=["one-process", "two"])


@PARALLEL
def test_a_csv_file_is_imported_with_its_bad_lines_named(
    factory: sessionmaker[Session], customer_id: int, tmp_path: Path, parallel: bool
) -> None:
    path = tmp_path / "events.csv"
    path.write_text(
        "transaction_id,customer,metric,timestamp,gb,region,direction\n"
        "e1,001000000000001AAA,bandwidth_gb,2026-03-02T10:00:00Z,1.5,eu,egress\n"
        f"e2,{customer_id},api_calls,2026-03-02T10:00:00Z,,,\n"
        "e3,001000000000001AAA,bandwidth_gb,2026-03-02T10:00:00Z,,eu,egress\n"
        "e4,001000000000001AAA,api_calls\n"
        '"e5",001000000000001AAA,storage_gb,1772445600,"2\n.5",,\n'
        "e1,001000000000001AAA,bandwidth_gb,2026-03-02T10:00:00Z,1.5,eu,egress\n"
        "\n"
        "e6,001000000000001AAA,storage_gb,2026-03-02T10:00:00Z,10,,\n"
    )
    seen: list[tuple[int, str | None, str]] = []

    summary = import_events(
        factory,
        METRICS,
        path,
        batch_size=2,
        clock=lambda: NOW,
        on_refused=lambda *refusal: seen.append(refusal),
        parallel=parallel,
    )

    assert (summary.lines, summary.accepted, summary.duplicates, summary.refused) == (7, 3, 1, 3)
    assert (
        seen
        == summary.refusals
        == [
            (4, "e3", "property 'gb' (the metric's field) is missing"),
            (5, None, "3 columns where the header has 7"),
            (6, "e5", "property 'gb' '2\\n.5' is not a number"),
        ]
    )
    assert stored(factory) == 3
    assert summary.to_dict()["refusals"][0] == {
        "line": 4,
        "transaction_id": "e3",
        "reason": "property 'gb' (the metric's field) is missing",
    }


@PARALLEL
def test_a_json_lines_file_is_imported_and_imported_again_as_duplicates(
    factory: sessionmaker[Session], customer_id: int, tmp_path: Path, parallel: bool
) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(
        '{"transaction_id": "j1", "customer": "001000000000001AAA", "metric": "seats", '
        '"timestamp": "2026-03-02T10:00:00Z", "properties": {"user_id": 42}}\n'
        "{not json\n"
        "\n"
        '["j2"]\n'
        '{"transaction_id": "j3", "customer": "001000000000001AAA", "metric": "api_calls", '
        '"timestamp": 1772445600}\n'
    )

    first = import_events(factory, METRICS, path, clock=lambda: NOW, parallel=parallel)
    again = import_events(factory, METRICS, path, clock=lambda: NOW, parallel=parallel)

    assert (first.accepted, first.duplicates, first.refused) == (2, 0, 2)
    assert [refusal[0] for refusal in first.refusals] == [2, 4]
    assert (
        first.refusals[0][2]
        == "not JSON: Expecting property name enclosed in double quotes (column 2)"
    )
    assert (again.accepted, again.duplicates, again.refused) == (0, 2, 2)
    assert stored(factory) == 2


def test_the_format_comes_from_the_name_or_the_option(tmp_path: Path, factory) -> None:
    path = tmp_path / "events.txt"
    path.write_text("")

    with pytest.raises(InvalidInputError, match="give --format csv or jsonl"):
        import_events(factory, METRICS, path)
    assert import_events(factory, METRICS, path, file_format="csv").lines == 0
    header = tmp_path / "bad.csv"
    header.write_text("id,customer,metric\n")
    with pytest.raises(
        InvalidInputError, match="line 1: the header has no transaction_id, timestamp column"
    ):
        import_events(factory, METRICS, header)


@PARALLEL
def test_the_garbage_collector_is_on_again_after_an_import_even_a_failed_one(
    factory: sessionmaker[Session], customer_id: int, tmp_path: Path, parallel: bool
) -> None:
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_text(
        "transaction_id,customer,metric,timestamp\n"
        "g1,001000000000001AAA,api_calls,2026-03-02T10:00:00Z\n"
    )
    bad.write_bytes(
        b"transaction_id,customer,metric,timestamp\n"
        b"b1,001000000000001AAA,api_calls,2026-03-02T10:00:00Z\n"
        b"b2,001000000000001AAA,api_calls,2026-03-02T10:00:00Z\xff\n"
    )

    headless = tmp_path / "headless.csv"
    headless.write_text("g2,001000000000001AAA,api_calls,2026-03-02T10:00:00Z\n")

    assert import_events(factory, METRICS, good, clock=lambda: NOW, parallel=parallel).accepted == 1
    assert gc.isenabled()
    with pytest.raises(
        InvalidInputError, match=r"bad.csv: line 3 is not UTF-8 text \(byte 0xff at column 53\)$"
    ):
        import_events(factory, METRICS, bad, batch_size=1, clock=lambda: NOW, parallel=parallel)
    with pytest.raises(InvalidInputError, match=r"^line 1: the header has no transaction_id, "):
        import_events(factory, METRICS, headless, clock=lambda: NOW, parallel=parallel)
    assert gc.isenabled()
    assert stored(factory) == 1
    assert multiprocessing.active_children() == []


@PARALLEL
def test_an_import_interrupted_then_run_again_stores_each_event_once(
    factory: sessionmaker[Session], customer_id: int, tmp_path: Path, parallel: bool
) -> None:
    path = tmp_path / "events.csv"
    path.write_text(
        "transaction_id,customer,metric,timestamp\n"
        + "".join(
            f"i{n},001000000000001AAA,api_calls,2026-03-02T10:00:0{n}Z\n" for n in range(1, 8)
        )
        + "i8,001000000000009ZZZ,api_calls,2026-03-02T10:00:08Z\n"
        + "i9,001000000000001AAA,api_calls,2026-03-02T10:00:09Z\n"
    )

    def interrupt(*_refusal: object) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # on line 9, in the fourth batch
        import_events(
            factory,
            METRICS,
            path,
            batch_size=2,
            clock=lambda: NOW,
            on_refused=interrupt,
            parallel=parallel,
        )
    assert stored(factory) == 7
    assert multiprocessing.active_children() == []  # the second process is ended
    again = import_events(
        factory, METRICS, path, batch_size=2, clock=lambda: NOW, parallel=parallel
    )

    assert (again.accepted, again.duplicates, again.refused) == (1, 7, 1)
    assert stored(factory) == 8
    with reading(factory) as session:
        counted = session.scalar(select(func.sum(tables.UsageHourly.events)))
    assert counted == 8
    assert gc.isenabled()


@PARALLEL
def test_duplicates_unknown_customers_and_two_names_of_one_customer_are_answered_alike(
    factory: sessionmaker[Session], customer_id: int, tmp_path: Path, parallel: bool
) -> None:
    path = tmp_path / "events.csv"
    path.write_text(
        "transaction_id,customer,metric,timestamp,gb,region,direction\n"
        # batch 1: every event new, its customer known
        "d1,001000000000001AAA,storage_gb,2026-03-02T10:00:00Z,5,,\n"
        "d2,001000000000001AAA,storage_gb,2026-03-02T10:30:00Z,-2,,\n"
        "d3,001000000000001AAA,api_calls,2026-03-02T10:00:00Z,,,\n"
        # batch 2: the customer by its two names, a line refused
        f"d4,{customer_id},bandwidth_gb,2026-03-02T10:10:00Z,1.5,eu,egress\n"
        "d5,001000000000001AAA,bandwidth_gb,2026-03-02T10:20:00Z,2.25,eu,egress\n"
        "d9,001000000000001AAA,seats,2026-03-02T10:20:00Z,,,\n"
        # batch 3: events of batches 1 and 2 again, an unknown customer
        "d2,001000000000001AAA,storage_gb,2026-03-02T10:30:00Z,-2,,\n"
        "d6,001000000000009ZZZ,api_calls,2026-03-02T11:00:00Z,,,\n"
        "d4,001000000000001AAA,bandwidth_gb,2026-03-02T10:10:00Z,1.5,eu,egress\n"
        # batch 4: a transaction id twice, an unknown metric
        "d8,001000000000001AAA,api_calls,2026-03-02T11:00:00Z,,,\n"
        "d8,001000000000001AAA,api_calls,2026-03-02T11:00:00Z,,,\n"
        "d7,001000000000001AAA,calls,2026-03-02T11:00:00Z,,,\n"
    )
    seen: list[tuple[int, str | None, str]] = []

    summary = import_events(
        factory,
        METRICS,
        path,
        batch_size=3,
        clock=lambda: NOW,
        on_refused=lambda *refusal: seen.append(refusal),
        parallel=parallel,
    )

    assert (summary.lines, summary.accepted, summary.duplicates, summary.refused) == (12, 6, 3, 3)
    assert seen == [
        (7, "d9", "property 'user_id' (the metric's field) is missing"),
        (9, "d6", "unknown customer '001000000000009ZZZ'"),
        (13, "d7", "unknown metric 'calls'"),
    ]
    with reading(factory) as session:
        events = session.execute(
            select(
                tables.UsageEvent.transaction_id,
                tables.UsageEvent.customer_id,
                tables.UsageEvent.occurred_at,
                tables.UsageEvent.properties,
            ).order_by(tables.UsageEvent.transaction_id)
        ).all()
        hourly = session.execute(
            select(
                tables.UsageHourly.metric,
                tables.UsageHourly.group_value,
                tables.UsageHourly.hour,
                tables.UsageHourly.events,
                tables.UsageHourly.total,
            ).order_by(tables.UsageHourly.metric, tables.UsageHourly.hour)
        ).all()
    assert [(tx, customer) for tx, customer, _, _ in events] == [
        (tx, customer_id) for tx in ("d1", "d2", "d3", "d4", "d5", "d8")
    ]
    assert events[1][2].replace(tzinfo=UTC) == datetime(2026, 3, 2, 10, 30, tzinfo=UTC)
    assert events[3][3] == {"gb": "1.5", "region": "eu", "direction": "egress"}
    ten, eleven = datetime(2026, 3, 2, 10, tzinfo=UTC), datetime(2026, 3, 2, 11, tzinfo=UTC)
    assert [(*row[:2], row[2].replace(tzinfo=UTC), *row[3:]) for row in hourly] == [
        ("api_calls", "", ten, 1, None),
        ("api_calls", "", eleven, 1, None),
        ("bandwidth_gb", "eu", ten, 2, Decimal("3.75")),
        ("storage_gb", "", ten, 2, Decimal("3")),
    ]


@PARALLEL
def test_lines_are_numbered_as_in_the_file_through_quoted_line_breaks(
    factory: sessionmaker[Session], customer_id: int, tmp_path: Path, parallel: bool
) -> None:
    """Each row's line is where it starts, whatever line breaks (CR LF, CR, LF) its quoted
    values hold: the unknown customer's rows are on lines 5 and 9."""
    path = tmp_path / "events.csv"
    path.write_bytes(
        b"transaction_id,customer,metric,timestamp,note\r\n"
        b'q1,001000000000001AAA,api_calls,2026-03-02T10:00:00Z,"two\r\nlines"\r\n'  # 2-3
        b"q2,001000000000001AAA,api_calls,2026-03-02T10:00:00Z,\r\n"  # 4
        b'q3,001000000000009ZZZ,api_calls,2026-03-02T10:00:00Z,"a\rb\nc\r\nd"\r\n'  # 5-8
        b"q4,001000000000009ZZZ,api_calls,2026-03-02T10:00:00Z,\r\n"  # 9
    )

    summary = import_events(factory, METRICS, path, clock=lambda: NOW, parallel=parallel)

    assert (summary.lines, summary.accepted, summary.refused) == (4, 2, 2)
    assert summary.refusals == [
        (5, "q3", "unknown customer '001000000000009ZZZ'"),
        (9, "q4", "unknown customer '001000000000009ZZZ'"),
    ]
    with reading(factory) as session:
        notes = session.scalars(
            select(tables.UsageEvent.properties).order_by(tables.UsageEvent.transaction_id)
        ).all()
    assert notes == [{"note": "two\r\nlines"}, {}]


def test_a_time_beyond_the_calendar_once_in_utc_is_refused_with_its_line(
    factory: sessionmaker[Session], customer_id: int, tmp_path: Path
) -> None:
    path = tmp_path / "events.csv"
    path.write_text(
        "transaction_id,customer,metric,timestamp\n"
        "o1,001000000000001AAA,api_calls,0001-01-01T00:00:00+01:00\n"
        "o2,001000000000001AAA,api_calls,2026-03-02T10:00:00Z\n"
    )

    summary = import_events(factory, METRICS, path, clock=lambda: NOW)

    assert summary.accepted == 1
    assert summary.refusals == [
        (2, "o1", "timestamp '0001-01-01T00:00:00+01:00' is not a time"),
    ]
