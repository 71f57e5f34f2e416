"""Which storage a request may name: Cairn's buckets, or directories the operator opened.

The server reads and copies what a request names (`deploymentUri` is copied into the
model, packages are installed, trainers get their arguments as local paths), so a request
naming a server path would reach whatever the server's user can: `~` once copied a 4 GB
home directory into a model, and `/etc` was accepted. Requests therefore name `gs://`
URIs, which stay inside Cairn's buckets. An operator who wants jobs to read local data
lists its directories in CAIRN_LOCAL_ROOTS; symlinks and `..` are resolved before the
check, so neither leads out of an allowed root.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from cairn.domain.errors import ApiError, invalid_field, shown
from cairn.storage import is_bucket_uri, parse_bucket_uri

_FILE_SCHEME = "file:"


def names_server_path(text: str) -> bool:
    """True for what the server would read as a path of its own disk."""
    return text.startswith(("/", "~", _FILE_SCHEME))


class RequestPaths:
    """Checks the storage locations and trainer arguments of a request."""

    def __init__(self, local_roots: Iterable[Path] = ()) -> None:
        self.local_roots = tuple(Path(os.path.realpath(Path(r).expanduser())) for r in local_roots)

    def check_location(self, value: str, field_path: str) -> None:
        """A place the server reads or writes for the request (deploymentUri, packageUris,
        jobDir): a `gs://` URI, or a server path under a configured root."""
        if is_bucket_uri(value):
            self._check_bucket_uri(value, field_path)
        elif names_server_path(value):
            self._check_server_path(value, field_path)
        else:
            raise invalid_field(
                field_path,
                f"{shown(value)} is not a storage URI; name Cairn's storage as "
                "gs://BUCKET/PATH (upload local files with `cairn storage cp`).",
            )

    def check_trainer_arg(self, value: str, field_path: str) -> None:
        """A trainer argument (`gs://…`, `--flag=gs://…`) is localised for the replicas, so
        its URIs must stay in their buckets and its server paths under a configured root.
        Anything else is the trainer's own business."""
        flag, equals, rest = value.partition("=")
        candidate = rest if equals and flag.startswith("-") else value
        if is_bucket_uri(candidate):
            self._check_bucket_uri(candidate, field_path)
        elif names_server_path(candidate):
            self._check_server_path(candidate, field_path)

    def _check_bucket_uri(self, uri: str, field_path: str) -> None:
        try:
            parse_bucket_uri(uri)
        except ApiError as error:
            raise invalid_field(field_path, error.message) from None

    def _check_server_path(self, text: str, field_path: str) -> None:
        path = _server_path(text)
        if path is not None and self.local_roots:
            # realpath resolves `..` and symlinks, so neither leads out of a root.
            real = Path(os.path.realpath(path))
            if any(real.is_relative_to(root) for root in self.local_roots):
                return
        raise invalid_field(
            field_path,
            f"{shown(text)} is a path on the server's disk outside the directories its "
            "operator opened to requests (CAIRN_LOCAL_ROOTS). Name Cairn's storage as "
            "gs://BUCKET/PATH instead (upload local files with `cairn storage cp`).",
        )


def _server_path(text: str) -> Path | None:
    """The absolute path `text` names (`/p`, `~/p`, `file:///p`), or None if it names none."""
    if "\x00" in text:
        return None
    if text.startswith(_FILE_SCHEME):
        # file:///p is the form storage reads as the local path /p; other forms name none.
        rest = text.removeprefix(_FILE_SCHEME)
        return Path(rest.removeprefix("//")) if rest.startswith("///") else None
    expanded = Path(os.path.expanduser(text))  # `~unknown` stays as it is
    return expanded if expanded.is_absolute() else None
