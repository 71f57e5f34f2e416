"""One page of log entries merged from many sources, in time order, and the token to go on.

Each source (a replica's log file, a node's console log, a table of the store, the audit
log, the service log) yields its entries lazily in the order asked, each with a `resume`
cursor that restarts the source at that entry. The merge keeps one head per source and
hands out the newest (or oldest) head, so a page reads no further into any source than the
page needs. The page token records, per source, where its head was (or that it is spent)
and the moment the listing began: later pages never show entries newer than the first page
saw, so paging newest first neither repeats nor skips an entry while logs grow. Tokens are
signed with a key kept in the home (`token_key`) and refused unsigned, before anything in
them is decompressed or parsed.

A filter that matches little may have to read far; a page stops after `scan_budget`
entries examined (those a source read and passed over as outside the time range count too)
and returns what it found (maybe nothing) with a token, as Cloud Logging does.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import heapq
import hmac
import json
import os
import secrets
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cairn.domain.errors import invalid_field
from cairn.monitoring.logentries import short_id

_TOKEN_VERSION = 2
_MAX_TOKEN_CHARS = 2 * 1024 * 1024
_MAX_TOKEN_DATA = 2**20  # decompressed: far above a real token, far below harm
_SIGNATURE_BYTES = 32
_KEY_NAME = "logging-token.key"
DEFAULT_SCAN_BUDGET = 100_000


@dataclass(frozen=True)
class Item:
    time_us: int
    entry: dict[str, Any]
    resume: Any  # JSON-able: restarts the source at this entry
    # Read but outside the window: never shown, yet counted against the scan budget, so a
    # source that cannot seek (the audit log) still stops within one request's budget.
    skipped: bool = False


@dataclass(frozen=True)
class Window:
    """What a source reads: the order, and the time range (microseconds, inclusive)."""

    newest_first: bool
    since_us: int | None
    until_us: int | None
    listing_us: int | None = None  # when the listing began (its first page)


class Source(Protocol):
    """A log read lazily. A source may also have `newest_bound_us`: no entry of it is newer
    (a file's modification time), so a newest-first page opens it only when needed."""

    @property
    def source_id(self) -> str: ...

    def read(self, window: Window, resume: Any) -> Iterator[Item]: ...


@dataclass
class Page:
    entries: list[dict[str, Any]]
    next_token: str | None


def _refused() -> Exception:
    return invalid_field(
        "page_token",
        "The page token is not one this server issued for this query; list again without "
        "it (the filter, order and resource names must stay the same between pages).",
    )


def query_digest(*parts: Any) -> str:
    """What a page token is bound to (resource names, filter, order)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def token_key(home: Path) -> bytes:
    """The key page tokens are signed with: `<home>/logging-token.key`, made once (0600).

    A token is the server's own memory handed to the client: signed, so that a client can
    neither forge positions nor make the server decode an arbitrary compressed payload.
    """
    path = home / _KEY_NAME
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    temporary = path.with_name(f".{_KEY_NAME}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(secrets.token_bytes(32))
        with contextlib.suppress(FileExistsError):  # another process made it first: theirs
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return _read_key(path)


def _read_key(path: Path) -> bytes:
    with path.open("rb") as handle:
        key = handle.read(64)
    if len(key) < 32:
        raise OSError(f"{path} holds no signing key; delete it and it is made again")
    return key


def encode_token(key: bytes, digest: str, as_of: int, positions: dict[str, Any]) -> str:
    data = json.dumps({"v": _TOKEN_VERSION, "t": as_of, "s": positions})
    packed = zlib.compress(data.encode(), 6)
    signature = hmac.new(key, digest.encode() + packed, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(signature + packed).decode().rstrip("=")


def decode_token(key: bytes, token: str, digest: str) -> tuple[int, dict[str, Any]]:
    """(the listing's start time, each source's position); INVALID_ARGUMENT unless this
    server issued the token for this query (checked before anything is decompressed)."""
    if len(token) > _MAX_TOKEN_CHARS:
        raise _refused()
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        signature, packed = raw[:_SIGNATURE_BYTES], raw[_SIGNATURE_BYTES:]
        expected = hmac.new(key, digest.encode() + packed, hashlib.sha256).digest()
        if not hmac.compare_digest(signature, expected):
            raise ValueError("not signed by this server for this query")
        decompressor = zlib.decompressobj()
        text = decompressor.decompress(packed, _MAX_TOKEN_DATA)
        if decompressor.unconsumed_tail or not decompressor.eof:
            raise ValueError("too large")
        data = json.loads(text)
        if data.get("v") != _TOKEN_VERSION:
            raise ValueError("another version's token")
        as_of, positions = int(data["t"]), data["s"]
        if not isinstance(positions, dict):
            raise ValueError("positions")
    except Exception:  # RecursionError too: whatever a token holds is the caller's error
        raise _refused() from None
    return as_of, positions


_SPENT = "-"
_UNOPENED = object()


def _bound(source: Source) -> int | None:
    """The newest time any entry of `source` can have, when the source knows one."""
    bound = getattr(source, "newest_bound_us", None)
    return bound if isinstance(bound, int) else None


def read_page(
    sources: list[Source],
    matches: Callable[[dict[str, Any]], bool],
    window: Window,
    *,
    page_size: int,
    token: str | None,
    digest: str,
    key: bytes,
    now_us: int,
    scan_budget: int = DEFAULT_SCAN_BUDGET,
) -> Page:
    """Up to `page_size` matching entries of `sources`, merged in time order."""
    positions: dict[str, Any] = {}
    as_of = now_us
    if token:
        as_of, positions = decode_token(key, token, digest)
    until = as_of if window.until_us is None else min(window.until_us, as_of)
    bounded = Window(window.newest_first, window.since_us, until, as_of)
    ordered = sorted(sources, key=lambda s: s.source_id)
    keys = [short_id(source.source_id) for source in ordered]
    sign = -1 if window.newest_first else 1
    scanned = 0
    cut: dict[int, Any] = {}  # sources whose scan the budget stopped: where to go on
    heap: list[tuple[int, int, int, Item]] = []
    counter = 0
    # None: spent; _UNOPENED: not read yet; else the source's stream.
    streams: list[Any] = [None if positions.get(k) == _SPENT else _UNOPENED for k in keys]

    def next_match(index: int) -> Item | None:
        nonlocal scanned
        stream = streams[index]
        if stream is None:
            return None
        for item in stream:
            if scanned >= scan_budget:
                cut[index] = item.resume
                return None
            scanned += 1
            if not item.skipped and matches(item.entry):
                return item
        streams[index] = None
        return None

    def push(index: int, item: Item) -> None:
        nonlocal counter
        heapq.heappush(heap, (sign * item.time_us, index, counter, item))
        counter += 1

    def open_source(index: int) -> None:
        streams[index] = ordered[index].read(bounded, positions.get(keys[index]))
        head = next_match(index)
        if head is not None:
            push(index, head)

    # Newest first, a source whose newest entry cannot be newer than some head already
    # found waits: of many jobs' logs, only those written lately are opened at all.
    bounds = [_bound(source) if window.newest_first else None for source in ordered]
    waiting_to_open = sorted(
        (i for i in range(len(ordered)) if streams[i] is _UNOPENED and bounds[i] is not None),
        key=lambda i: (-(bounds[i] or 0), i),
    )
    for index in range(len(ordered)):
        if streams[index] is _UNOPENED and bounds[index] is None:
            open_source(index)
    next_to_open = 0

    def open_due() -> None:
        nonlocal next_to_open
        while next_to_open < len(waiting_to_open) and not cut:
            index = waiting_to_open[next_to_open]
            if heap and (bounds[index] or 0) < heap[0][3].time_us:
                return
            next_to_open += 1
            open_source(index)

    entries: list[dict[str, Any]] = []
    waiting: dict[int, Any] = {}
    while True:
        open_due()
        if not heap or cut:
            break
        _, index, _, item = heapq.heappop(heap)
        entries.append(item.entry)
        if len(entries) >= page_size:
            # Full: the next page starts right after this entry; no need to look further.
            stream = streams[index]
            following_item = next(stream, None) if stream is not None else None
            if following_item is None:
                streams[index] = None
            else:
                waiting[index] = following_item.resume
            break
        following = next_match(index)
        if following is not None:
            push(index, following)
    waiting.update({index: item.resume for _, index, _, item in heap})
    waiting.update(cut)
    unopened = any(stream is _UNOPENED for stream in streams)
    if not waiting and not unopened:
        return Page(entries, None)
    following_positions: dict[str, Any] = {}
    for index, short in enumerate(keys):
        if index in waiting:
            following_positions[short] = waiting[index]
        elif streams[index] is None:
            following_positions[short] = _SPENT
        else:
            following_positions[short] = positions.get(short)
    return Page(entries, encode_token(key, digest, as_of, following_positions))
