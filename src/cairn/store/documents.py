"""`DocumentRepository`: one resource table, seen as JSON documents under composite keys.

The services layer owns what a document means; the repository owns how it is kept: atomic
read-modify-write, creation-ordered paging with opaque cursors, and the `state` column that
lets the server find unfinished work after a restart without reading every document.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cairn.store.cursors import decode_cursor, encode_cursor
from cairn.store.database import Database
from cairn.store.errors import DuplicateKeyError, EtagMismatchError
from cairn.store.schema import ResourceTable

Key = tuple[str, ...]
Document = dict[str, Any]


def _dump(doc: Document) -> str:
    return orjson.dumps(doc).decode()


def _load(text: str) -> Document:
    loaded: Document = orjson.loads(text)
    return loaded


def _state_column(doc: Document, *, explicit: str | None, previous: str | None) -> str | None:
    """The state column's value: the explicit one, else the document's, else what it was.

    Only a string "state" counts; any other value there (the document is the caller's to
    shape) leaves the column empty rather than storing something no filter could match.
    """
    if explicit is not None:
        return explicit
    if "state" in doc:
        value = doc["state"]
        return value if isinstance(value, str) else None
    return previous


class DocumentRepository:
    """Documents of one resource kind, keyed by e.g. (project, job_id)."""

    def __init__(self, database: Database, resource: ResourceTable) -> None:
        self._db = database
        self._resource = resource
        self._table = resource.table
        self._key_columns = [self._table.c[name] for name in resource.key_columns]

    @property
    def name(self) -> str:
        return self._resource.name

    def insert(self, key: Key, doc: Document, *, state: str | None = None) -> None:
        """Store `doc` under `key`; DuplicateKeyError if the key is taken.

        `state`, when given, sets the state column, for documents without a "state" field
        (an Operation, say); otherwise the document's own "state" does.
        """
        self._check_key(key)
        values: dict[str, str | None] = dict(zip(self._resource.key_columns, key, strict=True))
        values["doc"] = _dump(doc)
        values["state"] = _state_column(doc, explicit=state, previous=None)
        try:
            with self._db.write() as conn:
                conn.execute(sa.insert(self._table).values(values))
        except sa.exc.IntegrityError as error:
            raise DuplicateKeyError(self.name, key) from error

    def get(self, key: Key) -> Document | None:
        """A fresh copy of the document under `key`, or None."""
        self._check_key(key)
        with self._db.read() as conn:
            text = conn.execute(sa.select(self._table.c.doc).where(self._match(key))).scalar()
        return None if text is None else _load(text)

    def update(
        self,
        key: Key,
        mutate: Callable[[Document], Document | None],
        *,
        expect_etag: str | None = None,
        state: str | None = None,
    ) -> Document | None:
        """Replace the document with `mutate(copy)`, atomically; None if the key is absent.

        Runs in one transaction that excludes other writers of this row, so concurrent
        updates are applied one after another and none is lost. `mutate` may return None to
        keep the document as it is, or raise to abandon the update (nothing is written).
        `state` overrides the state column; otherwise the new document's "state" sets it.
        """
        self._check_key(key)
        with self._db.write() as conn:
            row = self._select_for_update(conn, key)
            if row is None:
                return None
            current = _load(row.doc)
            if expect_etag is not None and current.get("etag") != expect_etag:
                raise EtagMismatchError(self.name, key, expect_etag, current.get("etag"))
            replacement = mutate(_load(row.doc))
            stored = current if replacement is None else replacement
            new_state = _state_column(stored, explicit=state, previous=row.state)
            if replacement is None and new_state == row.state:
                return current
            text = _dump(stored)
            conn.execute(
                sa.update(self._table)
                .where(self._table.c.seq == row.seq)
                .values(doc=text, state=new_state)
            )
        return _load(text)

    def delete(self, key: Key) -> bool:
        """Remove the document under `key`; True if there was one."""
        self._check_key(key)
        with self._db.write() as conn:
            deleted = conn.execute(sa.delete(self._table).where(self._match(key))).rowcount
        return bool(deleted)

    def page(
        self,
        parent: Key,
        *,
        after: str | None = None,
        limit: int = 100,
        states: Collection[str] | None = None,
        newest_first: bool = False,
    ) -> tuple[list[Document], str | None]:
        """Up to `limit` documents under `parent` in creation order, after cursor `after`.

        Returns the documents and the cursor of the last one, or None when nothing follows.
        `newest_first` walks the same order backwards (a log read newest first).
        """
        self._check_parent(parent)
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        query = sa.select(self._table.c.seq, self._table.c.doc).where(self._match(parent))
        seq = self._table.c.seq
        if after is not None:
            position = decode_cursor(after)
            query = query.where(seq < position if newest_first else seq > position)
        if states is not None:
            query = query.where(self._table.c.state.in_(list(states)))
        query = query.order_by(seq.desc() if newest_first else seq).limit(limit + 1)
        with self._db.read() as conn:
            rows = conn.execute(query).all()
        more = len(rows) > limit
        rows = rows[:limit]
        cursor = encode_cursor(rows[-1].seq) if more else None
        return [_load(row.doc) for row in rows], cursor

    def count(self, parent: Key) -> int:
        """How many documents live under `parent`."""
        self._check_parent(parent)
        query = sa.select(sa.func.count()).select_from(self._table).where(self._match(parent))
        with self._db.read() as conn:
            return int(conn.execute(query).scalar_one())

    def in_states(self, states: Collection[str]) -> list[tuple[Key, Document]]:
        """Every (key, document), in any project, whose state is one of `states`."""
        query = (
            sa.select(*self._key_columns, self._table.c.doc)
            .where(self._table.c.state.in_(list(states)))
            .order_by(self._table.c.seq)
        )
        with self._db.read() as conn:
            rows = conn.execute(query).all()
        width = len(self._key_columns)
        return [(tuple(row[:width]), _load(row[width])) for row in rows]

    def _select_for_update(self, conn: Connection, key: Key) -> Any:
        query = sa.select(self._table.c.seq, self._table.c.state, self._table.c.doc).where(
            self._match(key)
        )
        if self._db.is_postgresql:
            query = query.with_for_update()
        return conn.execute(query).first()

    def _match(self, values: Key) -> sa.ColumnElement[bool]:
        """Rows whose leading key columns equal `values` (a whole key or a parent prefix)."""
        columns = self._key_columns[: len(values)]
        return sa.and_(sa.true(), *(c == v for c, v in zip(columns, values, strict=True)))

    def _check_key(self, key: Key) -> None:
        if len(key) != len(self._key_columns) or not all(isinstance(k, str) for k in key):
            raise ValueError(
                f"{self.name} keys are ({', '.join(self._resource.key_columns)}), got {key!r}"
            )

    def _check_parent(self, parent: Key) -> None:
        if len(parent) >= len(self._key_columns) or not all(isinstance(p, str) for p in parent):
            raise ValueError(
                f"a {self.name} parent is a prefix of "
                f"({', '.join(self._resource.key_columns[:-1])}), got {parent!r}"
            )
