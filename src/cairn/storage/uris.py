"""Parsing and checking `gs://BUCKET/OBJECT` URIs before anything touches a disk.

Every bucket URI passes through `parse_bucket_uri`, which refuses names Cloud Storage
would refuse and any object name that could climb out of its bucket once mapped onto a
local directory. Checking here, as text, keeps the mapping in `buckets.py` simple.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import unquote

from cairn.domain.errors import ApiError, Code, shown

BUCKET_SCHEMES = ("gs", "s3")
MAX_OBJECT_NAME_BYTES = 1024  # Cloud Storage's limit on an object name
# Each part between slashes becomes a file or directory name on the local disk, and file
# systems refuse names longer than this (NAME_MAX).
MAX_NAME_PART_BYTES = 255
WILDCARD_CHARACTERS = frozenset("*?[")

_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*[a-z0-9]")
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class BucketUri:
    """A parsed `scheme://bucket/key`; `key` has no leading or doubled slashes."""

    scheme: str
    bucket: str
    key: str
    trailing_slash: bool = False

    def __str__(self) -> str:
        return self.text()

    def text(self) -> str:
        """The canonical URI; a bucket alone is written `gs://bucket/` like gsutil."""
        if not self.key:
            return f"{self.scheme}://{self.bucket}/"
        return f"{self.scheme}://{self.bucket}/{self.key}" + ("/" if self.trailing_slash else "")

    @property
    def name(self) -> str:
        """The last component: the basename cp keeps when copying into a directory."""
        return self.key.rsplit("/", 1)[-1] if self.key else self.bucket

    def child(self, relative: str) -> BucketUri:
        """This URI with `relative` (already checked components) appended."""
        key = f"{self.key}/{relative}" if self.key else relative
        return BucketUri(self.scheme, self.bucket, key.strip("/"))


def is_bucket_uri(uri: str) -> bool:
    """True for `gs://...` and `s3://...` (syntax only; s3 is not resolvable yet)."""
    return any(uri.startswith(f"{scheme}://") for scheme in BUCKET_SCHEMES)


def has_wildcard(text: str) -> bool:
    """True when `text` holds a gsutil wildcard (`*`, `**`, `?`, `[...]`)."""
    return any(character in WILDCARD_CHARACTERS for character in text)


def parse_bucket_uri(uri: str) -> BucketUri:
    """Split and check a bucket URI; raise INVALID_ARGUMENT naming the URI when it is unsafe."""
    if not is_bucket_uri(uri):
        raise ApiError(
            Code.INVALID_ARGUMENT,
            f"{shown(uri)} is not a bucket URI; write it as gs://BUCKET/PATH.",
        )
    scheme, rest = uri.split("://", 1)
    bucket, _, key = rest.partition("/")
    check_bucket_name(bucket, uri)
    parts = [part for part in key.split("/") if part]
    for part in parts:
        check_object_name_part(part, uri)
    clean_key = "/".join(parts)
    if len(clean_key.encode("utf-8", "surrogatepass")) > MAX_OBJECT_NAME_BYTES:
        raise _invalid(uri, f"object names are at most {MAX_OBJECT_NAME_BYTES} bytes long")
    return BucketUri(scheme, bucket, clean_key, trailing_slash=bool(parts) and key.endswith("/"))


def check_bucket_name(bucket: str, uri: str) -> None:
    """Cloud Storage's bucket naming rules, so a name that works here also works on GCS."""
    if not bucket:
        raise _invalid(uri, "it names no bucket; write gs://BUCKET/PATH")
    problem = _bucket_name_problem(bucket)
    if problem:
        raise _invalid(
            uri,
            f"{bucket!r} is not a valid bucket name: {problem}. Bucket names use lowercase "
            "letters, digits, '-', '_' and '.', 3-63 characters, starting and ending with a "
            "letter or digit",
        )


def _bucket_name_problem(bucket: str) -> str | None:
    if not _BUCKET_NAME.fullmatch(bucket):
        return "it has characters or ends that bucket names do not allow"
    if "." in bucket:
        if len(bucket) > 222:
            return "dotted names are at most 222 characters long"
        if any(not part or len(part) > 63 for part in bucket.split(".")):
            return "each dot-separated part must be 1-63 characters"
    elif not 3 <= len(bucket) <= 63:
        return "names are 3-63 characters long"
    if len(bucket) < 3:
        return "names are at least 3 characters long"
    if bucket.startswith("goog") or "google" in bucket:
        return "names may not start with 'goog' or contain 'google'"
    try:
        ipaddress.IPv4Address(bucket)
    except ValueError:
        return None
    return "names may not be IP addresses"


def check_object_name_part(part: str, uri: str) -> None:
    """Refuse one path component that could escape the bucket, that GCS forbids, or that
    the local disk cannot hold."""
    if len(part.encode("utf-8", "surrogatepass")) > MAX_NAME_PART_BYTES:
        raise _invalid(
            uri,
            f"each part of an object name between slashes is at most {MAX_NAME_PART_BYTES} "
            "bytes long on Cairn's local storage",
        )
    if "\\" in part:
        raise _invalid(uri, "backslashes are not allowed in object names; use '/'")
    if _CONTROL_CHARACTERS.search(part):
        raise _invalid(uri, "object names may not contain NUL, newlines or other control codes")
    decoded = _fully_unquoted(part)
    if _CONTROL_CHARACTERS.search(decoded):
        raise _invalid(uri, "object names may not contain encoded control codes")
    if any(piece in (".", "..") for piece in re.split(r"[/\\]", decoded)):
        raise _invalid(uri, "'.' and '..' path components (even %-encoded) are not allowed")


def _fully_unquoted(text: str) -> str:
    """Undo %-encoding until stable, so `%252e%252e` is seen as `..` too."""
    for _ in range(8):
        decoded = unquote(text) if "%" in text else text
        if decoded == text:
            return decoded
        text = decoded
    return text


def _invalid(uri: str, why: str) -> ApiError:
    return ApiError(Code.INVALID_ARGUMENT, f"Invalid storage URI {shown(uri)}: {why}.")
