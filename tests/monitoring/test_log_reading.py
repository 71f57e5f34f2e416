"""Reading logs lazily (files with arrival times) and merging sources into pages."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import random
import stat
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cairn.domain.errors import ApiError
from cairn.monitoring import logfiles
from cairn.monitoring.logfiles import StampedLog
from cairn.monitoring.logsearch import Item, Window, query_digest, read_page, token_key

KEY = b"k" * 31 + b"!"


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks of 64 bytes, so every read crosses block boundaries many times."""
    monkeypatch.setattr(logfiles, "_BLOCK", 64)


def write_log(directory: Path, count: int, *, stamp_every: int = 3) -> tuple[StampedLog, list[str]]:
    rng = random.Random(7)
    lines = [("x" * rng.randint(0, 150)) + f" line {i}" for i in range(count)]
    log, times = directory / "a.log", directory / "a.times"
    with open(log, "wb") as out, open(times, "wb") as stamps:
        for index, line in enumerate(lines):
            out.write((line + "\n").encode())
            if index % stamp_every == stamp_every - 1:
                stamps.write(f"{out.tell()} {1000 + index:.6f}\n".encode())
        stamps.write(b"not a stamp\n")  # a replica's own file: junk is ignored
        out.write(b"a line still being written")
    return StampedLog(log, times), lines


def test_lines_come_in_either_order_with_their_arrival_times(
    tmp_path: Path, small_blocks: None
) -> None:
    log, lines = write_log(tmp_path, 400)
    oldest = list(log.lines(newest_first=False))
    newest = list(log.lines(newest_first=True))
    assert [line.text for line in oldest] == lines  # the unfinished last line is left out
    assert [line.text for line in newest] == lines[::-1]
    assert [(line.start, line.end) for line in newest] == [
        (line.start, line.end) for line in oldest
    ][::-1]
    for index, line in enumerate(oldest[:-1]):  # the last one has no stamp yet: mtime
        stamp_index = index // 3 * 3 + 2
        assert line.time_us == (1000 + stamp_index) * 1_000_000, index
    assert oldest[-1].time_us == log.modified_us()


def test_reading_resumes_at_an_offset(tmp_path: Path, small_blocks: None) -> None:
    log, _ = write_log(tmp_path, 200)
    newest = list(log.lines(newest_first=True))
    again = list(log.lines(newest_first=True, resume=newest[50].end))
    assert again == newest[50:]
    oldest = list(log.lines(newest_first=False))
    assert list(log.lines(newest_first=False, resume=oldest[50].start)) == oldest[50:]


def test_time_bounds_seek_by_the_stamps(tmp_path: Path, small_blocks: None) -> None:
    log, _ = write_log(tmp_path, 300)
    every = list(log.lines(newest_first=False))
    since, until = 1100 * 1_000_000, 1200 * 1_000_000
    inside = [line for line in every if since <= line.time_us <= until]
    assert 80 < len(inside) < 120
    assert list(log.lines(newest_first=False, since_us=since, until_us=until)) == inside
    assert list(log.lines(newest_first=True, since_us=since, until_us=until)) == inside[::-1]


def test_long_lines_and_missing_files(tmp_path: Path, small_blocks: None) -> None:
    path = tmp_path / "long.log"
    path.write_bytes(b"short\n" + b"y" * 1000 + b"\nend\n")
    log = StampedLog(path)
    assert [line.text for line in log.lines(newest_first=True)] == ["end", "y" * 1000, "short"]
    assert list(StampedLog(tmp_path / "absent.log").lines(newest_first=True)) == []
    empty = tmp_path / "empty.log"
    empty.write_bytes(b"")
    assert list(StampedLog(empty).lines(newest_first=False)) == []


@dataclass(frozen=True)
class ListSource:
    """A source over a list of (time, text), in the protocol's terms."""

    source_id: str
    rows: list[tuple[int, str]]

    def read(self, window: Window, resume: Any) -> Iterator[Item]:
        order = range(len(self.rows))
        indexes = list(reversed(order)) if window.newest_first else list(order)
        if isinstance(resume, int):
            indexes = indexes[indexes.index(resume) :]
        for index in indexes:
            moment, text = self.rows[index]
            if window.until_us is not None and moment > window.until_us:
                continue
            if window.since_us is not None and moment < window.since_us:
                continue
            yield Item(moment, {"textPayload": text, "t": moment}, index)


def sources() -> list[ListSource]:
    return [
        ListSource("a", [(t, f"a{t}") for t in range(0, 100, 3)]),
        ListSource("b", [(t, f"b{t}") for t in range(1, 100, 5)]),
        ListSource("c", [(t, f"c{t}") for t in range(50, 60)]),
        ListSource("empty", []),
    ]


def every_page(window: Window, page_size: int, matches: Any = None, **kwargs: Any) -> list[Any]:
    digest = query_digest("test", window.newest_first)
    pages = []
    token = None
    while True:
        page = read_page(
            sources(),  # type: ignore[arg-type]
            matches or (lambda entry: True),
            window,
            page_size=page_size,
            token=token,
            digest=digest,
            key=KEY,
            now_us=10_000,
            **kwargs,
        )
        pages.append(page.entries)
        token = page.next_token
        if token is None:
            return pages


@pytest.mark.parametrize("newest_first", [True, False])
@pytest.mark.parametrize("page_size", [1, 4, 7, 1000])
def test_pages_merge_sources_in_time_order_without_repeats(
    newest_first: bool, page_size: int
) -> None:
    pages = every_page(Window(newest_first, None, None), page_size)
    texts = [entry["textPayload"] for page in pages for entry in page]
    expected = sorted(
        (row for source in sources() for row in source.rows),
        key=lambda row: row[0],
        reverse=newest_first,
    )
    assert len(texts) == len(expected) == len(set(texts))
    times = [int(text[1:]) for text in texts]
    assert times == [row[0] for row in expected]
    assert all(len(page) <= page_size for page in pages)


