"""Alembic environment for Cairn's metadata store.

Cairn runs migrations itself (`cairn.store.migrate.upgrade_to_head`), handing Alembic an open
connection that is already inside the transaction holding the migration lock, so several
processes opening one store at once migrate it exactly once. Run by the `alembic` command
instead (`alembic -c src/cairn/store/migrations/alembic.ini revision ...`), it connects to
the URL given with `-x url=...` (a throwaway SQLite file by default).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from cairn.store.schema import metadata

config = context.config
connection = config.attributes.get("connection")

if connection is not None:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    url = context.get_x_argument(as_dictionary=True).get("url", "sqlite:///alembic-dev.db")
    engine = sa.create_engine(url)
    with engine.begin() as own_connection:
        context.configure(connection=own_connection, target_metadata=metadata, render_as_batch=True)
        context.run_migrations()
    engine.dispose()
