"""`PredictionLogStore`: sampled requests/responses and access-log rows of online prediction.

Rows are appended in batches by one writer thread (services/request_logs.py), read newest
first (or oldest first) in pages by model, version, table and time, and trimmed by age, by
count per group and by count over the whole table, so neither table grows without bound.

Trimming never scans inside a write transaction (SQLite has one writer: a long one stalls
every other write of the server): where the rows to delete start is found in a read, and
the deletes then go in short chunks located through an index.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from cairn.domain.errors import invalid_field
from cairn.store.database import Database
from cairn.store.schema import ACCESS_LOGS, REQUEST_LOGS

_CURSOR_PREFIX = "t1:"
# Integers the BIGINT columns hold; a value past them is a client's error, not a 500.
_BIGINT_MIN, _BIGINT_END = -(2**63), 2**63
# Rows one trimming delete removes at most, so the write lock is held for a short moment.
TRIM_CHUNK = 2000


def fits_bigint(value: int) -> bool:
    return _BIGINT_MIN <= value < _BIGINT_END


@dataclass(frozen=True)
class LogQuery:
    """Which rows to read: one model's, optionally one version's, table's and time range."""

    project: str
    model: str
    version: str | None = None
    table_name: str | None = None  # request logs only
    since: int | None = None  # inclusive, microseconds since the epoch
    until: int | None = None  # exclusive
    newest_first: bool = True
    after: str | None = None  # a cursor a previous page returned
    limit: int = 100


def encode_log_cursor(time: int, seq: int) -> str:
    """The cursor meaning "past the row with this (time, seq)" in the page's order."""
    text = f"{_CURSOR_PREFIX}{time}:{seq}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_log_cursor(cursor: str) -> tuple[int, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        text = base64.urlsafe_b64decode(padded.encode("ascii")).decode("ascii")
        if not text.startswith(_CURSOR_PREFIX):
            raise ValueError(text)
        time_text, seq_text = text[len(_CURSOR_PREFIX) :].rsplit(":", 1)
        time, seq = int(time_text), int(seq_text)
        if not (fits_bigint(time) and 0 <= seq < _BIGINT_END):
            raise ValueError(text)
        return time, seq
    except (ValueError, UnicodeError, binascii.Error, OverflowError):
        raise invalid_field(
            "pageToken",
            "The page token is not one this server issued; read again without a page token "
            "to start from the first page.",
        ) from None