def test_a_filter_and_a_scan_budget_give_short_pages_that_go_on() -> None:
    wanted = {"c55", "a99", "b1"}
    pages = every_page(
        Window(True, None, None), 2, lambda entry: entry["textPayload"] in wanted, scan_budget=10
    )
    found = [entry["textPayload"] for page in pages for entry in page]
    assert found == ["a99", "c55", "b1"]
    assert len(pages) > 3  # the budget cut the scan into several (some empty) pages


def test_time_windows_and_the_listing_moment_bound_every_page() -> None:
    pages = every_page(Window(True, 40, 60), 5)
    times = [entry["t"] for page in pages for entry in page]
    assert times and min(times) >= 40 and max(times) <= 60


def page_with(token: str | None, digest: str, key: bytes = KEY) -> Any:
    return read_page(
        sources(),  # type: ignore[arg-type]
        lambda entry: True,
        Window(True, None, None),
        page_size=3,
        token=token,
        digest=digest,
        key=key,
        now_us=10_000,
    )


def forged(digest: str, data: bytes, key: bytes = b"not the server's key" * 2) -> str:
    """A token as a client could make one: the right layout, signed with another key."""
    packed = zlib.compress(data, 9)
    signature = hmac.new(key, digest.encode() + packed, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(signature + packed).decode().rstrip("=")


def test_tokens_of_other_queries_or_forged_are_refused() -> None:
    first = page_with(None, query_digest("one"))
    assert first.next_token
    assert page_with(first.next_token, query_digest("one")).entries  # the real one works
    digest = query_digest("one")
    # Right digest and layout, positions of the client's choosing: not signed by the server.
    made_up = json.dumps({"v": 2, "t": 10_000, "s": {}}).encode()
    for token, for_digest in (
        (first.next_token, query_digest("two")),
        (forged(digest, made_up), digest),
        ("garbage!", digest),
        ("\x00", digest),
        ("A", digest),
    ):
        with pytest.raises(ApiError, match="page token"):
            read_page(
                sources(),  # type: ignore[arg-type]
                lambda entry: True,
                Window(True, None, None),
                page_size=3,
                token=token,
                digest=for_digest,
                key=KEY,
                now_us=10_000,
            )
    with pytest.raises(ApiError, match="page token"):  # another server's (another home's)
        page_with(first.next_token, digest, key=b"k" * 32)


def test_the_signing_key_is_made_once_readable_by_the_server_alone(tmp_path: Path) -> None:
    key = token_key(tmp_path)
    path = tmp_path / "logging-token.key"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert len(key) == 32 and token_key(tmp_path) == key
    assert [p.name for p in tmp_path.iterdir()] == ["logging-token.key"]  # no temporaries


@pytest.mark.parametrize(
    "data",
    [
        b'{"v":2,"t":1,"s":{},"z":[' + b"{}," * 11_000_000 + b"{}]}",  # 32 MiB from 40 KiB
        b'{"v":2,"t":1,"s":' + b"[" * 200_000 + b"]" * 200_000 + b"}",  # nested past recursion
    ],
)
def test_a_compressed_bomb_is_refused_fast_even_when_signed(data: bytes) -> None:
    digest = query_digest("one")
    token = forged(digest, data, key=KEY)  # as if the key leaked: still bounded
    started = time.perf_counter()
    with pytest.raises(ApiError, match="page token"):
        page_with(token, digest)
    assert time.perf_counter() - started < 2


@dataclass(frozen=True)
class BoundedSource(ListSource):
    """A source that knows its newest time (as a file knows its modification time) and
    records when it is read."""

    opened: list[str] | None = None

    @property
    def newest_bound_us(self) -> int:
        return max((row[0] for row in self.rows), default=0)

    def read(self, window: Window, resume: Any) -> Iterator[Item]:
        assert self.opened is not None
        self.opened.append(self.source_id)
        return super().read(window, resume)


def test_newest_first_opens_only_sources_that_can_hold_the_newest_entries() -> None:
    opened: list[str] = []
    many = [
        BoundedSource(f"old{n:03d}", [(t, f"old{n}-{t}") for t in range(n, n + 5)], opened)
        for n in range(100)
    ]
    recent = BoundedSource("recent", [(t, f"recent-{t}") for t in range(1000, 1010)], opened)
    window = Window(True, None, None)
    digest = query_digest("bounded")
    page = read_page(
        [*many, recent],  # type: ignore[list-item]
        lambda entry: True,
        window,
        page_size=12,
        token=None,
        digest=digest,
        key=KEY,
        now_us=10_000,
    )
    texts = [entry["textPayload"] for entry in page.entries]
    # The recent source's ten, then the two newest of the old ones.
    assert texts[:10] == [f"recent-{t}" for t in range(1009, 999, -1)]
    assert texts[10:] == ["old99-103", "old98-102"]  # a tie goes to the first source by id
    assert len(opened) < 10, opened
    # Paging on reaches every entry exactly once, unopened sources included.
    seen = list(texts)
    token = page.next_token
    while token:
        page = read_page(
            [*many, recent],  # type: ignore[list-item]
            lambda entry: True,
            window,
            page_size=50,
            token=token,
            digest=digest,
            key=KEY,
            now_us=10_000,
        )
        seen += [entry["textPayload"] for entry in page.entries]
        token = page.next_token
    assert len(seen) == len(set(seen)) == 100 * 5 + 10
    times = [int(text.rsplit("-", 1)[1]) for text in seen]
    assert times == sorted(times, reverse=True)
