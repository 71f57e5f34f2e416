"""A resolved place to read or write: an fsspec filesystem, a path in it, and its boundary.

Copying, listing and removing work on `Location`s, so they treat a local bucket and a
plain local directory the same way; only `display()` differs (gs:// URI or local path).
The boundary is the bucket directory a location must stay inside, checked against the
real path so that a symlink inside a bucket cannot lead out of it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from fsspec import AbstractFileSystem

from cairn.storage.uris import BucketUri


@dataclass(frozen=True)
class Location:
    """Where one URI or local path lives; `local` is its path on this machine."""

    fs: AbstractFileSystem
    path: str
    local: Path
    bucket_uri: BucketUri | None = None
    boundary: Path | None = None

    def display(self, is_dir: bool = False) -> str:
        """How users see it: `gs://b/k` (dirs end with `/`) or the local path."""
        if self.bucket_uri is not None:
            text = self.bucket_uri.text()
            if is_dir and not text.endswith("/"):
                text += "/"
            return text
        return str(self.local) + ("/" if is_dir and str(self.local) != "/" else "")

    @property
    def name(self) -> str:
        """The basename cp keeps when copying into a directory."""
        return self.bucket_uri.name if self.bucket_uri is not None else self.local.name

    def child(self, relative: str) -> Location:
        """The location `relative` (slash-separated, already safe) below this one."""
        relative = relative.strip("/")
        if not relative:
            return self
        return Location(
            fs=self.fs,
            path=f"{self.path.rstrip('/')}/{relative}",
            local=self.local / relative,
            bucket_uri=self.bucket_uri.child(relative) if self.bucket_uri else None,
            boundary=self.boundary,
        )

    def stays_inside(self) -> bool:
        """False when the real path (symlinks followed) leaves the bucket directory."""
        if self.boundary is None:
            return True
        real = Path(os.path.realpath(self.local))
        return real == self.boundary or real.is_relative_to(self.boundary)

    def is_within(self, other: Location) -> bool:
        """True when this location is `other` or below it (cp into itself loops forever)."""
        mine = Path(os.path.realpath(self.local))
        theirs = Path(os.path.realpath(other.local))
        return mine == theirs or mine.is_relative_to(theirs)
