"""Count the SQL statements a piece of work sends to the database: the machine-independent
measure of how set-based a stage is. An ``executemany`` of a whole batch is one statement, as
the database client sends it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, event


@dataclass
class Statements:
    """What was sent: each statement's SQL, in order, and how many rows each executemany
    carried."""

    sql: list[str] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.sql)

    def by_verb(self) -> Counter[str]:
        """Statements per leading keyword (SELECT, INSERT, UPDATE, DELETE, SAVEPOINT, …)."""
        return Counter(sql.lstrip().split(None, 1)[0].upper() for sql in self.sql)

    def touching(self, table: str) -> list[str]:
        """The statements that name ``table``."""
        return [sql for sql in self.sql if table in sql]


@contextmanager
def counting(engine: Engine) -> Iterator[Statements]:
    """Every statement ``engine`` sends while the block runs (all connections)."""
    seen = Statements()

    def record(  # noqa: PLR0917 - SQLAlchemy's event signature
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> None:
        seen.sql.append(statement)
        seen.rows.append(len(parameters) if executemany else 1)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)
