"""Ready batches: made by columns as line by line, and crossing from one process to the other
whole, their aggregates too."""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.billing.usage import Aggregation, Tally
from connector.sync.usage_batches import (
    CsvLayout,
    CsvRows,
    ReadyBatch,
    _ready_columns,
    ready,
    ready_rows,
)
from connector.sync.usage_events import DEFAULT_LIMITS
from connector.sync.usage_mapping import load_usage_mapping
from tests.sync.test_usage_import import SHIPPED

METRICS = load_usage_mapping(SHIPPED).metrics
AT = datetime(2026, 3, 2, 10, 15, tzinfo=UTC)


@pytest.mark.parametrize("aggregation", list(Aggregation))
def test_a_tally_crosses_with_every_value(aggregation: Aggregation) -> None:
    tally = Tally(aggregation)
    tally.add(("eu", Decimal("2.5"), "u1"), AT)
    tally.add(("eu", Decimal("-1.25"), "u2"), AT.replace(minute=30))

    crossed = pickle.loads(pickle.dumps(tally, pickle.HIGHEST_PROTOCOL))

    assert type(crossed) is Tally
    assert crossed.aggregation is aggregation
    assert crossed.usage() == tally.usage()
    assert crossed.usage().events == 2


def test_a_ready_batch_crosses_as_it_was_made() -> None:
    lines = [
        (2, ("t1", "42", "seats", "2026-03-02T10:15:00Z", {"user_id": "u1"})),
        (3, ("t2", "42", "storage_gb", "2026-03-02T10:30:00Z", {"gb": "10"})),
        (5, ("t3", "42", "storage_gb", "2026-03-02T10:45:00Z", {})),
    ]
    batch = ready(METRICS, lines, datetime(2026, 3, 20, tzinfo=UTC))

    crossed = pickle.loads(pickle.dumps(batch, pickle.HIGHEST_PROTOCOL))

    assert crossed.refusals == [(5, "t3", "property 'gb' (the metric's field) is missing")]
    assert list(crossed.numbers) == [2, 3]
    assert crossed.transaction_ids == ["t1", "t2"]
    assert crossed.times == ["2026-03-02 10:15:00.000000", "2026-03-02 10:30:00.000000"]
    assert crossed.properties == ['{"user_id": "u1"}', '{"gb": "10"}']
    hour = datetime(2026, 3, 2, 10, tzinfo=UTC)
    assert {key: tally.usage() for key, tally in crossed.tallies.items()} == {
        key: tally.usage() for key, tally in batch.tallies.items()
    }
    assert crossed.tallies[("42", "seats", "", hour)].distinct == {"u1"}
    assert crossed.tallies[("42", "storage_gb", "", hour)].weighted == Decimal(10 * 1772447400)
    assert crossed.unique


LAYOUT = CsvLayout(8, (0, 1, 2, 3), ((4, "gb"), (5, "user_id"), (6, "region"), (7, "direction")))
NOW = datetime(2026, 3, 20, tzinfo=UTC)
VALID_ROWS = [
    ["t1", "42", "api_calls", "2026-03-02T10:15:00Z", "", "", "", ""],
    ["t2", "42", "storage_gb", "2026-03-02T10:15:00Z", "2.50", "", "", ""],
    ["t3", "7", "storage_gb", "2026-03-02T11:00:00+01:00", "-1", "", "", ""],
    ["t4", "42", "seats", "1772446500", "", "u1", "", ""],
    ["t5", "42", "bandwidth_gb", "2026-03-02T10:59:59.5Z", "1.5", "", "eu", "egress"],
    ["t6", "42", "bandwidth_gb", "2026-03-02T10:20:00Z", "4", "", "us", "ingress"],
]


def test_a_batch_of_valid_rows_is_made_ready_by_columns_as_line_by_line() -> None:
    batch = CsvRows(LAYOUT, range(2, 8), VALID_ROWS)

    by_columns = _ready_columns(METRICS, batch, NOW, DEFAULT_LIMITS)

    assert by_columns is not None  # the usual batch takes the columns' way
    assert as_compared(by_columns) == as_compared(ready(METRICS, batch.lines(), NOW))
    hour = datetime(2026, 3, 2, 10, tzinfo=UTC)
    assert by_columns.tallies[("42", "storage_gb", "", hour)].usage().total == Decimal("2.50")
    assert ("42", "bandwidth_gb", "us", hour) not in by_columns.tallies  # filtered out
    assert by_columns.properties[4] == '{"gb": "1.5", "region": "eu", "direction": "egress"}'


