"""A job's logs: per-replica files, their arrival times, and reading them in time order.

Each replica writes `logs/<task name>.log` in its run directory (trials under
`trials/<id>/logs/`); `service.log` holds what Cairn itself did (package installs, replica
restarts). Beside each log, `<name>.times` records when its bytes arrived: one
`END_OFFSET UNIX_TIME` line per write, the time taken just before the write (by the
replica shim for replica logs, by the runner for the service log). A reader merges the
lines of every log by those times, so lines of different replicas come in the order they
were written, not file by file.

The cursor remembers a byte offset per log file (and per times file), so a caller polling
`jobs stream-logs` sees every complete line exactly once, across server restarts too (the
files and their offsets outlive the server). While the job runs, a line only leaves the
reader once no line stamped earlier can still be on its way into a log (`settle_s`), so
two reads never hand out lines out of order.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import json
import math
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cairn.domain.errors import invalid_field
from cairn.domain.wire import format_timestamp

LOG_SUFFIX = ".log"
STDERR_SUFFIX = ".stderr"
TIMES_SUFFIX = ".times"
SERVICE_LOG = "service"
# Bytes read from one file in one call: bounds the reply, the next call goes on.
_MAX_BYTES_PER_FILE = 1 << 20
# Bytes of one times file read in one call (a stamp is about 30 bytes).
_MAX_TIMES_BYTES = 1 << 20
# A cursor holds one offset per log file; no job has logs enough to need more text.
_MAX_CURSOR_CHARS = 64 * 1024


def log_paths(run_dir: Path, task_name: str) -> tuple[Path, Path]:
    """(combined log, stderr-only log) of one replica."""
    logs = run_dir / "logs"
    return logs / f"{task_name}{LOG_SUFFIX}", logs / f"{task_name}{STDERR_SUFFIX}"


def times_path(log_path: Path) -> Path:
    """Where the arrival times of `log_path`'s bytes are recorded."""
    return log_path.with_name(log_path.name.removesuffix(LOG_SUFFIX) + TIMES_SUFFIX)


def service_log_path(run_dir: Path) -> Path:
    return run_dir / "logs" / f"{SERVICE_LOG}{LOG_SUFFIX}"


def stamp(times_file: Any, end_offset: int, when: float | None = None) -> None:
    """Record that a log's bytes up to `end_offset` had arrived by `when` (now)."""
    moment = time.time() if when is None else when
    times_file.write(f"{end_offset} {moment:.6f}\n".encode())
    times_file.flush()


def stamp_log(log_path: Path) -> None:
    """Stamp whatever a log holds now (lines others wrote into it, e.g. pip's output)."""
    try:
        size = log_path.stat().st_size
    except FileNotFoundError:
        return
    with open(times_path(log_path), "ab") as times_file:
        stamp(times_file, size)


