"""Reading a job's replica logs incrementally, behind an opaque cursor.

Each replica writes `logs/<task name>.log` in its run directory (trials under
`trials/<id>/logs/`); `service.log` holds what Cairn itself did (package installs).
The cursor remembers a byte offset per file, so a caller polling `jobs stream-logs`
sees every complete line exactly once.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from pathlib import Path
from typing import Any

from cairn.domain.errors import invalid_field

LOG_SUFFIX = ".log"
STDERR_SUFFIX = ".stderr"
SERVICE_LOG = "service"
# Bytes read from one file in one call: bounds the reply, the next call goes on.
_MAX_BYTES_PER_FILE = 1 << 20
# A cursor holds one offset per log file; no job has logs enough to need more text.
_MAX_CURSOR_CHARS = 64 * 1024


def log_paths(run_dir: Path, task_name: str) -> tuple[Path, Path]:
    """(combined log, stderr-only log) of one replica."""
    logs = run_dir / "logs"
    return logs / f"{task_name}{LOG_SUFFIX}", logs / f"{task_name}{STDERR_SUFFIX}"


def service_log_path(run_dir: Path) -> Path:
    return run_dir / "logs" / f"{SERVICE_LOG}{LOG_SUFFIX}"


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


def _log_files(job_dir: Path) -> list[tuple[str, str | None, Path]]:
    """(relative path, trial id, file) of every log of a job, in a stable order."""
    found: list[tuple[Path, str | None]] = [
        (path, None) for path in sorted((job_dir / "logs").glob(f"*{LOG_SUFFIX}"))
    ]
    for trial_dir in sorted((job_dir / "trials").glob("*")):
        found += [(p, trial_dir.name) for p in sorted((trial_dir / "logs").glob(f"*{LOG_SUFFIX}"))]
    return [(str(path.relative_to(job_dir)), trial, path) for path, trial in found]


def _read_complete_lines(path: Path, offset: int) -> tuple[list[str], int]:
    with open(path, "rb") as handle:
        offset = min(offset, os.fstat(handle.fileno()).st_size)
        handle.seek(offset)
        chunk = handle.read(_MAX_BYTES_PER_FILE)
    end = chunk.rfind(b"\n")
    if end < 0:
        if len(chunk) < _MAX_BYTES_PER_FILE:
            return [], offset  # a line still being written
        # A line longer than a whole read: hand it over in pieces rather than stall forever.
        return [chunk.decode(errors="replace")], offset + len(chunk)
    lines = chunk[: end + 1].decode(errors="replace").splitlines()
    return lines, offset + end + 1


def read_job_logs(job_dir: Path, cursor: str | None) -> tuple[list[dict[str, Any]], str]:
    """New complete log lines of every replica since `cursor`, and the cursor to go on from."""
    offsets = _decode(cursor)
    entries: list[dict[str, Any]] = []
    for relative, trial_id, path in _log_files(job_dir):
        lines, offsets[relative] = _read_complete_lines(path, offsets.get(relative, 0))
        task_name = path.name[: -len(LOG_SUFFIX)]
        for line in lines:
            entry: dict[str, Any] = {"taskName": task_name, "text": line}
            if trial_id is not None:
                entry["trialId"] = trial_id
            entries.append(entry)
    return entries, _encode(offsets)