def as_compared(batch: ReadyBatch) -> tuple:
    """A ready batch with its tallies as what they add up to."""
    tallies = {key: repr(tally.usage()) for key, tally in batch.tallies.items()}
    found = batch._replace(tallies={})
    listed = (list(value) if isinstance(value, Sequence) else value for value in found)
    return (*listed, tallies)


CELLS = {  # values of each column, valid or not
    0: ["t1", "t2", "t3", "t4", "", " t5", "x" * 255, "x" * 256],
    1: ["42", "7", " 42", "", "x" * 256],
    2: ["api_calls", "storage_gb", "seats", "bandwidth_gb", "calls", ""],
    3: [
        "2026-03-02T10:15:00Z",
        "2026-03-02T11:15:00+01:00",
        "1772446500",
        "2026-03-02T10:15:00",
        "2027-01-01T00:00:00Z",
        "2020-01-01T00:00:00Z",
        "0001-01-01T00:00:00+01:00",
        "2026-03-20T00:04:59Z",
        "2026-03-20T00:05:01Z",
        "soon",
        "",
    ],
    4: ["", "3", "2.50", "-1", "x", "1E+2", "Infinity"],
    5: ["", "u1", "u2"],
    6: ["", "eu", "us"],
    7: ["", "egress", "ingress"],
}


@pytest.mark.parametrize(
    ("row", "column", "value"),
    [
        (row, column, value)
        for column, values in CELLS.items()
        for value in values
        for row in (1, 4)
    ],
)
def test_a_batch_with_a_cell_changed_is_made_ready_as_line_by_line(
    row: int, column: int, value: str
) -> None:
    """Each check of the columns' way: a cell of a valid batch changed to each value, valid
    or not."""
    rows = [list(found) for found in VALID_ROWS]
    rows[row][column] = value
    batch = CsvRows(LAYOUT, range(2, 2 + len(rows)), rows)

    assert as_compared(ready_rows(METRICS, batch, NOW)) == as_compared(
        ready(METRICS, batch.lines(), NOW)
    )


@settings(max_examples=300, deadline=None)
@given(
    rows=st.lists(st.sampled_from(VALID_ROWS), min_size=1, max_size=8),
    changes=st.lists(
        st.tuples(
            st.integers(0, 7),
            st.integers(0, 7).flatmap(lambda c: st.tuples(st.just(c), st.sampled_from(CELLS[c]))),
        ),
        max_size=2,
    ),
    odd=st.sampled_from([None, [], ["t9", "42"]]),
)
def test_any_batch_of_rows_is_made_ready_as_line_by_line(
    rows: list[list[str]], changes: list, odd: list[str] | None
) -> None:
    """The same events, refusals, texts and aggregates either way, valid rows or not: valid
    rows with a cell or two changed to any value, valid or not, or a blank or short line."""
    rows = [[f"id{number}", *row[1:]] for number, row in enumerate(rows)]
    for which, (column, value) in changes:
        rows[which % len(rows)][column] = value
    if odd is not None:
        rows.append(odd)
    batch = CsvRows(LAYOUT, range(2, 2 + len(rows)), rows)

    assert as_compared(ready_rows(METRICS, batch, NOW)) == as_compared(
        ready(METRICS, batch.lines(), NOW)
    )


@settings(max_examples=100, deadline=None)
@given(rows=st.lists(st.sampled_from(VALID_ROWS), min_size=1, max_size=30), data=st.data())
def test_any_batch_of_valid_rows_is_made_ready_by_columns_as_line_by_line(
    rows: list[list[str]], data: st.DataObject
) -> None:
    rows = [[f"id{number}", *row[1:]] for number, row in enumerate(rows)]
    if data.draw(st.booleans()):  # a transaction id twice
        rows.append(list(rows[0]))
    batch = CsvRows(LAYOUT, range(2, 2 + len(rows)), rows)

    by_columns = _ready_columns(METRICS, batch, NOW, DEFAULT_LIMITS)

    assert by_columns is not None
    assert as_compared(by_columns) == as_compared(ready(METRICS, batch.lines(), NOW))
