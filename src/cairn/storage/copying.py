"""gsutil's `cp` semantics: planning what goes where, then copying file by file.

Planning is separate from copying so callers (the CLI) can show progress per file and so
that every refusal (a directory without -r, a copy into itself) happens before anything
is written. Each file is written to a temporary sibling and moved into place, so a
reader never sees half a file.
"""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass

from cairn.domain.errors import ApiError, Code
from cairn.storage.listing import PARTIAL_PREFIX, Entry, relative_path, stat, walk_files
from cairn.storage.locations import Location
from cairn.storage.os_errors import disk_errors_reported

_CHUNK_BYTES = 1024 * 1024


@dataclass(frozen=True)
class SourceMatch:
    """One source argument as typed and the entries it matched."""

    text: str
    entries: list[Entry]
    wildcard: bool


@dataclass(frozen=True)
class CopyStep:
    """One file to copy: from where, to where, how many bytes."""

    source: Location
    destination: Location
    size: int


def plan_copy(
    sources: list[SourceMatch],
    destination: Location,
    destination_is_dir_syntax: bool,
    recursive: bool,
) -> list[CopyStep]:
    """The files to copy, or an ApiError explaining why the copy cannot go ahead."""
    for source in sources:
        if not source.entries:
            raise ApiError(
                Code.NOT_FOUND,
                f"No URLs matched: {source.text}. Check the name with `cairn storage ls`.",
            )
    existing = stat(destination)
    several = len(sources) > 1 or any(len(source.entries) > 1 for source in sources)
    into_directory = destination_is_dir_syntax or several or bool(existing and existing.is_dir)
    if existing is not None and not existing.is_dir and into_directory:
        raise ApiError(
            Code.INVALID_ARGUMENT,
            f"Destination {destination.display()} is a file, but copying several sources "
            "needs a directory; give a directory (ending with '/').",
        )
    steps: list[CopyStep] = []
    omitted: list[str] = []
    for source in sources:
        for entry in source.entries:
            target = destination.child(entry.location.name) if into_directory else destination
            if not entry.is_dir:
                steps.append(file_step(entry, target))
            elif recursive:
                steps.extend(tree_steps(entry, target))
            elif source.wildcard:
                omitted.append(entry.display())
            else:
                raise _needs_recursive(entry.display())
    if omitted and not steps:
        raise _needs_recursive(", ".join(omitted))
    return steps


def copy_file(step: CopyStep) -> None:
    """Copy one file through a temporary sibling, creating parent directories."""
    with disk_errors_reported(step.destination.display()):
        _copy_through_temporary(step)


def _copy_through_temporary(step: CopyStep) -> None:
    destination = step.destination
    parent = destination.path.rsplit("/", 1)[0]
    temporary = f"{parent}/{PARTIAL_PREFIX}{uuid.uuid4().hex}"
    try:
        destination.fs.makedirs(parent, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as error:
        raise _blocked(destination) from error
    if destination.fs.isdir(destination.path):
        raise ApiError(
            Code.FAILED_PRECONDITION,
            f"Cannot write {destination.display()}: a directory of that name exists. "
            "Remove it first or copy somewhere else.",
        )
    try:
        with (
            step.source.fs.open(step.source.path, "rb") as reader,
            destination.fs.open(temporary, "wb") as writer,
        ):
            shutil.copyfileobj(reader, writer, _CHUNK_BYTES)
        destination.fs.mv(temporary, destination.path)
    finally:
        if destination.fs.exists(temporary):
            destination.fs.rm(temporary)


def file_step(entry: Entry, target: Location) -> CopyStep:
    if not target.stays_inside():
        raise _escapes(target)
    if target.is_within(entry.location):
        raise ApiError(
            Code.INVALID_ARGUMENT,
            f"Copying {entry.display()} to itself ({target.display()}) would change nothing; "
            "give a different destination.",
        )
    return CopyStep(entry.location, target, entry.size)


def tree_steps(directory: Entry, target: Location) -> list[CopyStep]:
    if target.is_within(directory.location):
        raise ApiError(
            Code.INVALID_ARGUMENT,
            f"Cannot copy {directory.display()} into itself ({target.display()}); "
            "give a destination outside it.",
        )
    steps = []
    for entry in walk_files(directory.location):
        destination = target.child(relative_path(entry, directory.location))
        if not destination.stays_inside():
            raise _escapes(destination)
        steps.append(CopyStep(entry.location, destination, entry.size))
    return steps


def _needs_recursive(what: str) -> ApiError:
    return ApiError(
        Code.INVALID_ARGUMENT,
        f"{what} is a directory; copy directories with -r.",
    )


def _blocked(destination: Location) -> ApiError:
    return ApiError(
        Code.FAILED_PRECONDITION,
        f"Cannot write {destination.display()}: part of its path is a file, not a "
        "directory. Choose another destination or remove that file.",
    )


def _escapes(location: Location) -> ApiError:
    return ApiError(
        Code.INVALID_ARGUMENT,
        f"{location.display()} leads outside its bucket (through a symlink); refusing it.",
    )
