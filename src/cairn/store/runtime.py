"""`RuntimeStore`: the server's own small key-value notes (pids of replicas, leases, ...).

Kept in the metadata database, not in files, so they survive restarts and are shared by
every process pointed at the same store.
"""

from __future__ import annotations

from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from cairn.store.database import Database
from cairn.store.schema import RUNTIME


class RuntimeStore:
    """JSON objects under string keys; `put` replaces, `get` copies, `delete` forgets."""

    def __init__(self, database: Database) -> None:
        self._db = database

    def put(self, key: str, value: dict[str, Any]) -> None:
        """Store `value` under `key`, replacing whatever was there (one atomic upsert)."""
        text = orjson.dumps(value).decode()
        dialect_insert = postgresql.insert if self._db.is_postgresql else sqlite.insert
        statement = dialect_insert(RUNTIME).values(key=key, value=text)
        statement = statement.on_conflict_do_update(
            index_elements=[RUNTIME.c.key], set_={"value": statement.excluded.value}
        )
        with self._db.write() as conn:
            conn.execute(statement)

    def get(self, key: str) -> dict[str, Any] | None:
        """A fresh copy of the value under `key`, or None."""
        with self._db.read() as conn:
            text = conn.execute(sa.select(RUNTIME.c.value).where(RUNTIME.c.key == key)).scalar()
        return None if text is None else dict(orjson.loads(text))

    def delete(self, key: str) -> bool:
        """Forget `key`; True if it was there."""
        with self._db.write() as conn:
            return bool(conn.execute(sa.delete(RUNTIME).where(RUNTIME.c.key == key)).rowcount)

    def items(self, prefix: str = "") -> dict[str, dict[str, Any]]:
        """Every key starting with `prefix` (e.g. "replica/") with its value, sorted by key."""
        query = sa.select(RUNTIME.c.key, RUNTIME.c.value).order_by(RUNTIME.c.key)
        if prefix:
            # substr, not LIKE: SQLite's LIKE ignores ASCII case and would match "Replica/" too.
            query = query.where(sa.func.substr(RUNTIME.c.key, 1, len(prefix)) == prefix)
        with self._db.read() as conn:
            rows = conn.execute(query).all()
        return {row.key: dict(orjson.loads(row.value)) for row in rows}
