"""Alembic environment: migrations run on the connection handed over by connector.db.migrate."""

from __future__ import annotations

from alembic import context

from connector.db.tables import Base
from connector.db.usage_partitions import include_name

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - the connector always hands a connection over
    raise RuntimeError("run migrations with `connector db upgrade`")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
    include_name=include_name,
)
with context.begin_transaction():
    context.run_migrations()
