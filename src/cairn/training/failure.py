"""The error message of a failed replica, in AI Platform's words plus its last stderr lines."""

from __future__ import annotations

import signal
from collections import deque
from pathlib import Path

STDERR_TAIL_LINES = 20


def _replica_words(task_name: str) -> str:
    """`master-replica-0` -> `master 0`, as AI Platform names replicas in errors."""
    role, _, index = task_name.rpartition("-replica-")
    return f"{role} {index}" if role else task_name


def stderr_tail(stderr_path: str | Path, lines: int = STDERR_TAIL_LINES) -> str:
    try:
        with open(stderr_path, "rb") as handle:
            tail = deque(handle, maxlen=lines)
    except OSError:
        return ""
    return b"".join(tail).decode(errors="replace").rstrip("\n")


def replica_failure_message(
    task_name: str, code: int, stderr_path: str | Path, *, restarts: int = 0
) -> str:
    """`restarts`: how often the replica had been restarted after crashing before."""
    who = f"The replica {_replica_words(task_name)}"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        head = f"{who} was ended by {name}."
    else:
        head = f"{who} exited with a non-zero status of {code}."
    if restarts:
        head += f" It had been restarted {restarts} times, the most Cairn allows."
    tail = stderr_tail(stderr_path)
    if not tail:
        return head + " It wrote nothing to stderr."
    return f"{head} The last lines of its stderr:\n{tail}"
