"""The exit-status file a replica's wrapper leaves behind.

The server may not be the parent of a replica (after a restart it is not), so it cannot
`waitpid` for it; the wrapper writes the exit code to a file instead, atomically, and the
server reads it whenever it looks.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path


def write_exit_status(path: Path, code: int) -> None:
    """Write `code` so that a reader sees either nothing or the whole number."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(f"{code}\n")
    os.replace(tmp, path)


def read_exit_status(path: Path) -> int | None:
    """The recorded exit code, or None while the replica has not ended.

    The exit directory is writable by user code, so a symlink planted there is refused
    (never followed by the server) and anything that is not a number counts as no status.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as error:
        if error.errno == errno.ELOOP:
            return None
        raise
    with os.fdopen(fd, "rb") as handle:
        text = handle.read(32).strip()
    try:
        return int(text) if text else None
    except ValueError:
        return None
