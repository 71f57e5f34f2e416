"""Bring a store's schema to the newest migration, safely when many processes open it at once.

The migration runs inside one write transaction that first takes a lock: SQLite's write lock
(`BEGIN IMMEDIATE`; SQLite's DDL is transactional) or a PostgreSQL transaction-level advisory
lock. A second process waits, then finds the schema at head and does nothing.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from cairn.store.database import Database

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# An arbitrary constant naming Cairn's migration lock among PostgreSQL advisory locks.
_PG_MIGRATION_LOCK = 0x0CA1_2E00


def alembic_config() -> Config:
    """An Alembic Config built in code, so no alembic.ini has to be found at run time."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(database: Database) -> str | None:
    with database.read() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade_to_head(database: Database) -> None:
    """Apply every migration the database lacks; a no-op when it is already at head."""
    head = head_revision()
    if current_revision(database) == head:
        return
    with database.write() as conn:
        if database.is_postgresql:
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_MIGRATION_LOCK)))
        config = alembic_config()
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
