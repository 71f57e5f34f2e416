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

from cairn.iam.credential_files import write_private_file

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
    write_private_file(path, json.dumps(record))
    return identity