def write_service_line(run_dir: Path, text: str) -> None:
    """A line of Cairn's own in the run's service log, stamped as it is written."""
    path = service_log_path(run_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrived = time.time()
    with open(path, "ab") as log:
        log.write(text.rstrip("\n").encode() + b"\n")
        log.flush()
        end = log.tell()
    with open(times_path(path), "ab") as times_file:
        stamp(times_file, end, arrived)


def _encode(offsets: dict[str, int]) -> str:
    return base64.urlsafe_b64encode(json.dumps(offsets, sort_keys=True).encode()).decode()


def _decode(cursor: str | None) -> dict[str, int]:
    if not cursor:
        return {}
    refused = invalid_field(
        "cursor", "This log cursor is not one Cairn handed out; start again without it."
    )
    if len(cursor) > _MAX_CURSOR_CHARS:
        raise refused
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        offsets = {str(k): int(v) for k, v in data.items()}
    except (binascii.Error, ValueError, TypeError, AttributeError, OverflowError, RecursionError):
        raise refused from None
    # Offsets are byte positions in the files; one past a file's end is read from its end.
    if any(offset < 0 for offset in offsets.values()):
        raise refused
    return offsets


@dataclass(frozen=True)
class _Source:
    relative: str  # the log's path in the job directory: its key in the cursor
    trial_id: str | None
    task_name: str
    path: Path

    @property
    def times_key(self) -> str:
        return self.relative.removesuffix(LOG_SUFFIX) + TIMES_SUFFIX


@dataclass
class _Line:
    text: str
    end: int  # byte offset just past the line in its log
    moment: float  # when it arrived (Unix time)


def _log_files(job_dir: Path, task_name: str | None) -> list[_Source]:
    """Every log of a job (only `task_name`'s, when given), in a stable order."""
    found: list[tuple[Path, str | None]] = [
        (path, None) for path in sorted((job_dir / "logs").glob(f"*{LOG_SUFFIX}"))
    ]
    for trial_dir in sorted((job_dir / "trials").glob("*")):
        found += [(p, trial_dir.name) for p in sorted((trial_dir / "logs").glob(f"*{LOG_SUFFIX}"))]
    sources = [
        _Source(str(path.relative_to(job_dir)), trial, path.name[: -len(LOG_SUFFIX)], path)
        for path, trial in found
    ]
    return [s for s in sources if task_name is None or s.task_name == task_name]


@dataclass
class _Read:
    start: int  # where reading began: the cursor's offset, or the file's end if past it
    lines: list[tuple[str, int]]  # (text, end offset) of each complete line
    capped: bool  # the read stopped at its size bound with more to come
    modified: float  # the file's modification time


def _read_complete_lines(path: Path, offset: int) -> _Read:
    with open(path, "rb") as handle:
        status = os.fstat(handle.fileno())
        offset = min(offset, status.st_size)
        handle.seek(offset)
        chunk = handle.read(_MAX_BYTES_PER_FILE)
    capped = len(chunk) == _MAX_BYTES_PER_FILE and offset + len(chunk) < status.st_size
    end = chunk.rfind(b"\n")
    if end < 0:
        if len(chunk) < _MAX_BYTES_PER_FILE:
            return _Read(offset, [], False, status.st_mtime)  # a line still being written
        # A line longer than a whole read: hand it over in pieces rather than stall forever.
        piece = [(chunk.decode(errors="replace"), offset + len(chunk))]
        return _Read(offset, piece, True, status.st_mtime)
    lines: list[tuple[str, int]] = []
    position = offset
    for raw in chunk[: end + 1].split(b"\n")[:-1]:
        position += len(raw) + 1
        # Carriage returns (progress bars) still part lines, as they always did.
        lines += [(text, position) for text in raw.decode(errors="replace").splitlines()]
    return _Read(offset, lines, capped, status.st_mtime)


def _read_stamps(path: Path, offset: int, after: int) -> list[tuple[int, float]]:
    """(end offset, time) stamps of a times file from `offset`, in file order, leaving out
    those of bytes up to `after` (already handed out).

    The file is the replica's own: a line that is not a stamp is ignored, never trusted.
    """
    try:
        with open(path, "rb") as handle:
            handle.seek(min(offset, os.fstat(handle.fileno()).st_size))
            chunk = handle.read(_MAX_TIMES_BYTES)
    except (FileNotFoundError, IsADirectoryError):
        return []
    stamps: list[tuple[int, float]] = []
    for raw in chunk[: chunk.rfind(b"\n") + 1].splitlines():
        try:
            end_text, moment_text = raw.split()
            end, moment = int(end_text), float(moment_text)
        except ValueError:
            continue
        if end > after and math.isfinite(moment):
            stamps.append((end, moment))
    return stamps


def read_job_logs(
    job_dir: Path, cursor: str | None, *, task_name: str | None = None, settle_s: float = 0.0
) -> tuple[list[dict[str, Any]], str]:
    """New complete log lines since `cursor`, of every replica (or only `task_name`) and of
    the service, in the order they were written; and the cursor to go on from.

    `settle_s` (while replicas still write): lines stamped later than this long before the
    read wait for the next read, since a line stamped before them may still be on its way
    into another log.
    """
    offsets = _decode(cursor)
    settled = time.time() - settle_s
    read: list[tuple[_Source, list[_Line]]] = []
    for source in _log_files(job_dir, task_name):
        try:
            got = _read_complete_lines(source.path, offsets.get(source.relative, 0))
        except FileNotFoundError:
            continue
        offsets[source.relative] = got.start
        if not got.lines:
            continue
        stamps = _read_stamps(times_path(source.path), offsets.get(source.times_key, 0), got.start)
        ends = [end for end, _ in stamps]
        timed: list[_Line] = []
        latest = 0.0
        for text, end in got.lines:
            at = bisect.bisect_left(ends, end)
            # No stamp yet (a write in progress, or a log nobody stamps): its last change.
            moment = stamps[at][1] if at < len(stamps) else got.modified
            latest = max(latest, moment)  # a file's own lines never go back in time
            timed.append(_Line(text, end, latest))
        if got.capped:
            # More of this log waits unread: nothing later than what was read may go first.
            settled = min(settled, timed[-1].moment)
        read.append((source, timed))

    merged = [
        (line.moment, order, index, source, line)
        for order, (source, lines) in enumerate(read)
        for index, line in enumerate(lines)
        if line.moment <= settled
    ]
    merged.sort(key=lambda item: item[:3])
    entries: list[dict[str, Any]] = []
    for _, _, _, source, line in merged:
        entry: dict[str, Any] = {
            "taskName": source.task_name,
            "text": line.text,
            "timestamp": format_timestamp(datetime.fromtimestamp(line.moment, UTC)),
        }
        if source.trial_id is not None:
            entry["trialId"] = source.trial_id
        entries.append(entry)
        offsets[source.relative] = line.end
    for source, _ in read:
        _advance_times(source, offsets)
    return entries, _encode(offsets)


def _advance_times(source: _Source, offsets: dict[str, int]) -> None:
    """Move the times file's offset past the stamps of bytes already handed out, so the
    next read parses only stamps it may need."""
    handed_out = offsets.get(source.relative, 0)
    position = offsets.get(source.times_key, 0)
    try:
        with open(times_path(source.path), "rb") as handle:
            handle.seek(min(position, os.fstat(handle.fileno()).st_size))
            chunk = handle.read(_MAX_TIMES_BYTES)
    except (FileNotFoundError, IsADirectoryError):
        return
    for raw in chunk.splitlines(keepends=True):
        if not raw.endswith(b"\n"):
            break
        try:
            end = int(raw.split()[0])
        except (ValueError, IndexError):
            end = -1  # not a stamp: step over it
        if end > handed_out:
            break
        position += len(raw)
    offsets[source.times_key] = position
