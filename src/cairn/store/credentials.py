"""`CredentialStore`: what Cairn remembers of the credentials it issued.

Rows are keyed by the SHA-256 of a secret (access token, refresh token, login code) or by
a service-account key's id, and carry the principal they stand for, what they are bound
to (a job, a refresh grant), and when they expire. Deleting by principal or binding is how
revocation works; expired rows are purged as new ones are issued.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa

from cairn.store.database import Database
from cairn.store.errors import DuplicateKeyError
from cairn.store.schema import CREDENTIALS


@dataclass(frozen=True)
class CredentialRecord:
    id: str
    kind: str
    principal: str
    bound_to: str | None
    expires_at: float | None
    doc: dict[str, Any]


def _record(row: Any) -> CredentialRecord:
    return CredentialRecord(
        row.id, row.kind, row.principal, row.bound_to, row.expires_at, orjson.loads(row.doc)
    )


class CredentialStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    def insert(
        self,
        id: str,
        kind: str,
        principal: str,
        *,
        bound_to: str | None = None,
        expires_at: float | None = None,
        doc: dict[str, Any] | None = None,
    ) -> None:
        values = {
            "id": id,
            "kind": kind,
            "principal": principal,
            "bound_to": bound_to,
            "expires_at": expires_at,
            "doc": orjson.dumps(doc or {}).decode(),
        }
        try:
            with self._db.write() as conn:
                conn.execute(sa.insert(CREDENTIALS).values(values))
        except sa.exc.IntegrityError as error:
            raise DuplicateKeyError("credentials", (id,)) from error

    def get(self, id: str, kind: str) -> CredentialRecord | None:
        """The unexpired record `id` of `kind`, or None."""
        query = sa.select(CREDENTIALS).where(CREDENTIALS.c.id == id, CREDENTIALS.c.kind == kind)
        with self._db.read() as conn:
            row = conn.execute(query).first()
        if row is None or (row.expires_at is not None and row.expires_at <= time.time()):
            return None
        return _record(row)

    def take(self, id: str, kind: str) -> CredentialRecord | None:
        """Delete and return the unexpired record `id` (a one-time code can be used once)."""
        with self._db.write() as conn:
            row = conn.execute(
                sa.select(CREDENTIALS).where(CREDENTIALS.c.id == id, CREDENTIALS.c.kind == kind)
            ).first()
            if row is None:
                return None
            conn.execute(sa.delete(CREDENTIALS).where(CREDENTIALS.c.id == id))
        if row.expires_at is not None and row.expires_at <= time.time():
            return None
        return _record(row)

    def find(
        self, *, kind: str, principal: str | None = None, bound_to: str | None = None
    ) -> list[CredentialRecord]:
        query = sa.select(CREDENTIALS).where(CREDENTIALS.c.kind == kind)
        if principal is not None:
            query = query.where(CREDENTIALS.c.principal == principal)
        if bound_to is not None:
            query = query.where(CREDENTIALS.c.bound_to == bound_to)
        with self._db.read() as conn:
            return [_record(row) for row in conn.execute(query.order_by(CREDENTIALS.c.id))]

    def delete(
        self,
        *,
        id: str | None = None,
        principal: str | None = None,
        bound_to: str | None = None,
    ) -> list[str]:
        """Delete the records matching every given criterion; return their ids."""
        conditions = [
            column == value
            for column, value in (
                (CREDENTIALS.c.id, id),
                (CREDENTIALS.c.principal, principal),
                (CREDENTIALS.c.bound_to, bound_to),
            )
            if value is not None
        ]
        if not conditions:
            raise ValueError("delete needs at least one criterion")
        with self._db.write() as conn:
            ids = list(conn.execute(sa.select(CREDENTIALS.c.id).where(*conditions)).scalars())
            conn.execute(sa.delete(CREDENTIALS).where(*conditions))
        return ids

    def purge_expired(self, now: float | None = None) -> int:
        cutoff = time.time() if now is None else now
        with self._db.write() as conn:
            result = conn.execute(
                sa.delete(CREDENTIALS).where(
                    CREDENTIALS.c.expires_at.is_not(None), CREDENTIALS.c.expires_at <= cutoff
                )
            )
        return int(result.rowcount or 0)
