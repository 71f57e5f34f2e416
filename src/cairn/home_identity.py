"""The identity of a Cairn home: a random id, bound to the home directory itself.

Run records carry it, so a server started on a copy of a home (a restored backup, a
directory copied to try something) never takes the original's live replicas for its own,
and so never ends them. The id is written once to `<home>/home-id` together with the
directory's device and inode numbers; a copy is another directory, so its server sees
the mismatch and draws an id of its own.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

HOME_ID_FILE = "home-id"


def home_id(home: Path) -> str:
    """This home's id, created on first use (call it while holding the home's lock)."""
    path = home / HOME_ID_FILE
    place = os.stat(home)
    try:
        recorded = json.loads(path.read_text())
        if (recorded["device"], recorded["inode"]) == (place.st_dev, place.st_ino):
            return str(recorded["id"])
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        pass  # missing, unreadable, or written for the directory this one was copied from
    identity = uuid.uuid4().hex
    record = {"id": identity, "device": place.st_dev, "inode": place.st_ino}
    temporary = path.with_name(f".{HOME_ID_FILE}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(record, handle)
    os.replace(temporary, path)
    return identity
