"""A ready batch crosses from one process to the other whole: its aggregates too."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from connector.billing.usage import Aggregation, Tally
from connector.sync.usage_batches import ready
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
