"""`BucketStorage`: gs:// URIs mapped onto local bucket directories through fsspec.

In embedded mode `gs://BUCKET/PATH` lives at `<root>/BUCKET/PATH`. This class is the one
place that knows so: everything else (trainers' `--job-dir`, `deploymentUri`, batch
prediction inputs, `cairn storage`) goes through it, so real GCS or S3 can later be
configured here without touching its callers. Local paths are accepted wherever a URI is.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from fsspec.implementations.dirfs import DirFileSystem
from fsspec.implementations.local import LocalFileSystem

from cairn.domain.errors import ApiError, Code, shown
from cairn.storage.copying import (
    CopyStep,
    SourceMatch,
    copy_file,
    file_step,
    plan_copy,
    tree_steps,
)
from cairn.storage.listing import Entry, children, expand, stat, walk_files
from cairn.storage.locations import Location
from cairn.storage.os_errors import disk_errors_reported, storage_error
from cairn.storage.uris import (
    BucketUri,
    check_bucket_name,
    has_wildcard,
    is_bucket_uri,
    parse_bucket_uri,
)


class BucketStorage:
    """Artefact storage rooted at `root` (normally `Settings.storage_root`)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(os.path.realpath(Path(root).expanduser()))
        self._local_fs = LocalFileSystem()
        self.fs = DirFileSystem(path=str(self.root), fs=self._local_fs)

    # -- resolution ---------------------------------------------------------------------

    def locate(self, uri: str) -> Location:
        """Where `uri` (gs://, file:// or a local path) lives; refuses unsafe bucket URIs."""
        if not is_bucket_uri(uri):
            return self._local_location(Path(_strip_file_scheme(uri)).expanduser().resolve())
        parsed = self._parse(uri)
        bucket_dir = self.root / parsed.bucket
        location = Location(
            fs=self.fs,
            path=f"{parsed.bucket}/{parsed.key}" if parsed.key else parsed.bucket,
            local=bucket_dir / parsed.key if parsed.key else bucket_dir,
            bucket_uri=parsed,
            boundary=Path(os.path.realpath(bucket_dir)),
        )
        if not location.stays_inside():
            raise ApiError(
                Code.INVALID_ARGUMENT,
                f"Invalid storage URI {uri!r}: it leads outside bucket gs://{parsed.bucket}/ "
                "through a symlink; refusing it.",
            )
        return location

    def local_path(self, uri: str) -> Path:
        """`gs://b/p` -> `<root>/b/p`; a plain local path comes back resolved."""
        return self.locate(uri).local

    def uri_for(self, path: Path) -> str:
        """The gs:// URI of a path inside the root (the inverse of `local_path`)."""
        real = Path(os.path.realpath(Path(path).expanduser()))
        if not real.is_relative_to(self.root) or real == self.root:
            raise ApiError(
                Code.INVALID_ARGUMENT,
                f"{path} is not inside a local bucket under {self.root}; copy it there with "
                "`cairn storage cp` to give it a gs:// URI.",
            )
        bucket, *rest = real.relative_to(self.root).parts
        uri = BucketUri("gs", bucket, "/".join(rest))
        check_bucket_name(bucket, uri.text())
        return uri.text()

    def localize_arg(self, value: str) -> str:
        """A trainer argument with a local-bucket URI (`gs://..` or `--flag=gs://..`) localised."""
        flag, equals, rest = value.partition("=")
        if equals and flag.startswith("-") and rest.startswith("gs://"):
            return f"{flag}={self._localize(rest)}"
        if value.startswith("gs://"):
            return self._localize(value)
        return value

    # -- reading and writing ------------------------------------------------------------

    def exists(self, uri: str) -> bool:
        return stat(self.locate(uri)) is not None

    def isdir(self, uri: str) -> bool:
        found = stat(self.locate(uri))
        return found is not None and found.is_dir

    def open(self, uri: str, mode: str = "rb") -> IO[Any]:
        """A file object; writing creates parent directories (and the bucket) as needed."""
        location = self.locate(uri)
        found = stat(location)
        if found is not None and found.is_dir:
            raise ApiError(
                Code.INVALID_ARGUMENT, f"{location.display()} is a directory, not a file."
            )
        if any(flag in mode for flag in "wax+"):
            if location.bucket_uri is not None and (
                not location.bucket_uri.key or uri.endswith("/")
            ):
                raise ApiError(
                    Code.INVALID_ARGUMENT,
                    f"Cannot write to {uri}: it names a bucket or directory; "
                    "give an object name such as gs://BUCKET/dir/file.",
                )
            parent = location.path.rsplit("/", 1)[0] if "/" in location.path else location.path
            try:
                location.fs.makedirs(parent, exist_ok=True)
            except (FileExistsError, NotADirectoryError) as error:
                raise ApiError(
                    Code.FAILED_PRECONDITION,
                    f"Cannot write {location.display()}: part of its path is a file.",
                ) from error
            except OSError as error:
                raise storage_error(error, location.display()) from error
        elif found is None:
            raise ApiError(
                Code.NOT_FOUND,
                f"{location.display()} not found. List what exists with `cairn storage ls`.",
            )
        with disk_errors_reported(location.display()):
            handle: IO[Any] = location.fs.open(location.path, mode)
        return handle

    def read_bytes(self, uri: str) -> bytes:
        with self.open(uri, "rb") as handle:
            data: bytes = handle.read()
        return data

    def write_bytes(self, uri: str, data: bytes) -> None:
        with self.open(uri, "wb") as handle:
            handle.write(data)

    # -- listing ------------------------------------------------------------------------

    def buckets(self) -> list[str]:
        """The local buckets, as `gs://name/`."""
        if not self.root.is_dir():
            return []
        return [
            f"gs://{entry.name}/"
            for entry in sorted(self.root.iterdir())
            if entry.is_dir() and _is_valid_bucket_name(entry.name)
        ]

    def make_bucket(self, uri: str) -> str:
        """Create an empty bucket (`mb`); ALREADY_EXISTS when it is there."""
        parsed = self._parse(uri)
        if parsed.key:
            raise ApiError(
                Code.INVALID_ARGUMENT,
                f"{uri} names an object; give just the bucket, like gs://{parsed.bucket}.",
            )
        bucket_dir = self.root / parsed.bucket
        if bucket_dir.exists():
            raise ApiError(Code.ALREADY_EXISTS, f"Bucket gs://{parsed.bucket}/ already exists.")
        with disk_errors_reported(f"gs://{parsed.bucket}/"):
            bucket_dir.mkdir(parents=True)
        return f"gs://{parsed.bucket}/"

    def ls_entries(self, uri: str, recursive: bool = False) -> list[Entry]:
        """What `ls` shows, with sizes and times (for `ls -l`)."""
        match = self._match(uri)
        if not match.entries:
            raise ApiError(
                Code.NOT_FOUND,
                f"{uri} matched no objects. List the bucket with `cairn storage ls`.",
            )
        listed: list[Entry] = []
        for entry in match.entries:
            if not entry.is_dir:
                listed.append(entry)
            elif recursive:
                listed.extend(walk_files(entry.location))
            elif match.wildcard:
                listed.append(entry)
            else:
                listed.extend(children(entry.location))
        return listed

    def ls(self, uri: str, recursive: bool = False) -> list[str]:
        """gs:// URIs below `uri` (objects, and directories ending with `/`)."""
        return [entry.display() for entry in self.ls_entries(uri, recursive)]

    def glob(self, pattern_uri: str) -> list[str]:
        """URIs matching a gsutil wildcard pattern; an empty list when none match."""
        return [entry.display() for entry in self._match(pattern_uri).entries]

    # -- copying and removing -----------------------------------------------------------

    def plan_copy(
        self, sources: Sequence[str], dst: str, recursive: bool = False
    ) -> list[CopyStep]:
        """The files `cp` would write, checked before anything is written."""
        if has_wildcard(dst):
            raise ApiError(
                Code.INVALID_ARGUMENT, f"Destination {dst} has wildcards; name one place."
            )
        destination = self.locate(dst)
        dir_syntax = dst.endswith("/") or (
            destination.bucket_uri is not None and not destination.bucket_uri.key
        )
        matches = [self._match(source) for source in sources]
        return plan_copy(matches, destination, dir_syntax, recursive)

    def object_destination(self, uri: str) -> Location:
        """Where the object `uri` is written by `put_file`, checked before any byte is sent.

        A local disk cannot hold both `a` and `a/b`, which Cloud Storage can: a name taken
        by a folder, or one below an existing object, is refused.
        """
        location = self.locate(uri)
        parsed = location.bucket_uri
        if parsed is None or not parsed.key or parsed.trailing_slash:
            raise ApiError(
                Code.INVALID_ARGUMENT,
                f"{shown(uri)} names a bucket or a folder; give an object name such as "
                "gs://BUCKET/dir/file.",
            )
        with disk_errors_reported(location.display()):
            found = stat(location)
            if found is not None and found.is_dir:
                raise ApiError(
                    Code.FAILED_PRECONDITION,
                    f"Cannot write {location.display()}: a folder of that name holds other "
                    "objects. Choose another name or remove the folder first.",
                )
            bucket_dir = self.root / parsed.bucket
            # Every folder between the bucket and the object (the last parent is '.').
            for parent in location.local.relative_to(bucket_dir).parents[:-1]:
                if (bucket_dir / parent).is_file():
                    raise ApiError(
                        Code.FAILED_PRECONDITION,
                        f"Cannot write {location.display()}: gs://{parsed.bucket}/"
                        f"{parent.as_posix()} is an object, so it cannot also be a folder. "
                        "Choose another name.",
                    )
        return location

    def put_file(self, local_file: Path, uri: str) -> str:
        """Store `local_file` as exactly the object `uri` (an upload); returns the URI.

        Unlike `copy`, a destination that is a folder is refused, never written into.
        """
        destination = self.object_destination(uri)
        source = self._local_location(Path(local_file))
        copy_file(CopyStep(source, destination, Path(local_file).stat().st_size))
        return destination.display()

    def copy_step(self, step: CopyStep) -> str:
        """Carry out one planned step; returns the destination written."""
        copy_file(step)
        return step.destination.display()

    def copy(self, src: str, dst: str, recursive: bool = False) -> list[str]:
        """gsutil `cp` for one source (wildcards allowed); returns the destinations written."""
        return [self.copy_step(step) for step in self.plan_copy([src], dst, recursive)]

    def remove(self, uri: str, recursive: bool = False) -> list[str]:
        """gsutil `rm`; directories need `recursive`. Returns the objects removed."""
        match = self._match(uri)
        if not match.entries:
            raise ApiError(Code.NOT_FOUND, f"No URLs matched: {uri}. Nothing was removed.")
        for entry in match.entries:
            if entry.is_dir and not recursive:
                raise ApiError(
                    Code.INVALID_ARGUMENT,
                    f"{entry.display()} is a directory; remove directories with -r.",
                )
        removed: list[str] = []
        for entry in match.entries:
            location = entry.location
            with disk_errors_reported(entry.display()):
                if entry.is_dir:
                    removed.extend(found.display() for found in walk_files(location))
                    location.fs.rm(location.path, recursive=True)
                else:
                    location.fs.rm_file(location.path)
                    removed.append(entry.display())
            _prune_empty_parents(location)
        return removed

    def copy_tree_to_local(self, uri: str, dest_dir: Path) -> Path:
        """Snapshot a directory (gs:// or local) into `dest_dir`; returns `dest_dir`."""
        source = stat(self.locate(uri))
        if source is None:
            raise ApiError(
                Code.NOT_FOUND, f"{uri} not found. Check it with `cairn storage ls {uri}`."
            )
        dest_dir = Path(dest_dir).expanduser().resolve()
        with disk_errors_reported(str(dest_dir)):
            dest_dir.mkdir(parents=True, exist_ok=True)
        destination = self._local_location(dest_dir)
        if source.is_dir:
            steps = tree_steps(source, destination)
        else:
            steps = [file_step(source, destination.child(source.location.name))]
        for step in steps:
            copy_file(step)
        return dest_dir

    # -- helpers ------------------------------------------------------------------------

    def _parse(self, uri: str) -> BucketUri:
        parsed = parse_bucket_uri(uri)
        if parsed.scheme != "gs":
            raise ApiError(
                Code.UNIMPLEMENTED,
                f"{uri}: {parsed.scheme}:// storage is not built in Cairn yet; use a local "
                "bucket (gs://BUCKET/...) and copy data in with `cairn storage cp`.",
            )
        return parsed

    def _local_location(self, path: Path) -> Location:
        return Location(fs=self._local_fs, path=path.as_posix(), local=path)

    def _match(self, text: str) -> SourceMatch:
        """Entries a (possibly wildcarded) URI or local path names."""
        if not has_wildcard(text):
            found = stat(self.locate(text))
            if found is None:
                self._require_bucket(text)
            return SourceMatch(text, [found] if found else [], wildcard=False)
        if is_bucket_uri(text):
            parsed = self._parse(text)
            self._require_bucket(text)
            base = self.locate(f"gs://{parsed.bucket}/")
            parts = parsed.key.split("/")
        else:
            absolute = Path(os.path.abspath(Path(_strip_file_scheme(text)).expanduser()))
            base = self._local_location(Path(absolute.anchor))
            parts = list(absolute.parts[1:])
        return SourceMatch(text, expand(base, parts), wildcard=True)

    def _require_bucket(self, uri: str) -> None:
        if not is_bucket_uri(uri):
            return
        bucket = self._parse(uri).bucket
        if not (self.root / bucket).is_dir():
            raise ApiError(
                Code.NOT_FOUND,
                f"Bucket gs://{bucket}/ does not exist; create it with "
                f"`cairn storage mb gs://{bucket}` or copy a file into it.",
            )

    def _localize(self, uri: str) -> str:
        local = str(self.local_path(uri))
        return local + "/" if uri.endswith("/") and not local.endswith("/") else local


def _strip_file_scheme(text: str) -> str:
    return text[len("file://") :] if text.startswith("file://") else text


def _is_valid_bucket_name(name: str) -> bool:
    try:
        check_bucket_name(name, f"gs://{name}")
    except ApiError:
        return False
    return True


def _prune_empty_parents(location: Location) -> None:
    """Drop directories emptied by a removal, as GCS has no empty 'folders' (bucket kept)."""
    if location.boundary is None:
        return
    parent = location.local.parent
    while parent != location.boundary and parent.is_relative_to(location.boundary):
        try:
            parent.rmdir()
        except OSError:
            return
        parent = parent.parent
