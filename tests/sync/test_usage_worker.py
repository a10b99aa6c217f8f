"""Items made in a second process: handed over in order; its errors, its death and an early
stop of the parent end it cleanly."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator

import pytest

from connector.errors import ConnectorError, InvalidInputError
from connector.sync.usage_worker import made_apart


def numbers() -> Iterator[tuple[int, int]]:
    for n in range(1, 11):
        yield n, os.getpid()


def test_the_items_come_in_order_from_another_process() -> None:
    with made_apart(numbers, "counting") as items:
        got = list(items)

    assert [n for n, _ in got] == list(range(1, 11))
    assert {pid for _, pid in got} != {os.getpid()}
    assert multiprocessing.active_children() == []


def test_an_error_of_the_child_is_raised_with_its_message() -> None:
    def failing() -> Iterator[int]:
        yield 1
        raise InvalidInputError("line 3: the header has no metric column")

    with made_apart(failing, "reading events.csv") as items:
        assert next(items) == 1
        with pytest.raises(InvalidInputError, match=r"^line 3: the header has no metric column$"):
            next(items)
    assert multiprocessing.active_children() == []


def test_an_error_that_cannot_cross_is_raised_by_its_message() -> None:
    class LocalError(Exception):  # not picklable: defined in a function
        pass

    def failing() -> Iterator[int]:
        raise LocalError("no such thing")
        yield 1

    with (
        made_apart(failing, "reading events.csv") as items,
        pytest.raises(ConnectorError, match=r"^LocalError: no such thing$"),
    ):
        next(items)


def test_a_child_that_dies_is_reported_not_waited_for() -> None:
    def dying() -> Iterator[int]:
        os._exit(3)
        yield 1

    with (
        made_apart(dying, "reading events.csv") as items,
        pytest.raises(
            ConnectorError, match=r"^reading events.csv stopped unexpectedly \(exit code 3\)$"
        ),
    ):
        next(items)
    assert multiprocessing.active_children() == []


def test_a_parent_that_stops_early_ends_the_child() -> None:
    def endless() -> Iterator[int]:
        n = 0
        while True:
            n += 1
            yield n

    with pytest.raises(KeyboardInterrupt), made_apart(endless, "counting") as items:
        for n in items:
            if n == 3:
                raise KeyboardInterrupt
    assert multiprocessing.active_children() == []