class PredictionLogStore:
    """Append, page through and trim the `request_logs` and `access_logs` tables."""

    def __init__(self, database: Database) -> None:
        self._db = database

    def add(self, requests: Sequence[dict[str, Any]], accesses: Sequence[dict[str, Any]]) -> None:
        """Insert request-log and access-log rows (column name → value) in one transaction."""
        if not requests and not accesses:
            return
        with self._db.write() as conn:
            if requests:
                conn.execute(sa.insert(REQUEST_LOGS), list(requests))
            if accesses:
                conn.execute(sa.insert(ACCESS_LOGS), list(accesses))

    def read_requests(self, query: LogQuery) -> tuple[list[dict[str, Any]], str | None]:
        """A page of request-log rows (with `seq`) and the cursor of the next, or None."""
        conditions = []
        if query.table_name is not None:
            conditions.append(REQUEST_LOGS.c.table_name == query.table_name)
        return self._page(REQUEST_LOGS, query, conditions)

    def read_accesses(self, query: LogQuery) -> tuple[list[dict[str, Any]], str | None]:
        """A page of access-log rows (with `seq`) and the cursor of the next, or None."""
        return self._page(ACCESS_LOGS, query, [])

    def set_groundtruth(
        self,
        project: str,
        model: str,
        request_id: int,
        groundtruth: str,
        version: str | None = None,
    ) -> bool:
        """Attach ground truth to one logged request of `model` (and of `version`, when
        given); False if there is none."""
        if not 0 <= request_id < _BIGINT_END:
            return False  # no row has such an id
        table = REQUEST_LOGS
        where = [table.c.seq == request_id, table.c.project == project, table.c.model == model]
        if version is not None:
            where.append(table.c.model_version == version)
        with self._db.write() as conn:
            changed = conn.execute(
                sa.update(table).where(*where).values(groundtruth=groundtruth)
            ).rowcount
        return bool(changed)

    def trim(self, *, max_rows: int, max_total_rows: int, older_than: int) -> int:
        """Delete rows older than `older_than` (microseconds since the epoch), then all but
        the newest `max_rows` rows of each project's request-log table name and of each
        model's access log, then all but the newest `max_total_rows` of each table over all
        projects; return how many went."""
        deleted = 0
        for table in (REQUEST_LOGS, ACCESS_LOGS):
            deleted += self._delete_chunks(table, [table.c.time < older_than])
        deleted += self._trim_groups(
            REQUEST_LOGS, [REQUEST_LOGS.c.project, REQUEST_LOGS.c.table_name], max_rows
        )
        deleted += self._trim_groups(
            ACCESS_LOGS, [ACCESS_LOGS.c.project, ACCESS_LOGS.c.model], max_rows
        )
        for table in (REQUEST_LOGS, ACCESS_LOGS):
            deleted += self._trim_newest(table, [], max_total_rows)
        return deleted

    def count(self, *, requests: bool = True) -> int:
        """How many rows one table holds (tests and diagnostics)."""
        table = REQUEST_LOGS if requests else ACCESS_LOGS
        with self._db.read() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())

    # -- helpers -------------------------------------------------------------------------

    def _page(
        self, table: sa.Table, query: LogQuery, conditions: list[sa.ColumnElement[bool]]
    ) -> tuple[list[dict[str, Any]], str | None]:
        if query.limit < 1:
            raise ValueError(f"limit must be at least 1, not {query.limit}")
        time, seq = table.c.time, table.c.seq
        where = [table.c.project == query.project, table.c.model == query.model, *conditions]
        if query.version is not None:
            where.append(table.c.model_version == query.version)
        if query.since is not None:
            where.append(time >= query.since)
        if query.until is not None:
            where.append(time < query.until)
        if query.after is not None:
            after_time, after_seq = decode_log_cursor(query.after)
            if query.newest_first:
                where.append(
                    sa.or_(time < after_time, sa.and_(time == after_time, seq < after_seq))
                )
            else:
                where.append(
                    sa.or_(time > after_time, sa.and_(time == after_time, seq > after_seq))
                )
        order = (time.desc(), seq.desc()) if query.newest_first else (time, seq)
        statement = sa.select(table).where(*where).order_by(*order).limit(query.limit + 1)
        with self._db.read() as conn:
            rows = [dict(row._mapping) for row in conn.execute(statement)]
        more = len(rows) > query.limit
        rows = rows[: query.limit]
        cursor = encode_log_cursor(rows[-1]["time"], rows[-1]["seq"]) if more else None
        return rows, cursor

    def _trim_groups(self, table: sa.Table, group: list[sa.Column[Any]], max_rows: int) -> int:
        """Keep the newest `max_rows` rows of each group (e.g. of each project's table name)."""
        with self._db.read() as conn:
            groups = [tuple(row) for row in conn.execute(sa.select(*group).distinct())]
        deleted = 0
        for values in groups:
            match = [column == value for column, value in zip(group, values, strict=True)]
            deleted += self._trim_newest(table, match, max_rows)
        return deleted

    def _trim_newest(self, table: sa.Table, match: list[sa.ColumnElement[bool]], keep: int) -> int:
        """Delete all but the newest `keep` rows matching `match` (all rows when empty)."""
        # Found in a read (an index walk of `keep` entries), so no write waits on it.
        with self._db.read() as conn:
            cutoff = conn.execute(
                sa.select(table.c.time, table.c.seq)
                .where(*match)
                .order_by(table.c.time.desc(), table.c.seq.desc())
                .offset(keep)
                .limit(1)
            ).first()
        if cutoff is None:
            return 0
        older = sa.or_(
            table.c.time < cutoff.time,
            sa.and_(table.c.time == cutoff.time, table.c.seq <= cutoff.seq),
        )
        return self._delete_chunks(table, [*match, older])

    def _delete_chunks(self, table: sa.Table, where: list[sa.ColumnElement[bool]]) -> int:
        """Delete the rows matching `where`, `TRIM_CHUNK` oldest at a time, each chunk in its
        own short write transaction."""
        deleted = 0
        while True:
            with self._db.read() as conn:
                seqs = list(
                    conn.execute(
                        sa.select(table.c.seq)
                        .where(*where)
                        .order_by(table.c.time)
                        .limit(TRIM_CHUNK)
                    ).scalars()
                )
            if not seqs:
                return deleted
            with self._db.write() as conn:
                deleted += int(
                    conn.execute(sa.delete(table).where(table.c.seq.in_(seqs))).rowcount or 0
                )
            if len(seqs) < TRIM_CHUNK:
                return deleted
