"""The engine and the two kinds of transaction the repositories run: reads and writes.

Writes must be serialised against each other so a read-modify-write never loses an update:
on SQLite a write transaction starts with `BEGIN IMMEDIATE` (it takes the write lock before
reading, and waits up to `busy_timeout` for it); on PostgreSQL the repositories lock the row
they rewrite with `SELECT ... FOR UPDATE`. pysqlite's own implicit transaction handling is
switched off so that Cairn, not the driver, decides when and how a transaction begins.

An in-memory SQLite database exists once per connection, so it gets a single shared
connection, and a lock keeps threads from interleaving their transactions on it.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

# How long a SQLite writer waits for another writer's lock before giving up.
SQLITE_BUSY_TIMEOUT_MS = 30_000

_BEGIN_OPTION = "cairn_sqlite_begin"


class Database:
    """An engine plus `read()` / `write()` transactions with backend-correct locking."""

    def __init__(self, url: str) -> None:
        parsed = sa.make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        self.is_postgresql = parsed.get_backend_name() == "postgresql"
        in_memory = self.is_sqlite and parsed.database in (None, "", ":memory:")
        self._serialise: threading.RLock | None = threading.RLock() if in_memory else None
        self.engine = self._create_engine(url, in_memory)

    def _create_engine(self, url: str, in_memory: bool) -> Engine:
        if not self.is_sqlite:
            return sa.create_engine(url, pool_pre_ping=True)
        options: dict[str, Any] = {"connect_args": {"check_same_thread": False}}
        if in_memory:
            options["poolclass"] = StaticPool
        engine = sa.create_engine(url, **options)
        event.listen(engine, "connect", _configure_sqlite_connection)
        event.listen(engine, "begin", _begin_sqlite_transaction)
        return engine

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A transaction that sees one consistent snapshot and writes nothing."""
        with self._lock(), self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction that holds SQLite's write lock from its first statement."""
        with self._lock(), self.engine.connect() as conn:
            if self.is_sqlite:
                conn.execution_options(**{_BEGIN_OPTION: "BEGIN IMMEDIATE"})
            with conn.begin():
                yield conn

    def _lock(self) -> threading.RLock | nullcontext[None]:
        return self._serialise if self._serialise is not None else nullcontext()

    def dispose(self) -> None:
        self.engine.dispose()


def _configure_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    """WAL, a busy timeout and foreign keys on every new connection; manual transactions."""
    dbapi_connection.isolation_level = None  # let the "begin" listener issue BEGIN itself
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        _switch_to_wal(cursor)
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def _switch_to_wal(cursor: Any) -> None:
    """Switch the file to WAL, waiting out others doing the same on a fresh database.

    SQLite answers "database is locked" at once, without consulting the busy timeout, when
    another connection is switching the journal mode at the same moment; so retry here.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _begin_sqlite_transaction(conn: Connection) -> None:
    conn.exec_driver_sql(conn.get_execution_options().get(_BEGIN_OPTION, "BEGIN"))
