"""Listing, walking and wildcard expansion over `Location`s.

Everything listed from a bucket is checked to stay inside it, so a symlink pointing out
of a bucket is invisible rather than a way out, and a symlink loop is walked only once.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cairn.storage.locations import Location
from cairn.storage.wildcards import component_regex, path_regex, split_at_first_wildcard

# Files being written are named so; listings hide them until they are moved into place.
PARTIAL_PREFIX = ".cairn-partial-"


@dataclass(frozen=True)
class Entry:
    """One listed object or directory, with what `ls -l` shows."""

    location: Location
    is_dir: bool
    size: int = 0
    mtime: float = 0.0

    def display(self) -> str:
        return self.location.display(is_dir=self.is_dir)


def stat(location: Location) -> Entry | None:
    """The entry at `location`, or None when nothing (reachable) is there."""
    if not location.stays_inside():
        return None
    try:
        info = location.fs.info(location.path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return _entry_from_info(location, info)


def children(directory: Location) -> list[Entry]:
    """The direct children of a directory, sorted by name."""
    try:
        infos = directory.fs.ls(directory.path, detail=True)
    except (FileNotFoundError, NotADirectoryError):
        return []
    entries = []
    for info in infos:
        name = os.path.basename(str(info["name"]).rstrip("/"))
        if name.startswith(PARTIAL_PREFIX):
            continue
        child = directory.child(name)
        if not child.stays_inside():
            continue
        entry = _entry_from_info(child, info)
        if entry is not None:
            entries.append(entry)
    return sorted(entries, key=lambda entry: entry.location.path)


def walk_files(directory: Location) -> Iterator[Entry]:
    """Every file below `directory`, depth first in name order; loops are cut."""
    seen: set[Path] = set()

    def walk(current: Location) -> Iterator[Entry]:
        real = Path(os.path.realpath(current.local))
        if real in seen:
            return
        seen.add(real)
        for entry in children(current):
            if entry.is_dir:
                yield from walk(entry.location)
            else:
                yield entry

    yield from walk(directory)


def relative_path(entry: Entry, base: Location) -> str:
    """The slash-separated path of `entry` below `base`."""
    return entry.location.path[len(base.path.rstrip("/")) + 1 :]


def expand(base: Location, parts: list[str]) -> list[Entry]:
    """Entries below `base` matching the components `parts` (which may hold wildcards)."""
    literal, patterned = split_at_first_wildcard(parts)
    start = base.child("/".join(literal))
    if not patterned:
        found = stat(start)
        return [found] if found else []
    candidates = [start]
    for index, part in enumerate(patterned):
        if "**" in part:
            return _match_deep(candidates, "/".join(patterned[index:]))
        last = index == len(patterned) - 1
        regex = component_regex(part)
        next_candidates: list[Location] = []
        matched: list[Entry] = []
        for candidate in candidates:
            for entry in children(candidate):
                if regex.fullmatch(entry.location.name):
                    matched.append(entry)
                    if entry.is_dir:
                        next_candidates.append(entry.location)
        if last:
            return matched
        candidates = next_candidates
    return []


def _match_deep(candidates: list[Location], pattern: str) -> list[Entry]:
    """`**` patterns match objects (files) only, as gsutil's do."""
    regex = path_regex(pattern)
    matched = []
    for candidate in candidates:
        for entry in walk_files(candidate):
            if regex.fullmatch(relative_path(entry, candidate)):
                matched.append(entry)
    return matched


def _entry_from_info(location: Location, info: dict[str, object]) -> Entry | None:
    kind = info.get("type")
    if kind not in ("file", "directory"):
        return None  # broken symlinks, sockets, devices
    size = info.get("size") or 0
    mtime = info.get("mtime") or 0.0
    return Entry(
        location,
        is_dir=kind == "directory",
        size=int(size) if isinstance(size, int | float) else 0,
        mtime=float(mtime) if isinstance(mtime, int | float) else 0.0,
    )
