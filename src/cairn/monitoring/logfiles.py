"""Reading a line log lazily, newest or oldest line first, with the time each line arrived.

A replica's log has a `.times` file beside it: one `END_OFFSET UNIX_TIME` line per write
(`training/logs.py` says who writes it). A line's time is that of the first stamp whose
offset reaches the line's end; a line no stamp covers yet (a write in progress, or a log
nobody stamps, such as a prediction node's) takes the file's last modification time.

Nothing is loaded whole: lines are read in blocks from either end (or from an offset a page
token remembers), and a stamp is found by bisecting the times file by byte position, then
read from a cached block, so reading the newest lines of a large log costs a few reads.
A time bound seeks the same way: the stamps are in time order, so the offset where a time
range starts is found by bisection too.
"""

from __future__ import annotations

import bisect
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

_BLOCK = 64 * 1024
# A line longer than this is handed out in pieces (a progress bar without newlines must not
# make a read hold its whole log).
_MAX_LINE = 256 * 1024


def open_regular(path: Path) -> BinaryIO | None:
    """`path` opened for reading if it is a regular file; None otherwise.

    Never follows a symbolic link and never waits on a FIFO: a log directory is read on
    the server's behalf, and what lies in it must not make the server read elsewhere or hang.
    """
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            os.close(descriptor)
            return None
        return os.fdopen(descriptor, "rb")
    except OSError:
        os.close(descriptor)
        return None


@dataclass(frozen=True)
class Line:
    text: str
    start: int  # byte offset of the line's first byte
    end: int  # byte offset just past its newline
    time_us: int  # when it arrived, microseconds since the epoch


@dataclass(frozen=True)
class _Stamp:
    end: int
    time_us: int


