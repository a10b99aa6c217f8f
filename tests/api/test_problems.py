"""Problems the database causes: a database locked past the lock timeout answers 503 with what
is wrong, as a problem, never a traceback."""

from __future__ import annotations

import sqlite3

import pytest

from connector.db.engine import make_engine, session_factory, sqlite_file
from connector.settings import Settings
from tests.api.conftest import serving


def test_a_database_locked_too_long_answers_503(
    backend: str, database_url: str, settings: Settings
) -> None:
    if backend != "sqlite":
        pytest.skip("a file lock held by another process: SQLite's")
    impatient = settings.model_copy(update={"database_lock_timeout_seconds": 0.2})
    engine = make_engine(database_url, lock_timeout=0.2)
    path = sqlite_file(database_url)
    assert path is not None
    with serving(engine, session_factory(engine), impatient) as served:
        key = served.key("write")
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # another process writes, and takes its time
        try:
            answer = served.write("/v1/payments", key, {"invoice": "INV-1", "amount": "1.00"})
        finally:
            holder.execute("ROLLBACK")
            holder.close()
    engine.dispose()

    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "5"
    body = answer.json()
    assert (body["type"], body["title"], body["instance"]) == (
        "https://connector.invalid/problems/database",
        "Service unavailable",
        "/v1/payments",
    )
    assert body["detail"] == (
        f"the database sqlite:///{path} is locked by another connection or process: gave up "
        "after waiting 0.2 s (database_lock_timeout_seconds); try again once it is done"
    )