class _Stamps:
    """The `.times` file of a log, searched by bisection and read in cached blocks."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._handle = None
        self.size = 0
        if path is not None:
            self._handle = open_regular(path)
            if self._handle is not None:
                self.size = os.fstat(self._handle.fileno()).st_size
        self._block: _Block | None = None

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def _parse(self, position: int, length: int) -> list[_Stamp]:
        """Stamps of the complete lines starting at or after `position` within `length`."""
        assert self._handle is not None
        self._handle.seek(position)
        chunk = self._handle.read(length)
        if position > 0:
            newline = chunk.find(b"\n")
            chunk = b"" if newline < 0 else chunk[newline + 1 :]
        stamps: list[_Stamp] = []
        for raw in chunk[: chunk.rfind(b"\n") + 1].splitlines():
            try:
                end_text, time_text = raw.split()
                end, moment = int(end_text), float(time_text)
            except ValueError:
                continue  # the file is the replica's own: a line that is no stamp is ignored
            if moment == moment and abs(moment) < 1e11:  # finite, a plausible Unix time
                stamps.append(_Stamp(end, int(moment * 1_000_000)))
        return stamps

    def locate(self, by_time: bool, target: int, *, strict: bool = False) -> _Found:
        """(the stamp before the first one whose end, or time, reaches `target`, that one);
        None where there is none. "Reaches" is `>=`, or `>` when `strict`. Ends and times
        grow along the file, so both searches bisect."""
        if self._handle is None or self.size == 0:
            return None, None
        if self._block is not None:
            found = self._in_block(self._block, by_time, target, strict)
            if found is not None:
                return found
        low, high = 0, self.size
        while high - low > _BLOCK // 2:
            middle = (low + high) // 2
            first = self._parse(middle, 512)
            if not first or _reaches(first[0], by_time, target, strict):
                high = middle
            else:
                low = middle
        self._block = _Block(low, self._parse(low, 2 * _BLOCK + 512), low + 2 * _BLOCK >= self.size)
        found = self._in_block(self._block, by_time, target, strict)
        if found is not None:
            return found
        stamps = self._block.stamps
        return (stamps[-1] if stamps else None), None

    @staticmethod
    def _in_block(block: _Block, by_time: bool, target: int, strict: bool) -> _Found | None:
        """The answer if this block holds it; None if another part of the file must be read."""
        keys = block.times if by_time else block.ends
        index = (bisect.bisect_right if strict else bisect.bisect_left)(keys, target)
        stamps = block.stamps
        if index == len(stamps):
            return ((stamps[-1] if stamps else None), None) if block.to_end else None
        if index > 0:
            return stamps[index - 1], stamps[index]
        return (None, stamps[0]) if block.start == 0 else None


_Found = tuple[_Stamp | None, _Stamp | None]


def _reaches(stamp: _Stamp, by_time: bool, target: int, strict: bool) -> bool:
    key = stamp.time_us if by_time else stamp.end
    return key > target if strict else key >= target


class _Block:
    """Stamps read from one part of a times file, with their keys for bisection."""

    def __init__(self, start: int, stamps: list[_Stamp], to_end: bool) -> None:
        self.start = start
        self.stamps = stamps
        self.to_end = to_end  # the block reaches the end of the file
        self.ends = [stamp.end for stamp in stamps]
        self.times = [stamp.time_us for stamp in stamps]


class StampedLog:
    """One log file (and its times file, when it has one), read lazily in either order."""

    def __init__(self, path: Path, times: Path | None = None) -> None:
        self.path = path
        self.times = times

    def modified_us(self) -> int | None:
        try:
            return int(self.path.stat().st_mtime * 1_000_000)
        except OSError:
            return None

    def extent(self) -> tuple[int, int] | None:
        """(size, modification time): what a listing's first look saw, kept in its page
        token so that later pages read the same bytes with the same fallback time."""
        try:
            status = self.path.stat()
        except OSError:
            return None
        return status.st_size, int(status.st_mtime * 1_000_000)

    def lines(
        self,
        *,
        newest_first: bool,
        resume: int | None = None,
        since_us: int | None = None,
        until_us: int | None = None,
        limit: int | None = None,
        fallback_us: int | None = None,
    ) -> Iterator[Line]:
        """Complete lines in the order asked, from `resume` (an offset: the end of the first
        line to give when newest first, else its start), within the time bounds; only the
        first `limit` bytes, and `fallback_us` for lines no stamp covers, when given."""
        handle = open_regular(self.path)
        if handle is None:
            return
        stamps = _Stamps(self.times)
        try:
            status = os.fstat(handle.fileno())
            fallback = int(status.st_mtime * 1_000_000) if fallback_us is None else fallback_us
            size = status.st_size if limit is None else min(limit, status.st_size)

            def time_of(end: int) -> int:
                _, stamp = stamps.locate(False, end)
                return stamp.time_us if stamp is not None else fallback

            if newest_first:
                start_at = size if resume is None else min(resume, size)
                if until_us is not None and resume is None:
                    # Lines up to the last stamp at or before `until_us` are early enough.
                    before, after = stamps.locate(True, until_us, strict=True)
                    if after is not None or fallback > until_us:
                        start_at = min(start_at, before.end if before is not None else 0)
                for text, start, end in _backward(handle, start_at, size):
                    moment = time_of(end)
                    if since_us is not None and moment < since_us:
                        return
                    if until_us is None or moment <= until_us:
                        yield Line(text, start, end, moment)
            else:
                start_at = 0 if resume is None else min(resume, size)
                if since_us is not None and resume is None:
                    before, _ = stamps.locate(True, since_us)
                    if before is not None:
                        start_at = max(start_at, before.end)
                for text, start, end in _forward(handle, start_at, size):
                    moment = time_of(end)
                    if until_us is not None and moment > until_us:
                        return
                    if since_us is None or moment >= since_us:
                        yield Line(text, start, end, moment)
        finally:
            stamps.close()
            handle.close()


def _decode(raw: bytes) -> str:
    return raw.rstrip(b"\r").decode("utf-8", "replace")


def _forward(handle: object, start: int, size: int) -> Iterator[tuple[str, int, int]]:
    """(text, start, end) of each complete line from `start` on."""
    assert hasattr(handle, "seek") and hasattr(handle, "read")
    handle.seek(start)
    position = start
    pending = b""
    while position + len(pending) < size:
        chunk = handle.read(min(_BLOCK, size - position - len(pending)))
        if not chunk:
            break
        pending += chunk
        while True:
            newline = pending.find(b"\n")
            if newline < 0:
                if len(pending) >= _MAX_LINE:  # an endless line: give it in pieces
                    yield _decode(pending), position, position + len(pending)
                    position += len(pending)
                    pending = b""
                break
            yield _decode(pending[:newline]), position, position + newline + 1
            position += newline + 1
            pending = pending[newline + 1 :]


def _backward(handle: object, end: int, size: int) -> Iterator[tuple[str, int, int]]:
    """(text, start, end) of each complete line ending at or before `end`, newest first.

    A last line without its newline is still being written: it is left for a later read.
    """
    assert hasattr(handle, "seek") and hasattr(handle, "read")
    position = end  # the bytes before it are unread
    buffer = b""  # the bytes from `position` on not handed out yet
    whole = False  # whether `buffer` ends where a line ends
    while True:
        if not whole:
            newline = buffer.rfind(b"\n")
            if newline >= 0:
                buffer, whole = buffer[: newline + 1], True
            elif len(buffer) >= _MAX_LINE:
                whole = True  # an endless line: given in pieces
            elif position == 0:
                return
        if whole:
            while buffer:
                newline = buffer.rfind(b"\n", 0, len(buffer) - 1)
                if newline < 0 and position > 0 and len(buffer) < _MAX_LINE:
                    break  # the line began in an earlier block
                line_start = newline + 1
                text = _decode(buffer[line_start:].removesuffix(b"\n"))
                yield text, position + line_start, position + len(buffer)
                buffer = buffer[:line_start]
        if position == 0:
            return
        step = min(_BLOCK, position)
        position -= step
        handle.seek(position)
        buffer = handle.read(step) + buffer
